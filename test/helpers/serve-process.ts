import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CLI_ENTRY, cleanEnv, TSX_LOADER } from './cli.js';

/** A `gatehouse serve` process started from source with a config file, as an operator would run it. */
export interface ServeProcess {
  /** `http://127.0.0.1:<port>`: this instance itself, not the public URL clients use. */
  readonly url: string;
  readonly port: number;
  /** What the process wrote to stderr so far (the banner, warnings, errors). */
  readonly stderr: () => string;
  readonly child: ChildProcess;
  /** Sends `signal` and resolves once the process exited. */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

export interface ServeProcessOptions {
  /** Working directory; the config file is written into it as `<name>.json`. */
  readonly dir: string;
  readonly name: string;
  readonly port: number;
  /** The configuration, written to the file the process reads (`server.port` is set from `port`). */
  readonly config: Record<string, unknown>;
  readonly env?: Record<string, string>;
  /** How long to wait for `/readyz` to answer 200. Default 60 s (a loaded machine). */
  readonly readyTimeoutMs?: number;
}

/** Starts `gatehouse serve --config <file>` and resolves once its `/readyz` answers 200. */
export async function startServeProcess(options: ServeProcessOptions): Promise<ServeProcess> {
  const file = join(options.dir, `${options.name}.json`);
  const server = { ...(options.config.server as Record<string, unknown> | undefined), port: options.port };
  writeFileSync(file, JSON.stringify({ ...options.config, server }));
  const child = spawn(process.execPath, ['--import', TSX_LOADER, CLI_ENTRY, 'serve', '--config', file], {
    cwd: options.dir,
    env: cleanEnv({ GATEHOUSE_LOG__LEVEL: 'warn', ...options.env }),
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = `http://127.0.0.1:${options.port}`;
  const deadline = Date.now() + (options.readyTimeoutMs ?? 60_000);
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`${options.name} exited before it was ready:\n${stderr}`);
    }
    const ready = await fetch(`${url}/readyz`).then(
      (response) => response.status === 200,
      () => false,
    );
    if (ready) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`${options.name} was not ready in time:\n${stderr}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return {
    url,
    port: options.port,
    stderr: () => stderr,
    child,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
  };
}
