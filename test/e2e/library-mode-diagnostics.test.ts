import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import {
  InMemoryTransport,
  McpServer,
  WebStandardStreamableHTTPServerTransport,
} from '@modelcontextprotocol/server';
import { Hono } from 'hono';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { currentPrincipal } from '../../src/downstream/context.js';
import { createGatehouse, type Gatehouse, type McpFetchHandler } from '../../src/library/protect.js';
import { silentLogger } from '../../src/ops/logger.js';
import { type LateServer, serveLate } from '../helpers/late-server.js';
import { text } from '../helpers/mcp.js';

const HS_SECRET = `hs-secret-${randomBytes(24).toString('hex')}`;
const HS_ISSUER = 'https://project.supabase.test/auth/v1';
const SECRET_KEY = randomBytes(32).toString('base64url');
const ALICE = 'alice-library-diagnostics';
const BOB = 'bob-the-other-library-user';
const DIAGNOSTIC_TOOLS = ['gatehouse_sessions', 'gatehouse_validate_token', 'gatehouse_whoami'];
const cloudSecret = (subject: string) => `cloud-secret-${subject}-${randomBytes(8).toString('hex')}`;

function hsToken(claims: Record<string, unknown>, secret = HS_SECRET): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(secret));
}

/**
 * A sessionful SDK v2 server (one `WebStandardStreamableHTTPServerTransport` per session) behind `protect`,
 * with the diagnostics tools added by `gatehouse.registerDiagnosticsTools(server)` when `diagnostics` is set.
 */
function sessionfulHandler(gatehouse: Gatehouse, diagnostics: boolean): McpFetchHandler {
  const transports = new Map<string, WebStandardStreamableHTTPServerTransport>();
  return async (request, { authInfo }) => {
    const existing = transports.get(request.headers.get('mcp-session-id') ?? '');
    if (existing !== undefined) return existing.handleRequest(request, { authInfo });
    const transport: WebStandardStreamableHTTPServerTransport = new WebStandardStreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => {
        transports.set(id, transport);
      },
      onsessionclosed: (id) => {
        transports.delete(id);
      },
    });
    const server = new McpServer({ name: 'library-diagnostics', version: '1.0.0' });
    server.registerTool('whoami', { description: 'The caller' }, async () => ({
      content: [{ type: 'text', text: currentPrincipal().subject }],
    }));
    if (diagnostics) gatehouse.registerDiagnosticsTools(server);
    await server.connect(transport);
    return transport.handleRequest(request, { authInfo });
  };
}

describe('diagnostics tools in library mode (registerDiagnosticsTools)', () => {
  let server: LateServer;
  let gatehouse: Gatehouse;
  let dataDir: string;
  let mcpUrl: URL;
  let plainUrl: URL;
  /** Strings no diagnostics output may contain. */
  const forbidden: string[] = [HS_SECRET, SECRET_KEY];
  /** Every diagnostics answer Alice received. */
  const outputs: string[] = [];
  const clients: Client[] = [];
  const secrets = new Map<string, string>();

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'gatehouse-library-diagnostics-'));
    server = await serveLate();
    gatehouse = await createGatehouse({
      config: {
        dataDir,
        server: { publicUrl: server.publicUrl },
        log: { level: 'silent' },
        authorizationServer: { secretKey: SECRET_KEY },
        auth: { verifiers: [{ kind: 'hs256', name: 'supabase', secret: HS_SECRET, issuer: HS_ISSUER }] },
      },
      deps: {
        logger: silentLogger,
        credentialBroker: async (principal) => {
          const secret = secrets.get(principal.subject) ?? cloudSecret(principal.subject);
          secrets.set(principal.subject, secret);
          forbidden.push(secret);
          return { values: { cloudToken: secret } };
        },
      },
    });
    const hono = new Hono();
    const plain = gatehouse.protect(sessionfulHandler(gatehouse, false));
    hono.all('/plain', (c) => plain(c.req.raw));
    gatehouse.mount(hono, sessionfulHandler(gatehouse, true));
    server.setApp(hono);
    mcpUrl = new URL(gatehouse.gateway.urls.resource);
    plainUrl = new URL('/plain', gatehouse.gateway.urls.publicUrl);
  });

  afterAll(async () => {
    await Promise.all(clients.map((client) => client.close()));
    await gatehouse?.close();
    await server?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  async function token(user: string): Promise<string> {
    const bearer = await gatehouse.gateway.signer.sign({
      subject: user,
      audience: gatehouse.gateway.urls.resource,
      expiresInSeconds: 600,
      claims: { email: `${user}@example.com`, scope: 'notes' },
    });
    forbidden.push(bearer);
    return bearer;
  }

  async function connect(user: string, url = mcpUrl) {
    const bearer = await token(user);
    const transport = new StreamableHTTPClientTransport(url, { authProvider: { token: async () => bearer } });
    const client = new Client({ name: `library-diagnostics-${user}`, version: '1.0.0' });
    await client.connect(transport);
    clients.push(client);
    return { client, sessionId: transport.sessionId as string };
  }

  async function call(client: Client, name: string, args: Record<string, unknown> = {}) {
    const result = await client.callTool({ name, arguments: args });
    outputs.push(JSON.stringify(result));
    return { result, body: JSON.parse(text(result)) as Record<string, unknown> };
  }

  it('lists the three tools and answers them for the caller, as the gateway does', async () => {
    // Bob opens a session first: nothing of his may show up in Alice's diagnostics.
    const bob = await connect(BOB);
    const bobWho = await bob.client.callTool({ name: 'gatehouse_whoami', arguments: {} });
    expect(bobWho.structuredContent).toMatchObject({
      subject: BOB,
      session: { idPrefix: bob.sessionId.slice(0, 8) },
    });
    forbidden.push(BOB, bob.sessionId, bob.sessionId.slice(0, 8));

    const older = await connect(ALICE);
    const alice = await connect(ALICE);
    const names = (await alice.client.listTools()).tools.map((tool) => tool.name);
    expect(names.filter((name) => name.startsWith('gatehouse_')).sort()).toEqual(DIAGNOSTIC_TOOLS);
    expect(names).toContain('whoami');

    const { body: who } = await call(alice.client, 'gatehouse_whoami');
    expect(who).toMatchObject({
      authScheme: 'Bearer',
      issuer: gatehouse.gateway.urls.issuer,
      subject: ALICE,
      email: `${ALICE}@example.com`,
      scopes: ['notes'],
      verifier: 'gatehouse',
      // The token was verified when the client initialized; this request was answered from the cache.
      verificationCache: 'hit',
      session: { idPrefix: alice.sessionId.slice(0, 8), protocol: '2025 session' },
      // Library mode caches brokered credentials per user: described, never shown.
      brokeredCredentials: { cached: true },
    });

    const other = await token(ALICE);
    const cachedBefore = gatehouse.gateway.verification.stats().size;
    const { body: valid } = await call(alice.client, 'gatehouse_validate_token', { token: other });
    expect(valid).toMatchObject({ valid: true, verifier: 'gatehouse', claims: { sub: ALICE } });
    expect(gatehouse.gateway.verification.stats().size).toBe(cachedBefore);
    const now = Math.floor(Date.now() / 1000);
    const expired = await hsToken({ iss: HS_ISSUER, aud: 'authenticated', sub: ALICE, exp: now - 600 });
    const forged = await hsToken(
      { iss: HS_ISSUER, aud: 'authenticated', sub: ALICE, exp: now + 600 },
      'not-the-project-secret-but-long-enough-to-sign',
    );
    forbidden.push(expired, forged);
    expect((await call(alice.client, 'gatehouse_validate_token', { token: expired })).body).toMatchObject({
      valid: false,
      reason: 'token_expired',
    });
    expect((await call(alice.client, 'gatehouse_validate_token', { token: forged })).body).toMatchObject({
      valid: false,
      reason: 'bad_signature',
    });
    const missing = await alice.client.callTool({ name: 'gatehouse_validate_token', arguments: {} });
    outputs.push(JSON.stringify(missing));
    expect(missing.isError).toBe(true);

    const { body: sessions } = await call(alice.client, 'gatehouse_sessions');
    expect(sessions.subject).toBe(ALICE);
    const listed = sessions.sessions as Array<Record<string, unknown>>;
    expect(listed).toHaveLength(2);
    expect(listed).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          idPrefix: older.sessionId.slice(0, 8),
          kind: 'streamable-http',
          current: false,
        }),
        expect.objectContaining({
          idPrefix: alice.sessionId.slice(0, 8),
          kind: 'streamable-http',
          current: true,
        }),
      ]),
    );
    expect(sessions.verificationCache).toMatchObject({ hits: expect.any(Number), size: expect.any(Number) });
    expect(outputs.join('\n')).not.toContain(alice.sessionId);
  });

  it('refuses a diagnostics call outside an authenticated request context', async () => {
    const server = new McpServer({ name: 'no-gatehouse', version: '1.0.0' });
    gatehouse.registerDiagnosticsTools(server);
    const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
    await server.connect(serverSide);
    const client = new Client({ name: 'in-memory', version: '1.0.0' });
    await client.connect(clientSide);
    clients.push(client);
    const result = await client.callTool({ name: 'gatehouse_whoami', arguments: {} });
    expect(result.isError).toBe(true);
    expect(text(result)).not.toContain('authScheme');
  });

  it('adds nothing to a server that did not ask', async () => {
    const { client } = await connect(ALICE, plainUrl);
    const names = (await client.listTools()).tools.map((tool) => tool.name);
    expect(names).toEqual(['whoami']);
  });

  it("never reveals a token, a secret or another user's data", () => {
    expect(outputs.length).toBe(6);
    expect(secrets.size).toBeGreaterThanOrEqual(2);
    const all = outputs.join('\n');
    for (const value of forbidden) expect(all).not.toContain(value);
  });
});
