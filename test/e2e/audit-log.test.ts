import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configSchema } from '../../src/config/schema.js';
import { openStores } from '../../src/stores/open.js';
import type { AuditEntry } from '../../src/stores/ports.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { postMcp } from '../helpers/mcp-http.js';
import { authorizeUrl, pkce, signIn } from '../helpers/oauth.js';

const PASSWORD = 'correct horse battery staple';
const REDIRECT = 'http://127.0.0.1:53682/callback';

/** An HTTP exchange as the client saw it: what was asked, and the request id the gateway answered with. */
interface Seen {
  readonly method: string;
  readonly path: string;
  readonly status: number;
  readonly requestId: string | null;
  /** The JSON-RPC method of an MCP POST. */
  readonly rpc?: string;
  readonly startedAt: number;
  readonly endedAt: number;
}

function recorder() {
  const seen: Seen[] = [];
  const fetchLike = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const startedAt = Date.now();
    const response = await fetch(input, init);
    const url = new URL(input instanceof Request ? input.url : String(input));
    let rpc: string | undefined;
    if (typeof init?.body === 'string' && init.body.startsWith('{')) {
      rpc = (JSON.parse(init.body) as { method?: string }).method;
    }
    seen.push({
      method: init?.method ?? 'GET',
      path: url.pathname,
      status: response.status,
      requestId: response.headers.get('x-request-id'),
      ...(rpc !== undefined && { rpc }),
      startedAt,
      endedAt: Date.now(),
    });
    return response;
  };
  return { fetch: fetchLike, seen };
}

describe('the stored audit log (SQLite): what happened, when, to whom, from where, in which request', () => {
  let gw: TestGateway;
  let dataDir: string;
  let entries: AuditEntry[];
  const traffic = recorder();
  let aliceId: string;
  let clientId: string;
  let sessionId: string | undefined;
  let startedAt: number;
  let endedAt: number;

  const one = (predicate: (entry: AuditEntry) => boolean) => {
    const found = entries.filter(predicate);
    expect(found, JSON.stringify(entries.map((e) => e.type))).toHaveLength(1);
    return found[0] as AuditEntry;
  };
  const exchange = (predicate: (seen: Seen) => boolean) => {
    const found = traffic.seen.filter(predicate);
    expect(found).toHaveLength(1);
    return found[0] as Seen;
  };

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'gatehouse-audit-'));
    gw = await startTestGateway({ dataDir, store: { kind: 'sqlite' } });
    const base = gw.gateway.urls.publicUrl;
    const alice = await gw.gateway.authorizationServer?.accounts?.add({
      username: 'alice',
      password: PASSWORD,
    });
    aliceId = alice?.id as string;
    startedAt = Date.now();

    const registered = await traffic.fetch(`${base}/oauth/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        client_name: 'Audit test',
        redirect_uris: [REDIRECT],
        grant_types: ['authorization_code', 'refresh_token'],
        token_endpoint_auth_method: 'none',
      }),
    });
    clientId = ((await registered.json()) as { client_id: string }).client_id;

    const { verifier, challenge } = pkce();
    const signedIn = await signIn(
      authorizeUrl(base, { clientId, redirectUri: REDIRECT, challenge, resource: gw.gateway.urls.resource }),
      { username: 'alice', password: PASSWORD, fetch: traffic.fetch as typeof fetch },
    );
    const code = signedIn.callback.searchParams.get('code') as string;
    const tokenResponse = await traffic.fetch(`${base}/oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'authorization_code',
        client_id: clientId,
        code,
        code_verifier: verifier,
        redirect_uri: REDIRECT,
      }).toString(),
    });
    expect(tokenResponse.status).toBe(200);
    const { access_token: accessToken } = (await tokenResponse.json()) as { access_token: string };

    const client = new Client({ name: 'audit-test', version: '1.0.0' });
    const transport = new StreamableHTTPClientTransport(gw.mcpUrl, {
      authProvider: { token: async () => accessToken },
      fetch: traffic.fetch,
    });
    await client.connect(transport);
    sessionId = transport.sessionId;
    await client.callTool({ name: 'notes_add', arguments: { text: 'audited' } });

    const refused = await postMcp(gw.mcpUrl, 'forged.token.value', { jsonrpc: '2.0', id: 9, method: 'ping' });
    traffic.seen.push({
      method: 'POST',
      path: gw.mcpUrl.pathname,
      status: refused.status,
      requestId: refused.headers.get('x-request-id'),
      rpc: 'refused-ping',
      startedAt: Date.now(),
      endedAt: Date.now(),
    });
    endedAt = Date.now();

    expect(await gw.gateway.audit?.flush()).toBe(true);
    entries = await gw.gateway.stores.audit.query({ order: 'asc', limit: 1000 });
  });
  let closed = false;
  afterAll(async () => {
    if (!closed) await gw?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('records the sign-in with its time, user, address and the request id of the login answer', () => {
    const login = one((entry) => entry.type === 'login');
    expect(login).toMatchObject({ outcome: 'success', subject: aliceId, ip: '127.0.0.1' });
    expect(login.principal).toBe(`local#${aliceId}`);
    const post = exchange((seen) => seen.method === 'POST' && seen.requestId === login.requestId);
    expect(post.path).toMatch(/^\/oauth\//);
    expect(login.at).toBeGreaterThanOrEqual(post.startedAt);
    expect(login.at).toBeLessThanOrEqual(post.endedAt);
    expect(login.id.slice(0, 13)).toBe(String(login.at).padStart(13, '0'));
  });

  it('records the token issued to the client, in the token request', () => {
    const issued = one((entry) => entry.type === 'oauth.token.issued');
    const post = exchange((seen) => seen.path === '/oauth/token');
    expect(issued).toMatchObject({
      outcome: 'success',
      subject: aliceId,
      clientId,
      ip: '127.0.0.1',
      requestId: post.requestId,
    });
    expect(issued.at).toBeGreaterThanOrEqual(post.startedAt);
    expect(issued.at).toBeLessThanOrEqual(post.endedAt);
    expect(issued.event).toMatchObject({ type: 'oauth.token.issued', clientId });
    expect(JSON.stringify(entries)).not.toMatch(/access_token|refresh_token|code_verifier/);
  });

  it('records the session and the tool call with the request ids of the MCP requests', () => {
    const initialize = exchange((seen) => seen.rpc === 'initialize');
    const opened = one((entry) => entry.type === 'session.opened');
    expect(opened).toMatchObject({ requestId: initialize.requestId, subject: aliceId, ip: '127.0.0.1' });
    expect(opened.event).toMatchObject({ sessionId });

    const call = exchange((seen) => seen.rpc === 'tools/call');
    const called = one((entry) => entry.type === 'tool.called');
    expect(called).toMatchObject({
      outcome: 'success',
      requestId: call.requestId,
      subject: aliceId,
      ip: '127.0.0.1',
    });
    expect(called.event).toMatchObject({ tool: 'notes_add', sessionId });
    expect(called.at).toBeGreaterThanOrEqual(startedAt);
    expect(called.at).toBeLessThanOrEqual(endedAt);
  });

  it('records the refused request with its address and the request id of the 401', () => {
    const refused = exchange((seen) => seen.rpc === 'refused-ping');
    expect(refused.status).toBe(401);
    const entry = one((e) => e.type === 'guard.refused');
    expect(entry).toMatchObject({ requestId: refused.requestId, ip: '127.0.0.1' });
    expect(entry.subject).toBeUndefined();
    expect(entry.event).toMatchObject({ error: 'invalid_token', status: 401 });
  });

  it('answers filters and orders: by subject, by type prefix, newest first', async () => {
    const mine = await gw.gateway.stores.audit.query({ subject: aliceId, order: 'asc', limit: 100 });
    expect(mine.length).toBeGreaterThanOrEqual(4);
    expect(mine.every((entry) => entry.subject === aliceId)).toBe(true);
    const tokens = await gw.gateway.stores.audit.query({ type: 'oauth.token.', order: 'desc', limit: 100 });
    expect(tokens.map((entry) => entry.type)).toEqual(['oauth.token.issued']);
    const newest = await gw.gateway.stores.audit.query({ order: 'desc', limit: 1 });
    expect(newest[0]?.id).toBe(entries.at(-1)?.id);
  });

  it('close() writes what is still queued before the store closes', async () => {
    // Reported just before shutting down: still in the queue when close() begins.
    gw.gateway.events.emit({ type: 'session.ended', sessionId: 'last-words', reason: 'shutdown' });
    closed = true;
    await gw.close();
    const stores = await openStores(configSchema.parse({ dataDir, store: { kind: 'sqlite' } }));
    try {
      const after = await stores.audit.query({ type: 'session.ended', order: 'asc', limit: 10 });
      expect(after.map((entry) => entry.event.sessionId)).toContain('last-words');
    } finally {
      await stores.close();
    }
  });
});
