import { Writable } from 'node:stream';
import { beforeEach, describe, expect, it } from 'vitest';
import { tokenHash } from '../../../src/crypto/fingerprint.js';
import { GatehouseError, type GatehouseErrorCode } from '../../../src/errors/gatehouse-error.js';
import { OAuthError, type OAuthErrorCode } from '../../../src/errors/oauth-error.js';
import { authenticateClient, createClientRegistry } from '../../../src/oauth/clients.js';
import {
  createRegistrationEndpoint,
  MAX_REGISTRATION_BYTES,
  type RegistrationEndpointOptions,
} from '../../../src/oauth/endpoints/register.js';
import { createManualClock, type ManualClock } from '../../../src/ops/clock.js';
import type { GatehouseEvent } from '../../../src/ops/events.js';
import { createLogger, silentLogger } from '../../../src/ops/logger.js';
import { createMemoryStores } from '../../../src/stores/memory/index.js';
import type { Stores } from '../../../src/stores/ports.js';

const IP = '203.0.113.7';
const INITIAL_TOKEN = 'initial-access-token-0123456789abcdef';

function post(body: unknown, headers: Record<string, string> = {}): Request {
  return new Request('https://gatehouse.example/register', {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

async function thrown(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error('expected a rejection');
    },
    (error: unknown) => error,
  );
}

async function oauthCode(promise: Promise<unknown>): Promise<{ code: OAuthErrorCode; reason?: string }> {
  const error = await thrown(promise);
  expect(error).toBeInstanceOf(OAuthError);
  const { code, reason } = error as OAuthError;
  return reason === undefined ? { code } : { code, reason };
}

async function gatehouseError(promise: Promise<unknown>, code: GatehouseErrorCode): Promise<GatehouseError> {
  const error = await thrown(promise);
  expect(error).toBeInstanceOf(GatehouseError);
  expect((error as GatehouseError).code).toBe(code);
  return error as GatehouseError;
}

let stores: Stores;
let clock: ManualClock;
let events: GatehouseEvent[];

function endpoint(options: Partial<RegistrationEndpointOptions> = {}) {
  return createRegistrationEndpoint({
    clients: stores.clients,
    counters: stores.counters,
    clock,
    logger: silentLogger,
    rateLimit: { perIpPerHour: 100 },
    events: { emit: (event) => events.push(event) },
    ...options,
  });
}

beforeEach(() => {
  stores = createMemoryStores();
  clock = createManualClock();
  events = [];
});

describe('registration endpoint', () => {
  // req: RFC7591-3.2.1-RESPONSE, RFC6749-5.1-NO-STORE
  it('registers a public client without a secret', async () => {
    const response = await endpoint()(
      post({
        redirect_uris: ['http://127.0.0.1:33418/callback'],
        token_endpoint_auth_method: 'none',
        grant_types: ['authorization_code', 'refresh_token'],
        client_name: 'VS Code',
      }),
      IP,
    );
    expect(response.status).toBe(201);
    expect(response.headers.get('cache-control')).toBe('no-store');
    expect(response.headers.get('content-type')).toBe('application/json');
    const body = (await response.json()) as Record<string, unknown>;
    expect(body).toEqual({
      client_id: expect.stringMatching(/^[A-Za-z0-9_-]{22,}$/),
      client_id_issued_at: Math.floor(clock.now() / 1000),
      redirect_uris: ['http://127.0.0.1:33418/callback'],
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      application_type: 'native',
      client_name: 'VS Code',
    });
    const stored = await stores.clients.get(body.client_id as string, clock.now());
    expect(stored?.secretHash).toBeUndefined();
    expect(stored?.tokenEndpointAuthMethod).toBe('none');
    expect(stored?.metadata).toMatchObject({ client_name: 'VS Code' });
  });

  // req: RFC7591-3.2.1-RESPONSE, RFC7591-2-DEFAULT-AUTH-METHOD
  it('issues a confidential client a secret, stored only as its hash, that authenticateClient accepts', async () => {
    const response = await endpoint()(post({ redirect_uris: ['https://app.example.com/cb'] }), IP);
    expect(response.status).toBe(201);
    const body = (await response.json()) as Record<string, unknown>;
    expect(body.token_endpoint_auth_method).toBe('client_secret_basic');
    expect(body.client_secret).toEqual(expect.stringMatching(/^[A-Za-z0-9_-]{43}$/));
    expect(body.client_secret_expires_at).toBe(0);
    const clientId = body.client_id as string;
    const secret = body.client_secret as string;

    const stored = await stores.clients.get(clientId, clock.now());
    expect(stored?.secretHash).toBe(tokenHash(secret));
    expect(JSON.stringify(stored)).not.toContain(secret);

    const registry = createClientRegistry({ clients: stores.clients, preRegistered: [], clock });
    const client = await registry.get(clientId);
    expect(client?.source).toBe('registered');
    if (client === undefined) throw new Error('client not found');
    const basic = `Basic ${Buffer.from(`${clientId}:${secret}`).toString('base64')}`;
    expect(authenticateClient(client, { authorizationHeader: basic })).toEqual({
      clientId,
      method: 'client_secret_basic',
    });
    const wrong = `Basic ${Buffer.from(`${clientId}:${secret.slice(0, -1)}x`).toString('base64')}`;
    expect(() => authenticateClient(client, { authorizationHeader: wrong })).toThrowError(
      expect.objectContaining({ code: 'invalid_client', reason: 'invalid_secret' }),
    );
  });

  it('gives each registration a distinct client id and secret', async () => {
    const register = endpoint();
    const bodies = await Promise.all(
      Array.from({ length: 5 }, async () => {
        const response = await register(post({ redirect_uris: ['https://app.example.com/cb'] }), IP);
        return (await response.json()) as { client_id: string; client_secret: string };
      }),
    );
    expect(new Set(bodies.map((b) => b.client_id)).size).toBe(5);
    expect(new Set(bodies.map((b) => b.client_secret)).size).toBe(5);
  });

  it('with clientSecretLifetimeMs, the secret and the registration lapse together', async () => {
    const register = endpoint({ clientSecretLifetimeMs: 3_600_000 });
    const body = (await (
      await register(
        post({
          redirect_uris: ['https://app.example.com/cb'],
          token_endpoint_auth_method: 'client_secret_post',
        }),
        IP,
      )
    ).json()) as Record<string, unknown>;
    expect(body.client_secret_expires_at).toBe(Math.floor((clock.now() + 3_600_000) / 1000));
    clock.advance(3_600_000);
    expect(await stores.clients.get(body.client_id as string, clock.now())).toBeUndefined();
  });

  // req: RFC7591-3.2.2-ERRORS, RFC6749-3.1.2-NO-FRAGMENT
  it.each([
    ['no redirect_uris', { client_name: 'x' }, 'invalid_redirect_uri'],
    [
      'http redirect on a public host',
      { redirect_uris: ['http://app.example.com/cb'] },
      'invalid_redirect_uri',
    ],
    ['fragment', { redirect_uris: ['https://app.example.com/cb#x'] }, 'invalid_redirect_uri'],
    ['wildcard', { redirect_uris: ['https://*.example.com/cb'] }, 'invalid_redirect_uri'],
    ['javascript', { redirect_uris: ['javascript:alert(1)'] }, 'invalid_redirect_uri'],
    [
      'unsupported grant',
      { redirect_uris: ['https://a.example/cb'], grant_types: ['implicit'] },
      'invalid_client_metadata',
    ],
    ['not an object', [1, 2], 'invalid_client_metadata'],
  ])('refuses %s with %s', async (_name, body, code) => {
    expect((await oauthCode(endpoint()(post(body), IP))).code).toBe(code);
  });

  it('answers invalid_request for a body that is not JSON', async () => {
    expect(await oauthCode(endpoint()(post('{"redirect_uris":'), IP))).toEqual({
      code: 'invalid_request',
      reason: 'body_not_json',
    });
  });

  it('refuses other content types with 415', async () => {
    const request = new Request('https://gatehouse.example/register', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'redirect_uris=https://a.example/cb',
    });
    const error = await gatehouseError(endpoint()(request, IP), 'ERR_UNSUPPORTED_MEDIA_TYPE');
    expect(error.status).toBe(415);
  });

  it('accepts application/json with a charset', async () => {
    const response = await endpoint()(
      post(
        { redirect_uris: ['https://a.example/cb'] },
        { 'content-type': 'Application/JSON; charset=utf-8' },
      ),
      IP,
    );
    expect(response.status).toBe(201);
  });

  it('refuses methods other than POST', async () => {
    const request = new Request('https://gatehouse.example/register', { method: 'GET' });
    expect((await gatehouseError(endpoint()(request, IP), 'ERR_METHOD_NOT_ALLOWED')).status).toBe(405);
  });

  it('refuses oversized bodies with 413, declared or streamed', async () => {
    const huge = JSON.stringify({
      redirect_uris: ['https://a.example/cb'],
      client_name: 'x'.repeat(MAX_REGISTRATION_BYTES),
    });
    expect((await gatehouseError(endpoint()(post(huge), IP), 'ERR_BODY_TOO_LARGE')).status).toBe(413);

    const bytes = new TextEncoder().encode(huge);
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < bytes.length; i += 1024) controller.enqueue(bytes.slice(i, i + 1024));
        controller.close();
      },
    });
    const streamed = new Request('https://gatehouse.example/register', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: stream,
      duplex: 'half',
    } as RequestInit);
    await gatehouseError(endpoint()(streamed, IP), 'ERR_BODY_TOO_LARGE');
  });

  describe('initial access token', () => {
    const register = () => endpoint({ initialAccessToken: INITIAL_TOKEN });
    const body = { redirect_uris: ['https://a.example/cb'] };

    it('is required when configured', async () => {
      const error = await thrown(register()(post(body), IP));
      expect(error).toBeInstanceOf(OAuthError);
      expect((error as OAuthError).code).toBe('invalid_token');
      expect((error as OAuthError).status).toBe(401);
    });

    it('must match', async () => {
      const wrong = { authorization: `Bearer ${INITIAL_TOKEN}x` };
      expect(await oauthCode(register()(post(body, wrong), IP))).toEqual({
        code: 'invalid_token',
        reason: 'wrong_initial_access_token',
      });
      expect(
        (await oauthCode(register()(post(body, { authorization: `Basic ${INITIAL_TOKEN}` }), IP))).code,
      ).toBe('invalid_token');
    });

    it('lets a request with the right token register', async () => {
      const response = await register()(post(body, { authorization: `Bearer ${INITIAL_TOKEN}` }), IP);
      expect(response.status).toBe(201);
    });
  });

  describe('audit', () => {
    it('records oauth.register for each registration and each refusal, with the address', async () => {
      const register = endpoint();
      const created = await register(post({ redirect_uris: ['https://app.example.com/cb'] }), IP);
      const { client_id } = (await created.json()) as { client_id: string };
      await thrown(register(post({ redirect_uris: ['ms-msdt:/id'] }), IP));
      expect(events).toEqual([
        { type: 'oauth.register', outcome: 'success', clientId: client_id, ip: IP },
        {
          type: 'oauth.register',
          outcome: 'failure',
          error: 'invalid_redirect_uri',
          reason: 'redirect_uri_scheme',
          ip: IP,
        },
      ]);
    });

    it('reports a refusal by the rate limit as ratelimit.rejected (limit registration), not as oauth.register', async () => {
      const register = endpoint({ rateLimit: { perIpPerHour: 1 } });
      await register(post({ redirect_uris: ['https://app.example.com/cb'] }), IP);
      events.length = 0;
      await thrown(register(post({ redirect_uris: ['https://app.example.com/cb'] }), IP));
      expect(events).toEqual([
        { type: 'ratelimit.rejected', limit: 'registration', ip: IP, retryAfterSeconds: 3600 },
      ]);
    });
  });

  describe('rate limit', () => {
    it('answers 429 with Retry-After once an address exceeds its hourly allowance', async () => {
      const register = endpoint({ rateLimit: { perIpPerHour: 3 } });
      const body = { redirect_uris: ['https://a.example/cb'] };
      for (let i = 0; i < 3; i++) expect((await register(post(body), IP)).status).toBe(201);
      clock.advance(600_000);
      const error = await gatehouseError(register(post(body), IP), 'ERR_RATE_LIMITED');
      expect(error.status).toBe(429);
      expect(error.retryAfterSeconds).toBe(3000);
      // Another address is unaffected, and the window ends on time.
      expect((await register(post(body), '198.51.100.1')).status).toBe(201);
      clock.advance(3_000_000);
      expect((await register(post(body), IP)).status).toBe(201);
    });

    it('counts failed attempts too, so the initial access token cannot be guessed at speed', async () => {
      const register = endpoint({ rateLimit: { perIpPerHour: 2 }, initialAccessToken: INITIAL_TOKEN });
      const body = { redirect_uris: ['https://a.example/cb'] };
      await oauthCode(register(post(body, { authorization: 'Bearer guess-1' }), IP));
      await oauthCode(register(post(body, { authorization: 'Bearer guess-2' }), IP));
      await gatehouseError(
        register(post(body, { authorization: `Bearer ${INITIAL_TOKEN}` }), IP),
        'ERR_RATE_LIMITED',
      );
    });
  });

  it('never logs the client secret', async () => {
    const lines: string[] = [];
    const destination = new Writable({
      write(chunk, _encoding, callback) {
        lines.push(String(chunk));
        callback();
      },
    });
    const logger = createLogger({ level: 'info', destination });
    const response = await endpoint({ logger })(post({ redirect_uris: ['https://a.example/cb'] }), IP);
    const { client_secret: secret, client_id: clientId } = (await response.json()) as Record<string, string>;
    const log = lines.join('');
    expect(log).toContain(clientId);
    expect(log).not.toContain(secret);
  });

  it('refuses nonsensical options at construction', () => {
    expect(() => endpoint({ rateLimit: { perIpPerHour: 0 } })).toThrowError(
      expect.objectContaining({ code: 'ERR_CONFIG_INVALID' }),
    );
    expect(() => endpoint({ clientSecretLifetimeMs: -1 })).toThrowError(
      expect.objectContaining({ code: 'ERR_CONFIG_INVALID' }),
    );
  });
});
