import { createServer, type Server } from 'node:http';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { text } from '../helpers/mcp.js';

const SUPABASE_SECRET = 'super-secret-jwt-token-with-at-least-32-characters-long';

describe('resource-server mode: tokens from the team’s own IdP', () => {
  let gw: TestGateway;
  let jwksServer: Server;
  let issuer: string;
  const keys: Array<{ kid: string; privateKey: CryptoKey; jwk: Record<string, unknown> }> = [];
  let served: typeof keys = [];

  async function addKey(kid: string) {
    const pair = await generateKeyPair('RS256');
    const jwk = { ...(await exportJWK(pair.publicKey)), kid, alg: 'RS256', use: 'sig' };
    keys.push({ kid, privateKey: pair.privateKey, jwk });
  }

  beforeAll(async () => {
    await addKey('k1');
    await addKey('k2');
    served = [keys[0]!];
    jwksServer = createServer((_req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ keys: served.map((k) => k.jwk) }));
    });
    await new Promise<void>((resolve) => jwksServer.listen(0, '127.0.0.1', resolve));
    const { port } = jwksServer.address() as { port: number };
    issuer = `http://127.0.0.1:${port}/realms/team`;
    gw = await startTestGateway({
      store: { kind: 'memory' },
      auth: {
        verifiers: [
          {
            kind: 'jwks',
            name: 'keycloak',
            jwksUrl: `http://127.0.0.1:${port}/realms/team/protocol/openid-connect/certs`,
            issuer,
            audience: 'gatehouse',
            cooldownMs: 1,
          },
          { kind: 'hs256', name: 'supabase', secret: SUPABASE_SECRET },
        ],
      },
    });
  });
  afterAll(async () => {
    await gw?.close();
    jwksServer?.close();
  });

  async function whoami(token: string) {
    const client = new Client({ name: 'test', version: '1.0.0' });
    await client.connect(
      new StreamableHTTPClientTransport(gw.mcpUrl, { authProvider: { token: async () => token } }),
    );
    const who = JSON.parse(text(await client.callTool({ name: 'whoami', arguments: {} })));
    await client.close();
    return who;
  }

  function keycloakToken(kid: string, sub: string) {
    const key = keys.find((k) => k.kid === kid)!;
    return new SignJWT({
      azp: 'mcp',
      preferred_username: sub,
      realm_access: { roles: ['user'] },
      scope: 'openid notes',
    })
      .setProtectedHeader({ alg: 'RS256', kid })
      .setIssuer(issuer)
      .setAudience('gatehouse')
      .setSubject(sub)
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(key.privateKey);
  }

  it('verifies a JWKS issuer’s token, and a rotated key without a restart', async () => {
    expect(await whoami(await keycloakToken('k1', 'kc-alice'))).toMatchObject({ userId: 'kc-alice', issuer });
    served = [keys[1]!];
    expect(await whoami(await keycloakToken('k2', 'kc-bob'))).toMatchObject({ userId: 'kc-bob', issuer });
  });

  it('verifies a Supabase-style HS256 token', async () => {
    const token = await new SignJWT({
      role: 'authenticated',
      email: 'sb@example.test',
      app_metadata: { provider: 'email', providers: ['email'] },
      user_metadata: {},
      aal: 'aal1',
      session_id: '5f1b2c4e-0000-4000-8000-000000000000',
      is_anonymous: false,
    })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setAudience('authenticated')
      .setSubject('6c0e8a1e-1111-4111-8111-111111111111')
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(new TextEncoder().encode(SUPABASE_SECRET));
    expect(await whoami(token)).toMatchObject({
      userId: '6c0e8a1e-1111-4111-8111-111111111111',
      email: 'sb@example.test',
    });
  });

  it('refuses a token signed with the wrong HS256 secret', async () => {
    const token = await new SignJWT({ role: 'authenticated' })
      .setProtectedHeader({ alg: 'HS256' })
      .setAudience('authenticated')
      .setSubject('x')
      .setExpirationTime('5m')
      .sign(new TextEncoder().encode('another-secret-that-is-also-32-bytes-long!!'));
    const response = await fetch(gw.mcpUrl, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${token}`,
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }),
    });
    expect(response.status).toBe(401);
    expect(response.headers.get('www-authenticate')).toContain('invalid_token');
  });
});
