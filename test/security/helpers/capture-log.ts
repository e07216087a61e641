import { Writable } from 'node:stream';
import { createLogger, type Logger } from '../../../src/ops/logger.js';

/** An info-level logger whose JSON lines a test can read (pino levels: 50 error, 60 fatal). */
export function capturingLogger(): { logger: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const destination = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n')) if (line !== '') lines.push(JSON.parse(line));
      done();
    },
  });
  return { logger: createLogger({ level: 'info', destination }), lines };
}

/** Log lines at error level or above (what pages an operator). */
export function errorLines(lines: ReadonlyArray<Record<string, unknown>>): Array<Record<string, unknown>> {
  return lines.filter((line) => typeof line.level === 'number' && line.level >= 50);
}
