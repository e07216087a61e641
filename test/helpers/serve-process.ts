import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CLI_ARGS, cleanEnv } from './cli.js';

/** A `gatehouse serve` child process, run from source like `runCli` runs the other commands. */
export interface ServeProcess {
  readonly child: ChildProcessWithoutNullStreams;
  /** The MCP endpoint its banner printed. */
  readonly mcpUrl: string;
  stderr(): string;
  /** Resolves with the exit code (or the signal) once the process has exited. */
  readonly exited: Promise<number | NodeJS.Signals>;
}

/** The process exited (or timed out) before printing its banner. */
export class ServeRefused extends Error {
  constructor(
    readonly code: number | NodeJS.Signals | 'timeout',
    readonly stderr: string,
  ) {
    super(`gatehouse serve did not start (${code}): ${stderr.slice(0, 500)}`);
    this.name = 'ServeRefused';
  }
}

/**
 * Starts `gatehouse serve …args` and resolves once its banner names the MCP endpoint; rejects with
 * {@link ServeRefused} if it exits first or prints nothing within `timeoutMs` (then it is killed).
 */
export function startServe(
  args: readonly string[],
  options: { cwd: string; env: NodeJS.ProcessEnv; timeoutMs?: number },
): Promise<ServeProcess> {
  const child = spawn(process.execPath, [...CLI_ARGS, 'serve', ...args], {
    cwd: options.cwd,
    env: options.env,
  });
  let stderr = '';
  const exited = new Promise<number | NodeJS.Signals>((resolve) =>
    child.once('exit', (code, signal) => resolve(code ?? signal ?? -1)),
  );
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new ServeRefused('timeout', stderr));
    }, options.timeoutMs ?? 30_000);
    child.stdout.resume();
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      const url = /MCP endpoint:\s+(\S+)/.exec(stderr)?.[1];
      if (url !== undefined) {
        clearTimeout(timer);
        resolve({ child, mcpUrl: url, stderr: () => stderr, exited });
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new ServeRefused(code, stderr));
    });
  });
}

/** An instance started from a config file on a known port, as an operator runs one of several. */
export interface ConfiguredServe extends ServeProcess {
  readonly port: number;
  /** Sends `signal` and resolves once the process exited. */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

export interface ConfiguredServeOptions {
  /** Working directory; the config file is written into it as `<name>.json`. */
  readonly dir: string;
  readonly name: string;
  readonly port: number;
  /** The configuration the process reads (`server.port` is set from `port`). */
  readonly config: Record<string, unknown>;
  /** How long to wait for the banner. Default 60 s (a loaded machine). */
  readonly timeoutMs?: number;
}

/** Writes `config` to `<dir>/<name>.json` and runs `gatehouse serve --config` on it until its banner. */
export async function startConfiguredServe(options: ConfiguredServeOptions): Promise<ConfiguredServe> {
  const file = join(options.dir, `${options.name}.json`);
  const server = { ...(options.config.server as Record<string, unknown> | undefined), port: options.port };
  writeFileSync(file, JSON.stringify({ ...options.config, server }));
  const started = await startServe(['--config', file], {
    cwd: options.dir,
    env: cleanEnv({ GATEHOUSE_LOG__LEVEL: 'warn' }),
    timeoutMs: options.timeoutMs ?? 60_000,
  });
  return {
    ...started,
    port: options.port,
    async stop(signal = 'SIGTERM') {
      if (started.child.exitCode === null && started.child.signalCode === null) started.child.kill(signal);
      await started.exited;
    },
  };
}
