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

  // req: MCP-AUTH-PRM-DISCOVERY, MCP-AUTH-PRM-AUTHORIZATION-SERVERS, RFC9728-3.1-WELL-KNOWN-PATH, RFC9728-3.3-RESOURCE-IDENTICAL
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

  // req: MCP-AUTH-WWW-AUTHENTICATE-RESOURCE-METADATA, RFC9728-5.1-RESOURCE-METADATA-PARAMETER, RFC6750-3-NO-ERROR-WITHOUT-CREDENTIALS
  it('answers a request without a token with 401 and a resource_metadata challenge', async () => {
    const response = await post(INIT, {});
    expect(response.status).toBe(401);
    const challenge = response.headers.get('www-authenticate') ?? '';
    expect(challenge).toMatch(/^Bearer /);
    expect(challenge).toContain(`resource_metadata="${gw.gateway.urls.resourceMetadataUrl}"`);
    expect(challenge).not.toContain('error=');
  });

  // req: MCP-SECURITY-SESSION-BINDING, MCP-SECURITY-SESSION-NOT-AUTH
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

  // req: MCP-TRANSPORT-SESSION-ID
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

  // req: MCP-TRANSPORT-SESSION-404
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

  // req: MCP-TRANSPORT-SESSION-REQUIRED-400
  it('requires a session id for non-initialize 2025 requests (400)', async () => {
    const token = await gw.token('hank');
    const response = await post(
      { jsonrpc: '2.0', id: 2, method: 'tools/list' },
      { authorization: `Bearer ${token}` },
    );
    expect(response.status).toBe(400);
  });

  // req: MCP-AUTH-401-INVALID-TOKEN, MCP-AUTH-AUDIENCE-VALIDATION, MCP-AUTH-400-MALFORMED, RFC6750-3.1-INVALID-TOKEN, RFC6750-3.1-INVALID-REQUEST
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
    // RFC 6750 §3: a request without a usable token gets the challenge too, naming the error.
    expect(malformedHeader.headers.get('www-authenticate')).toContain('error="invalid_request"');
    expect(gw.gateway.endpoint.liveRelays()).toBe(relaysBefore);
  });

  // req: MCP-TRANSPORT-POST-ERROR-STATUS
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

  // req: MCP-TRANSPORT-PROTOCOL-VERSION
  it('refuses an unsupported MCP-Protocol-Version on a session with 400', async () => {
    const { token, sessionId } = await openSession('jack');
    const response = await post(
      { jsonrpc: '2.0', id: 3, method: 'tools/list' },
      { authorization: `Bearer ${token}`, 'mcp-session-id': sessionId, 'mcp-protocol-version': '1999-01-01' },
    );
    expect(response.status).toBe(400);
  });

  // req: MCP-TRANSPORT-ORIGIN
  it('refuses a foreign browser Origin with 403 and allows loopback origins', async () => {
    const token = await gw.token('kim');
    const foreign = await post(INIT, { authorization: `Bearer ${token}`, origin: 'https://evil.example' });
    expect(foreign.status).toBe(403);
    const local = await post(INIT, { authorization: `Bearer ${token}`, origin: 'http://localhost:6274' });
    expect(local.status).toBe(200);
    await local.text();
  });

  // req: MCP-TRANSPORT-GET-DELETE-405
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

  // req: MCP-SECURITY-SESSION-NOT-AUTH
  it('authenticates every request of a session: its id without a token is 401, not a pass', async () => {
    const { token, sessionId } = await openSession('mona');
    const list = { jsonrpc: '2.0', id: 4, method: 'tools/list' };
    const anonymous = await post(list, { 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-11-25' });
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get('www-authenticate')).toContain('resource_metadata=');
    await anonymous.text();
    const own = await post(list, {
      authorization: `Bearer ${token}`,
      'mcp-session-id': sessionId,
      'mcp-protocol-version': '2025-11-25',
    });
    expect(own.status).toBe(200);
    await own.text();
  });

  // req: MCP-TRANSPORT-NOTIFICATION-202
  it('accepts a client notification with 202 and no body', async () => {
    const { token, sessionId } = await openSession('nina');
    const response = await post(
      { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 99 } },
      { authorization: `Bearer ${token}`, 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-11-25' },
    );
    expect(response.status).toBe(202);
    expect(await response.text()).toBe('');
  });
});

describe('gateway HTTP surface with required scopes', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startTestGateway({ store: { kind: 'memory' }, auth: { requiredScopes: ['mcp'] } });
  });
  afterAll(async () => {
    await gw?.close();
  });

  const post = (headers: Record<string, string>) =>
    fetch(gw.mcpUrl, {
      method: 'POST',
      headers: { accept: ACCEPT, 'content-type': 'application/json', ...headers },
      body: JSON.stringify(INIT),
    });

  // req: MCP-AUTH-WWW-AUTHENTICATE-SCOPE
  it('names the required scope in the 401 challenge', async () => {
    const response = await post({});
    expect(response.status).toBe(401);
    const challenge = response.headers.get('www-authenticate') ?? '';
    expect(challenge).toContain('scope="mcp"');
    expect(challenge).toContain(`resource_metadata="${gw.gateway.urls.resourceMetadataUrl}"`);
    await response.text();
  });

  // req: MCP-AUTH-403-INSUFFICIENT-SCOPE, RFC6750-3.1-INSUFFICIENT-SCOPE
  it('answers a token without the required scope with 403 insufficient_scope, naming the scope', async () => {
    const refused = await post({ authorization: `Bearer ${await gw.token('olga', { scope: 'other' })}` });
    expect(refused.status).toBe(403);
    const challenge = refused.headers.get('www-authenticate') ?? '';
    expect(challenge).toMatch(/^Bearer /);
    expect(challenge).toContain('error="insufficient_scope"');
    expect(challenge).toMatch(/scope="[^"]*\bmcp\b[^"]*"/);
    expect(challenge).toContain(`resource_metadata="${gw.gateway.urls.resourceMetadataUrl}"`);
    expect(refused.headers.get('mcp-session-id')).toBeNull();
    await refused.text();
    const scoped = await post({ authorization: `Bearer ${await gw.token('olga', { scope: 'mcp' })}` });
    expect(scoped.status).toBe(200);
    await scoped.text();
  });
});
