import { serve } from '@hono/node-server';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { Client as V1Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport as V1Transport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNotesHttpApp } from '../../src/demo/http.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { freePort } from '../helpers/late-server.js';
import { text } from '../helpers/mcp.js';

describe('HTTP upstream: a minted, audience-bound identity instead of the client token', () => {
  let gw: TestGateway;
  let upstream: ReturnType<typeof serve>;
  let app: ReturnType<typeof createNotesHttpApp>;
  const seenAuthorization: string[] = [];
  let upstreamUrl: string;

  beforeAll(async () => {
    const gatewayPort = await freePort();
    const gatewayUrl = `http://127.0.0.1:${gatewayPort}`;
    // The gateway's issuer is its public URL with a trailing slash, compared exactly.
    const issuer = `${gatewayUrl}/`;
    const upstreamPort = await freePort();
    upstreamUrl = `http://127.0.0.1:${upstreamPort}/mcp`;
    app = createNotesHttpApp({
      jwksUrl: `${gatewayUrl}/.well-known/jwks.json`,
      issuer,
      audience: upstreamUrl,
    });
    upstream = serve({
      hostname: '127.0.0.1',
      port: upstreamPort,
      fetch: (request: Request) => {
        seenAuthorization.push(request.headers.get('authorization') ?? '');
        return app.fetch(request);
      },
    });
    gw = await startTestGateway({
      store: { kind: 'memory' },
      server: { port: gatewayPort },
      upstream: { kind: 'http', url: upstreamUrl },
    });
  });
  afterAll(async () => {
    await gw?.close();
    await app?.close();
    upstream?.close();
  });

  for (const era of ['2025', '2026-07-28'] as const) {
    it(`relays ${era} traffic with per-user identity and isolation`, async () => {
      const connect = async (user: string) => {
        const token = await gw.token(user, { email: `${user}@example.test` });
        const client = new Client(
          { name: 'test', version: '1.0.0' },
          era === '2025' ? {} : { versionNegotiation: { mode: { pin: '2026-07-28' } } },
        );
        await client.connect(
          new StreamableHTTPClientTransport(gw.mcpUrl, { authProvider: { token: async () => token } }),
        );
        return { client, token };
      };
      const alice = await connect(`alice-${era}`);
      const bob = await connect(`bob-${era}`);
      seenAuthorization.length = 0;
      const who = JSON.parse(text(await alice.client.callTool({ name: 'whoami', arguments: {} })));
      expect(who).toMatchObject({ userId: `alice-${era}`, email: `alice-${era}@example.test` });
      await alice.client.callTool({ name: 'notes_add', arguments: { text: `private ${era}` } });
      expect(text(await bob.client.callTool({ name: 'notes_list', arguments: {} }))).not.toContain(
        `private ${era}`,
      );
      expect(text(await alice.client.callTool({ name: 'notes_list', arguments: {} }))).toContain(
        `private ${era}`,
      );

      expect(seenAuthorization.length).toBeGreaterThan(0);
      for (const header of seenAuthorization) {
        const token = header.replace(/^Bearer /, '');
        expect(token).not.toBe(alice.token);
        expect(token).not.toBe(bob.token);
        expect(decodeProtectedHeader(token)).toMatchObject({ alg: 'ES256', typ: 'JWT' });
        const claims = decodeJwt(token);
        expect(claims.aud).toBe(upstreamUrl);
        expect(claims.iss).toBe(gw.gateway.urls.issuer);
        expect((claims.exp ?? 0) - (claims.iat ?? 0)).toBeLessThanOrEqual(60);
      }
      await alice.client.close();
      await bob.client.close();
    });
  }

  it('serves the v1 SDK client with a bearer token', async () => {
    const token = await gw.token('v1-user');
    const client = new V1Client({ name: 'v1', version: '1.0.0' });
    await client.connect(
      new V1Transport(gw.mcpUrl, { requestInit: { headers: { authorization: `Bearer ${token}` } } }),
    );
    const who = JSON.parse(text(await client.callTool({ name: 'whoami', arguments: {} })));
    expect(who.userId).toBe('v1-user');
    await client.close();
  });
});
