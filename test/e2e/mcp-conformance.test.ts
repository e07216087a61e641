import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type CompiledReferenceServer,
  checksById,
  compileReferenceServer,
  type ReferenceServer,
  runServerScenarios,
  type ScenarioChecks,
  scenarioPasses,
  startReferenceServer,
  verdictsOf,
} from '../helpers/conformance.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';

/**
 * The MCP conformance suite's server scenarios (`--suite all`, pinned in `helpers/conformance.ts`), run
 * against our reference server (`fixtures/conformance-server.ts`) directly, and through the gateway in
 * front of it: once with an HTTP upstream, once with the same server as a stdio upstream (a child per
 * 2025-era session, one per user for 2026-07-28). A gateway must be transparent to a conformant server:
 *
 * - our server passes every scenario directly (no check FAILURE or WARNING; SKIPPED and INFO allowed);
 * - every scenario that passes directly passes through the gateway;
 * - every check id has the same verdicts through the gateway as directly: a WARNING, a SKIPPED or a
 *   missing check differs as much as a FAILURE. INFO checks log the exchange and are counted only when a
 *   check is nothing but INFO on one side (a SUCCESS that became INFO did change). The exceptions are
 *   `DELIBERATE_DIFFERENCES`, each with its reason.
 *
 * The suite sends no Authorization header, so it talks to a loopback proxy that adds a bearer token
 * for one user and forwards everything else as it came (Host and Origin included, which the
 * DNS-rebinding scenario relies on). The suite is fetched with npx (it needs Node 22); when it cannot
 * be fetched the test fails: it is never skipped.
 */
const SPEC_VERSIONS = ['2025-11-25', '2026-07-28'] as const;
type SpecVersion = (typeof SPEC_VERSIONS)[number];
type Target = 'direct' | 'http upstream' | 'stdio upstream';

/** Every scenario `--suite all` runs for each revision: our server must pass them all directly. */
const SCENARIOS: Record<SpecVersion, readonly string[]> = {
  '2025-11-25': [
    'completion-complete',
    'dns-rebinding-protection',
    'elicitation-sep1034-defaults',
    'elicitation-sep1330-enums',
    'json-schema-2020-12',
    'logging-set-level',
    'ping',
    'prompts-get-embedded-resource',
    'prompts-get-simple',
    'prompts-get-with-args',
    'prompts-get-with-image',
    'prompts-list',
    'resources-list',
    'resources-read-binary',
    'resources-read-text',
    'resources-subscribe',
    'resources-templates-read',
    'resources-unsubscribe',
    'server-initialize',
    'server-session-lifecycle',
    'server-sse-multiple-streams',
    'server-sse-polling',
    'tools-call-audio',
    'tools-call-elicitation',
    'tools-call-embedded-resource',
    'tools-call-error',
    'tools-call-image',
    'tools-call-mixed-content',
    'tools-call-sampling',
    'tools-call-simple-text',
    'tools-call-with-logging',
    'tools-call-with-progress',
    'tools-list',
  ],
  '2026-07-28': [
    'caching',
    'completion-complete',
    'dns-rebinding-protection',
    'http-custom-header-server-validation',
    'http-header-validation',
    'input-required-result-basic-elicitation',
    'input-required-result-basic-list-roots',
    'input-required-result-basic-sampling',
    'input-required-result-capability-check',
    'input-required-result-ignore-extra-params',
    'input-required-result-missing-input-response',
    'input-required-result-multi-round',
    'input-required-result-multiple-input-requests',
    'input-required-result-non-tool-request',
    'input-required-result-request-state',
    'input-required-result-result-type',
    'input-required-result-tampered-state',
    'input-required-result-unsupported-methods',
    'input-required-result-validate-input',
    'json-schema-2020-12',
    'prompts-get-embedded-resource',
    'prompts-get-simple',
    'prompts-get-with-args',
    'prompts-get-with-image',
    'prompts-list',
    'resources-list',
    'resources-read-binary',
    'resources-read-text',
    'resources-templates-read',
    'sep-2164-resource-not-found',
    'server-sse-multiple-streams',
    'server-stateless',
    'tools-call-audio',
    'tools-call-embedded-resource',
    'tools-call-error',
    'tools-call-image',
    'tools-call-mixed-content',
    'tools-call-simple-text',
    'tools-call-with-progress',
    'tools-list',
  ],
};

/**
 * Checks whose verdict through the gateway differs from the direct one on purpose, keyed
 * `<target> <spec version> <scenario> :: <check id>`, each with why the gateway is right to differ.
 */
const DELIBERATE_DIFFERENCES: ReadonlyMap<string, string> = new Map([
  [
    'stdio upstream 2025-11-25 server-sse-polling :: server-sse-disconnect-resume',
    // The scenario's tool ends its SSE stream mid-call to make the client poll (SEP-1699). A stdio server
    // has no stream to end, so there is no pause to mirror: the gateway keeps the client's stream open and
    // the answer arrives on it (the suite records INFO: "no reconnection was needed"). Ending a healthy
    // stream only to make the client come back would add a round trip and nothing else. Priming events,
    // ids and `retry` are still sent (those checks pass), so the client can resume if its connection drops.
    'a stdio server has no SSE stream to pause; the answer arrives on the open stream',
  ],
]);

/** A loopback reverse proxy that adds `Authorization: Bearer <token>` and streams both ways. */
async function startBearerProxy(target: URL, token: string): Promise<{ url: string; server: Server }> {
  const server = createServer((incoming, outgoing) => {
    const upstream = request(
      {
        host: target.hostname,
        port: target.port,
        path: incoming.url,
        method: incoming.method,
        headers: { ...incoming.headers, authorization: `Bearer ${token}` },
      },
      (answer) => {
        outgoing.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(outgoing);
      },
    );
    upstream.on('error', () => {
      if (!outgoing.headersSent) outgoing.writeHead(502);
      outgoing.end();
    });
    // A client that hangs up (the suite drops SSE streams) ends the upstream request too.
    outgoing.on('close', () => upstream.destroy());
    incoming.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}${target.pathname}`, server };
}

/** What differs between the direct run and the run through the gateway, one line per check id. */
function differences(
  target: Target,
  version: SpecVersion,
  direct: ScenarioChecks,
  gateway: ScenarioChecks,
): string[] {
  const before = checksById(direct);
  const after = checksById(gateway);
  const lines: string[] = [];
  for (const key of new Set([...before.keys(), ...after.keys()])) {
    const was = verdictsOf(before.get(key));
    const is = verdictsOf(after.get(key));
    if (was === is || DELIBERATE_DIFFERENCES.has(`${target} ${version} ${key}`)) continue;
    const why = (after.get(key) ?? [])
      .filter(({ status }) => status !== 'SUCCESS')
      .map(({ errorMessage, description }) => errorMessage ?? description)
      .join(' | ');
    lines.push(`${key}: ${was} → ${is}${why === '' ? '' : ` (${why})`}`);
  }
  return lines.sort();
}

describe('MCP conformance suite: server scenarios through the gateway', () => {
  /** Each run's checks, or why it produced none: a run that breaks fails only the tests that read it. */
  const runs = new Map<`${Target} ${SpecVersion}`, ScenarioChecks | Error>();
  let compiled: CompiledReferenceServer | undefined;
  let direct: ReferenceServer | undefined;
  let upstream: ReferenceServer | undefined;
  const gateways: TestGateway[] = [];
  const proxies: Server[] = [];

  async function proxiedGateway(gateway: TestGateway): Promise<string> {
    gateways.push(gateway);
    const proxy = await startBearerProxy(gateway.mcpUrl, await gateway.token('conformance-user'));
    proxies.push(proxy.server);
    return proxy.url;
  }

  beforeAll(async () => {
    // The gateway's upstream gets its own server, so list-change triggers of one run never reach another's streams.
    compiled = compileReferenceServer();
    [direct, upstream] = await Promise.all([startReferenceServer(compiled), startReferenceServer(compiled)]);
    const targets: Record<Target, string> = {
      direct: direct.url,
      'http upstream': await proxiedGateway(
        await startTestGateway({ upstream: { kind: 'http', url: upstream.url } }),
      ),
      'stdio upstream': await proxiedGateway(
        await startTestGateway({
          upstream: { kind: 'stdio', command: process.execPath, args: [compiled.path, '--stdio'] },
        }),
      ),
    };
    const run = async (target: Target, version: SpecVersion) => {
      const checks = await runServerScenarios(targets[target], version).catch((error: unknown) =>
        error instanceof Error ? error : new Error(String(error)),
      );
      runs.set(`${target} ${version}`, checks);
    };
    // One run first, so npx fetches the suite once rather than racing itself; then the rest side by side,
    // but for the 2025 run through the stdio upstream: it starts a child per session, which the suite gives
    // 5 s to answer `initialize`, so it runs with nothing else competing for the CPU.
    await run('direct', '2025-11-25');
    await Promise.all([
      run('direct', '2026-07-28'),
      run('http upstream', '2025-11-25'),
      run('http upstream', '2026-07-28'),
      run('stdio upstream', '2026-07-28'),
    ]);
    await run('stdio upstream', '2025-11-25');
  }, 500_000);

  afterAll(async () => {
    for (const proxy of proxies) {
      proxy.closeAllConnections();
      proxy.close();
    }
    await Promise.all(gateways.map((gateway) => gateway.close()));
    await Promise.all([direct?.close(), upstream?.close()]);
    compiled?.dispose();
  });

  function checksOf(target: Target, version: SpecVersion): ScenarioChecks {
    const checks = runs.get(`${target} ${version}`);
    if (checks === undefined) throw new Error(`no ${target} run for ${version}`);
    if (checks instanceof Error) throw checks;
    return checks;
  }

  describe.each(SPEC_VERSIONS)('protocol revision %s', (version) => {
    it('our reference server passes every scenario directly', () => {
      const run = checksOf('direct', version);
      expect([...run.keys()].sort(), version).toEqual(SCENARIOS[version]);
      const failing = [...run].filter(([, checks]) => !scenarioPasses(checks)).map(([scenario]) => scenario);
      expect(failing, version).toEqual([]);
    });

    it.each(['http upstream', 'stdio upstream'] as const)(
      'through the gateway with an %s, every check has its direct verdict',
      (target) => {
        const direct = checksOf('direct', version);
        const gateway = checksOf(target, version);
        const regressed = [...direct]
          .filter(([scenario, checks]) => {
            const through = gateway.get(scenario);
            return scenarioPasses(checks) && (through === undefined || !scenarioPasses(through));
          })
          .map(([scenario]) => scenario);
        // The message keeps each failure's report apart: vitest shows one diff for failures that read alike.
        expect(
          { regressed, differences: differences(target, version, direct, gateway) },
          `${target}, ${version}`,
        ).toEqual({
          regressed: [],
          differences: [],
        });
      },
    );
  });
});
