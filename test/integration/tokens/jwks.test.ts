import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  type CryptoKey,
  calculateJwkThumbprint,
  exportJWK,
  exportSPKI,
  generateKeyPair,
  type JWK,
  SignJWT,
} from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type GatehouseError, isGatehouseError } from '../../../src/errors/gatehouse-error.js';
import { OAuthError } from '../../../src/errors/oauth-error.js';
import { createManualClock } from '../../../src/ops/clock.js';
import { createJwksVerifier, type JwksVerifierOptions } from '../../../src/tokens/jwks-verifier.js';
import type { TokenRejectionReason } from '../../../src/tokens/verifier.js';

// ---- a JWKS server on loopback --------------------------------------------------------------------

type Route =
  | { kind: 'json'; body: unknown; status?: number }
  | { kind: 'text'; body: string; status?: number }
  | { kind: 'redirect'; location: string }
  | { kind: 'hang' };

interface JwksServer {
  url(path: string): string;
  route(path: string, route: Route): void;
  requests(path: string): number;
  close(): Promise<void>;
}

async function startJwksServer(): Promise<JwksServer> {
  const routes = new Map<string, Route>();
  const counts = new Map<string, number>();
  const server: Server = createServer((request: IncomingMessage, response: ServerResponse) => {
    const path = request.url ?? '/';
    counts.set(path, (counts.get(path) ?? 0) + 1);
    const route = routes.get(path);
    if (route === undefined) {
      response.writeHead(404).end();
      return;
    }
    switch (route.kind) {
      case 'json':
        response
          .writeHead(route.status ?? 200, { 'content-type': 'application/json' })
          .end(JSON.stringify(route.body));
        return;
      case 'text':
        response.writeHead(route.status ?? 200, { 'content-type': 'application/json' }).end(route.body);
        return;
      case 'redirect':
        response.writeHead(302, { location: route.location }).end();
        return;
      case 'hang':
        return;
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: (path) => `http://127.0.0.1:${port}${path}`,
    route: (path, route) => routes.set(path, route),
    requests: (path) => counts.get(path) ?? 0,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A port that was just free: listen on port 0, then close. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

// ---- keys and tokens ------------------------------------------------------------------------------

interface TestKey {
  kid: string;
  alg: 'RS256' | 'ES256' | 'RS512';
  privateKey: CryptoKey;
  publicJwk: JWK;
  privateJwk: JWK;
  publicPem: string;
}

async function makeKey(alg: TestKey['alg']): Promise<TestKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const bare = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(bare);
  return {
    kid,
    alg,
    privateKey,
    publicJwk: { ...bare, kid, alg, use: 'sig' },
    privateJwk: { ...(await exportJWK(privateKey)), kid, alg },
    publicPem: await exportSPKI(publicKey),
  };
}

function jwks(...keys: TestKey[]): { keys: JWK[] } {
  return { keys: keys.map((key) => key.publicJwk) };
}

function sign(
  key: TestKey,
  claims: Record<string, unknown>,
  header: Record<string, unknown> = {},
): Promise<string> {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'JWT', ...header })
    .sign(key.privateKey);
}

function signHs256(secret: string, claims: Record<string, unknown>, kid: string): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: 'HS256', kid }).sign(new TextEncoder().encode(secret));
}

async function failure(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => undefined,
    (error: unknown) => error,
  );
}

async function expectRejection(promise: Promise<unknown>, reason: TokenRejectionReason): Promise<void> {
  const error = await failure(promise);
  expect(error).toBeInstanceOf(OAuthError);
  expect(error).toMatchObject({ code: 'invalid_token', reason });
}

async function expectUnavailable(promise: Promise<unknown>): Promise<GatehouseError> {
  const error = await failure(promise);
  expect(isGatehouseError(error, 'ERR_JWKS_UNAVAILABLE'), `got ${String(error)}`).toBe(true);
  expect((error as GatehouseError).status).toBe(503);
  return error as GatehouseError;
}

// ---- the suite ------------------------------------------------------------------------------------

describe('createJwksVerifier against a JWKS served on loopback', () => {
  let server: JwksServer;
  let rsa: TestKey;
  let rsaNext: TestKey;
  let ec: TestKey;
  let attacker: TestKey;
  let rs512: TestKey;
  const clock = createManualClock();
  const now = Math.floor(clock.now() / 1000);

  beforeAll(async () => {
    server = await startJwksServer();
    [rsa, rsaNext, ec, attacker, rs512] = await Promise.all([
      makeKey('RS256'),
      makeKey('RS256'),
      makeKey('ES256'),
      makeKey('RS256'),
      makeKey('RS512'),
    ]);
  });
  afterAll(async () => {
    await server.close();
  });

  let routeCounter = 0;
  /** A fresh JWKS path per test, so request counts and key sets never leak between tests. */
  function freshPath(): string {
    routeCounter += 1;
    return `/jwks-${routeCounter}.json`;
  }

  function verifier(overrides: Partial<JwksVerifierOptions> & { jwksUrl: string }) {
    return createJwksVerifier({
      name: 'idp',
      issuer: 'https://idp.example/',
      audience: 'https://api.example',
      algorithms: ['RS256', 'ES256'],
      timeoutMs: 2_000,
      cooldownMs: 30_000,
      cacheMaxAgeMs: 600_000,
      clockToleranceSeconds: 5,
      clock,
      ...overrides,
    });
  }

  describe('provider-shaped tokens', () => {
    it('verifies an Auth0 access token (issuer with trailing slash, aud array, azp, scope, permissions)', async () => {
      const path = freshPath();
      server.route(path, { kind: 'json', body: jwks(rsa) });
      const issuer = 'https://gatehouse-test.eu.auth0.com/';
      const auth0 = verifier({
        name: 'auth0',
        issuer,
        audience: 'https://notes-api',
        jwksUrl: server.url(path),
      });
      const token = await sign(rsa, {
        iss: issuer,
        sub: 'auth0|65f1c0ffee',
        aud: ['https://notes-api', `${issuer}userinfo`],
        iat: now,
        exp: now + 86_400,
        azp: 'q8fN2Kc1pVtYtHq3',
        scope: 'openid profile email read:notes',
        permissions: ['read:notes', 'write:notes'],
      });
      const principal = await auth0.verify(token);
      expect(principal).toMatchObject({
        subject: 'auth0|65f1c0ffee',
        issuer,
        clientId: 'q8fN2Kc1pVtYtHq3',
        scopes: ['openid', 'profile', 'email', 'read:notes'],
        expiresAt: now + 86_400,
        verifier: 'auth0',
      });
      expect(principal.claims.permissions).toEqual(['read:notes', 'write:notes']);
      // The same token with the issuer spelled without its slash is another issuer.
      const noSlash = verifier({
        issuer: issuer.slice(0, -1),
        audience: 'https://notes-api',
        jwksUrl: server.url(path),
      });
      await expectRejection(noSlash.verify(token), 'wrong_issuer');
    });

    it('verifies a WorkOS AuthKit access token (user_ sub, sid, org_id, role, permissions, no email)', async () => {
      const path = freshPath();
      server.route(path, { kind: 'json', body: jwks(rsa) });
      const issuer = 'https://gatehouse-test.authkit.app';
      const workos = verifier({
        name: 'authkit',
        issuer,
        audience: 'https://mcp.example/mcp',
        jwksUrl: server.url(path),
      });
      const token = await sign(rsa, {
        iss: issuer,
        sub: 'user_01HXYZABCDEF0123456789ABCD',
        aud: 'https://mcp.example/mcp',
        sid: 'session_01HXYZABCDEF0123456789ABCD',
        org_id: 'org_01HXYZABCDEF0123456789ABCD',
        role: 'member',
        roles: ['member'],
        permissions: ['notes:read'],
        jti: '01HXYZJTI',
        iat: now,
        exp: now + 300,
      });
      const principal = await workos.verify(token);
      expect(principal.subject).toBe('user_01HXYZABCDEF0123456789ABCD');
      expect(principal.email).toBeUndefined();
      expect(principal.claims).toMatchObject({
        sid: 'session_01HXYZABCDEF0123456789ABCD',
        org_id: 'org_01HXYZABCDEF0123456789ABCD',
        role: 'member',
      });
    });

    it('verifies a Keycloak access token (azp, preferred_username, realm_access.roles, aud with account)', async () => {
      const path = freshPath();
      server.route(path, { kind: 'json', body: jwks(rsa, ec) });
      const issuer = 'https://sso.example/realms/acme';
      const keycloak = verifier({
        name: 'keycloak',
        issuer,
        audience: 'mcp-gateway',
        jwksUrl: server.url(path),
      });
      const token = await sign(rsa, {
        iss: issuer,
        sub: 'f1e2d3c4-b5a6-4789-9abc-def012345678',
        aud: ['mcp-gateway', 'account'],
        typ: 'Bearer',
        azp: 'mcp-client',
        preferred_username: 'ada',
        email: 'ada@example.com',
        realm_access: { roles: ['offline_access', 'notes-user'] },
        resource_access: { account: { roles: ['view-profile'] } },
        scope: 'openid email profile',
        iat: now,
        exp: now + 300,
      });
      const principal = await keycloak.verify(token);
      expect(principal).toMatchObject({
        clientId: 'mcp-client',
        email: 'ada@example.com',
        scopes: ['openid', 'email', 'profile'],
      });
      expect(principal.claims.realm_access).toEqual({ roles: ['offline_access', 'notes-user'] });
      // Keycloak's default audience alone is not ours.
      await expectRejection(
        keycloak.verify(await sign(rsa, { iss: issuer, sub: 's', aud: 'account', exp: now + 60 })),
        'wrong_audience',
      );
    });

    it('verifies a Supabase asymmetric (ES256) access token', async () => {
      const path = freshPath();
      server.route(path, { kind: 'json', body: jwks(rsa, ec) });
      const issuer = 'https://abcdefghijklmnop.supabase.co/auth/v1';
      const supabase = verifier({
        name: 'supabase',
        issuer,
        audience: 'authenticated',
        jwksUrl: server.url(path),
      });
      const token = await sign(ec, {
        iss: issuer,
        sub: '6f1c2f6e-9a51-4b8a-a3c4-2e6f0b7d8c91',
        aud: 'authenticated',
        role: 'authenticated',
        email: 'ada@example.com',
        session_id: 'b7c1d9e2-0f4a-4e51-9d3b-7a2c6e8f1b04',
        is_anonymous: false,
        iat: now,
        exp: now + 3600,
      });
      expect(await supabase.verify(token)).toMatchObject({
        subject: '6f1c2f6e-9a51-4b8a-a3c4-2e6f0b7d8c91',
        email: 'ada@example.com',
      });
    });

    it('fetches the key set once and reuses it for later tokens', async () => {
      const path = freshPath();
      server.route(path, { kind: 'json', body: jwks(rsa) });
      const idp = verifier({ jwksUrl: server.url(path) });
      for (const sub of ['a', 'b', 'c']) {
        await idp.verify(
          await sign(rsa, { iss: 'https://idp.example/', aud: 'https://api.example', sub, exp: now + 60 }),
        );
      }
      expect(server.requests(path)).toBe(1);
    });
  });

  describe('attacks', () => {
    const claims = () => ({
      iss: 'https://idp.example/',
      aud: 'https://api.example',
      sub: 'victim',
      iat: now,
      exp: now + 300,
    });

    async function loaded() {
      const path = freshPath();
      server.route(path, { kind: 'json', body: jwks(rsa, ec) });
      return { idp: verifier({ jwksUrl: server.url(path) }), path };
    }

    // req: RFC8725-3.1-ALGORITHM-VERIFICATION
    it('rejects alg none without fetching keys', async () => {
      const { idp, path } = await loaded();
      const token = `${Buffer.from(JSON.stringify({ alg: 'none', kid: rsa.kid })).toString('base64url')}.${Buffer.from(JSON.stringify(claims())).toString('base64url')}.`;
      await expectRejection(idp.verify(token), 'alg_not_allowed');
      expect(server.requests(path)).toBe(0);
    });

    // req: RFC8725-3.1-ALGORITHM-VERIFICATION
    it('rejects HS256 tokens signed with the public key (PEM, JWK JSON, modulus) as the HMAC secret', async () => {
      const { idp } = await loaded();
      for (const secret of [
        rsa.publicPem,
        JSON.stringify(rsa.publicJwk),
        rsa.publicJwk.n ?? '',
        JSON.stringify(ec.publicJwk),
      ]) {
        await expectRejection(idp.verify(await signHs256(secret, claims(), rsa.kid)), 'alg_not_allowed');
      }
    });

    // req: RFC8725-3.1-ALGORITHM-VERIFICATION
    it('rejects an algorithm the verifier was not configured for, even with a key in the set', async () => {
      const path = freshPath();
      server.route(path, { kind: 'json', body: jwks(rs512) });
      const idp = verifier({ jwksUrl: server.url(path), algorithms: ['RS256'] });
      await expectRejection(idp.verify(await sign(rs512, claims())), 'alg_not_allowed');
    });

    it('rejects a token signed by another key that reuses a published kid', async () => {
      const { idp } = await loaded();
      await expectRejection(idp.verify(await sign(attacker, claims(), { kid: rsa.kid })), 'bad_signature');
    });

    it('ignores keys the token carries itself (jwk, jku headers)', async () => {
      const { idp } = await loaded();
      const embedded = await sign(attacker, claims(), { kid: rsa.kid, jwk: attacker.publicJwk });
      await expectRejection(idp.verify(embedded), 'bad_signature');
      const elsewhere = freshPath();
      server.route(elsewhere, { kind: 'json', body: jwks(attacker) });
      const jku = await sign(attacker, claims(), { kid: attacker.kid, jku: server.url(elsewhere) });
      await expectRejection(idp.verify(jku), 'unknown_kid');
      expect(server.requests(elsewhere)).toBe(0);
    });

    it('rejects an unknown kid, and does not refetch during the cooldown', async () => {
      const { idp, path } = await loaded();
      await expectRejection(idp.verify(await sign(attacker, claims())), 'unknown_kid');
      await expectRejection(idp.verify(await sign(attacker, claims())), 'unknown_kid');
      expect(server.requests(path)).toBe(1);
    });

    it('rejects a tampered payload', async () => {
      const { idp } = await loaded();
      const [header, , signature] = (await sign(rsa, claims())).split('.');
      const payload = Buffer.from(JSON.stringify({ ...claims(), sub: 'admin' })).toString('base64url');
      await expectRejection(idp.verify(`${header}.${payload}.${signature}`), 'bad_signature');
    });

    // req: MCP-AUTH-AUDIENCE-VALIDATION
    it('rejects wrong audience, wrong issuer, expired, not yet valid, missing sub and missing exp', async () => {
      const { idp } = await loaded();
      await expectRejection(
        idp.verify(await sign(rsa, { ...claims(), aud: 'https://other-api' })),
        'wrong_audience',
      );
      await expectRejection(
        idp.verify(await sign(rsa, { ...claims(), iss: 'https://evil.example/' })),
        'wrong_issuer',
      );
      await expectRejection(idp.verify(await sign(rsa, { ...claims(), exp: now - 6 })), 'token_expired');
      await expectRejection(idp.verify(await sign(rsa, { ...claims(), nbf: now + 60 })), 'not_yet_valid');
      await expectRejection(idp.verify(await sign(rsa, { ...claims(), sub: undefined })), 'missing_claim');
      await expectRejection(idp.verify(await sign(rsa, { ...claims(), exp: undefined })), 'missing_claim');
    });

    it('accepts exp and nbf within the clock tolerance (5 s)', async () => {
      const { idp } = await loaded();
      await expect(idp.verify(await sign(rsa, { ...claims(), exp: now - 4 }))).resolves.toBeDefined();
      await expect(idp.verify(await sign(ec, { ...claims(), nbf: now + 4 }))).resolves.toBeDefined();
    });
  });

  describe('key rotation', () => {
    it('refetches on an unknown kid and accepts a token signed with the new key', async () => {
      const path = freshPath();
      server.route(path, { kind: 'json', body: jwks(rsa) });
      const idp = verifier({ jwksUrl: server.url(path), cooldownMs: 0 });
      const claims = { iss: 'https://idp.example/', aud: 'https://api.example', sub: 's', exp: now + 300 };

      await expect(idp.verify(await sign(rsa, claims))).resolves.toBeDefined();
      expect(server.requests(path)).toBe(1);

      server.route(path, { kind: 'json', body: jwks(rsaNext) });
      await expect(idp.verify(await sign(rsaNext, claims))).resolves.toMatchObject({ subject: 's' });
      expect(server.requests(path)).toBe(2);

      // The retired key is gone from the set: its tokens are now unknown.
      await expectRejection(idp.verify(await sign(rsa, claims)), 'unknown_kid');
    });

    it('with a long cooldown, a new kid is not looked up again right away', async () => {
      const path = freshPath();
      server.route(path, { kind: 'json', body: jwks(rsa) });
      const idp = verifier({ jwksUrl: server.url(path), cooldownMs: 60_000 });
      const claims = { iss: 'https://idp.example/', aud: 'https://api.example', sub: 's', exp: now + 300 };
      await idp.verify(await sign(rsa, claims));
      server.route(path, { kind: 'json', body: jwks(rsa, rsaNext) });
      await expectRejection(idp.verify(await sign(rsaNext, claims)), 'unknown_kid');
      expect(server.requests(path)).toBe(1);
    });
  });

  describe('an unusable JWKS fails closed with ERR_JWKS_UNAVAILABLE (503), never invalid_token', () => {
    const token = () =>
      sign(rsa, { iss: 'https://idp.example/', aud: 'https://api.example', sub: 's', exp: now + 300 });

    it('when nothing listens on the port', async () => {
      const port = await closedPort();
      const idp = verifier({ jwksUrl: `http://127.0.0.1:${port}/jwks.json` });
      const error = await expectUnavailable(idp.verify(await token()));
      expect(error.details).toEqual({ verifier: 'idp' });
    });

    it('when the server hangs, within timeoutMs', async () => {
      const path = freshPath();
      server.route(path, { kind: 'hang' });
      const idp = verifier({ jwksUrl: server.url(path), timeoutMs: 200 });
      const jwt = await token();
      const started = performance.now();
      const error = await expectUnavailable(idp.verify(jwt));
      const elapsed = performance.now() - started;
      expect(elapsed).toBeGreaterThanOrEqual(150);
      expect(elapsed).toBeLessThan(2_000);
      expect(error.cause).toMatchObject({ code: 'ERR_JWKS_TIMEOUT' });
    });

    it.each<[string, Route]>([
      ['a non-JSON body', { kind: 'text', body: '<html>oops</html>' }],
      ['HTTP 500', { kind: 'json', body: { keys: [] }, status: 500 }],
      ['HTTP 404', { kind: 'json', body: { error: 'not found' }, status: 404 }],
      ['a redirect (never followed)', { kind: 'redirect', location: '/elsewhere' }],
      ['JSON that is not a key set', { kind: 'json', body: { keys: 'nope' } }],
      ['a JSON array', { kind: 'json', body: [] }],
    ])('when the server answers %s', async (_label, route) => {
      const path = freshPath();
      server.route(path, route);
      await expectUnavailable(verifier({ jwksUrl: server.url(path) }).verify(await token()));
    });

    it('when the key set holds a private key', async () => {
      const path = freshPath();
      server.route(path, { kind: 'json', body: { keys: [rsa.privateJwk] } });
      await expectUnavailable(verifier({ jwksUrl: server.url(path) }).verify(await token()));
    });

    it('recovers once the server answers again (outages are not cached)', async () => {
      const path = freshPath();
      server.route(path, { kind: 'json', body: {}, status: 503 });
      const idp = verifier({ jwksUrl: server.url(path) });
      const jwt = await token();
      await expectUnavailable(idp.verify(jwt));
      server.route(path, { kind: 'json', body: jwks(rsa) });
      await expect(idp.verify(jwt)).resolves.toMatchObject({ subject: 's' });
    });

    it('does not fetch at all for a malformed token', async () => {
      const path = freshPath();
      server.route(path, { kind: 'hang' });
      const idp = verifier({ jwksUrl: server.url(path), timeoutMs: 200 });
      await expectRejection(idp.verify('not.a.jwt'), 'malformed');
      expect(server.requests(path)).toBe(0);
    });
  });
});
