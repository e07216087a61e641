import { createServer, type Server } from 'node:net';
import { fileURLToPath } from 'node:url';
import { serve } from '@hono/node-server';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNotesHttpApp } from '../../src/demo/http.js';
import { fetchFrom } from '../helpers/from-address.js';
import type { TestGateway } from '../helpers/gateway.js';
import { freePort } from '../helpers/late-server.js';
import { signIn } from '../helpers/oauth.js';
import { connectRaw } from '../helpers/websocket.js';
import {
  callTool,
  challengeError,
  type EventLog,
  INIT,
  legacyPost,
  mcpRequest,
  openLegacyStream,
  openSession,
  rpcOf,
  sessionsOf,
  startRecorded,
  statelessRequest,
  toolText,
} from './helpers/harness.js';
import {
  addAccount,
  authorizeUrl,
  oauthError,
  oauthPost,
  pkce,
  registerClient,
  signInAndRedeem,
} from './helpers/oauth-client.js';

/**
 * The MCP specification's security best practices, attacked for real: the confused deputy (consent
 * reused for another client), token passthrough (the client's token reaching an upstream), session
 * hijacking (another user's session id), and SSRF (client metadata document URLs aimed inside).
 */

const envDump = fileURLToPath(new URL('./helpers/env-dump-server.ts', import.meta.url));

describe('confused deputy: consent given to one client never authorizes another', () => {
  let gw: TestGateway;
  let log: EventLog;
  beforeAll(async () => {
    ({ gw, log } = await startRecorded({ store: { kind: 'memory' } }));
    await addAccount(gw, 'alice');
  });
  afterAll(async () => {
    await gw?.close();
  });

  // req: MCP-SECURITY-CONFUSED-DEPUTY
  it("a signed-in browser that approved client A is shown the consent page for the attacker's client B", async () => {
    const honest = await signInAndRedeem(gw, { username: 'alice' });
    // Control: the remembered approval of A answers A silently.
    const silentA = await fetch(authorizeUrl(gw, honest.clientId, pkce().challenge, { prompt: 'none' }), {
      redirect: 'manual',
      headers: { cookie: honest.jar.header() },
    });
    expect(new URL(silentA.headers.get('location') ?? 'x:/').searchParams.get('code')).toMatch(/^ghc_/);

    const attacker = await registerClient(gw, {
      client_name: 'Claude',
      redirect_uris: ['https://attacker.example/cb'],
    });
    log.clear();
    const lure = await signIn(
      authorizeUrl(gw, attacker, pkce().challenge, { redirect_uri: 'https://attacker.example/cb' }),
      {
        username: 'alice',
        password: 'unused: the browser is signed in',
        jar: honest.jar,
        stopAt: 'consent',
      },
    );
    expect('kind' in lure && lure.kind).toBe('consent');
    const html = 'html' in lure ? lure.html : '';
    expect(html).toContain('data-testid="redirect-host">attacker.example<');
    expect(html).toMatch(/data-testid="client-badge">Unverified</);
    expect(log.of('oauth.authorize.code_issued')).toEqual([]);

    // Nor does prompt=none hand B a code.
    const silentB = await fetch(
      authorizeUrl(gw, attacker, pkce().challenge, {
        prompt: 'none',
        redirect_uri: 'https://attacker.example/cb',
      }),
      { redirect: 'manual', headers: { cookie: honest.jar.header() } },
    );
    const location = silentB.headers.get('location');
    if (location !== null) {
      expect(new URL(location).searchParams.get('code')).toBeNull();
      expect(new URL(location).searchParams.get('error')).toBe('consent_required');
    } else {
      expect(silentB.status).toBe(400);
    }
    expect(log.of('oauth.authorize.code_issued')).toEqual([]);
  });
});

describe('no token passthrough: upstreams get identity Gatehouse minted, never the client token', () => {
  let gw: TestGateway;
  let upstream: ReturnType<typeof serve>;
  let app: ReturnType<typeof createNotesHttpApp>;
  let upstreamUrl: string;
  const seen: Array<Record<string, string>> = [];

  beforeAll(async () => {
    const gatewayPort = await freePort();
    const upstreamPort = await freePort();
    upstreamUrl = `http://127.0.0.1:${upstreamPort}/mcp`;
    app = createNotesHttpApp({
      jwksUrl: `http://127.0.0.1:${gatewayPort}/.well-known/jwks.json`,
      issuer: `http://127.0.0.1:${gatewayPort}/`,
      audience: upstreamUrl,
    });
    upstream = serve({
      hostname: '127.0.0.1',
      port: upstreamPort,
      fetch: (request: Request) => {
        const headers: Record<string, string> = {};
        request.headers.forEach((value, name) => {
          headers[name] = value;
        });
        seen.push(headers);
        return app.fetch(request);
      },
    });
    ({ gw } = await startRecorded({
      store: { kind: 'memory' },
      server: { port: gatewayPort },
      upstream: { kind: 'http', url: upstreamUrl },
    }));
  });
  afterAll(async () => {
    await gw?.close();
    await app?.close();
    upstream?.close();
  });

  // req: MCP-AUTH-NO-TOKEN-PASSTHROUGH
  it('HTTP upstream, both eras: an ES256 JWT typed JWT for its own audience, and nothing of the client token', async () => {
    const token = await gw.token('alice', { email: 'alice@example.test' });
    seen.length = 0;
    const sessionId = await openSession(gw, token);
    const who = await callTool(gw, token, sessionId, 'whoami');
    expect(JSON.parse(toolText(who.answer))).toMatchObject({ userId: 'alice' });
    const stateless = await mcpRequest(
      gw,
      token,
      statelessRequest('tools/call', { name: 'whoami', arguments: {} }),
    );
    expect(stateless.status).toBe(200);
    expect(JSON.parse(toolText(await rpcOf(stateless)))).toMatchObject({ userId: 'alice' });

    expect(seen.length).toBeGreaterThan(2);
    const [, signature] = [token.split('.')[1], token.split('.')[2]];
    for (const headers of seen) {
      for (const value of Object.values(headers)) {
        expect(value).not.toContain(token);
        expect(value).not.toContain(signature);
      }
      const presented = (headers.authorization ?? '').replace(/^Bearer /, '');
      expect(decodeProtectedHeader(presented)).toMatchObject({ alg: 'ES256', typ: 'JWT' });
      expect(decodeJwt(presented)).toMatchObject({
        aud: upstreamUrl,
        iss: gw.gateway.urls.issuer,
        sub: 'alice',
      });
    }
  });

  // req: RFC8725-3.11-EXPLICIT-TYPING, MCP-AUTH-AUDIENCE-VALIDATION
  it('the identity token an upstream received cannot be replayed at the gateway', async () => {
    const token = await gw.token('bob');
    seen.length = 0;
    const sessionId = await openSession(gw, token);
    await callTool(gw, token, sessionId, 'whoami');
    const stolen = (seen.at(-1)?.authorization ?? '').replace(/^Bearer /, '');
    expect(stolen).not.toBe('');
    const replayed = await mcpRequest(gw, stolen, INIT);
    expect(replayed.status).toBe(401);
    expect(challengeError(replayed)).toBe('invalid_token');
    await replayed.text();
  });
});

describe('no token passthrough to a stdio upstream', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    ({ gw } = await startRecorded({
      store: { kind: 'memory' },
      upstream: { kind: 'stdio', command: process.execPath, args: ['--import', 'tsx', envDump] },
    }));
  });
  afterAll(async () => {
    await gw?.close();
  });

  // req: MCP-AUTH-NO-TOKEN-PASSTHROUGH
  it("a tool's whole environment and argv hold the user's identity but not the client's token", async () => {
    const token = await gw.token('alice', { email: 'alice@example.test' });
    const signature = token.split('.')[2] as string;
    for (const dump of [
      await callTool(gw, token, await openSession(gw, token), 'env'),
      {
        answer: await rpcOf(
          await mcpRequest(gw, token, statelessRequest('tools/call', { name: 'env', arguments: {} })),
        ),
      },
    ]) {
      const text = toolText(dump.answer);
      expect(text).not.toContain(token);
      expect(text).not.toContain(signature);
      const { env } = JSON.parse(text) as { env: Record<string, string> };
      expect(env.GATEHOUSE_USER_ID).toBe('alice');
      expect(env.GATEHOUSE_USER_EMAIL).toBe('alice@example.test');
    }
  });
});

describe("session hijacking: another user's session id selects nothing", () => {
  let gw: TestGateway;
  let log: EventLog;
  beforeAll(async () => {
    ({ gw, log } = await startRecorded({ store: { kind: 'memory' } }));
  });
  afterAll(async () => {
    await gw?.close();
  });

  // req: MCP-SECURITY-SESSION-BINDING, MCP-SECURITY-SESSION-ID-SECURE
  it("Streamable HTTP: POST, GET and DELETE with bob's token on alice's session are 404, like an unknown id", async () => {
    const alice = await gw.token('alice');
    const bob = await gw.token('bob');
    const sessionId = await openSession(gw, alice);
    expect(sessionId).toMatch(/^[A-Za-z0-9_-]{43,}$/); // at least 256 random bits
    await callTool(gw, alice, sessionId, 'notes_add', { text: 'alice secret' });
    log.clear();

    const unknown = await mcpRequest(
      gw,
      bob,
      { jsonrpc: '2.0', id: 5, method: 'tools/call', params: { name: 'notes_list', arguments: {} } },
      { sessionId: `${sessionId.slice(0, -2)}AA` },
    );
    const unknownBody = await rpcOf(unknown);
    for (const method of ['POST', 'GET', 'DELETE']) {
      const hijack = await mcpRequest(
        gw,
        bob,
        { jsonrpc: '2.0', id: 5, method: 'tools/call', params: { name: 'notes_list', arguments: {} } },
        { sessionId, method },
      );
      expect({ method, status: hijack.status }).toEqual({ method, status: 404 });
      const body = await rpcOf(hijack);
      expect(body.error?.data?.code).toBe('ERR_SESSION_NOT_FOUND');
      expect(body.error?.code).toBe(unknownBody.error?.code);
      expect(JSON.stringify(body)).not.toContain('alice');
    }
    expect(unknown.status).toBe(404);
    // Nothing reached alice's upstream on bob's behalf, and her session is untouched.
    expect(log.of('tool.called')).toEqual([]);
    expect(log.of('session.ended')).toEqual([]);
    const mine = await callTool(gw, alice, sessionId, 'notes_list');
    expect(toolText(mine.answer)).toContain('alice secret');
    expect(await sessionsOf(gw, 'bob')).toEqual([]);
  });

  // req: MCP-SECURITY-SESSION-ID-SECURE
  it('a client cannot choose its session id (fixation): initialize with Mcp-Session-Id is refused', async () => {
    const alice = await gw.token('alice');
    const victimId = await openSession(gw, alice);
    const fixed = await mcpRequest(gw, await gw.token('bob'), INIT, { sessionId: victimId });
    expect(fixed.status).toBe(400);
    expect((await rpcOf(fixed)).error?.data?.code).toBe('ERR_BAD_REQUEST');
    expect(await sessionsOf(gw, 'bob')).toEqual([]);
  });

  it("legacy SSE: bob posting to alice's stream is 404 and nothing is forwarded", async () => {
    const alice = await gw.token('alice');
    const bob = await gw.token('bob');
    const stream = await openLegacyStream(gw, alice);
    try {
      log.clear();
      const hijack = await legacyPost(gw, stream.messagesPath, bob, {
        jsonrpc: '2.0',
        id: 1,
        method: 'initialize',
        params: INIT.params,
      });
      expect(hijack.status).toBe(404);
      expect((await rpcOf(hijack)).error?.data?.code).toBe('ERR_SESSION_NOT_FOUND');
      // Alice's own request is the first thing her stream carries: bob's never reached the upstream.
      expect((await legacyPost(gw, stream.messagesPath, alice, { ...INIT, id: 42 })).status).toBe(202);
      const answer = JSON.parse((await stream.next())?.data ?? '{}') as { id?: number };
      expect(answer.id).toBe(42);
    } finally {
      await stream.close();
    }
  });

  it("a WebSocket's session id selects nothing on the MCP endpoint, even for its own user", async () => {
    const alice = await gw.token('alice');
    const socket = await connectRaw(gw, { token: alice });
    const ack = await socket.hello(alice);
    const hijack = await mcpRequest(
      gw,
      alice,
      { jsonrpc: '2.0', id: 1, method: 'ping' },
      {
        sessionId: String(ack.session_id),
      },
    );
    expect(hijack.status).toBe(404);
    await hijack.text();
    await socket.close();
  });
});

describe('SSRF: client metadata document URLs aimed at internal addresses are never fetched', () => {
  let gw: TestGateway;
  let log: EventLog;
  let trap: Server;
  let port = 0;
  let connections = 0;
  beforeAll(async () => {
    ({ gw, log } = await startRecorded({ store: { kind: 'memory' } }));
    trap = createServer((socket) => {
      connections += 1;
      socket.destroy();
    });
    await new Promise<void>((resolve) => trap.listen(0, '127.0.0.1', () => resolve()));
    port = (trap.address() as { port: number }).port;
  });
  afterAll(async () => {
    await gw?.close();
    await new Promise((resolve) => trap?.close(resolve));
  });

  // req: MCP-SECURITY-SSRF
  it('loopback, private, link-local (cloud metadata) and encoded-loopback client_ids: error page, no connection', async () => {
    const targets = [
      `https://127.0.0.1:${port}/client.json`,
      `https://localhost:${port}/client.json`,
      `https://[::1]:${port}/client.json`,
      `https://[::ffff:127.0.0.1]:${port}/client.json`,
      `https://2130706433:${port}/client.json`,
      `https://0x7f.0.0.1:${port}/client.json`,
      'https://169.254.169.254/latest/meta-data/iam/security-credentials/',
      'https://10.0.0.1/client.json',
      'https://192.168.1.1/client.json',
      'https://[fd00::1]/client.json',
    ];
    // Each target from its own address: the per-address limit on metadata fetches is not what is tested.
    for (const [index, clientId] of targets.entries()) {
      const from = fetchFrom(`127.0.1.${index + 1}`);
      log.clear();
      const response = await from(authorizeUrl(gw, clientId, pkce().challenge), { redirect: 'manual' });
      expect({ clientId, status: response.status, location: response.headers.get('location') }).toEqual({
        clientId,
        status: 400,
        location: null,
      });
      await response.text();
      expect(log.of('oauth.authorize')).toMatchObject([{ outcome: 'failure', error: 'invalid_client' }]);
      expect(log.of('oauth.authorize')[0]?.reason).toBe('cimd_forbidden_address');
      // The token endpoint resolves client ids too: same refusal, no request.
      const token = await oauthPost(
        gw,
        { grant_type: 'authorization_code', client_id: clientId, code: 'x', code_verifier: 'y' },
        { fetch: from },
      );
      expect(token.status).toBe(401);
      expect(await oauthError(token)).toBe('invalid_client');
    }
    expect(connections).toBe(0);
  });
});
