import { type ChildProcess, fork } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';

/** Which server a child process hosts. */
export type ServerRole = 'upstream' | 'gateway';

/** What a server process reports about itself; memory after forced GC when `gc` was asked for. */
export interface ProcessProbe {
  heapUsedBytes: number;
  /** `heapUsedBytes` less compiled code and bytecode (V8 code statistics): the heap held by JavaScript data. */
  dataHeapBytes: number;
  rssBytes: number;
  /** User + system CPU time since the process started, in microseconds. */
  cpuMicros: number;
  /** Whether `global.gc` was available, i.e. whether the memory figures follow a full collection. */
  gcExposed: boolean;
  /** The gateway's verification cache counters (gateway role only). */
  verification?: { hits: number; misses: number } | undefined;
}

/** Parent → child. */
export type ParentMessage = { kind: 'probe'; id: number; gc: boolean } | { kind: 'close' };

/** Child → parent. */
export type ChildMessage =
  | { kind: 'ready'; url: string; tokens: readonly string[] }
  | ({ kind: 'probe'; id: number } & ProcessProbe)
  | { kind: 'failed'; message: string };

export interface ServerProcess {
  readonly role: ServerRole;
  readonly pid: number;
  /** The MCP endpoint the child serves. */
  readonly url: string;
  /** Access tokens minted by the gateway child, one per virtual user (empty for the upstream). */
  readonly tokens: readonly string[];
  probe(options: { gc: boolean }): Promise<ProcessProbe>;
  /** Asks the child to close its servers and exit; kills it if it has not exited in time. */
  close(): Promise<void>;
}

export interface SpawnServerOptions {
  /** Passed to the child as its arguments after the role. */
  args?: readonly string[];
  /** Extra Node flags for the child (for example `--cpu-prof`). */
  nodeFlags?: readonly string[];
  /** How long the child may take to report ready, in milliseconds. Default 20 000. */
  readyTimeoutMs?: number;
}

const CHILD_ENTRY = fileURLToPath(new URL('./child.ts', import.meta.url));
const CLOSE_TIMEOUT_MS = 5_000;
const PROBE_TIMEOUT_MS = 10_000;

const children = new Set<ChildProcess>();
process.once('exit', () => {
  // Last resort if the orchestrator dies: the children also exit when the IPC channel closes.
  for (const child of children) child.kill('SIGKILL');
});

/**
 * Starts one server in its own Node process, so the load generator, the gateway and the upstream
 * each have their own event loop and the memory figures of one are not mixed with another's. The
 * child inherits the loader flags this process runs with (tsx) and always gets `--expose-gc`, so
 * the benchmark needs no flags of its own.
 */
export async function spawnServer(
  role: ServerRole,
  options: SpawnServerOptions = {},
): Promise<ServerProcess> {
  const child = fork(CHILD_ENTRY, [role, ...(options.args ?? [])], {
    execArgv: [...process.execArgv, '--expose-gc', ...(options.nodeFlags ?? [])],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  children.add(child);
  child.once('exit', () => children.delete(child));

  const pending = new Map<number, (probe: ProcessProbe) => void>();
  let nextId = 0;
  child.on('message', (message: ChildMessage) => {
    if (message.kind !== 'probe') return;
    const { kind: _kind, id, ...probe } = message;
    pending.get(id)?.(probe);
    pending.delete(id);
  });

  let ready: Extract<ChildMessage, { kind: 'ready' }>;
  try {
    ready = await new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`${role} did not start in time`)),
        options.readyTimeoutMs ?? 20_000,
      );
      const settle = (error: Error | undefined, message?: Extract<ChildMessage, { kind: 'ready' }>) => {
        clearTimeout(timer);
        if (message !== undefined) resolve(message);
        else reject(error);
      };
      child.on('message', (message: ChildMessage) => {
        if (message.kind === 'ready') settle(undefined, message);
        if (message.kind === 'failed') settle(new Error(`${role} failed: ${message.message}`));
      });
      child.once('exit', (code) => settle(new Error(`${role} exited early with code ${code}`)));
      child.once('error', (error) => settle(error));
    });
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }

  return {
    role,
    pid: child.pid ?? -1,
    url: ready.url,
    tokens: ready.tokens,
    probe({ gc }) {
      const id = nextId++;
      return new Promise<ProcessProbe>((resolve, reject) => {
        const timer = setTimeout(() => {
          pending.delete(id);
          reject(new Error(`${role} did not answer a probe`));
        }, PROBE_TIMEOUT_MS);
        pending.set(id, (probe) => {
          clearTimeout(timer);
          resolve(probe);
        });
        child.send({ kind: 'probe', id, gc } satisfies ParentMessage);
      });
    },
    async close() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, 'exit');
      if (child.connected) child.send({ kind: 'close' } satisfies ParentMessage);
      const timer = setTimeout(() => child.kill('SIGKILL'), CLOSE_TIMEOUT_MS);
      await exited;
      clearTimeout(timer);
    },
  };
}
