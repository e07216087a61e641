import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** The tsx loader by absolute URL, so children started in another working directory still find it. */
export const TSX_LOADER = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
/**
 * The CLI's entry point as built into `dist/` (the suite's global setup compiles it first: see
 * `build-cli.ts`), which is what `bin/gatehouse.js` and the published package run.
 */
export const CLI_ENTRY = fileURLToPath(new URL('../../dist/cli/entry.js', import.meta.url));
/** The arguments to `node` that run the `gatehouse` CLI: `[...CLI_ARGS, 'serve', …]`. */
export const CLI_ARGS: readonly string[] = [CLI_ENTRY];

export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** A minimal environment: nothing from the test process leaks into the CLI's configuration. */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH, HOME: process.env.HOME, ...extra };
}

/** Runs the real `gatehouse` CLI to completion, with `stdin` piped in and closed (never a terminal). */
export function runCli(
  args: readonly string[],
  cwd: string,
  env: NodeJS.ProcessEnv,
  stdin = '',
): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [...CLI_ARGS, ...args], { cwd, env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    child.stdin.end(stdin);
  });
}
