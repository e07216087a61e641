import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { createMcpHandler, McpServer } from '@modelcontextprotocol/server';
import { Hono } from 'hono';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { currentContext, currentPrincipal } from '../../src/downstream/context.js';
import { isGatehouseError } from '../../src/errors/gatehouse-error.js';
import { createGatehouse, type Gatehouse } from '../../src/library/protect.js';
import { silentLogger } from '../../src/ops/logger.js';
import { type LateServer, serveLate } from '../helpers/late-server.js';
import { text } from '../helpers/mcp.js';

function whoamiServer(): McpServer {
  const server = new McpServer({ name: 'library-whoami', version: '1.0.0' });
  server.registerTool('whoami', { description: 'The caller, read twice across awaits' }, async (ctx) => {
    const before = currentPrincipal().subject;
    await nextTurn();
    await sleep(Math.floor(Math.random() * 4));
    const after = currentPrincipal().subject;
    const viaAuthInfo = ctx.http?.authInfo?.extra?.subject;
    const credential = (currentContext()?.credentials as { cloudToken?: string } | undefined)?.cloudToken;
    // No token passthrough: the request the SDK shows the tool has no Authorization header.
    const authorization = ctx.http?.req?.headers.get('authorization') ?? null;
    const seen = {
      before,
      after,
      viaAuthInfo,
      credential,
      authorization,
      authInfoToken: ctx.http?.authInfo?.token,
    };
    return { content: [{ type: 'text', text: JSON.stringify(seen) }] };
  });
  return server;
}

describe('library mode', () => {
  let server: LateServer;
  let gatehouse: Gatehouse;
  let mcpUrl: URL;
  let dataDir: string;
  const clients: Client[] = [];

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'gatehouse-library-'));
    server = await serveLate();
    gatehouse = await createGatehouse({
      config: { dataDir, server: { publicUrl: server.publicUrl }, log: { level: 'silent' } },
      deps: {
        logger: silentLogger,
        // Per-user credentials from the broker reach the tool through the context, never a global.
        credentialBroker: async (principal) => ({ values: { cloudToken: `cred-for-${principal.subject}` } }),
      },
    });
    const mcp = createMcpHandler(() => whoamiServer());
    const hono = new Hono();
    gatehouse.mount(hono, mcp.fetch);
    server.setApp(hono);
    mcpUrl = new URL(gatehouse.gateway.urls.resource);
  });

  afterAll(async () => {
    await Promise.all(clients.map((client) => client.close()));
    await gatehouse?.close();
    await server?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  function token(user: string, jti?: string): Promise<string> {
    return gatehouse.gateway.signer.sign({
      subject: user,
      audience: gatehouse.gateway.urls.resource,
      expiresInSeconds: 600,
      jti,
      claims: { email: `${user}@example.com` },
    });
  }

  async function connect(user: string): Promise<Client> {
    const bearer = await token(user);
    const client = new Client({ name: `library-${user}`, version: '1.0.0' });
    await client.connect(
      new StreamableHTTPClientTransport(mcpUrl, { authProvider: { token: async () => bearer } }),
    );
    clients.push(client);
    return client;
  }

  it('reports the caller correctly under 200 interleaved concurrent calls from two users', async () => {
    const alice = await connect('alice');
    const bob = await connect('bob');
    // 100 calls each, in a fixed shuffled order (runs of different lengths, not a strict alternation).
    const calls = [...Array<string>(100).fill('alice'), ...Array<string>(100).fill('bob')];
    let seed = 42;
    for (let i = calls.length - 1; i > 0; i--) {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      const j = seed % (i + 1);
      [calls[i], calls[j]] = [calls[j] as string, calls[i] as string];
    }

    const results = await Promise.all(
      calls.map(async (user) => {
        const client = user === 'alice' ? alice : bob;
        const result = await client.callTool({ name: 'whoami', arguments: {} });
        return { user, seen: JSON.parse(text(result)) as Record<string, unknown> };
      }),
    );
    expect(results).toHaveLength(200);
    for (const { user, seen } of results) {
      expect(seen).toEqual({
        before: user,
        after: user,
        viaAuthInfo: user,
        credential: `cred-for-${user}`,
        authorization: null,
        authInfoToken: '',
      });
    }
  });

  // req: MCP-AUTH-WWW-AUTHENTICATE-RESOURCE-METADATA
  it('answers a request without a token with 401 and resource_metadata', async () => {
    const response = await fetch(mcpUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} }),
    });
    expect(response.status).toBe(401);
    const challenge = response.headers.get('www-authenticate') ?? '';
    expect(challenge).toMatch(/^Bearer /);
    expect(challenge).toContain(`resource_metadata="${gatehouse.gateway.urls.resourceMetadataUrl}"`);
    const metadata = await fetch(gatehouse.gateway.urls.resourceMetadataUrl);
    expect(metadata.status).toBe(200);
    expect(await metadata.json()).toMatchObject({ resource: gatehouse.gateway.urls.resource });
  });

  it('refuses an invalid token and a revoked one with 401', async () => {
    const call = (bearer: string) =>
      fetch(mcpUrl, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${bearer}`,
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
        },
        body: JSON.stringify({
          jsonrpc: '2.0',
          id: 1,
          method: 'initialize',
          params: {
            protocolVersion: '2025-06-18',
            capabilities: {},
            clientInfo: { name: 'raw', version: '1' },
          },
        }),
      });
    const good = await token('carol', 'carol-grant-jti');
    const [header, payload] = good.split('.');
    expect((await call(`${header}.${payload}.${'A'.repeat(43)}`)).status).toBe(401);

    // Accepted (and cached) first, then revoked: refused from the moment revoke() returns.
    expect((await call(good)).status).toBe(200);
    const revocations = gatehouse.gateway.authorizationServer?.revocations;
    expect(revocations).toBeDefined();
    await revocations?.revoke({
      kind: 'jti',
      id: 'carol-grant-jti',
      revokedAt: Date.now(),
      expiresAt: Date.now() + 600_000,
    });
    const refused = await call(good);
    expect(refused.status).toBe(401);
    expect(refused.headers.get('www-authenticate')).toContain('invalid_token');
  });

  it('has no principal outside a request', () => {
    let thrown: unknown;
    try {
      currentPrincipal();
    } catch (error) {
      thrown = error;
    }
    expect(isGatehouseError(thrown, 'ERR_NO_REQUEST_CONTEXT')).toBe(true);
  });
});
