import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import {
  Client,
  type ClientOptions,
  type Progress,
  SdkErrorCode,
  SdkHttpError,
  StreamableHTTPClientTransport,
} from '@modelcontextprotocol/client';
import { type CryptoKey, exportJWK, generateKeyPair, type JWK, SignJWT } from 'jose';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createNotesHttpApp, type NotesHttpApp } from '../../../src/demo/http.js';
import {
  answerElicitation,
  CLIENT_INFO,
  collectLogs,
  errorCodeOf,
  LOG_LEVEL_META_KEY,
  MODERN,
  textOf,
} from './support.js';

const ISSUER = 'https://gatehouse.test';
const KID = 'gatehouse-key-1';

type Era = 'legacy' | 'modern';

interface Claims {
  sub?: string;
  email?: string;
  scope?: string;
  sid?: string;
}

let signingKey: CryptoKey;
let jwksServer: Server;
let demoServer: ReturnType<typeof serve>;
let app: NotesHttpApp;
let mcpUrl: URL;

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

async function mint(
  claims: Claims,
  options: {
    key?: CryptoKey;
    kid?: string;
    audience?: string;
    issuer?: string;
    expiresIn?: string | number;
  } = {},
): Promise<string> {
  const jwt = new SignJWT({ ...claims })
    .setProtectedHeader({ alg: 'ES256', kid: options.kid ?? KID, typ: 'JWT' })
    .setIssuer(options.issuer ?? ISSUER)
    .setAudience(options.audience ?? mcpUrl.href)
    .setIssuedAt()
    .setExpirationTime(options.expiresIn ?? '5m');
  if (claims.sub !== undefined) jwt.setSubject(claims.sub);
  return jwt.sign(options.key ?? signingKey);
}

const aliceClaims: Claims = {
  sub: 'user-alice',
  email: 'alice@example.com',
  scope: 'notes:read notes:write',
  sid: 'gh-sess-1',
};
const bobClaims: Claims = { sub: 'user-bob', email: 'bob@example.com', scope: 'notes:read' };

beforeAll(async () => {
  const pair = await generateKeyPair('ES256');
  signingKey = pair.privateKey;
  const publicJwk: JWK = { ...(await exportJWK(pair.publicKey)), kid: KID, alg: 'ES256', use: 'sig' };
  jwksServer = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ keys: [publicJwk] }));
  });
  const jwksPort = await listen(jwksServer);

  // The audience is the demo's own URL, which is known only once the port is: bind first, then build.
  let ready: NotesHttpApp | undefined;
  const port = await new Promise<number>((resolve) => {
    demoServer = serve(
      { fetch: (request: Request) => (ready as NotesHttpApp).fetch(request), hostname: '127.0.0.1', port: 0 },
      (info) => resolve(info.port),
    );
  });
  mcpUrl = new URL(`http://127.0.0.1:${port}/mcp`);
  app = createNotesHttpApp({
    jwksUrl: `http://127.0.0.1:${jwksPort}/jwks.json`,
    issuer: ISSUER,
    audience: mcpUrl.href,
  });
  ready = app;
});

afterAll(async () => {
  await app?.close();
  await new Promise((resolve) => demoServer?.close(resolve));
  await new Promise((resolve) => jwksServer?.close(resolve));
});

const initializeBody = JSON.stringify({
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: CLIENT_INFO },
});

function post(headers: Record<string, string>, body: string = initializeBody): Promise<Response> {
  return fetch(mcpUrl, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      ...headers,
    },
    body,
  });
}

describe('demo notes server over HTTP', () => {
  const clients: Client[] = [];

  afterEach(async () => {
    await Promise.allSettled(clients.splice(0).map((client) => client.close()));
  });

  async function connect(claims: Claims, options: { era?: Era; elicitation?: boolean } = {}) {
    const token = await mint(claims);
    const clientOptions: ClientOptions = {
      ...(options.era === 'modern' && MODERN),
      ...(options.elicitation === true && { capabilities: { elicitation: { form: {} } } }),
    };
    const client = new Client(CLIENT_INFO, clientOptions);
    const transport = new StreamableHTTPClientTransport(mcpUrl, {
      requestInit: { headers: { Authorization: `Bearer ${token}` } },
    });
    clients.push(client);
    await client.connect(transport);
    expect(client.getProtocolEra()).toBe(options.era ?? 'legacy');
    return { client, transport, token };
  }

  describe('bearer token', () => {
    it('answers 401 with a bare Bearer challenge when no token is sent', async () => {
      const response = await post({});
      expect(response.status).toBe(401);
      const challenge = response.headers.get('www-authenticate') ?? '';
      expect(challenge).toMatch(/^Bearer /);
      expect(challenge).not.toContain('error=');
    });

    it('accepts a valid token (control for the rejections below)', async () => {
      const response = await post({ authorization: `Bearer ${await mint(aliceClaims)}` });
      expect(response.status).toBe(200);
      await response.body?.cancel();
    });

    const attacks: [string, () => Promise<string>][] = [
      ['a malformed token', async () => 'not-a-jwt'],
      ['the wrong audience', () => mint(aliceClaims, { audience: 'http://127.0.0.1:1/other' })],
      ['the wrong issuer', () => mint(aliceClaims, { issuer: 'https://evil.test' })],
      ['an expired token', () => mint(aliceClaims, { expiresIn: Math.floor(Date.now() / 1000) - 3600 })],
      ['no subject', () => mint({ email: 'nobody@example.com' })],
      [
        'an unknown key',
        async () => mint(aliceClaims, { key: (await generateKeyPair('ES256')).privateKey, kid: 'other-key' }),
      ],
      [
        'a key outside the JWKS under a known kid',
        async () => mint(aliceClaims, { key: (await generateKeyPair('ES256')).privateKey }),
      ],
      ['alg none', async () => unsecured(aliceClaims)],
      ['HS256 keyed with the public JWK', async () => hmacWithPublicKey(aliceClaims)],
    ];

    it.each(attacks)('answers 401 invalid_token for %s', async (_name, token) => {
      const response = await post({ authorization: `Bearer ${await token()}` });
      expect(response.status).toBe(401);
      expect(response.headers.get('www-authenticate')).toMatch(/^Bearer .*error="invalid_token"/);
      expect(await response.json()).toMatchObject({ error: 'invalid_token' });
    });

    it.each<[Era, SdkErrorCode]>([
      // Without an authProvider the 2025-era POST path reports any non-2xx under one generic code.
      ['legacy', SdkErrorCode.ClientHttpNotImplemented],
      ['modern', SdkErrorCode.ClientHttpAuthentication],
    ])('fails a %s-era v2 client with a bad token with HTTP 401 (%s)', async (era, code) => {
      const client = new Client(CLIENT_INFO, era === 'modern' ? MODERN : {});
      clients.push(client);
      const token = await mint(aliceClaims, { issuer: 'https://evil.test' });
      const transport = new StreamableHTTPClientTransport(mcpUrl, {
        requestInit: { headers: { Authorization: `Bearer ${token}` } },
      });
      const failure = await client.connect(transport).then(
        () => undefined,
        (error: unknown) => error,
      );
      expect(failure).toBeInstanceOf(SdkHttpError);
      expect((failure as SdkHttpError).status).toBe(401);
      expect((failure as SdkHttpError).code).toBe(code);
    });
  });

  describe.each<Era>(['legacy', 'modern'])('%s era', (era) => {
    it('reports the identity from the verified token', async () => {
      const { client } = await connect(aliceClaims, { era });
      expect(JSON.parse(textOf(await client.callTool({ name: 'whoami' })))).toEqual({
        userId: 'user-alice',
        email: 'alice@example.com',
        scopes: ['notes:read', 'notes:write'],
        issuer: ISSUER,
        sessionId: 'gh-sess-1',
        pid: expect.any(Number),
      });
    });

    it('keys notes by the verified sub: bob never sees alice’s notes', async () => {
      const alice = (await connect({ ...aliceClaims, sub: `alice-${era}` }, { era })).client;
      const bob = (await connect({ ...bobClaims, sub: `bob-${era}` }, { era })).client;
      expect(
        textOf(await alice.callTool({ name: 'notes_add', arguments: { text: `alice ${era} secret` } })),
      ).toBe('1');
      expect((await bob.callTool({ name: 'notes_list' })).structuredContent).toEqual({ notes: [] });
      expect(textOf(await bob.callTool({ name: 'notes_add', arguments: { text: 'bob note' } }))).toBe('1');
      expect((await alice.callTool({ name: 'notes_list' })).structuredContent).toEqual({
        notes: [`alice ${era} secret`],
      });

      // A second connection of the same user (another Gatehouse session) shares the process's book.
      const aliceAgain = (await connect({ ...aliceClaims, sub: `alice-${era}` }, { era })).client;
      expect((await aliceAgain.callTool({ name: 'notes_list' })).structuredContent).toEqual({
        notes: [`alice ${era} secret`],
      });
    });

    it('relays progress and log notifications of count_slowly', async () => {
      const { client } = await connect(aliceClaims, { era });
      const logs = collectLogs(client);
      const progress: Progress[] = [];
      const result = await client.callTool(
        { name: 'count_slowly', arguments: { to: 4, delayMs: 20 }, _meta: { [LOG_LEVEL_META_KEY]: 'debug' } },
        { onprogress: (update) => progress.push(update) },
      );
      expect(textOf(result)).toBe('counted to 4');
      // See stdio.test.ts: the SDK client may drop a progress notification read together with the result.
      expect(progress.length).toBeGreaterThanOrEqual(3);
      expect(progress.map((update) => update.progress)).toEqual([1, 2, 3, 4].slice(0, progress.length));
      await expect
        .poll(() => logs.map((log) => log.data))
        .toEqual([1, 2, 3, 4].map((step) => ({ step, of: 4 })));
    });

    it('asks the client for a name through elicitation', async () => {
      const { client } = await connect(aliceClaims, { era, elicitation: true });
      const asked = answerElicitation(client, { action: 'accept', content: { name: 'Alice' } });
      expect(textOf(await client.callTool({ name: 'ask_name' }))).toBe('hello Alice');
      expect(asked).toEqual(['What is your name?']);
    });

    it('refuses ask_name when the client did not declare elicitation', async () => {
      const { client } = await connect(aliceClaims, { era });
      expect(errorCodeOf(await client.callTool({ name: 'ask_name' }))).toBe('elicitation_unsupported');
    });
  });

  describe('2025-era sessions', () => {
    async function toolsCall(token: string, sessionId: string): Promise<Response> {
      return post(
        {
          authorization: `Bearer ${token}`,
          'mcp-session-id': sessionId,
          'mcp-protocol-version': '2025-06-18',
        },
        JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'notes_list' } }),
      );
    }

    it('answers 404 when another user presents the session id', async () => {
      const { transport, token } = await connect(aliceClaims);
      const sessionId = transport.sessionId;
      expect(sessionId).toEqual(expect.any(String));

      const own = await toolsCall(token, sessionId as string);
      expect(own.status).toBe(200);
      await own.body?.cancel();

      const stolen = await toolsCall(await mint(bobClaims), sessionId as string);
      expect(stolen.status).toBe(404);
      expect(await stolen.json()).toMatchObject({ error: { code: -32001 } });
    });

    it('answers 404 for an unknown or terminated session', async () => {
      const { transport, token } = await connect(aliceClaims);
      const sessionId = transport.sessionId as string;
      await transport.terminateSession();
      const gone = await toolsCall(token, sessionId);
      expect(gone.status).toBe(404);
      const unknown = await toolsCall(token, '00000000-0000-4000-8000-000000000000');
      expect(unknown.status).toBe(404);
    });
  });
});

describe('createNotesHttpApp in process', () => {
  function request(
    token: string,
    headers: Record<string, string> = {},
    body: string = initializeBody,
  ): Request {
    return new Request(mcpUrl, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        authorization: `Bearer ${token}`,
        ...headers,
      },
      body,
    });
  }

  it('answers 503 with Retry-After while the JWKS cannot be fetched', async () => {
    const closed = createServer();
    const port = await listen(closed);
    await new Promise((resolve) => closed.close(resolve));
    const errors: Error[] = [];
    const offline = createNotesHttpApp({
      jwksUrl: `http://127.0.0.1:${port}/jwks.json`,
      issuer: ISSUER,
      audience: mcpUrl.href,
      onError: (error) => errors.push(error),
    });
    try {
      const response = await offline.fetch(request(await mint(aliceClaims)));
      expect(response.status).toBe(503);
      expect(response.headers.get('retry-after')).toBe('5');
      expect(errors).toHaveLength(1);
    } finally {
      await offline.close();
    }
  });

  it('evicts the longest-idle 2025-era session only once it has been idle for sessionIdleMs', async () => {
    let clock = 1_000_000;
    const small = createNotesHttpApp({
      jwksUrl: await jwksUrlOf(),
      issuer: ISSUER,
      audience: mcpUrl.href,
      maxSessions: 1,
      sessionIdleMs: 1000,
      now: () => clock,
    });
    try {
      const aliceToken = await mint(aliceClaims);
      const first = await small.fetch(request(aliceToken));
      expect(first.status).toBe(200);
      await first.body?.cancel();
      const aliceSession = first.headers.get('mcp-session-id') as string;
      expect(aliceSession).toEqual(expect.any(String));

      const full = await small.fetch(request(await mint(bobClaims)));
      expect(full.status).toBe(503);

      clock += 1001;
      const second = await small.fetch(request(await mint(bobClaims)));
      expect(second.status).toBe(200);
      await second.body?.cancel();

      const evicted = await small.fetch(
        request(
          aliceToken,
          { 'mcp-session-id': aliceSession, 'mcp-protocol-version': '2025-06-18' },
          JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }),
        ),
      );
      expect(evicted.status).toBe(404);
    } finally {
      await small.close();
    }
  });

  it('refuses options that do not parse, at construction', () => {
    expect(() =>
      createNotesHttpApp({ jwksUrl: 'not a url', issuer: ISSUER, audience: mcpUrl.href }),
    ).toThrow();
    expect(() =>
      createNotesHttpApp({ jwksUrl: 'file:///etc/jwks.json', issuer: ISSUER, audience: 'x' }),
    ).toThrow();
  });
});

function base64url(value: string | Uint8Array): string {
  return Buffer.from(value).toString('base64url');
}

function payloadFor(claims: Claims): string {
  const now = Math.floor(Date.now() / 1000);
  return base64url(JSON.stringify({ ...claims, iss: ISSUER, aud: mcpUrl.href, iat: now, exp: now + 300 }));
}

function unsecured(claims: Claims): string {
  return `${base64url(JSON.stringify({ alg: 'none', typ: 'JWT' }))}.${payloadFor(claims)}.`;
}

async function hmacWithPublicKey(claims: Claims): Promise<string> {
  const { createHmac } = await import('node:crypto');
  const response = await fetch(await jwksUrlOf());
  const { keys } = (await response.json()) as { keys: JWK[] };
  const secret = JSON.stringify(keys[0]);
  const signingInput = `${base64url(JSON.stringify({ alg: 'HS256', kid: KID, typ: 'JWT' }))}.${payloadFor(claims)}`;
  return `${signingInput}.${createHmac('sha256', secret).update(signingInput).digest('base64url')}`;
}

async function jwksUrlOf(): Promise<string> {
  return `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}/jwks.json`;
}
