import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair } from 'jose';
import { afterEach, describe, expect, it } from 'vitest';
import { configSchema, type GatehouseConfigInput } from '../../../src/config/schema.js';
import { type DoctorCheck, type DoctorReport, runDoctor } from '../../../src/doctor/doctor.js';
import { createManualClock } from '../../../src/ops/clock.js';
import { startTestIdp, TEST_IDP_CLIENT_ID, TEST_IDP_CLIENT_SECRET } from '../../helpers/oidc-provider.js';

/*
 * The doctor's network checks against servers on loopback: a real OpenID provider (oidc-provider) for
 * federation, small stubs for JWKS endpoints that are down, slow, wrong or on another clock. The clock
 * is injected, so skew is set by the test, not waited for.
 */

type Handler = (request: IncomingMessage, response: ServerResponse) => void;

interface Stub {
  readonly origin: string;
  close(): Promise<void>;
}

const cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0)) await fn();
});

async function stub(routes: Record<string, Handler>): Promise<Stub> {
  const server = createServer((request, response) => {
    const route = routes[request.url ?? '/'];
    if (route === undefined) response.writeHead(404).end();
    else route(request, response);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  cleanup.push(close);
  return { origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close };
}

const json =
  (body: unknown, status = 200): Handler =>
  (_request, response) => {
    response.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  };

/** An origin nothing listens on: bound, then closed. */
async function closedOrigin(): Promise<string> {
  const probe = await stub({});
  await probe.close();
  return probe.origin;
}

async function ecJwk(kid: string): Promise<Record<string, unknown>> {
  const { publicKey } = await generateKeyPair('ES256');
  return { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' };
}

/** Memory store, no secrets on disk: only the network checks under test can fail. */
function config(overrides: GatehouseConfigInput) {
  return configSchema.parse({
    store: { kind: 'memory' },
    server: { publicUrl: 'http://127.0.0.1:8787' },
    ...overrides,
  });
}

function jwksVerifier(origin: string, extra: Record<string, unknown> = {}): GatehouseConfigInput {
  return {
    authorizationServer: { enabled: false },
    auth: {
      verifiers: [
        {
          kind: 'jwks',
          name: 'idp',
          issuer: origin,
          jwksUrl: `${origin}/jwks.json`,
          audience: 'mcp',
          algorithms: ['ES256'],
          ...extra,
        },
      ],
    },
  };
}

function federated(issuer: string): GatehouseConfigInput {
  return {
    authorizationServer: {
      localAccounts: false,
      federation: {
        issuer,
        clientId: TEST_IDP_CLIENT_ID,
        clientSecret: TEST_IDP_CLIENT_SECRET,
        allowInsecureHttp: true,
        timeoutMs: 2_000,
      },
    },
  };
}

function check(report: DoctorReport, id: string): DoctorCheck {
  const found = report.checks.find((candidate) => candidate.id === id);
  if (found === undefined) throw new Error(`no check ${id} in ${report.checks.map((c) => c.id).join(', ')}`);
  return found;
}

const ids = (report: DoctorReport) => report.checks.map((candidate) => candidate.id);

describe('runDoctor: federation to an upstream OpenID provider', () => {
  it('passes discovery, JWKS and clock against a real oidc-provider, without showing the client secret', async () => {
    const idp = await startTestIdp({ redirectUri: 'http://127.0.0.1:8787/oauth/callback' });
    cleanup.push(() => idp.close());

    const report = await runDoctor(config(federated(idp.issuer)));

    expect(check(report, 'federation')).toMatchObject({
      status: 'ok',
      details: { issuer: idp.issuer, discoveryUrl: `${idp.issuer}/.well-known/openid-configuration` },
    });
    const jwks = check(report, 'federation:jwks');
    expect(jwks.status).toBe('ok');
    expect(jwks.details).toMatchObject({
      jwksUrl: expect.stringMatching(new RegExp(`^${idp.issuer}/`)),
      keys: [{ kid: 'test-key', kty: 'RSA', alg: 'RS256' }],
    });
    expect(check(report, 'federation:clock').status).toBe('ok');
    expect(report.ok).toBe(true);
    expect(JSON.stringify(report)).not.toContain(TEST_IDP_CLIENT_SECRET);
  });

  it('fails an issuer nothing answers at, naming the discovery URL, with no JWKS or clock check', async () => {
    const origin = await closedOrigin();

    const report = await runDoctor(config(federated(origin)));

    const federation = check(report, 'federation');
    expect(federation.status).toBe('fail');
    expect(federation.details?.reason).toBe('discovery_unreachable');
    expect(federation.summary).toContain(`${origin}/.well-known/openid-configuration`);
    expect(federation.summary).toContain('ECONNREFUSED');
    expect(ids(report)).not.toContain('federation:jwks');
    expect(ids(report)).not.toContain('federation:clock');
    expect(report.ok).toBe(false);
    expect(JSON.stringify(report)).not.toContain(TEST_IDP_CLIENT_SECRET);
  });

  it('fails an issuer that differs from the real one by a trailing slash, or by a path', async () => {
    const idp = await startTestIdp({ redirectUri: 'http://127.0.0.1:8787/oauth/callback' });
    cleanup.push(() => idp.close());

    const slash = await runDoctor(config(federated(`${idp.issuer}/`)));
    const mismatch = check(slash, 'federation');
    expect(mismatch.status).toBe('fail');
    expect(mismatch.details?.reason).toBe('issuer_mismatch');
    expect(mismatch.summary).toContain(`"${idp.issuer}"`);
    expect(mismatch.summary).toContain(`"${idp.issuer}/"`);
    expect(ids(slash)).not.toContain('federation:jwks');
    expect(slash.ok).toBe(false);

    const path = await runDoctor(config(federated(`${idp.issuer}/tenant`)));
    const missing = check(path, 'federation');
    expect(missing.status).toBe('fail');
    expect(missing.details?.reason).toBe('discovery_failed');
    expect(missing.summary).toContain(`${idp.issuer}/tenant/.well-known/openid-configuration answered 404`);
    expect(path.ok).toBe(false);
  });

  it('fails when discovery answers but the IdP’s JWKS is down, naming the JWKS URL', async () => {
    const down = await closedOrigin();
    let issuer = '';
    const discovery: Handler = (request, response) =>
      json({
        issuer,
        authorization_endpoint: `${issuer}/auth`,
        token_endpoint: `${issuer}/token`,
        jwks_uri: `${down}/certs`,
      })(request, response);
    const idp = await stub({ '/.well-known/openid-configuration': discovery });
    issuer = idp.origin;

    const report = await runDoctor(config(federated(issuer)));

    expect(check(report, 'federation').status).toBe('ok');
    const jwks = check(report, 'federation:jwks');
    expect(jwks.status).toBe('fail');
    expect(jwks.details).toMatchObject({ reason: 'jwks_unreachable', jwksUrl: `${down}/certs` });
    expect(jwks.summary).toContain(`JWKS at ${down}/certs unreachable (ECONNREFUSED)`);
    expect(report.ok).toBe(false);
  });

  it('fails a discovery document without a token endpoint', async () => {
    let issuer = '';
    const idp = await stub({
      '/.well-known/openid-configuration': (request, response) =>
        json({ issuer, authorization_endpoint: `${issuer}/auth` })(request, response),
    });
    issuer = idp.origin;

    const report = await runDoctor(config(federated(issuer)));

    expect(check(report, 'federation')).toMatchObject({
      status: 'fail',
      details: { reason: 'endpoints_missing' },
    });
    expect(check(report, 'federation').summary).toContain('lacks token_endpoint');
    expect(report.ok).toBe(false);
  });

  it('warns of a skewed clock against the IdP’s Date header (injected clock ten minutes behind)', async () => {
    const idp = await startTestIdp({ redirectUri: 'http://127.0.0.1:8787/oauth/callback' });
    cleanup.push(() => idp.close());

    const report = await runDoctor(config(federated(idp.issuer)), {
      clock: createManualClock(Date.now() - 10 * 60_000),
    });

    const skew = check(report, 'federation:clock');
    expect(skew.status).toBe('warn');
    expect(skew.summary).toMatch(/identity provider oidc clock is (59|60)\d s ahead of this machine/);
    expect(Math.abs(Number(skew.details?.skewSeconds) - 600)).toBeLessThanOrEqual(2);
    expect(report.ok).toBe(true);
  });
});

describe('runDoctor: a JWKS verifier whose endpoint misbehaves', () => {
  it('fails a JWKS endpoint that is down with a check naming the URL, not a crash', async () => {
    const origin = await closedOrigin();

    const report = await runDoctor(config(jwksVerifier(origin)));

    const verifier = check(report, 'verifier:idp');
    expect(verifier.status).toBe('fail');
    expect(verifier.details).toMatchObject({ reason: 'jwks_unreachable', jwksUrl: `${origin}/jwks.json` });
    expect(verifier.summary).toContain(`JWKS at ${origin}/jwks.json unreachable (ECONNREFUSED)`);
    expect(check(report, 'metadata:idp')).toMatchObject({
      status: 'warn',
      details: { reason: 'metadata_unreachable' },
    });
    // Nothing answered, so there is no Date header to compare and no clock verdict to give.
    expect(ids(report)).not.toContain('clock:idp');
    expect(report.ok).toBe(false);
  });

  it('fails a JWKS endpoint that answers 503, and one that never answers within timeoutMs', async () => {
    const server = await stub({
      '/jwks.json': json({ error: 'maintenance' }, 503),
      '/slow/jwks.json': () => undefined,
    });

    const unavailable = await runDoctor(config(jwksVerifier(server.origin)));
    const failed = check(unavailable, 'verifier:idp');
    expect(failed.status).toBe('fail');
    expect(failed.details?.reason).toBe('jwks_http_status');
    expect(failed.summary).toContain(`JWKS at ${server.origin}/jwks.json answered 503`);
    // The 503 carried a Date header: the clock is still compared.
    expect(check(unavailable, 'clock:idp').status).toBe('ok');

    const slow = await runDoctor(
      config(jwksVerifier(server.origin, { jwksUrl: `${server.origin}/slow/jwks.json`, timeoutMs: 300 })),
    );
    const timedOut = check(slow, 'verifier:idp');
    expect(timedOut.status).toBe('fail');
    expect(timedOut.details?.reason).toBe('jwks_unreachable');
    expect(timedOut.summary).toContain(`JWKS at ${server.origin}/slow/jwks.json unreachable (timed out)`);
    expect(slow.ok).toBe(false);
  });

  it('lists a key set with a malformed entry instead of calling the endpoint unreachable', async () => {
    const key = await ecJwk('key-1');
    const server = await stub({ '/jwks.json': json({ keys: [null, key] }) });

    const report = await runDoctor(config(jwksVerifier(server.origin)));

    expect(check(report, 'verifier:idp')).toMatchObject({
      status: 'ok',
      details: {
        keys: [
          { kid: null, kty: null, alg: null },
          { kid: 'key-1', kty: 'EC', alg: 'ES256' },
        ],
      },
    });
  });

  it('fails a JWKS with no key for the accepted algorithms, and issuer metadata naming another issuer', async () => {
    const key = { ...(await ecJwk('key-1')), alg: 'ES384' };
    const server = await stub({
      '/jwks.json': json({ keys: [key] }),
      '/.well-known/openid-configuration': json({ issuer: 'https://impostor.example' }),
    });

    const report = await runDoctor(config(jwksVerifier(server.origin)));

    expect(check(report, 'verifier:idp')).toMatchObject({
      status: 'fail',
      details: { reason: 'jwks_no_usable_key' },
    });
    const metadata = check(report, 'metadata:idp');
    expect(metadata).toMatchObject({ status: 'fail', details: { reason: 'issuer_mismatch' } });
    expect(metadata.summary).toContain('https://impostor.example');
  });
});

describe('runDoctor: clock skew from the issuer’s Date header', () => {
  async function jwksServer(options: { sendDate?: boolean } = {}): Promise<Stub> {
    const key = await ecJwk('key-1');
    const withDate =
      (handler: Handler): Handler =>
      (request, response) => {
        response.sendDate = options.sendDate ?? true;
        handler(request, response);
      };
    let origin = '';
    const server = await stub({
      '/jwks.json': withDate(json({ keys: [key] })),
      '/.well-known/openid-configuration': withDate((request, response) =>
        json({ issuer: origin, jwks_uri: `${origin}/jwks.json` })(request, response),
      ),
    });
    origin = server.origin;
    return server;
  }

  it('is ok when the injected clock agrees with the issuer', async () => {
    const server = await jwksServer();
    const report = await runDoctor(config(jwksVerifier(server.origin)), {
      clock: createManualClock(Date.now()),
    });
    const skew = check(report, 'clock:idp');
    expect(skew.status).toBe('ok');
    expect(Math.abs(Number(skew.details?.skewSeconds))).toBeLessThanOrEqual(2);
  });

  it('warns when this machine is ten minutes ahead of the issuer, saying which way', async () => {
    const server = await jwksServer();
    const report = await runDoctor(config(jwksVerifier(server.origin)), {
      clock: createManualClock(Date.now() + 10 * 60_000),
    });
    const skew = check(report, 'clock:idp');
    expect(skew.status).toBe('warn');
    expect(skew.summary).toMatch(/idp clock is (59|60)\d s behind this machine/);
    expect(Math.abs(Number(skew.details?.skewSeconds) + 600)).toBeLessThanOrEqual(2);
    expect(skew.hints?.[0]).toMatch(/NTP/);
  });

  it('honours maxClockSkewMs: five seconds is fine by default and too much at one second', async () => {
    const server = await jwksServer();
    const clock = createManualClock(Date.now() - 5_000);
    const lenient = await runDoctor(config(jwksVerifier(server.origin)), { clock });
    expect(check(lenient, 'clock:idp').status).toBe('ok');
    const strict = await runDoctor(config(jwksVerifier(server.origin)), { clock, maxClockSkewMs: 1_000 });
    expect(check(strict, 'clock:idp').status).toBe('warn');
    expect(check(strict, 'clock:idp').summary).toContain('more than 1 s');
  });

  it('warns that skew is unknown when the issuer sends no Date header', async () => {
    const server = await jwksServer({ sendDate: false });
    const report = await runDoctor(config(jwksVerifier(server.origin)));
    expect(check(report, 'verifier:idp').status).toBe('ok');
    const skew = check(report, 'clock:idp');
    expect(skew.status).toBe('warn');
    expect(skew.summary).toContain('sent no Date header');
    expect(skew.details).toBeUndefined();
  });
});
