import { type ChildProcess, execFile, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { chown, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './late-server.js';

const run = promisify(execFile);

/** PostgreSQL refuses to run as root: as root the server runs as the `postgres` user, through `runuser`. */
const AS_ROOT = process.getuid?.() === 0;

/** The uid and gid of the `postgres` user, when running as root and the user exists. */
function postgresUser(): { uid: number; gid: number } | undefined {
  const uid = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
  const gid = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
  if (uid.status !== 0 || gid.status !== 0) return undefined;
  return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

const OWNER = AS_ROOT ? postgresUser() : undefined;

/**
 * Whether `initdb` and `postgres` are on PATH (and, as root, a `postgres` user exists to run them); suites
 * that need a private server skip, visibly, without them.
 */
export const POSTGRES_SERVER_AVAILABLE =
  spawnSync('initdb', ['--version']).status === 0 &&
  spawnSync('postgres', ['--version']).status === 0 &&
  (!AS_ROOT || OWNER !== undefined);

/** How long initdb, or a start or stop of the server, may take on a loaded machine, in milliseconds. */
const PROCESS_TIMEOUT_MS = 30_000;

/**
 * A PostgreSQL server of this test's own: a fresh cluster in a temporary directory, on a free loopback port,
 * with trust authentication and `fsync=off`. Never the machine's shared server, so a test may stop and
 * start it at will; its data survives a stop.
 */
export interface PrivatePostgres {
  /** `postgres://postgres@127.0.0.1:<port>/postgres`. */
  readonly url: string;
  readonly port: number;
  /** Fast shutdown (SIGINT: clients are disconnected at once); resolves once the server has exited. */
  stop(): Promise<void>;
  /** Starts the server again on the same port and data; resolves once it accepts connections. */
  start(): Promise<void>;
  /** Stops the server and removes its directory. */
  destroy(): Promise<void>;
}

/** `command args…`, as the `postgres` user when running as root. */
function asOwner(command: string, args: readonly string[]): [string, string[]] {
  return AS_ROOT ? ['runuser', ['-u', 'postgres', '--', command, ...args]] : [command, [...args]];
}

/** Resolves once the server logs that it accepts connections; rejects when it exits first or takes too long. */
function ready(child: ChildProcess): Promise<void> {
  return new Promise((resolve, reject) => {
    let output = '';
    const settle = (error?: Error): void => {
      clearTimeout(timer);
      child.stderr?.off('data', onData);
      child.off('exit', onExit);
      if (error === undefined) resolve();
      else reject(error);
    };
    const onData = (chunk: Buffer): void => {
      output += chunk.toString();
      if (output.includes('database system is ready to accept connections')) settle();
    };
    const onExit = (code: number | null): void =>
      settle(new Error(`postgres exited (${code}) before it was ready:\n${output}`));
    const timer = setTimeout(
      () => settle(new Error(`postgres not ready within ${PROCESS_TIMEOUT_MS} ms:\n${output}`)),
      PROCESS_TIMEOUT_MS,
    );
    child.stderr?.on('data', onData);
    child.once('exit', onExit);
  });
}

/** Initialises a cluster and starts a private server (see {@link PrivatePostgres}); the caller destroys it. */
export async function startPrivatePostgres(): Promise<PrivatePostgres> {
  const port = await freePort();
  const dir = await mkdtemp(join(tmpdir(), 'gatehouse-pg-'));
  const data = join(dir, 'data');
  if (OWNER !== undefined) await chown(dir, OWNER.uid, OWNER.gid);
  const [initdb, initArgs] = asOwner('initdb', [
    '-D',
    data,
    '-U',
    'postgres',
    '-A',
    'trust',
    '-E',
    'UTF8',
    '--locale=C',
    '--no-sync',
  ]);
  try {
    await run(initdb, initArgs, { timeout: PROCESS_TIMEOUT_MS });
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  const postmasterPid = async (): Promise<number | undefined> => {
    const pidFile = await readFile(join(data, 'postmaster.pid'), 'utf8').catch(() => undefined);
    return pidFile === undefined ? undefined : Number(pidFile.split('\n')[0]);
  };

  let child: ChildProcess | undefined;
  /** The postmaster's own pid (as root, `child` is `runuser`, which waits for it). */
  let postmaster: number | undefined;

  const start = async (): Promise<void> => {
    if (child !== undefined) return;
    const [command, args] = asOwner('postgres', [
      '-D',
      data,
      '-p',
      String(port),
      '-h',
      '127.0.0.1',
      '-k',
      dir,
      '-c',
      'fsync=off',
    ]);
    const started = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    child = started;
    try {
      await ready(started);
      postmaster = await postmasterPid();
    } catch (error) {
      child = undefined;
      // As root, killing `runuser` would leave the server behind: the postmaster goes first.
      signal(await postmasterPid(), 'SIGQUIT');
      started.kill('SIGKILL');
      throw error;
    }
    // Keep draining its log so a full pipe never blocks the server.
    started.stderr?.resume();
  };

  const stop = async (): Promise<void> => {
    const running = child;
    const pid = postmaster;
    child = undefined;
    postmaster = undefined;
    if (running === undefined || running.exitCode !== null || running.signalCode !== null) return;
    const exited = once(running, 'exit');
    // SIGINT is the fast shutdown; SIGQUIT, the immediate one, if it takes too long.
    signal(pid, 'SIGINT');
    const quitter = setTimeout(() => signal(pid, 'SIGQUIT'), PROCESS_TIMEOUT_MS);
    try {
      await exited;
    } finally {
      clearTimeout(quitter);
    }
  };
  // A test that dies before its cleanup must not leave a server behind.
  const quitOnExit = (): void => signal(postmaster, 'SIGQUIT');
  process.once('exit', quitOnExit);

  try {
    await start();
  } catch (error) {
    process.off('exit', quitOnExit);
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    stop,
    start,
    async destroy() {
      await stop();
      process.off('exit', quitOnExit);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

function signal(pid: number | undefined, name: NodeJS.Signals): void {
  if (pid === undefined || !Number.isInteger(pid)) return;
  try {
    process.kill(pid, name);
  } catch {
    // Already gone.
  }
}
