import { setTimeout as sleep } from 'node:timers/promises';
import { getHeapCodeStatistics } from 'node:v8';
import { type BenchGateway, startBenchGateway } from './gateway.js';
import type { ChildMessage, ParentMessage, ProcessProbe, ServerRole } from './servers.js';
import { type EchoUpstream, startEchoUpstream } from './upstream.js';

/*
 * Entry point of a server process started by `spawnServer` (bench/servers.ts):
 *   child.ts upstream
 *   child.ts gateway <upstreamUrl> <users>
 * It reports `ready`, answers probes, and exits on `close` or as soon as its parent goes away.
 */

function send(message: ChildMessage): void {
  process.send?.(message);
}

const gc = (globalThis as { gc?: () => void }).gc;

/** Heap used by JavaScript data: `heapUsed` less compiled code and bytecode (which the JIT grows and sheds). */
function dataHeapBytes(): { heapUsed: number; data: number } {
  const heapUsed = process.memoryUsage().heapUsed;
  const code = getHeapCodeStatistics();
  return { heapUsed, data: heapUsed - code.code_and_metadata_size - code.bytecode_and_metadata_size };
}

/**
 * Full collections, with pauses for finalizers, timers and asynchronous closes to run, until the heap
 * has not reached a new low for three passes (at most 25 passes, about 1.2 s); then one last
 * collection and reading: what is still reachable once the process is quiet.
 */
async function collect(): Promise<{ heapUsed: number; data: number }> {
  let lowest = Number.POSITIVE_INFINITY;
  let sinceLow = 0;
  for (let pass = 0; pass < 25 && sinceLow < 3; pass++) {
    gc?.();
    await sleep(pass < 3 ? 1 : 50);
    const used = process.memoryUsage().heapUsed;
    sinceLow = used < lowest - 4096 ? 0 : sinceLow + 1;
    lowest = Math.min(lowest, used);
  }
  gc?.();
  return dataHeapBytes();
}

async function main(): Promise<void> {
  if (process.send === undefined) throw new Error('bench/child.ts must be started by spawnServer (IPC)');
  const role = process.argv[2] as ServerRole | undefined;
  let upstream: EchoUpstream | undefined;
  let gateway: BenchGateway | undefined;

  if (role === 'upstream') {
    upstream = await startEchoUpstream();
  } else if (role === 'gateway') {
    const upstreamUrl = process.argv[3];
    const users = Number(process.argv[4]);
    if (upstreamUrl === undefined || !Number.isInteger(users) || users < 1) {
      throw new Error('usage: child.ts gateway <upstreamUrl> <users>');
    }
    gateway = await startBenchGateway({ upstreamUrl, users });
  } else {
    throw new Error(`unknown role ${String(role)}`);
  }

  let closing = false;
  const shutdown = async (): Promise<void> => {
    if (closing) return;
    closing = true;
    await gateway?.close();
    await upstream?.close();
    if (process.connected) process.disconnect();
    // Keep-alive sockets or pooled upstream clients must not keep a benchmark child alive.
    setTimeout(() => process.exit(0), 1_000).unref();
  };

  process.on('message', (message: ParentMessage) => {
    if (message.kind === 'close') {
      void shutdown();
      return;
    }
    void (async () => {
      const heap = message.gc && gc !== undefined ? await collect() : dataHeapBytes();
      const memory = process.memoryUsage();
      const cpu = process.cpuUsage();
      const probe: ProcessProbe = {
        heapUsedBytes: heap.heapUsed,
        dataHeapBytes: heap.data,
        rssBytes: memory.rss,
        cpuMicros: cpu.user + cpu.system,
        gcExposed: gc !== undefined,
        verification: gateway?.running.gateway.verification.stats(),
      };
      send({ kind: 'probe', id: message.id, ...probe });
    })();
  });
  process.once('disconnect', () => void shutdown());

  send({
    kind: 'ready',
    url: gateway?.mcpUrl ?? upstream?.url ?? '',
    tokens: gateway?.tokens ?? [],
  });
}

main().catch((error: unknown) => {
  send({ kind: 'failed', message: error instanceof Error ? error.message : String(error) });
  process.exitCode = 1;
  setTimeout(() => process.exit(1), 500).unref();
});
