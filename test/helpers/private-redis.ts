import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Whether `redis-server` is on PATH; suites that need a private server skip, visibly, without it. */
export const REDIS_SERVER_AVAILABLE = spawnSync('redis-server', ['--version']).status === 0;

/** How long a private server may take to start or stop on a loaded machine, in milliseconds. */
const PROCESS_TIMEOUT_MS = 20_000;

/**
 * A `redis-server` of this test's own on a free loopback port, without persistence: stopping it loses every
 * key. Never the machine's shared server, so a test may stop and start it at will.
 */
export interface PrivateRedis {
  /** `redis://127.0.0.1:<port>/0`. */
  readonly url: string;
  readonly port: number;
  /** Stops the server (SIGTERM, SIGKILL after a while) and resolves once the process has exited. */
  stop(): Promise<void>;
  /** Kills the server at once (SIGKILL), as a crash would, and resolves once the process has exited. */
  crash(): Promise<void>;
  /** Starts the server again on the same port; resolves once it accepts connections. */
  start(): Promise<void>;
  /** Stops the server and removes its working directory. */
  destroy(): Promise<void>;
}

/** A TCP port on 127.0.0.1 that nothing listens on at the moment of asking. */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  server.close();
  await once(server, 'close');
  if (address === null || typeof address === 'string') throw new Error('no port assigned');
  return address.port;
}

/** Resolves once `child` logs that it accepts connections; rejects when it exits first or takes too long. */
function ready(child: ChildProcess): Promise<void> {
  return new Promise((resolve, reject) => {
    let output = '';
    const settle = (error?: Error): void => {
      clearTimeout(timer);
      child.stdout?.off('data', onData);
      child.off('exit', onExit);
      if (error === undefined) resolve();
      else reject(error);
    };
    const onData = (chunk: Buffer): void => {
      output += chunk.toString();
      if (output.includes('Ready to accept connections')) settle();
    };
    const onExit = (code: number | null): void =>
      settle(new Error(`redis-server exited (${code}) before it was ready:\n${output}`));
    const timer = setTimeout(
      () => settle(new Error(`redis-server not ready within ${PROCESS_TIMEOUT_MS} ms:\n${output}`)),
      PROCESS_TIMEOUT_MS,
    );
    child.stdout?.on('data', onData);
    child.once('exit', onExit);
  });
}

/** Starts a private `redis-server` (see {@link PrivateRedis}); the caller destroys it. */
export async function startPrivateRedis(): Promise<PrivateRedis> {
  const port = await freePort();
  const dir = await mkdtemp(join(tmpdir(), 'gatehouse-redis-'));
  let child: ChildProcess | undefined;

  const start = async (): Promise<void> => {
    if (child !== undefined) return;
    const started = spawn(
      'redis-server',
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'no',
        '--daemonize',
        'no',
        '--dir',
        dir,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    child = started;
    try {
      await ready(started);
    } catch (error) {
      child = undefined;
      started.kill('SIGKILL');
      throw error;
    }
    // Keep draining its log so a full pipe never blocks the server.
    started.stdout?.resume();
  };

  const stop = async (signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<void> => {
    const running = child;
    child = undefined;
    if (running === undefined || running.exitCode !== null || running.signalCode !== null) return;
    const exited = once(running, 'exit');
    running.kill(signal);
    const killer = setTimeout(() => running.kill('SIGKILL'), PROCESS_TIMEOUT_MS);
    try {
      await exited;
    } finally {
      clearTimeout(killer);
    }
  };
  // A test that dies before its cleanup must not leave a server behind.
  const killOnExit = (): void => {
    child?.kill('SIGKILL');
  };
  process.once('exit', killOnExit);

  await start();
  return {
    url: `redis://127.0.0.1:${port}/0`,
    port,
    stop: () => stop('SIGTERM'),
    crash: () => stop('SIGKILL'),
    start,
    async destroy() {
      await stop();
      process.off('exit', killOnExit);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
