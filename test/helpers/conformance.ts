import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

/** The MCP conformance suite, pinned: its checks are the test's expectations. It needs Node 22. */
export const CONFORMANCE_SUITE = '@modelcontextprotocol/conformance@0.2.0-alpha.12';
/**
 * The first run downloads Node 22 and the suite; later ones take under a minute (a stdio upstream starts
 * a child per 2025-era session). Each scenario has the suite's own deadline, 30 s.
 */
const SUITE_WITHIN_MS = 240_000;

/** Our reference server for the suite's server scenarios (`--stdio`, or HTTP on `--port`). */
const CONFORMANCE_SERVER = fileURLToPath(new URL('../fixtures/conformance-server.ts', import.meta.url));
const ORDERED_EVENT_STORE = fileURLToPath(new URL('../fixtures/ordered-event-store.ts', import.meta.url));
const NODE_MODULES = fileURLToPath(new URL('../../node_modules', import.meta.url));

export type CheckStatus = 'SUCCESS' | 'FAILURE' | 'WARNING' | 'SKIPPED' | 'INFO';

export interface Check {
  readonly id: string;
  readonly name: string;
  readonly status: CheckStatus;
  readonly description?: string;
  readonly errorMessage?: string;
}

/** Checks by scenario name, as the suite wrote them. */
export type ScenarioChecks = ReadonlyMap<string, readonly Check[]>;

export interface ReferenceServer {
  /** The MCP endpoint, `http://127.0.0.1:<port>/mcp`. */
  readonly url: string;
  close(): Promise<void>;
}

/** The suite running in its own process group (npx runs it in a child of its own). */
export interface RunningSuite {
  readonly child: ChildProcess;
  /** Everything it printed so far, stdout and stderr. */
  output(): string;
  /** Its exit code; rejects when it could not start. */
  readonly exited: Promise<number | null>;
  /** Stops it and every process it started. */
  kill(): void;
}

/** Starts `conformance <args>` with Node 22, fetched by npx on first use (never skipped when missing). */
export function startSuite(args: readonly string[]): RunningSuite {
  const child = spawn('npx', ['-y', '-p', 'node@22', '-p', CONFORMANCE_SUITE, 'conformance', ...args], {
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NO_COLOR: '1' },
  });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  const exited = new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', resolve);
  });
  exited.catch(() => undefined);
  return {
    child,
    output: () => output,
    exited,
    kill() {
      // Signal the whole group npx leads.
      if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    },
  };
}

export interface CompiledReferenceServer {
  /** The compiled program: `node <path> --stdio`, or `node <path> --port 0`. */
  readonly path: string;
  dispose(): void;
}

/**
 * Compiles the reference server to plain JavaScript in a temporary directory (whose `node_modules`
 * links to ours). A stdio upstream starts one child per 2025-era session, dozens per suite run: without
 * the tsx loader each starts in about half the time.
 */
export function compileReferenceServer(): CompiledReferenceServer {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-conformance-server-'));
  symlinkSync(NODE_MODULES, join(dir, 'node_modules'), 'dir');
  // Each fixture file on its own, as ES modules side by side: the server's relative imports resolve.
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ type: 'module' }));
  for (const source of [CONFORMANCE_SERVER, ORDERED_EVENT_STORE]) {
    const { outputText } = ts.transpileModule(readFileSync(source, 'utf8'), {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
    });
    writeFileSync(join(dir, basename(source).replace(/\.ts$/, '.js')), outputText);
  }
  const path = join(dir, 'conformance-server.js');
  return { path, dispose: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Starts the reference server over HTTP on a free loopback port; resolves once it prints its URL. */
export function startReferenceServer(compiled: CompiledReferenceServer): Promise<ReferenceServer> {
  const child = spawn(process.execPath, [compiled.path, '--port', '0'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the reference server printed no URL within 20 s:\n${output}`));
    }, 20_000);
    const collect = (chunk: Buffer) => {
      output += chunk.toString();
      const url = /^listening (\S+)$/m.exec(output)?.[1];
      if (url === undefined) return;
      clearTimeout(timer);
      resolve({
        url,
        async close() {
          child.kill('SIGTERM');
          await exited;
        },
      });
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`the reference server exited before listening:\n${output}`));
    });
  });
}

/** `--output-dir` holds one `<kind>-<scenario>-<timestamp>/checks.json` per scenario (`kind`: `server`, …). */
export function readChecks(outputDir: string, kind: string): Map<string, Check[]> {
  const byScenario = new Map<string, Check[]>();
  const name = new RegExp(`^${kind}-(.+)-\\d{4}-\\d{2}-\\d{2}T[\\d-]+Z$`);
  for (const entry of readdirSync(outputDir).sort()) {
    const scenario = name.exec(entry)?.[1];
    if (scenario === undefined) throw new Error(`unexpected entry in the output directory: ${entry}`);
    byScenario.set(
      scenario,
      JSON.parse(readFileSync(join(outputDir, entry, 'checks.json'), 'utf8')) as Check[],
    );
  }
  return byScenario;
}

/**
 * Runs every server scenario of the suite (`--suite all`) for one protocol revision against `url`, and
 * returns the checks of each scenario. Rejects when the suite cannot be fetched or run, or writes no
 * scenario: a failing check is a result, not an error (the suite then exits non-zero).
 */
export async function runServerScenarios(url: string, specVersion: string): Promise<ScenarioChecks> {
  const outputDir = mkdtempSync(join(tmpdir(), 'gatehouse-conformance-'));
  const suite = startSuite([
    'server',
    '--url',
    url,
    '--suite',
    'all',
    '--spec-version',
    specVersion,
    '--output-dir',
    outputDir,
  ]);
  let timer: NodeJS.Timeout | undefined;
  try {
    await new Promise<void>((resolve, reject) => {
      timer = setTimeout(
        () => reject(new Error(`the suite ran ${SUITE_WITHIN_MS} ms:\n${suite.output()}`)),
        SUITE_WITHIN_MS,
      );
      suite.exited.then(() => resolve(), reject);
    });
    const checks = readChecks(outputDir, 'server');
    if (checks.size === 0) throw new Error(`the suite wrote no scenario results:\n${suite.output()}`);
    return checks;
  } finally {
    clearTimeout(timer);
    suite.kill();
    rmSync(outputDir, { recursive: true, force: true });
  }
}

/**
 * A scenario passes when none of its checks failed or warned. SKIPPED (not applicable) and INFO (a
 * record of the exchange, not a verdict) do not count against it.
 */
export function scenarioPasses(checks: readonly Check[]): boolean {
  return checks.every(({ status }) => status !== 'FAILURE' && status !== 'WARNING');
}

/** The checks of a run by `scenario :: check id` (an id can repeat within a scenario). */
export function checksById(run: ScenarioChecks): Map<string, Check[]> {
  const byKey = new Map<string, Check[]>();
  for (const [scenario, checks] of run) {
    for (const check of checks) {
      const key = `${scenario} :: ${check.id}`;
      byKey.set(key, [...(byKey.get(key) ?? []), check]);
    }
  }
  return byKey;
}

/**
 * The verdicts among `checks`, in order. INFO checks are left out unless there is nothing else: they
 * log the exchange (requests sent, events seen), so how many there are follows timing, not conformance;
 * but a check that is SUCCESS in one run and only INFO in the other did change.
 */
export function verdictsOf(checks: readonly Check[] | undefined): string {
  if (checks === undefined) return 'absent';
  const verdicts = checks.filter(({ status }) => status !== 'INFO').map(({ status }) => status);
  return verdicts.length === 0 ? 'INFO' : verdicts.join(',');
}
