import { generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { ACCEPT, INIT, messages } from '../helpers/mcp-http.js';

describe('gateway HTTP surface (2025 era sessions, guard, bad input)', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startTestGateway({
      store: { kind: 'memory' },
      sessions: { maxPerUser: 3, onLimit: 'refuse' },
    });
  });
  afterAll(async () => {
    await gw?.close();
  });

  function post(body: unknown, headers: Record<string, string>): Promise<Response> {
    return fetch(gw.mcpUrl, {
      method: 'POST',
      headers: { accept: ACCEPT, 'content-type': 'application/json', ...headers },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
  }

  async function openSession(user: string): Promise<{ token: string; sessionId: string }> {
    const token = await gw.token(user);
    const response = await post(INIT, { authorization: `Bearer ${token}` });
    expect(response.status).toBe(200);
    const sessionId = response.headers.get('mcp-session-id');
    expect(sessionId).toMatch(/^[A-Za-z0-9_-]{43}$/);
    await messages(response);
    await post(
      { jsonrpc: '2.0', method: 'notifications/initialized' },
      {
        authorization: `Bearer ${token}`,
        'mcp-session-id': sessionId as string,
      },
    );
    return { token, sessionId: sessionId as string };
  }

  async function callTool(
    token: string,
    sessionId: string,
    name: string,
    args: Record<string, unknown> = {},
  ) {
    const response = await post(
      { jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name, arguments: args } },
      { authorization: `Bearer ${token}`, 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-11-25' },
    );
    return { response, messages: await messages(response) };
  }

  it('serves protected-resource metadata in the path form and the root form', async () => {
    for (const path of [
      '/.well-known/oauth-protected-resource/mcp',
      '/.well-known/oauth-protected-resource',
    ]) {
      const response = await fetch(new URL(path, gw.mcpUrl));
      expect(response.status).toBe(200);
      const metadata = (await response.json()) as Record<string, unknown>;
      expect(metadata.resource).toBe(gw.mcpUrl.href);
      expect(metadata.authorization_servers).toEqual([gw.gateway.urls.issuer]);
    }
  });

  it('answers a request without a token with 401 and a resource_metadata challenge', async () => {
    const response = await post(INIT, {});
    expect(response.status).toBe(401);
    const challenge = response.headers.get('www-authenticate') ?? '';
    expect(challenge).toMatch(/^Bearer /);
    expect(challenge).toContain(`resource_metadata="${gw.gateway.urls.resourceMetadataUrl}"`);
    expect(challenge).not.toContain('error=');
  });

  it("refuses alice's session id with bob's token as if it did not exist (404)", async () => {
    const alice = await openSession('alice');
    const bobToken = await gw.token('bob');
    const stolen = await callTool(bobToken, alice.sessionId, 'whoami');
    expect(stolen.response.status).toBe(404);
    const unknown = await callTool(bobToken, 'x'.repeat(43), 'whoami');
    expect(unknown.response.status).toBe(404);
    expect(await unknown.response.headers.get('content-type')).toContain('application/json');
    // alice's own request still works: the attempt changed nothing.
    const own = await callTool(alice.token, alice.sessionId, 'whoami');
    expect(own.response.status).toBe(200);
    expect(JSON.stringify(own.messages)).toContain('"userId\\":\\"alice');
  });

  it('gives every session its own upstream process', async () => {
    const one = await openSession('erin');
    const two = await openSession('erin');
    const first = await callTool(one.token, one.sessionId, 'whoami');
    const second = await callTool(two.token, two.sessionId, 'whoami');
    const who = (m: Array<Record<string, unknown>>) => {
      const result = m[0]?.result as { content: Array<{ text: string }> } | undefined;
      return JSON.parse(result?.content[0]?.text ?? 'null');
    };
    expect(who(first.messages).sessionId).toBe(one.sessionId);
    expect(who(second.messages).sessionId).toBe(two.sessionId);
    expect(who(first.messages).pid).not.toBe(who(second.messages).pid);
  });

  it('ends a session on DELETE; the id is then unknown', async () => {
    const { token, sessionId } = await openSession('frank');
    const deleted = await fetch(gw.mcpUrl, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${token}`, 'mcp-session-id': sessionId },
    });
    expect(deleted.status).toBe(200);
    expect((await callTool(token, sessionId, 'whoami')).response.status).toBe(404);
  });

  it('onLimit refuse: caps live sessions per user with 429 and a stable code', async () => {
    const token = await gw.token('gina');
    for (let i = 0; i < 3; i++) {
      const ok = await post(INIT, { authorization: `Bearer ${token}` });
      expect(ok.status).toBe(200);
      await ok.text();
    }
    const refused = await post(INIT, { authorization: `Bearer ${token}` });
    expect(refused.status).toBe(429);
    expect(refused.headers.get('retry-after')).not.toBeNull();
    expect(((await refused.json()) as { error: { data: { code: string } } }).error.data.code).toBe(
      'ERR_SESSION_LIMIT',
    );
  });

  it('requires a session id for non-initialize 2025 requests (400)', async () => {
    const token = await gw.token('hank');
    const response = await post(
      { jsonrpc: '2.0', id: 2, method: 'tools/list' },
      { authorization: `Bearer ${token}` },
    );
    expect(response.status).toBe(400);
  });

  it('rejects bad tokens with 401 invalid_token, without reaching the upstream', async () => {
    const foreign = await generateKeyPair('ES256');
    const now = Math.floor(Date.now() / 1000);
    const base = { sub: 'mallory', aud: gw.gateway.urls.resource, iss: gw.gateway.urls.issuer };
    const unsigned = `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'at+jwt' })).toString('base64url')}.${Buffer.from(
      JSON.stringify({ ...base, exp: now + 600 }),
    ).toString('base64url')}.`;
    const forged = await new SignJWT({ ...base })
      .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: gw.gateway.keys.describe().kid })
      .setExpirationTime(now + 600)
      .sign(foreign.privateKey);
    const hsConfused = await new SignJWT({ ...base })
      .setProtectedHeader({ alg: 'HS256', typ: 'at+jwt', kid: gw.gateway.keys.describe().kid })
      .setExpirationTime(now + 600)
      .sign(new TextEncoder().encode(JSON.stringify(gw.gateway.keys.publicJwks().keys[0])));
    const own = gw.gateway.keys.signingKey();
    const signOwn = (claims: Record<string, unknown>, exp: number) =>
      new SignJWT(claims)
        .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: own.kid })
        .setIssuedAt(now - 1200)
        .setExpirationTime(exp)
        .sign(own.privateKey);
    const expired = await signOwn(base, now - 600);
    const wrongIssuer = await signOwn({ ...base, iss: 'https://not-gatehouse.example' }, now + 600);
    const unknownKid = await new SignJWT({ ...base })
      .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: 'no-such-key' })
      .setExpirationTime(now + 600)
      .sign(foreign.privateKey);
    const wrongAudience = await gw.gateway.signer.sign({
      subject: 'mallory',
      audience: 'https://elsewhere.example/mcp',
      expiresInSeconds: 600,
    });
    const cases: Record<string, string> = {
      garbage: 'not-a-jwt',
      unsigned,
      forged,
      hsConfused,
      wrongAudience,
      expired,
      wrongIssuer,
      unknownKid,
    };
    const relaysBefore = gw.gateway.endpoint.liveRelays();
    for (const [name, token] of Object.entries(cases)) {
      const response = await post(INIT, { authorization: `Bearer ${token}` });
      expect(response.status, name).toBe(401);
      expect(response.headers.get('www-authenticate'), name).toContain('error="invalid_token"');
      expect(response.headers.get('mcp-session-id'), name).toBeNull();
    }
    const malformedHeader = await post(INIT, { authorization: 'Bearer a b c' });
    expect(malformedHeader.status).toBe(400);
    expect(gw.gateway.endpoint.liveRelays()).toBe(relaysBefore);
  });

  it('answers an oversized body with 413 and a non-JSON body with a JSON-RPC parse error', async () => {
    const token = await gw.token('ivy');
    const big = await post(JSON.stringify({ pad: 'x'.repeat(2 * 1024 * 1024) }), {
      authorization: `Bearer ${token}`,
    });
    expect(big.status).toBe(413);
    const garbage = await post('{not json', { authorization: `Bearer ${token}` });
    expect(garbage.status).toBe(400);
    expect(((await garbage.json()) as { error: { code: number } }).error.code).toBe(-32700);
    const wrongType = await fetch(gw.mcpUrl, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, accept: ACCEPT, 'content-type': 'text/plain' },
      body: '{}',
    });
    expect(wrongType.status).toBe(415);
  });

  it('refuses an unsupported MCP-Protocol-Version on a session with 400', async () => {
    const { token, sessionId } = await openSession('jack');
    const response = await post(
      { jsonrpc: '2.0', id: 3, method: 'tools/list' },
      { authorization: `Bearer ${token}`, 'mcp-session-id': sessionId, 'mcp-protocol-version': '1999-01-01' },
    );
    expect(response.status).toBe(400);
  });

  it('refuses a foreign browser Origin with 403 and allows loopback origins', async () => {
    const token = await gw.token('kim');
    const foreign = await post(INIT, { authorization: `Bearer ${token}`, origin: 'https://evil.example' });
    expect(foreign.status).toBe(403);
    const local = await post(INIT, { authorization: `Bearer ${token}`, origin: 'http://localhost:6274' });
    expect(local.status).toBe(200);
    await local.text();
  });

  it('answers GET and DELETE without a session with 405', async () => {
    const token = await gw.token('lee');
    for (const method of ['GET', 'DELETE']) {
      const response = await fetch(gw.mcpUrl, {
        method,
        headers: { authorization: `Bearer ${token}`, accept: ACCEPT },
      });
      expect(response.status, method).toBe(405);
    }
  });
});
