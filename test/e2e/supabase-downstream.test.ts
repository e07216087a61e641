import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { serve } from '@hono/node-server';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { createMcpHandler, McpServer } from '@modelcontextprotocol/server';
import { Hono } from 'hono';
import { decodeJwt, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configSchema } from '../../src/config/schema.js';
import { createNotesHttpApp } from '../../src/demo/http.js';
import { currentContext } from '../../src/downstream/context.js';
import { createGatehouse, type Gatehouse } from '../../src/library/protect.js';
import { createManualClock } from '../../src/ops/clock.js';
import { silentLogger } from '../../src/ops/logger.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { freePort, type LateServer, serveLate } from '../helpers/late-server.js';
import { connectClient, text } from '../helpers/mcp.js';

const envEcho = fileURLToPath(new URL('../fixtures/env-echo-server.ts', import.meta.url));
const SUPABASE_ISSUER = 'https://abcdefghijklmnop.supabase.co/auth/v1';
const SUPABASE_SECRET = 'project-jwt-secret-that-is-at-least-32-bytes';
const SUPABASE_TTL_SECONDS = 120;
const GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ACCESS_TOKEN = 'urn:ietf:params:oauth:token-type:access_token';
const JWT = 'urn:ietf:params:oauth:token-type:jwt';

/** Verifies a token the way Supabase's API gateway does: the project secret, its issuer, `authenticated`. */
async function verifySupabase(token: string, now: number) {
  const { payload, protectedHeader } = await jwtVerify(token, new TextEncoder().encode(SUPABASE_SECRET), {
    algorithms: ['HS256'],
    issuer: SUPABASE_ISSUER,
    audience: 'authenticated',
    currentDate: new Date(now),
  });
  return { payload, protectedHeader };
}

interface Echo {
  supabaseToken: string | null;
  userId: string | null;
  pid: number;
}

describe('Supabase user tokens reach a gateway-mode stdio tool', () => {
  const clock = createManualClock(Date.now());
  let gw: TestGateway;

  beforeAll(async () => {
    gw = await startTestGateway(
      {
        store: { kind: 'memory' },
        upstream: { kind: 'stdio', command: process.execPath, args: ['--import', 'tsx', envEcho] },
        downstream: {
          supabase: { issuer: SUPABASE_ISSUER, secret: SUPABASE_SECRET, ttlSeconds: SUPABASE_TTL_SECONDS },
        },
      },
      { clock },
    );
  });
  afterAll(async () => {
    await gw?.close();
  });

  async function connect(user: string, era: '2025' | '2026-07-28') {
    const token = await gw.token(user, { email: `${user}@example.test`, expiresInSeconds: 3600 });
    const { client } = await connectClient(gw.mcpUrl, token, era);
    const echo = async (): Promise<Echo> =>
      JSON.parse(text(await client.callTool({ name: 'cloud_token', arguments: {} })));
    return { client, token, echo };
  }

  it('gives each session a token for its own user, in Supabase’s shape, never the client’s token', async () => {
    const alice = await connect('alice', '2025');
    const bob = await connect('bob', '2025');
    const [a, b] = await Promise.all([alice.echo(), bob.echo()]);
    expect(a.supabaseToken).toEqual(expect.any(String));
    expect(b.supabaseToken).toEqual(expect.any(String));
    expect(a.supabaseToken).not.toBe(alice.token);

    const { payload, protectedHeader } = await verifySupabase(a.supabaseToken as string, clock.now());
    expect(protectedHeader).toMatchObject({ alg: 'HS256', typ: 'JWT' });
    expect(payload).toMatchObject({
      sub: 'alice',
      email: 'alice@example.test',
      role: 'authenticated',
      aud: 'authenticated',
      is_anonymous: false,
    });
    expect((payload.exp as number) - (payload.iat as number)).toBe(SUPABASE_TTL_SECONDS);
    expect((await verifySupabase(b.supabaseToken as string, clock.now())).payload.sub).toBe('bob');

    // A token signed with another project's secret would not pass: the test's check can fail.
    await expect(
      jwtVerify(a.supabaseToken as string, new TextEncoder().encode(`${SUPABASE_SECRET}-other`)),
    ).rejects.toThrow();
    await Promise.all([alice.client.close(), bob.client.close()]);
  });

  it('replaces the child before its token expires, with a fresh token (initialize replayed)', async () => {
    const alice = await connect('alice', '2025');
    const first = await alice.echo();
    expect(await alice.echo()).toMatchObject({ pid: first.pid, supabaseToken: first.supabaseToken });

    clock.advance(SUPABASE_TTL_SECONDS * 1000);
    const second = await alice.echo();
    expect(second.pid).not.toBe(first.pid);
    expect(second.supabaseToken).not.toBe(first.supabaseToken);
    const { payload } = await verifySupabase(second.supabaseToken as string, clock.now());
    expect(payload.sub).toBe('alice');
    await alice.client.close();
  });

  it('serves stateless (2026-07-28) requests with the user’s token as well', async () => {
    const bob = await connect('bob', '2026-07-28');
    const echo = await bob.echo();
    expect((await verifySupabase(echo.supabaseToken as string, clock.now())).payload.sub).toBe('bob');
    await bob.client.close();
  });

  it('never lets a minted token outlive the user’s own', async () => {
    const token = await gw.token('carol', { expiresInSeconds: 30 });
    const client = new Client({ name: 'test', version: '1.0.0' });
    await client.connect(
      new StreamableHTTPClientTransport(gw.mcpUrl, { authProvider: { token: async () => token } }),
    );
    const echo: Echo = JSON.parse(text(await client.callTool({ name: 'cloud_token', arguments: {} })));
    const minted = decodeJwt(echo.supabaseToken as string);
    expect(minted.exp).toBe(decodeJwt(token).exp);
    await client.close();
  });
});

describe('an HTTP upstream exchanges its identity token for a Supabase token (RFC 8693)', () => {
  const SERVICE_SECRET = 'notes-api-secret-that-is-at-least-32-chars';
  let gw: TestGateway;
  let upstream: ReturnType<typeof serve>;
  let app: ReturnType<typeof createNotesHttpApp>;
  let upstreamUrl: string;
  const identityTokens: string[] = [];

  beforeAll(async () => {
    const gatewayPort = await freePort();
    const gatewayUrl = `http://127.0.0.1:${gatewayPort}`;
    const upstreamPort = await freePort();
    upstreamUrl = `http://127.0.0.1:${upstreamPort}/mcp`;
    app = createNotesHttpApp({
      jwksUrl: `${gatewayUrl}/.well-known/jwks.json`,
      issuer: `${gatewayUrl}/`,
      audience: upstreamUrl,
    });
    upstream = serve({
      hostname: '127.0.0.1',
      port: upstreamPort,
      fetch: (request: Request) => {
        const authorization = request.headers.get('authorization');
        if (authorization?.startsWith('Bearer ')) identityTokens.push(authorization.slice('Bearer '.length));
        return app.fetch(request);
      },
    });
    gw = await startTestGateway({
      store: { kind: 'memory' },
      server: { port: gatewayPort },
      upstream: { kind: 'http', url: upstreamUrl },
      authorizationServer: {
        clients: [
          { clientId: 'notes-api', clientSecret: SERVICE_SECRET, redirectUris: ['http://127.0.0.1:1/cb'] },
        ],
        tokenExchange: { audiences: ['authenticated', 'https://api.example.test'] },
      },
      downstream: { supabase: { issuer: SUPABASE_ISSUER, secret: SUPABASE_SECRET } },
    });
  });
  afterAll(async () => {
    await gw?.close();
    await app?.close();
    upstream?.close();
  });

  /** What the HTTP upstream does with the identity token it was handed. */
  function exchange(subjectToken: string, fields: Record<string, string> = {}): Promise<Response> {
    return fetch(`${gw.gateway.urls.publicUrl}/oauth/token`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: `Basic ${Buffer.from(`notes-api:${SERVICE_SECRET}`).toString('base64')}`,
      },
      body: new URLSearchParams({
        grant_type: GRANT,
        subject_token: subjectToken,
        subject_token_type: JWT,
        audience: 'authenticated',
        ...fields,
      }).toString(),
    });
  }

  async function identityTokenOf(user: string): Promise<{ identity: string; access: string }> {
    const access = await gw.token(user, { email: `${user}@example.test` });
    const client = new Client({ name: 'test', version: '1.0.0' });
    await client.connect(
      new StreamableHTTPClientTransport(gw.mcpUrl, { authProvider: { token: async () => access } }),
    );
    identityTokens.length = 0;
    await client.callTool({ name: 'whoami', arguments: {} });
    await client.close();
    const identity = identityTokens.find((token) => decodeJwt(token).sub === user);
    if (identity === undefined) throw new Error('the upstream saw no identity token');
    return { identity, access };
  }

  it('trades the identity token the upstream received for a Supabase user token', async () => {
    const { identity, access } = await identityTokenOf('alice');
    expect(identity).not.toBe(access);
    const response = await exchange(identity);
    expect(response.status).toBe(200);
    const body = (await response.json()) as Record<string, unknown>;
    expect(body).toMatchObject({ issued_token_type: ACCESS_TOKEN, token_type: 'Bearer' });
    expect(body).not.toHaveProperty('scope');
    const { payload } = await verifySupabase(body.access_token as string, Date.now());
    expect(payload).toMatchObject({ sub: 'alice', email: 'alice@example.test', role: 'authenticated' });
    // Never past the identity token it was traded for.
    expect(payload.exp as number).toBeLessThanOrEqual(decodeJwt(identity).exp as number);
  });

  it('also trades the user’s access token (access_token type) for the Supabase audience', async () => {
    const access = await gw.token('bob');
    const response = await exchange(access, { subject_token_type: ACCESS_TOKEN });
    expect(response.status).toBe(200);
    const body = (await response.json()) as { access_token: string };
    expect((await verifySupabase(body.access_token, Date.now())).payload.sub).toBe('bob');
  });

  it('refuses type confusion and foreign identity tokens', async () => {
    const { identity, access } = await identityTokenOf('alice');
    // An identity token is not an access token, and an access token is not an identity token.
    const asAccess = await exchange(identity, { subject_token_type: ACCESS_TOKEN });
    expect(asAccess.status).toBe(400);
    expect(((await asAccess.json()) as { error: string }).error).toBe('invalid_grant');
    const asIdentity = await exchange(access);
    expect(asIdentity.status).toBe(400);
    expect(((await asIdentity.json()) as { error: string }).error).toBe('invalid_grant');
    // An identity token for another audience (signed by the same keys) is refused.
    const foreign = await gw.gateway.signer.sign({
      subject: 'alice',
      audience: 'https://other.example.test',
      expiresInSeconds: 60,
      type: 'JWT',
    });
    const refused = await exchange(foreign);
    expect(refused.status).toBe(400);
    expect(((await refused.json()) as { error: string }).error).toBe('invalid_grant');
    // A token exchanged for the generic audience is an identity token, not a Supabase one.
    const generic = await exchange(identity, { audience: 'https://api.example.test' });
    expect(generic.status).toBe(200);
    const { access_token } = (await generic.json()) as { access_token: string };
    await expect(verifySupabase(access_token, Date.now())).rejects.toThrow();
  });
});

describe('library mode: the tool context carries the user’s Supabase token', () => {
  let server: LateServer;
  let gatehouse: Gatehouse;
  let dataDir: string;

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'gatehouse-supabase-library-'));
    server = await serveLate();
    gatehouse = await createGatehouse({
      config: {
        dataDir,
        server: { publicUrl: server.publicUrl },
        log: { level: 'silent' },
        downstream: { supabase: { issuer: SUPABASE_ISSUER, secret: SUPABASE_SECRET } },
      },
      deps: {
        logger: silentLogger,
        credentialBroker: async (principal) => ({ values: { cloudToken: `cred-for-${principal.subject}` } }),
      },
    });
    const mcp = createMcpHandler(() => {
      const tools = new McpServer({ name: 'supabase-tools', version: '1.0.0' });
      tools.registerTool('supabase_token', { description: 'The caller’s Supabase token' }, async () => ({
        content: [{ type: 'text', text: JSON.stringify(currentContext()?.credentials ?? null) }],
      }));
      return tools;
    });
    const hono = new Hono();
    gatehouse.mount(hono, mcp.fetch);
    server.setApp(hono);
  });
  afterAll(async () => {
    await gatehouse?.close();
    await server?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('gives each caller their own token next to the operator broker’s values', async () => {
    const call = async (user: string) => {
      const bearer = await gatehouse.gateway.signer.sign({
        subject: user,
        audience: gatehouse.gateway.urls.resource,
        expiresInSeconds: 600,
      });
      const client = new Client({ name: `library-${user}`, version: '1.0.0' });
      await client.connect(
        new StreamableHTTPClientTransport(new URL(gatehouse.gateway.urls.resource), {
          authProvider: { token: async () => bearer },
        }),
      );
      const credentials = JSON.parse(text(await client.callTool({ name: 'supabase_token', arguments: {} })));
      await client.close();
      return credentials as { cloudToken: string; supabaseAccessToken: string };
    };
    const [alice, bob] = await Promise.all([call('alice'), call('bob')]);
    expect(alice.cloudToken).toBe('cred-for-alice');
    expect((await verifySupabase(alice.supabaseAccessToken, Date.now())).payload.sub).toBe('alice');
    expect((await verifySupabase(bob.supabaseAccessToken, Date.now())).payload.sub).toBe('bob');
  });
});

describe('configuration', () => {
  it("refuses 'authenticated' as an exchange audience without downstream.supabase", () => {
    const parsed = configSchema.safeParse({
      authorizationServer: {
        clients: [{ clientId: 'svc', clientSecret: 'x'.repeat(40), redirectUris: ['http://127.0.0.1:1/cb'] }],
        tokenExchange: { audiences: ['authenticated'] },
      },
    });
    expect(parsed.success).toBe(false);
    expect(JSON.stringify(parsed.error?.issues)).toContain('downstream.supabase');
  });
});
