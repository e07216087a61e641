import { mkdtempSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { type MemoryOptions, type MemoryRun, measureMemory, type RetainedMemory } from './cases/memory.js';
import { measureRefresh, type RefreshOptions, type RefreshRun } from './cases/refresh.js';
import {
  ENGINES,
  type EngineName,
  type EngineRun,
  type LatencyOp,
  LOOP_RESOLUTION_MS,
  MIN_PHASE_SHARE,
  measureStores,
  PHASE_ENDS,
  type Phase,
  type StoresOptions,
  type StoresReport,
} from './cases/stores.js';
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
const storesOptions: StoresOptions = {
  latencyOps: quick ? 300 : 2_000,
  warmupOps: quick ? 50 : 200,
  latencyMaxRunMs: quick ? 3_000 : 5_000,
  storageSessions: quick ? 10_000 : 100_000,
  insertConcurrency: 64,
  fillMaxRunMs: quick ? 10_000 : 40_000,
  sweepSessions: quick ? 20_000 : 1_000_000,
  redisSweepSessions: quick ? 20_000 : 100_000,
  pairSweepSessions: quick ? 20_000 : 200_000,
  sweepMaxRunMs: quick ? 15_000 : 60_000,
  revocationRounds: 50,
  revocationTimeoutMs: 2_000,
  // Servers the machine offers; an engine that does not answer is reported as skipped.
  postgresUrl: process.env.GATEHOUSE_BENCH_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
  redisUrl: process.env.GATEHOUSE_BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379/14',
  // 60 s in all with --quick, 4 min without; the long phases (fills, sweeps) are cut to fit.
  engineBudgetMs: quick
    ? { memory: 10_000, sqlite: 12_000, postgres: 25_000, redis: 13_000 }
    : { memory: 40_000, sqlite: 75_000, postgres: 95_000, redis: 30_000 },
};
/** The event-loop delay a sweep may cause at most, in milliseconds (case (e)). */
const SWEEP_LOOP_DELAY_TARGET_MS = 50;
/** The whole run is abandoned (and its children killed) past this, in milliseconds. */
const OVERALL_LIMIT_MS = 12 * 60_000;

const RESULTS_PATH = fileURLToPath(new URL('./RESULTS.md', import.meta.url));

async function main(): Promise<void> {
  const begin = performance.now();
  const loadBefore = os.loadavg();
  const profileDir = cpuProfile ? mkdtempSync(join(os.tmpdir(), 'gatehouse-bench-prof-')) : undefined;

  log('(b) verification cache: hit vs miss');
  const verification = await measureVerification(verificationOptions);
  log('(d) refresh-token rotation: memory vs SQLite store');
  const refresh = await measureRefresh(refreshOptions);
  log('(e) stores per engine');
  const stores = await measureStores(storesOptions, log);

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
    stores,
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
  stores: StoresReport;
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
  renderStores(report.stores, push);
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

const ENGINE_LABELS: Record<EngineName, string> = {
  memory: 'memory',
  sqlite: 'SQLite',
  postgres: 'PostgreSQL',
  redis: 'Redis',
};

/** The figures of a phase, or `undefined` when it has none. */
function phaseValue<T>(phase: Phase<T>): T | undefined {
  return 'value' in phase ? phase.value : undefined;
}

/** Why a phase has no figures: `skipped: …` or `failed: …`. */
function phaseNote<T>(phase: Phase<T>): string {
  if ('skipped' in phase) return `skipped: ${phase.skipped}`;
  if ('failed' in phase) return `**failed:** ${phase.failed}`;
  return '';
}

function renderStores(report: StoresReport, push: Push): void {
  const o = storesOptions;
  const runs = report.engines;
  const label = (run: EngineRun) => ENGINE_LABELS[run.engine];
  const count = (n: number) => n.toLocaleString('en-US');
  const mib = (bytes: number) => fixed(bytes / 1024 / 1024, 1);
  const seconds = (ms: number) => fixed(ms / 1000, 1);
  const skippedEngines = runs.filter((run) => run.skipped !== undefined);
  push(
    '## (e) Stores per engine: latency, storage, sweep, cross-instance revocation',
    '',
    `Every figure goes through the store ports (\`Stores\`), in this process, on each engine: memory, SQLite (a file in a temporary directory, WAL), PostgreSQL (${o.postgresUrl.replace(/\/\/[^@/]*@/, '//')}, a fresh schema) and Redis (${o.redisUrl.replace(/\/\/[^@/]*@/, '//')}, a fresh key prefix); the schema, the keys and the file are removed afterwards. The two servers are shared with whatever else runs on this machine, and these are absolute figures of one run, so read them as orders of magnitude between engines, not as stable numbers. Each engine has a time budget (${ENGINES.map((engine) => `${ENGINE_LABELS[engine]} ${o.engineBudgetMs[engine] / 1000} s`).join(', ')}), split between its phases in the order they run — latency until ${percent(PHASE_ENDS.latency)} of it, revocation until ${percent(PHASE_ENDS.revocation)}, sweep until ${percent(PHASE_ENDS.sweep)} (PostgreSQL ${percent(PHASE_ENDS.postgresSweep)}, then the two-instance sweep until ${percent(PHASE_ENDS.pairSweep)}), storage until the end; time a phase leaves goes to the next, and each gets at least ${percent(MIN_PHASE_SHARE)}. Every loop stops at its own bound or at its phase's end, whichever comes first; figures cut short are marked "time bound".`,
    '',
  );
  for (const run of skippedEngines) push(`- **${label(run)}: skipped: ${run.skipped}**`);
  if (skippedEngines.length > 0) push('');

  const ops: LatencyOp[] = ['session lookup', 'code consume', 'refresh rotation'];
  push(
    '### Latency of the hot operations',
    '',
    `Sequential, one operation at a time, each timed on its own. Each series has a window of ${o.latencyMaxRunMs / 1000} s (less when the phase's share of the budget is smaller): up to ${o.warmupOps} unmeasured operations in its first quarter, then ${o.latencyOps} timed ones or until the window closes, whichever comes first.`,
    '',
    `- **session lookup**: \`sessions.touch(id, principalKey, now)\` of a live session by its owner — what every request on a 2025-era (stateful) session does — cycling through ${count(1000)} sessions of 100 principals.`,
    '- **code consume**: `codes.consume(codeHash, now)` of a fresh code each time (the codes are created before the series).',
    '- **refresh rotation**: `grants.rotate(id, generation, newHash, now, graceResponse)` walking one grant through its generations (a ~900-character sealed grace response each time), as every refresh does.',
    '',
    `| Engine | ${ops.map((op) => `${op} p50 µs | ${op} p99 µs`).join(' | ')} |`,
    `|-|${ops.map(() => '-|-|').join('')}`,
  );
  for (const run of runs) {
    const latency = phaseValue(run.latency);
    if (latency === undefined) {
      push(`| ${label(run)} | ${phaseNote(run.latency)} |${' |'.repeat(ops.length * 2 - 1)}`);
      continue;
    }
    const cells = ops.map((op) => {
      const series = latency.find((each) => each.op === op);
      if (series === undefined) return 'n/a | n/a';
      const bound = series.timeBound ? ` (${series.ops} ops, time bound)` : '';
      return `${fixed(series.p50Micros, 0)}${bound} | ${fixed(series.p99Micros, 0)}`;
    });
    push(`| ${label(run)} | ${cells.join(' | ')} |`);
  }
  push('');

  push(
    `### Storage for ${count(o.storageSessions)} live sessions`,
    '',
    `${count(o.storageSessions)} established Streamable HTTP sessions, 10 per principal (the default \`sessions.maxPerUser\`), each with the \`data\` the gateway stores (\`{ initialize: params }\`, about 300 bytes of JSON), into empty stores of their own (a fresh process, file, schema or key prefix), through \`sessions.create\` with ${o.insertConcurrency} in flight for at most ${o.fillMaxRunMs / 1000} s or what is left of the engine's budget (this phase runs last). Where the port did not get them all in by then, SQLite and PostgreSQL get the rest through one SQL statement of the same rows (as the sweep fill below), so the figure is still for ${count(o.storageSessions)}; the insert rate is the port's. The figure is the growth of what each engine holds, read before and after:`,
    '',
    '- **memory**: `heapUsed` growth of a separate Node process started with `--expose-gc` that holds nothing but the store, after full collections (its RSS growth in brackets).',
    '- **SQLite**: database file plus WAL after `wal_checkpoint(TRUNCATE)`.',
    "- **PostgreSQL**: `pg_total_relation_size` of the adapter's `sessions` table (heap, indexes, TOAST), read through a separate connection.",
    '- **Redis**: `used_memory` from `INFO memory` — the whole server, so anything else using it meanwhile shows up here too.',
    '',
    '| Engine | Sessions | Growth, MiB | Per session, bytes | Through the port | Port time, s | Port inserts/s |',
    '|-|-|-|-|-|-|-|',
  );
  for (const run of runs) {
    const s = phaseValue(run.storage);
    if (s === undefined) {
      push(`| ${label(run)} | ${phaseNote(run.storage)} | | | | | |`);
      continue;
    }
    const rss = s.rssBytes === undefined ? '' : ` (RSS ${mib(s.rssBytes)})`;
    const gc = s.gcExposed === false ? ' **(no `global.gc`: not after a full collection)**' : '';
    push(
      `| ${label(run)} | ${count(s.sessions)} | ${mib(s.bytes)}${rss}${gc} | ${fixed(s.bytes / s.sessions, 0)} | ${count(s.throughPort)}${s.timeBound ? ' (time bound)' : ''} | ${seconds(s.insertMs)} | ${fixed((s.throughPort * 1000) / s.insertMs, 0)} |`,
    );
  }
  push('');

  const idle = report.idleLoop;
  push(
    '### Sweeping expired sessions',
    '',
    `Expired sessions (both deadlines two days past, same \`data\` as above) are put in the store, then \`createSessionManager(…).sweep()\` ends them all — \`deleteExpired(now, batch)\` through the port, the batch paced to about 10 ms of work (from 200, halved after a long batch, doubled after a short one, 20 to 2,000), yielding with \`setImmediate\` between batches — while \`monitorEventLoopDelay({ resolution: ${LOOP_RESOLUTION_MS} })\` watches the loop. Memory and Redis get their sessions through \`sessions.create\` (${o.insertConcurrency} in flight, for at most ${o.fillMaxRunMs / 1000} s or three fifths of the engine's remaining time${o.redisSweepSessions === o.sweepSessions ? '' : `; Redis only ${count(o.redisSweepSessions)}, to keep that fill short`}); SQLite through one \`INSERT … WITH RECURSIVE\` in one transaction on the adapter's table, PostgreSQL through one \`INSERT … SELECT generate_series\` — only the fill bypasses the port, never the sweep. A sweep is cut off after ${o.sweepMaxRunMs / 1000} s or at its phase's end; the store then answers "nothing expired", and the row says "time bound".`,
    '',
    `The monitor records the time between two of its ${LOOP_RESOLUTION_MS} ms timer callbacks, the ${LOOP_RESOLUTION_MS} ms included: an idle loop in this process read max ${fixed(idle.maxMs, 1)} ms, p99 ${fixed(idle.p99Ms, 1)} ms, mean ${fixed(idle.meanMs, 1)} ms over ${idle.durationMs} ms before the first engine, and "idle max" is the same reading over ${idle.durationMs} ms right before each sweep: what the machine itself adds (on 2 cores shared with the database servers and other work, the process is simply descheduled at times). The figures below are the monitor's, unadjusted, so they overstate the stall by about ${LOOP_RESOLUTION_MS} ms. "Batch" is one \`deleteExpired(now, batch)\` call, timed around the port: for memory and SQLite (synchronous inside) that is how long it held the loop; for PostgreSQL and Redis it is a round trip, during which the loop is free.`,
    '',
    `| Engine | Expired sessions | Filled by | Fill, s | Ended | Sweep, s | Sessions/s | Batch p99 / max, ms | Idle max, ms | Loop delay p99, ms | Loop delay max, ms (target ≤ ${SWEEP_LOOP_DELAY_TARGET_MS}) |`,
    '|-|-|-|-|-|-|-|-|-|-|-|',
  );
  for (const run of runs) {
    const s = phaseValue(run.sweep);
    if (s === undefined) {
      push(`| ${label(run)} | ${phaseNote(run.sweep)} | | | | | | | | | |`);
      continue;
    }
    const verdict = s.loopDelayMaxMs <= SWEEP_LOOP_DELAY_TARGET_MS ? 'met' : '**missed**';
    const ended = s.ended === s.inserted ? count(s.ended) : `**${count(s.ended)}**`;
    push(
      `| ${label(run)} | ${count(s.inserted)}${s.fillTimeBound ? ' (fill time bound)' : ''} | ${s.insertedBy === 'port' ? '`sessions.create`' : 'one SQL statement'} | ${seconds(s.insertMs)} | ${ended}${s.timeBound ? ' (time bound)' : ''} | ${seconds(s.durationMs)} | ${fixed(s.sessionsPerSecond, 0)} | ${fixed(s.batchP99Ms, 1)} / ${fixed(s.batchMaxMs, 1)} | ${fixed(s.idleLoopMaxMs, 1)} | ${fixed(s.loopDelayP99Ms, 1)} | **${fixed(s.loopDelayMaxMs, 1)}** (${verdict}) |`,
    );
  }
  const postgres = runs.find((run) => run.engine === 'postgres');
  if (postgres !== undefined) {
    push(
      '',
      `Two instances sweeping the same PostgreSQL data at once: two \`Stores\` (each \`createPostgresStores\` with its own pool) and a session manager on each, started together on ${count(o.pairSweepSessions)} freshly inserted expired sessions (one SQL statement, as above), bounded as the single sweep. The expired rows in the table are counted through a separate connection before and after. Every session must be ended by exactly one of them: A + B = before + inserted − after; anything above that was ended twice.`,
      '',
      '| Expired before | Inserted | Ended by A | Ended by B | A + B | Expired after | Ended twice | Both done in, s |',
      '|-|-|-|-|-|-|-|-|',
    );
    const p = phaseValue(postgres.pairSweep);
    if (p === undefined) {
      push(`| ${phaseNote(postgres.pairSweep)} | | | | | | | |`);
    } else {
      const sum = p.endedA + p.endedB;
      const twice = sum - (p.expiredBefore + p.inserted - p.expiredAfter);
      push(
        `| ${count(p.expiredBefore)} | ${count(p.inserted)} | ${count(p.endedA)} | ${count(p.endedB)} | ${count(sum)} | ${count(p.expiredAfter)}${p.timeBound ? ' (time bound)' : ''} | ${twice === 0 ? 'none' : `**${count(twice)}**`} | ${seconds(p.durationMs)} |`,
      );
    }
  }
  push('');

  push(
    '### Cross-instance revocation delay',
    '',
    `Two \`Stores\` on the same engine, each with its own connections, and a revocation list on each (\`createRevocationList\` with the store's bus, \`start(5000)\`). ${o.revocationRounds} times, one after another: A revokes a fresh \`jti\` (\`revoke\` returns once the entry is stored and \`revocations.changed\` published); the delay runs from that return until B's \`isRevoked({ jti })\` is true, polled every event-loop turn (\`setImmediate\`), given up after ${o.revocationTimeoutMs / 1000} s. B never calls \`sync\`, so this is the bus path alone. One untimed round first. The percentiles are nearest-rank over the rounds that arrived${o.revocationRounds < 100 ? `: with ${o.revocationRounds} rounds p99 is the largest` : ''}.`,
    '',
    '| Engine | Rounds | Missed | p50, ms | p99, ms | max, ms |',
    '|-|-|-|-|-|-|',
  );
  for (const run of runs) {
    const r = phaseValue(run.revocation);
    if (r === undefined) {
      push(`| ${label(run)} | ${phaseNote(run.revocation)} | | | | |`);
      continue;
    }
    push(
      `| ${label(run)} | ${r.rounds} | ${r.missed === 0 ? 0 : `**${r.missed}**`} | ${fixed(r.p50Ms, 2)} | ${fixed(r.p99Ms, 2)} | ${fixed(r.maxMs, 2)} |`,
    );
  }
  push(
    '',
    `Wall time per engine: ${runs.map((run) => `${label(run)} ${seconds(run.elapsedMs)} s`).join(', ')}.`,
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

function percent(fraction: number): string {
  return `${Math.round(fraction * 100)} %`;
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
