import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createManualClock } from '../../src/ops/clock.js';
import type { TestGateway } from '../helpers/gateway.js';
import { connectRaw } from '../helpers/websocket.js';
import {
  attackerKey,
  type Claims,
  genuineClaims,
  hmacWithPublicKey,
  signedByAttacker,
  signedByGateway,
  unsecured,
  withPayload,
} from './helpers/forge.js';
import {
  ACCEPT,
  challengeError,
  type EventLog,
  INIT,
  mcpRequest,
  rpcOf,
  sessionsOf,
  startRecorded,
} from './helpers/harness.js';

/**
 * RFC 8725 (JWT best current practices) and RFC 6750 attacks on the resource server: every forged,
 * mistyped, misdirected or stale token is presented with an `initialize` — which would open a session and
 * start an upstream if it were let through — and must be answered 401 `invalid_token` with the challenge,
 * reported as a `guard.refused` event naming the failed check, with no session and no upstream started.
 */
describe('forged and misused access tokens are refused before anything happens (RFC 8725)', () => {
  let gw: TestGateway;
  let log: EventLog;
  let jwksHits = 0;
  let jwksServer: Server;
  let jwksUrl: string;

  beforeAll(async () => {
    ({ gw, log } = await startRecorded({ store: { kind: 'memory' } }));
    // An attacker-controlled JWKS for `jku`/`x5u` header injection: it must never be fetched.
    const { publicJwk } = await attackerKey();
    jwksServer = createServer((_req, res) => {
      jwksHits += 1;
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [publicJwk] }));
    });
    await new Promise<void>((resolve) => jwksServer.listen(0, '127.0.0.1', () => resolve()));
    jwksUrl = `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}/jwks.json`;
  });
  afterAll(async () => {
    await gw?.close();
    jwksServer?.closeAllConnections();
    await new Promise((resolve) => jwksServer?.close(resolve));
  });

  /** Presents `token` with an initialize and checks the whole defended outcome. */
  async function expectRefused(subject: string, token: string, reasons: readonly string[]): Promise<void> {
    log.clear();
    const response = await mcpRequest(gw, token, INIT);
    expect(response.status).toBe(401);
    expect(challengeError(response)).toBe('invalid_token');
    expect(response.headers.get('www-authenticate')).toContain('resource_metadata=');
    expect(response.headers.get('mcp-session-id')).toBeNull();
    await response.text();
    const [refusal, ...more] = log.of('guard.refused');
    expect(more).toEqual([]);
    expect(refusal).toMatchObject({ error: 'invalid_token', status: 401, transport: 'streamable-http' });
    expect(reasons).toContain(refusal?.reason);
    expect(log.of('session.opened')).toEqual([]);
    expect(log.of('upstream.started')).toEqual([]);
    expect(await sessionsOf(gw, subject)).toEqual([]);
  }

  const claims = (subject: string, extra: Claims = {}) => ({ ...genuineClaims(gw, subject), ...extra });

  it('control: the genuine token of the same shape is admitted (so every refusal below is the check)', async () => {
    const token = await signedByGateway(gw, claims('control'));
    // A 2025-era request without a session: admitted by the guard, then 400 for the missing session.
    const response = await mcpRequest(gw, token, { jsonrpc: '2.0', id: 1, method: 'ping' });
    expect(response.status).toBe(400);
    expect((await rpcOf(response)).error?.data?.code).toBe('ERR_SESSION_REQUIRED');
  });

  // req: RFC9068-4-SIGNATURE, RFC8725-3.1-ALGORITHM-VERIFICATION
  it('alg "none" (unsecured JWT, RFC 8725 §2.1)', async () => {
    await expectRefused('mallory-none', unsecured(claims('mallory-none')), ['alg_not_allowed']);
  });

  it('alg "none" with the real kid and an upper-case variant', async () => {
    const { kid } = gw.gateway.keys.signingKey();
    await expectRefused('mallory-none2', unsecured(claims('mallory-none2'), { alg: 'NONE', kid }), [
      'alg_not_allowed',
      'malformed',
    ]);
  });

  // req: RFC8725-3.1-ALGORITHM-VERIFICATION
  it('HS256 signed with the published ES256 public key (algorithm confusion, RFC 8725 §2.1)', async () => {
    await expectRefused('mallory-hs', await hmacWithPublicKey(gw, claims('mallory-hs')), ['alg_not_allowed']);
  });

  it('a genuine token whose sub was rewritten (signature kept)', async () => {
    const genuine = await signedByGateway(gw, claims('alice'));
    await expectRefused('admin', withPayload(genuine, claims('admin')), ['bad_signature']);
  });

  it('a genuine token with its signature stripped', async () => {
    const genuine = await signedByGateway(gw, claims('mallory-stripped'));
    const [header, payload] = genuine.split('.');
    await expectRefused('mallory-stripped', `${header}.${payload}.`, ['bad_signature', 'malformed']);
  });

  it("the attacker's own key under the gateway's kid", async () => {
    const { kid } = gw.gateway.keys.signingKey();
    await expectRefused('mallory-kid', await signedByAttacker(claims('mallory-kid'), { kid }), [
      'bad_signature',
    ]);
  });

  it('an unknown kid, and kid injection strings (path traversal, SQL)', async () => {
    for (const kid of ['no-such-key', '../../../../../../dev/null', "' OR '1'='1", '\u0000']) {
      await expectRefused('mallory-unknown', await signedByAttacker(claims('mallory-unknown'), { kid }), [
        'unknown_kid',
      ]);
    }
  });

  it('a public key embedded in the header (jwk) is never trusted', async () => {
    const { privateKey, publicJwk } = await attackerKey();
    const { SignJWT } = await import('jose');
    const token = await new SignJWT(claims('mallory-jwk'))
      .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', jwk: publicJwk })
      .sign(privateKey);
    await expectRefused('mallory-jwk', token, ['unknown_kid', 'bad_signature']);
  });

  it('jku / x5u pointing at an attacker key set: refused, and the set is never fetched (SSRF)', async () => {
    await expectRefused(
      'mallory-jku',
      await signedByAttacker(claims('mallory-jku'), { jku: jwksUrl, kid: 'attacker' }),
      ['unknown_kid'],
    );
    await expectRefused(
      'mallory-x5u',
      await signedByAttacker(claims('mallory-x5u'), { x5u: jwksUrl, kid: 'attacker' }),
      ['unknown_kid'],
    );
    expect(jwksHits).toBe(0);
  });

  it('an unknown critical header extension (RFC 7515 §4.1.11)', async () => {
    const token = await signedByGateway(
      gw,
      claims('mallory-crit'),
      { crit: ['https://attacker.example/ext'], 'https://attacker.example/ext': true } as Record<
        string,
        unknown
      >,
      { crit: { 'https://attacker.example/ext': true } },
    );
    await expectRefused('mallory-crit', token, ['malformed']);
  });

  // req: RFC9068-4-TYP-VALIDATION, RFC8725-3.11-EXPLICIT-TYPING
  it('an identity token (typ JWT) replayed as an access token (explicit typing, RFC 8725 §3.11)', async () => {
    const token = await signedByGateway(gw, claims('mallory-typ'), { typ: 'JWT' });
    await expectRefused('mallory-typ', token, ['malformed']);
  });

  it("a token of another issuer signed with the gateway's own key (RFC 8725 §3.8)", async () => {
    const token = await signedByGateway(gw, claims('mallory-iss', { iss: 'https://evil.example/' }));
    await expectRefused('mallory-iss', token, ['unknown_issuer', 'wrong_issuer']);
    // An issuer that differs by a trailing slash only is another issuer.
    const slash = gw.gateway.urls.issuer.replace(/\/$/, '');
    await expectRefused('mallory-iss', await signedByGateway(gw, claims('mallory-iss', { iss: slash })), [
      'unknown_issuer',
      'wrong_issuer',
    ]);
  });

  // req: MCP-AUTH-AUDIENCE-VALIDATION
  it('a token for another resource (audience, RFC 8707 / RFC 8725 §3.9)', async () => {
    for (const aud of ['https://other-mcp.example/mcp', `${gw.gateway.urls.resource}/x`, []]) {
      await expectRefused('mallory-aud', await signedByGateway(gw, claims('mallory-aud', { aud })), [
        'wrong_audience',
        'missing_claim',
      ]);
    }
  });

  // req: MCP-AUTH-401-INVALID-TOKEN, RFC6750-3.1-INVALID-TOKEN
  it('expired, not yet valid, and without exp', async () => {
    const now = Math.floor(Date.now() / 1000);
    await expectRefused(
      'mallory-exp',
      await signedByGateway(gw, claims('mallory-exp', { iat: now - 3600, exp: now - 600 })),
      ['token_expired'],
    );
    await expectRefused('mallory-nbf', await signedByGateway(gw, claims('mallory-nbf', { nbf: now + 600 })), [
      'not_yet_valid',
    ]);
    const { exp: _exp, ...noExp } = claims('mallory-noexp');
    await expectRefused('mallory-noexp', await signedByGateway(gw, noExp), ['missing_claim']);
  });

  it('no sub, or a sub that is not a string', async () => {
    const { sub: _sub, ...noSub } = claims('x');
    await expectRefused('x', await signedByGateway(gw, noSub), ['missing_claim']);
    await expectRefused('42', await signedByGateway(gw, claims('x', { sub: 42 })), [
      'missing_claim',
      'malformed',
    ]);
  });

  // req: MCP-AUTH-TOKEN-IN-HEADER
  it('a token in the query string or in a form body is not a credential (RFC 6750 §2.2–2.3)', async () => {
    const token = await signedByGateway(gw, claims('query-user'));
    log.clear();
    const url = new URL(gw.mcpUrl);
    url.searchParams.set('access_token', token);
    const response = await fetch(url, {
      method: 'POST',
      headers: { accept: ACCEPT, 'content-type': 'application/json' },
      body: JSON.stringify(INIT),
    });
    expect(response.status).toBe(401);
    await response.text();
    expect(log.of('guard.refused')[0]?.reason).toBe('missing_token');
    expect(await sessionsOf(gw, 'query-user')).toEqual([]);
  });

  // req: MCP-AUTH-400-MALFORMED, RFC6750-3.1-INVALID-REQUEST
  it('other schemes and malformed Bearer headers: 401 or 400, never a session', async () => {
    const token = await signedByGateway(gw, claims('scheme-user'));
    for (const [authorization, status] of [
      [`Basic ${Buffer.from('alice:pw').toString('base64')}`, 401],
      [`DPoP ${token}`, 401],
      [`Bearer ${token} ${token}`, 400],
      [`Bearer ${token},`, 400],
      ['Bearer', 401],
    ] as const) {
      const response = await fetch(gw.mcpUrl, {
        method: 'POST',
        headers: { accept: ACCEPT, 'content-type': 'application/json', authorization },
        body: JSON.stringify(INIT),
      });
      expect({ authorization: authorization.slice(0, 8), status: response.status }).toEqual({
        authorization: authorization.slice(0, 8),
        status,
      });
      await response.text();
    }
    expect(await sessionsOf(gw, 'scheme-user')).toEqual([]);
  });

  it('every transport refuses the same forgeries: WebSocket upgrade and hello, legacy SSE', async () => {
    const forged = [
      unsecured(claims('mallory-ws')),
      await hmacWithPublicKey(gw, claims('mallory-ws')),
      await signedByGateway(gw, claims('mallory-ws', { aud: 'https://other.example/mcp' })),
    ];
    for (const token of forged) {
      log.clear();
      await expect(connectRaw(gw, { token })).rejects.toMatchObject({ status: 401 });
      const socket = await connectRaw(gw);
      socket.send({ op: 'hello', token });
      expect(await socket.closed).toEqual({ code: 4401, reason: 'invalid_token' });
      const sse = await fetch(new URL('/sse', gw.mcpUrl), {
        headers: { accept: 'text/event-stream', authorization: `Bearer ${token}` },
      });
      expect(sse.status).toBe(401);
      await sse.text();
      const transports = log.of('guard.refused').map((event) => event.transport);
      expect(transports).toEqual(expect.arrayContaining(['websocket', 'legacy-sse']));
    }
    expect(await sessionsOf(gw, 'mallory-ws')).toEqual([]);
  });
});

describe('clock skew: within auth.clockToleranceSeconds accepted, beyond it refused', () => {
  const clock = createManualClock(Date.now());
  let gw: TestGateway;
  let log: EventLog;
  beforeAll(async () => {
    ({ gw, log } = await startRecorded(
      { store: { kind: 'memory' }, auth: { clockToleranceSeconds: 5 } },
      { clock },
    ));
  });
  afterAll(async () => {
    await gw?.close();
  });

  async function admitted(token: string): Promise<boolean> {
    log.clear();
    const response = await mcpRequest(gw, token, { jsonrpc: '2.0', id: 1, method: 'ping' });
    await response.text();
    if (response.status === 401) return false;
    expect(response.status).toBe(400); // admitted, then ERR_SESSION_REQUIRED
    return true;
  }

  it('a token that expired 3 s ago (gateway clock ahead) is accepted; 8 s ago is refused', async () => {
    const start = clock.now();
    const soon = await gw.token('skew-exp', { expiresInSeconds: 60 });
    const later = await gw.token('skew-exp2', { expiresInSeconds: 60 });
    clock.set(start + 63_000);
    expect(await admitted(soon)).toBe(true);
    clock.set(start + 68_000);
    expect(await admitted(later)).toBe(false);
    expect(log.of('guard.refused')[0]?.reason).toBe('token_expired');
    // The first token, cached while valid, is not served from the cache past its tolerance either.
    expect(await admitted(soon)).toBe(false);
    clock.set(start);
  });

  it('a token from an issuer clock 3 s ahead (nbf in the future) is accepted; 8 s ahead is refused', async () => {
    const now = Math.floor(clock.now() / 1000);
    expect(
      await admitted(
        await signedByGateway(gw, { ...genuineClaims(gw, 'skew-nbf', clock.now()), nbf: now + 3 }),
      ),
    ).toBe(true);
    expect(
      await admitted(
        await signedByGateway(gw, { ...genuineClaims(gw, 'skew-nbf', clock.now()), nbf: now + 8 }),
      ),
    ).toBe(false);
    expect(log.of('guard.refused')[0]?.reason).toBe('not_yet_valid');
  });
});
