import { mkdtempSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { type MemoryOptions, type MemoryRun, measureMemory, type RetainedMemory } from './cases/memory.js';
import { measureRefresh, type RefreshOptions, type RefreshRun } from './cases/refresh.js';
import { measureThroughput, type ThroughputOptions, type VariantRun } from './cases/throughput.js';
import { measureVerification, type VerificationOptions, type VerificationRun } from './cases/verification.js';
import { median } from './load.js';
import { type ProfileSummary, summarizeProfile } from './profile.js';
import { type ServerProcess, spawnServer } from './servers.js';

/*
 * npm run bench                  writes bench/RESULTS.md
 * npm run bench -- --quick       fewer, shorter rounds (a smoke test of the harness)
 * npm run bench -- --cpu-prof    also profiles the gateway process and summarises where its CPU goes
 */

const args = new Set(process.argv.slice(2));
const quick = args.has('--quick');
const cpuProfile = args.has('--cpu-prof');

const CONCURRENCY = 8;
const throughputOptions: ThroughputOptions = {
  concurrency: CONCURRENCY,
  rounds: quick ? 2 : 5,
  requestsPerRun: quick ? 300 : 1500,
  maxRunMs: quick ? 2_000 : 5_000,
  warmupRequests: quick ? 200 : 500,
};
const verificationOptions: VerificationOptions = {
  rounds: quick ? 2 : 5,
  maxOps: 200_000,
  maxRunMs: quick ? 150 : 400,
};
const refreshOptions: RefreshOptions = {
  rounds: quick ? 2 : 3,
  maxOps: quick ? 100 : 300,
  maxRunMs: quick ? 1_000 : 3_000,
  warmupOps: quick ? 50 : 100,
};
const memoryOptions: MemoryOptions = {
  concurrency: CONCURRENCY,
  rounds: quick ? 1 : 3,
  // As long as the measured part, so both snapshots follow the same sustained load: after a short
  // warm-up a process holds a few hundred KiB more at the end of a long run than at its start (hot
  // state, not a leak), which read as +150 B/request even on the upstream.
  warmupRequests: quick ? 300 : 2_000,
  requests: quick ? 500 : 3_000,
  maxRunMs: 15_000,
};
/** The whole run is abandoned (and its children killed) past this, in milliseconds. */
const OVERALL_LIMIT_MS = 4 * 60_000;

const RESULTS_PATH = fileURLToPath(new URL('./RESULTS.md', import.meta.url));

async function main(): Promise<void> {
  const begin = performance.now();
  const loadBefore = os.loadavg();
  const profileDir = cpuProfile ? mkdtempSync(join(os.tmpdir(), 'gatehouse-bench-prof-')) : undefined;

  log('(b) verification cache: hit vs miss');
  const verification = await measureVerification(verificationOptions);
  log('(d) refresh-token rotation: memory vs SQLite store');
  const refresh = await measureRefresh(refreshOptions);

  const servers: ServerProcess[] = [];
  let throughput: VariantRun[];
  let memory: MemoryRun[];
  try {
    const upstream = await spawnServer('upstream');
    servers.push(upstream);
    const gateway = await spawnServer('gateway', {
      args: [upstream.url, String(CONCURRENCY)],
      nodeFlags: profileDir === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${profileDir}`],
    });
    servers.push(gateway);
    log(`(a) tools/call: direct ${upstream.url} vs gateway ${gateway.url}`);
    throughput = await measureThroughput({ upstream, gateway }, throughputOptions);
    log('(c) memory retained per request');
    memory = await measureMemory({ upstream, gateway }, memoryOptions);
  } finally {
    for (const server of servers.reverse()) await server.close();
  }

  let profile: ProfileSummary | undefined;
  if (profileDir !== undefined) {
    // Node writes one profile per thread (tsx adds a loader thread); the main thread's is the largest.
    const file = readdirSync(profileDir)
      .filter((name) => name.endsWith('.cpuprofile'))
      .map((name) => ({ name, size: statSync(join(profileDir, name)).size }))
      .sort((a, b) => b.size - a.size)[0]?.name;
    if (file !== undefined) profile = summarizeProfile(join(profileDir, file));
    log(`gateway CPU profile: ${profileDir}/${file ?? '(none written)'}`);
  }

  const markdown = render({
    throughput,
    verification,
    memory,
    refresh,
    profile,
    elapsedSeconds: (performance.now() - begin) / 1000,
    loadBefore,
    loadAfter: os.loadavg(),
  });
  writeFileSync(RESULTS_PATH, markdown);
  log(`wrote ${RESULTS_PATH}`);
  process.stdout.write(`\n${markdown}`);
}

interface Report {
  throughput: VariantRun[];
  verification: VerificationRun[];
  memory: MemoryRun[];
  refresh: RefreshRun[];
  profile: ProfileSummary | undefined;
  elapsedSeconds: number;
  loadBefore: number[];
  loadAfter: number[];
}

function render(report: Report): string {
  const cpus = os.cpus();
  const lines: string[] = [];
  const push = (...more: string[]) => lines.push(...more);
  push(
    '# Gatehouse benchmark results',
    '',
    `Written by \`npm run bench\` (bench/run.ts)${quick ? ' with `--quick`' : ''}${cpuProfile ? ' with `--cpu-prof` (profiler on: the gateway figures are slowed by it)' : ''}. Overwritten on every run.`,
    '',
    '| | |',
    '|-|-|',
    `| Date | ${new Date().toISOString()} |`,
    `| Node | ${process.version} (${os.platform()} ${os.arch()}) |`,
    `| CPU | ${cpus[0]?.model ?? 'unknown'} |`,
    `| Cores | ${cpus.length} |`,
    `| Load average (1 min) before / after | ${fixed(report.loadBefore[0], 2)} / ${fixed(report.loadAfter[0], 2)} |`,
    `| Bench wall time | ${fixed(report.elapsedSeconds, 0)} s |`,
    '',
    '**How to read this:** each case compares two variants run in alternating rounds within this one run on a shared, noisy machine, so trust the ratios (medians of per-round ratios), not the absolute figures, and compare ratios between runs, never raw req/s.',
    '',
  );
  renderThroughput(report.throughput, push);
  renderVerification(report.verification, push);
  renderMemory(report.memory, push);
  renderRefresh(report.refresh, push);
  if (report.profile !== undefined) renderProfile(report.profile, push);
  return `${lines.join('\n')}\n`;
}

type Push = (...lines: string[]) => void;

function renderThroughput(runs: VariantRun[], push: Push): void {
  const o = throughputOptions;
  const direct = runs.filter((run) => run.variant === 'direct');
  const gateway = runs.filter((run) => run.variant === 'gateway');
  const paired = (pick: (run: VariantRun) => number) =>
    median(direct.map((d, i) => pick(gateway[i] as VariantRun) / pick(d)));
  const serverCpu = (run: VariantRun) => run.cpuMicrosPerRequest.gateway + run.cpuMicrosPerRequest.upstream;
  push(
    '## (a) Authenticated `tools/call` through the gateway vs the upstream directly',
    '',
    `One load generator for both: a closed loop of ${o.concurrency} virtual users over \`fetch\` (keep-alive), each POSTing a raw JSON-RPC \`tools/call\` of the \`echo\` tool in the stateless 2026-07-28 shape (per-request \`_meta\` envelope, \`Mcp-Protocol-Version\`/\`Mcp-Method\`/\`Mcp-Name\` headers, as the SDK v2 client sends it when pinned to that revision). Each run stops at ${o.requestsPerRun} requests or ${o.maxRunMs / 1000} s, whichever comes first; ${o.warmupRequests} unmeasured requests per variant first. ${o.rounds} rounds; the variant that goes first alternates.`,
    '',
    '- **direct**: the upstream (SDK v2 `createMcpHandler`, one `echo` tool, no auth) on 127.0.0.1, no `Authorization` header.',
    `- **gateway**: \`serveGateway\` (memory store, silent log, HTTP upstream) in front of the same upstream process; each virtual user sends its own Gatehouse access token (${o.concurrency} users, so ${o.concurrency} verification-cache entries and ${o.concurrency} pooled per-user upstream clients); the gateway forwards with a minted identity token the upstream ignores.`,
    '- Load generator, gateway and upstream are three processes on the same cores. "CPU µs/req" is each process\'s user+system CPU time over the run divided by the requests served; it is less sensitive to the noisy neighbour than req/s.',
    '',
    '| Round | Variant | Requests | req/s | p50 ms | p99 ms | CPU µs/req gateway | CPU µs/req upstream | CPU µs/req load generator |',
    '|-|-|-|-|-|-|-|-|-|',
  );
  for (const run of runs) {
    const cpu = run.cpuMicrosPerRequest;
    push(
      `| ${run.round} | ${run.variant} | ${run.load.completed}${run.load.timeBound ? ' (time bound)' : ''} | ${fixed(run.load.requestsPerSecond, 0)} | ${fixed(run.load.latencyMs.p50, 2)} | ${fixed(run.load.latencyMs.p99, 2)} | ${run.variant === 'direct' ? '–' : fixed(cpu.gateway, 0)} | ${fixed(cpu.upstream, 0)} | ${fixed(cpu.generator, 0)} |`,
    );
  }
  const med = (list: VariantRun[], pick: (run: VariantRun) => number) => median(list.map(pick));
  const row = (label: string, pick: (run: VariantRun) => number, digits: number) =>
    `| ${label} | ${fixed(med(direct, pick), digits)} | ${fixed(med(gateway, pick), digits)} | **${fixed(paired(pick), 2)}×** |`;
  push(
    '',
    'Medians over the rounds; the ratio is the median of the per-round gateway/direct ratios:',
    '',
    '| | direct | gateway | gateway / direct |',
    '|-|-|-|-|',
    row('requests/s', (run) => run.load.requestsPerSecond, 0),
    row('p50 latency, ms', (run) => run.load.latencyMs.p50, 2),
    row('p99 latency, ms', (run) => run.load.latencyMs.p99, 2),
    row('server CPU µs/req (gateway + upstream)', serverCpu, 0),
    '',
  );
}

function renderVerification(runs: VerificationRun[], push: Push): void {
  const o = verificationOptions;
  const hits = runs.filter((run) => run.variant === 'hit');
  const misses = runs.filter((run) => run.variant === 'miss');
  const ratio = median(hits.map((hit, i) => (misses[i] as VerificationRun).microsPerOp / hit.microsPerOp));
  push(
    '## (b) Verification cache: hit vs miss',
    '',
    `One valid Gatehouse access token (ES256, \`typ: at+jwt\`), verified sequentially in this process through \`createVerificationCache\` with the local verifier. Each run stops at ${o.maxOps} operations or ${o.maxRunMs} ms; ${o.rounds} alternating rounds after a warm-up.`,
    '',
    '- **hit**: cache of 10 000 entries already holding the token: shape check, SHA-256 of the token, LRU touch.',
    '- **miss**: the same token through a cache built with `maxEntries: 0` (caching off), so every call runs the full miss path: SHA-256 key, in-flight coalescing bookkeeping, unverified decode to route by `iss`, ES256 signature check and every claim check. This is exactly what a cold cache does, without minting a fresh token inside the timed loop.',
    '',
    '| Round | Variant | Operations | ops/s | µs/op |',
    '|-|-|-|-|-|',
    ...runs.map(
      (run) =>
        `| ${run.round} | ${run.variant} | ${run.ops} | ${fixed(run.opsPerSecond, 0)} | ${fixed(run.microsPerOp, 2)} |`,
    ),
    '',
    '| | hit | miss | miss / hit (µs/op) |',
    '|-|-|-|-|',
    `| ops/s (median) | ${fixed(median(hits.map((r) => r.opsPerSecond)), 0)} | ${fixed(median(misses.map((r) => r.opsPerSecond)), 0)} | |`,
    `| µs/op (median) | ${fixed(median(hits.map((r) => r.microsPerOp)), 2)} | ${fixed(median(misses.map((r) => r.microsPerOp)), 2)} | **${fixed(ratio, 0)}×** |`,
    '',
  );
}

function renderMemory(runs: MemoryRun[], push: Push): void {
  const o = memoryOptions;
  const gcExposed = runs.every((run) => run.gcExposed);
  const direct = runs.filter((run) => run.variant === 'direct');
  const gateway = runs.filter((run) => run.variant === 'gateway');
  const kib = (bytes: number) => fixed(bytes / 1024, 1);
  const row = (round: number, variant: string, measured: string, requests: number, m: RetainedMemory) =>
    `| ${round} | ${variant} | ${measured} | ${requests} | ${kib(m.heapDeltaBytes)} | ${fixed(m.heapBytesPerRequest, 1)} | ${kib(m.dataHeapDeltaBytes)} | **${fixed(m.dataHeapBytesPerRequest, 1)}** | ${kib(m.rssDeltaBytes)} |`;
  push(
    '## (c) Memory retained per request (leak check)',
    '',
    `This is a **leak check: memory retained, not allocated**. Per run: ${o.warmupRequests} warm-up requests (a sustained run like the measured one, so both snapshots follow the same load; after a short warm-up a process holds a few hundred KiB more at the end of a long run than at its start, which is state, not a leak), then full GC in the server processes (\`global.gc\`, repeated with pauses until the heap stops shrinking), then ${o.requests} requests (${o.concurrency} virtual users, same traffic as (a)), then full GC again. ${o.rounds} alternating rounds, in the same processes as (a).${gcExposed ? '' : ' **`global.gc` was not available: these figures are not after a full collection and mean little.**'}`,
    '',
    '- **heap Δ**: `heapUsed` after minus before. It includes compiled code and bytecode, which V8 grows by about a megabyte under sustained load and sheds again when load drops, so it swings by ±1–2 MiB either way.',
    "- **data heap Δ**: the same less V8's code and bytecode sizes (`v8.getHeapCodeStatistics()`): what JavaScript objects still hold. This is the leak figure.",
    '- **RSS Δ**: as measured; the allocator seldom returns pages, so it is a coarse upper bound.',
    '',
    '| Round | Variant | Process measured | Requests | heap Δ, KiB | heap Δ / req, B | data heap Δ, KiB | data heap Δ / req, B | RSS Δ, KiB |',
    '|-|-|-|-|-|-|-|-|-|',
  );
  for (const run of runs) {
    push(
      row(
        run.round,
        run.variant,
        run.variant === 'gateway' ? 'gateway' : 'upstream',
        run.requests,
        run.entry,
      ),
    );
    if (run.upstreamBehindGateway !== undefined) {
      push(row(run.round, 'gateway', 'upstream (behind it)', run.requests, run.upstreamBehindGateway));
    }
  }
  const perRequest = (list: MemoryRun[]) => median(list.map((r) => r.entry.dataHeapBytesPerRequest));
  push(
    '',
    `Median data heap Δ / request: gateway process **${fixed(perRequest(gateway), 1)} B**; upstream serving direct traffic (baseline) **${fixed(perRequest(direct), 1)} B**. Over ${o.requests} requests ±100 KiB of GC noise is ±${fixed((100 * 1024) / o.requests, 0)} B per request; a leak shows as the same positive figure in every round, well above the baseline's.`,
    '',
  );
}

function renderRefresh(runs: RefreshRun[], push: Push): void {
  const o = refreshOptions;
  const memory = runs.filter((run) => run.variant === 'memory');
  const sqlite = runs.filter((run) => run.variant === 'sqlite');
  const ratio = median(memory.map((m, i) => (sqlite[i] as RefreshRun).microsPerOp / m.microsPerOp));
  push(
    '## (d) Refresh-token rotation at the token endpoint: memory vs SQLite store',
    '',
    `Two gateways in this process (\`createGateway\`, nothing listening; requests served through \`app.request\`), identical but for the store: \`store.kind: memory\` and \`store.kind: sqlite\` (a file in a temporary data directory). Set up outside timing, per gateway: one public client registered at \`POST /oauth/register\`, one local account, one authorization code written straight to the code store (what the consent page stores) and exchanged at \`POST /oauth/token\`. Each measured operation is one \`POST /oauth/token\` with \`grant_type=refresh_token\` presenting the refresh token the previous one returned, sequentially, so each is a full rotation: client lookup, refresh-token lookup, grant read, ES256 access token, sealed grace response, compare-and-swap rotation. Each run stops at ${o.maxOps} refreshes or ${o.maxRunMs / 1000} s; ${o.warmupOps} unmeasured refreshes per variant first; ${o.rounds} rounds, the variant that goes first alternates. The grant grows one generation per refresh in both stores.`,
    '',
    '| Round | Variant | Refreshes | ops/s | µs/op |',
    '|-|-|-|-|-|',
    ...runs.map(
      (run) =>
        `| ${run.round} | ${run.variant} | ${run.ops}${run.ops < o.maxOps ? ' (time bound)' : ''} | ${fixed(run.opsPerSecond, 0)} | ${fixed(run.microsPerOp, 0)} |`,
    ),
    '',
    '| | memory | sqlite | sqlite / memory (µs/op) |',
    '|-|-|-|-|',
    `| ops/s (median) | ${fixed(median(memory.map((r) => r.opsPerSecond)), 0)} | ${fixed(median(sqlite.map((r) => r.opsPerSecond)), 0)} | |`,
    `| µs/op (median) | ${fixed(median(memory.map((r) => r.microsPerOp)), 0)} | ${fixed(median(sqlite.map((r) => r.microsPerOp)), 0)} | **${fixed(ratio, 2)}×** |`,
    '',
  );
}

function renderProfile(profile: ProfileSummary, push: Push): void {
  push(
    '## Gateway CPU profile (`--cpu-prof`)',
    '',
    `Self time of the gateway process's main thread over the whole run (${fixed(profile.totalMs, 0)} ms sampled, idle excluded), grouped by where the code lives. It includes the bench's own forced collections for (c), which inflate the garbage collector's share.`,
    '',
    '| Where | Self ms | Share |',
    '|-|-|-|',
    ...profile.byLocation
      .slice(0, 12)
      .map((row) => `| ${row.name} | ${fixed(row.ms, 0)} | ${fixed(row.share * 100, 1)} % |`),
    '',
    'Top functions by self time:',
    '',
    '| Function | Where | Self ms | Share |',
    '|-|-|-|-|',
    ...profile.byFunction
      .slice(0, 15)
      .map(
        (row) =>
          `| \`${row.name}\` | ${row.location} | ${fixed(row.ms, 0)} | ${fixed(row.share * 100, 1)} % |`,
      ),
    '',
  );
}

function fixed(value: number | undefined, digits: number): string {
  return value === undefined || Number.isNaN(value) ? 'n/a' : value.toFixed(digits);
}

function log(message: string): void {
  process.stderr.write(`[bench] ${message}\n`);
}

const guard = setTimeout(() => {
  log(`gave up after ${OVERALL_LIMIT_MS / 1000} s`);
  process.exit(2);
}, OVERALL_LIMIT_MS);
guard.unref();

main().then(
  () => clearTimeout(guard),
  (error: unknown) => {
    log(`failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    process.exitCode = 1;
  },
);
