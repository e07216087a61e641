import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listConfigEnvVariables } from '../../src/config/env.js';
import { loadConfig } from '../../src/config/load.js';
import { isGatehouseError } from '../../src/errors/gatehouse-error.js';
import type { TestGateway } from '../helpers/gateway.js';
import { freePort } from '../helpers/late-server.js';
import { connectRaw } from '../helpers/websocket.js';
import { type ChaosUpstream, startChaosUpstream } from './helpers/chaos-upstream.js';
import {
  ACCEPT,
  type EventLog,
  legacyPost,
  openLegacyStream,
  openSession,
  PROTOCOL_2026,
  startRecorded,
} from './helpers/harness.js';
import { baseOf, REDIRECT, registerClient } from './helpers/oauth-client.js';

/**
 * Property-based fuzzing (fast-check) of everything a stranger can send: the `Authorization` header, the
 * JSON-RPC envelope on every transport, the configuration (file and environment), and the parameters of
 * every OAuth endpoint. The properties: no crash, no 5xx, the documented refusal, and no memory that grows
 * with the input. Runs are bounded (a few seconds a property); the seed is fixed so a failure reproduces —
 * set GATEHOUSE_FUZZ_SEED to explore others.
 */

const SEED = Number(process.env.GATEHOUSE_FUZZ_SEED ?? 20_260_728);
const params = (numRuns: number) => ({ numRuns, seed: SEED, endOnFailure: true });

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
function heapMb(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed / 1024 / 1024;
}

const LATIN1_PRINTABLE = Array.from({ length: 0x7f - 0x20 }, (_, i) => String.fromCharCode(0x20 + i)).concat([
  '\t',
  '\u00a0',
  'é',
  'ÿ',
  '\u0080',
]);
const headerText = (maxLength: number) =>
  fc.string({ unit: fc.constantFrom(...LATIN1_PRINTABLE), maxLength });
const b64url = (maxLength: number) =>
  fc.string({ unit: fc.constantFrom(...'ABCDEFabcdef0123456789-_'.split('')), maxLength });
const encode = (value: unknown) => Buffer.from(JSON.stringify(value) ?? 'null').toString('base64url');
/** Compact-JWS-shaped strings: random JSON header and payload, random signature. */
const jwtLike = fc
  .tuple(
    fc.oneof(
      fc.jsonValue({ maxDepth: 2 }),
      fc.record({
        alg: fc.constantFrom('none', 'HS256', 'ES256', 'RS256', 'ES512', 'EdDSA', ''),
        typ: fc.constantFrom('at+jwt', 'JWT', 'jwt', 'x'),
        kid: fc.oneof(fc.string({ maxLength: 20 }), fc.constant('../../etc/passwd')),
        crit: fc.option(fc.array(fc.string({ maxLength: 5 }), { maxLength: 2 }), { nil: undefined }),
      }),
    ),
    fc.jsonValue({ maxDepth: 3 }),
    b64url(90),
  )
  .map(([header, payload, signature]) => `${encode(header)}.${encode(payload)}.${signature}`);
const authorizationHeader = fc.oneof(
  headerText(300),
  jwtLike.map((token) => `Bearer ${token}`),
  fc
    .tuple(
      fc.constantFrom('Bearer', 'bearer', 'BEARER', 'Basic', 'DPoP', 'Token', ''),
      fc.constantFrom(' ', '  ', '\t', ''),
      fc.oneof(headerText(120), b64url(200), jwtLike),
    )
    .map(([scheme, gap, rest]) => `${scheme}${gap}${rest}`),
);

/** A JSON-RPC-shaped message with hostile parts, or any JSON at all. */
const METHODS = [
  'initialize',
  'ping',
  'tools/list',
  'tools/call',
  'resources/read',
  'prompts/get',
  'notifications/initialized',
  'notifications/cancelled',
  'server/discover',
  'subscriptions/listen',
  'completion/complete',
  'logging/setLevel',
  '__proto__',
  'constructor',
];
const envelope = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record(
      {
        jsonrpc: fc.oneof(fc.constant('2.0'), fc.jsonValue({ maxDepth: 1 })),
        id: fc.oneof(
          fc.integer(),
          fc.string({ maxLength: 20 }),
          fc.constant(null),
          fc.jsonValue({ maxDepth: 1 }),
        ),
        method: fc.oneof(fc.constantFrom(...METHODS), fc.string({ maxLength: 40 })),
        params: fc.oneof(
          fc.jsonValue({ maxDepth: 3 }),
          fc.record({
            name: fc.oneof(
              fc.constantFrom('whoami', 'notes_add', 'notes_list', 'gatehouse_whoami'),
              fc.string(),
            ),
            arguments: fc.jsonValue({ maxDepth: 3 }),
            _meta: fc.option(fc.dictionary(fc.string({ maxLength: 40 }), fc.jsonValue({ maxDepth: 2 })), {
              nil: undefined,
            }),
          }),
        ),
        result: fc.jsonValue({ maxDepth: 2 }),
        error: fc.jsonValue({ maxDepth: 2 }),
      },
      { requiredKeys: [] },
    ),
  },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 4 }) },
  { weight: 1, arbitrary: fc.array(fc.jsonValue({ maxDepth: 2 }), { maxLength: 5 }) },
);
const bodyText = fc.oneof(
  { weight: 4, arbitrary: envelope.map((value) => JSON.stringify(value) ?? 'null') },
  { weight: 1, arbitrary: fc.string({ maxLength: 200 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 100 }) },
);

describe('fuzzing the gateway (fast-check)', () => {
  let gw: TestGateway;
  let log: EventLog;
  let upstream: ChaosUpstream;
  let token: string;
  let heapAtStart: number;

  beforeAll(async () => {
    const port = await freePort();
    upstream = await startChaosUpstream({ port: await freePort(), gatewayUrl: `http://127.0.0.1:${port}` });
    ({ gw, log } = await startRecorded({
      store: { kind: 'memory' },
      server: { port },
      upstream: { kind: 'http', url: upstream.url },
      sessions: { maxPerUser: 5 },
      diagnostics: { enabled: true },
      authorizationServer: { dynamicRegistration: { perIpPerHour: 100_000 } },
      websocket: { connectPerIpPerMinute: 10_000, connectPerUserPerMinute: 10_000 },
    }));
    token = await gw.token('fuzzer');
    heapAtStart = heapMb();
  });
  afterAll(async () => {
    await gw?.close();
    await upstream?.close();
  });

  it('the bearer parser: any Authorization header is 400 or 401, refused once, cached never', async () => {
    await fc.assert(
      fc.asyncProperty(authorizationHeader, async (authorization) => {
        log.clear();
        const response = await fetch(gw.mcpUrl, {
          method: 'POST',
          headers: { accept: ACCEPT, 'content-type': 'application/json', authorization },
          body: '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}',
        });
        await response.text();
        expect([400, 401]).toContain(response.status);
        expect(log.of('guard.refused')).toHaveLength(1);
        expect(log.of('session.opened')).toEqual([]);
      }),
      params(300),
    );
    expect(gw.gateway.verification.stats().size).toBe(0);
  });

  it('the WebSocket hello: any token closes 4401 or 4400, never an error', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(jwtLike, fc.string({ maxLength: 200 }), fc.jsonValue({ maxDepth: 2 })),
        async (value) => {
          const socket = await connectRaw(gw);
          socket.send({ op: 'hello', token: value });
          const closed = await socket.closed;
          expect([4400, 4401]).toContain(closed.code);
        },
      ),
      params(60),
    );
  });

  it('the JSON-RPC envelope on Streamable HTTP (session, no session, stateless): never a 5xx', async () => {
    const sessionId = await openSession(gw, token);
    await fc.assert(
      fc.asyncProperty(
        bodyText,
        fc.constantFrom('session', 'none', 'stateless'),
        fc.constantFrom('application/json', 'application/json; charset=utf-8', 'text/plain'),
        async (body, mode, contentType) => {
          const response = await fetch(gw.mcpUrl, {
            method: 'POST',
            headers: {
              accept: ACCEPT,
              'content-type': contentType,
              authorization: `Bearer ${token}`,
              ...(mode === 'session' && { 'mcp-session-id': sessionId }),
              ...(mode === 'stateless' && {
                'mcp-protocol-version': PROTOCOL_2026,
                'mcp-method': 'tools/list',
              }),
            },
            body,
            signal: AbortSignal.timeout(15_000),
          });
          await response.text();
          expect(response.status).toBeLessThan(500);
        },
      ),
      params(250),
    );
    expect(log.of('upstream.failed')).toEqual([]);
  });

  it('the JSON-RPC envelope on legacy SSE and WebSocket: never a 5xx, a close code from the table', async () => {
    const stream = await openLegacyStream(gw, token);
    try {
      await fc.assert(
        fc.asyncProperty(bodyText, async (body) => {
          const response = await legacyPost(gw, stream.messagesPath, token, body);
          await response.text();
          expect([202, 400]).toContain(response.status);
        }),
        params(150),
      );
    } finally {
      await stream.close();
    }
    let socket = await connectRaw(gw, { token });
    await fc.assert(
      fc.asyncProperty(bodyText, async (body) => {
        if (socket.ws.readyState !== socket.ws.OPEN) socket = await connectRaw(gw, { token });
        socket.send(body);
        const outcome = await Promise.race([
          socket.closed,
          new Promise<'open'>((resolve) => setTimeout(() => resolve('open'), 20)),
        ]);
        if (outcome !== 'open') expect([4400, 4401]).toContain(outcome.code);
      }),
      params(100),
    );
    socket.ws.terminate();
  });

  it('every OAuth endpoint: any parameters are an RFC error or a page, never a 5xx', async () => {
    const clientId = await registerClient(gw);
    const names = [
      'grant_type',
      'code',
      'code_verifier',
      'redirect_uri',
      'client_id',
      'client_secret',
      'refresh_token',
      'scope',
      'resource',
      'token',
      'token_type_hint',
      'subject_token',
      'subject_token_type',
      'audience',
      'response_type',
      'code_challenge',
      'code_challenge_method',
      'state',
      'prompt',
      'csrf',
      'username',
      'password',
      'decision',
    ];
    const value = fc.oneof(
      fc.constantFrom(
        clientId,
        REDIRECT,
        gw.gateway.urls.resource,
        'authorization_code',
        'refresh_token',
        'urn:ietf:params:oauth:grant-type:token-exchange',
        'S256',
        'plain',
        'code',
        'none',
        'https://127.0.0.1/x.json',
        'https://169.254.169.254/',
        'approve',
        '',
      ),
      fc.string({ maxLength: 60 }),
      fc.string({ unit: 'binary', maxLength: 60 }),
      jwtLike,
      fc.string({ maxLength: 5_000 }),
    );
    const form = fc.array(
      fc.tuple(fc.oneof(fc.constantFrom(...names), fc.string({ maxLength: 10 })), value),
      {
        maxLength: 12,
      },
    );
    const paths = [
      '/oauth/token',
      '/oauth/revoke',
      '/oauth/introspect',
      '/oauth/authorize',
      '/oauth/authorize?',
    ];
    await fc.assert(
      fc.asyncProperty(form, fc.constantFrom(...paths), fc.boolean(), async (fields, path, basic) => {
        const body = new URLSearchParams(fields).toString();
        const get = path.endsWith('?');
        const response = await fetch(`${baseOf(gw)}${get ? `/oauth/authorize?${body}` : path}`, {
          method: get ? 'GET' : 'POST',
          redirect: 'manual',
          headers: {
            ...(!get && { 'content-type': 'application/x-www-form-urlencoded' }),
            ...(basic && {
              authorization: `Basic ${Buffer.from(`${fields[0]?.[1] ?? ''}:x`).toString('base64')}`,
            }),
          },
          ...(!get && { body }),
        });
        const text = await response.text();
        expect({ path, status: response.status < 500 }).toEqual({ path, status: true });
        if (!path.startsWith('/oauth/authorize') && response.status >= 400) {
          expect(typeof (JSON.parse(text) as { error?: unknown }).error).toBe('string');
        }
      }),
      params(400),
    );
  });

  it('registration and the sign-in pages: any JSON or form is refused cleanly, never a 5xx', async () => {
    const metadata = fc.oneof(
      fc.jsonValue({ maxDepth: 3 }),
      fc.record(
        {
          redirect_uris: fc.oneof(
            fc.array(fc.oneof(fc.webUrl(), fc.string({ maxLength: 80 }))),
            fc.jsonValue({ maxDepth: 1 }),
          ),
          client_name: fc.oneof(fc.string({ maxLength: 300 }), fc.string({ unit: 'binary', maxLength: 50 })),
          token_endpoint_auth_method: fc.oneof(
            fc.constantFrom('none', 'client_secret_basic', 'private_key_jwt'),
            fc.string(),
          ),
          grant_types: fc.jsonValue({ maxDepth: 1 }),
          scope: fc.jsonValue({ maxDepth: 1 }),
          logo_uri: fc.oneof(fc.webUrl(), fc.string()),
          __proto__: fc.jsonValue({ maxDepth: 1 }),
        },
        { requiredKeys: [] },
      ),
    );
    await fc.assert(
      fc.asyncProperty(metadata, async (document) => {
        const response = await fetch(`${baseOf(gw)}/oauth/register`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(document) ?? 'null',
        });
        const answer = (await response.json()) as { error?: string; client_id?: string };
        expect([201, 400]).toContain(response.status);
        if (response.status === 400)
          expect(answer.error).toMatch(/^invalid_(client_metadata|redirect_uri|request)$/);
      }),
      params(250),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.string({ maxLength: 40 }),
        fc.constantFrom('', '/login', '/consent', '/sign-out', '/federate'),
        fc.string({ maxLength: 200 }),
        async (id, step, body) => {
          const response = await fetch(`${baseOf(gw)}/oauth/interaction/${encodeURIComponent(id)}${step}`, {
            method: step === '' || step === '/federate' ? 'GET' : 'POST',
            redirect: 'manual',
            ...(step !== '' &&
              step !== '/federate' && {
                headers: { 'content-type': 'application/x-www-form-urlencoded' },
                body,
              }),
          });
          await response.text();
          expect(response.status).toBeLessThan(500);
        },
      ),
      params(150),
    );
    expect(Object.prototype).not.toHaveProperty('polluted');
  });

  it('memory stays bounded: the heap after all of it is within 64 MiB of the start', () => {
    expect(heapMb() - heapAtStart).toBeLessThan(64);
  });
});

describe('fuzzing configuration loading (fast-check)', () => {
  const known = listConfigEnvVariables().map((variable) =>
    variable.name.replaceAll('<N>', '0').replaceAll('<KEY>', 'X'),
  );
  const envValue = fc.oneof(
    fc.string({ maxLength: 40 }),
    fc.jsonValue({ maxDepth: 3 }).map((value) => JSON.stringify(value) ?? ''),
    fc.constantFrom(
      '0',
      '-1',
      '1e309',
      'NaN',
      'true',
      '[]',
      '{}',
      'null',
      '{"__proto__":{"polluted":1}}',
      '99999999999999999999',
    ),
  );
  const envName = fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom(...known) },
    { weight: 1, arbitrary: fc.constantFrom(...known).map((name) => `${name}_FILE`) },
    {
      weight: 1,
      arbitrary: fc
        .string({
          unit: fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZ_0123456789'.split('')),
          maxLength: 30,
        })
        .map((s) => `GATEHOUSE_${s}`),
    },
  );

  const onlyConfigErrors = (load: () => unknown) => {
    try {
      load();
    } catch (error) {
      expect(isGatehouseError(error, 'ERR_CONFIG_INVALID')).toBe(true);
    }
  };

  it('any environment: a config, or ERR_CONFIG_INVALID — never another error', () => {
    fc.assert(
      fc.property(fc.dictionary(envName, envValue, { maxKeys: 6 }), (env) => {
        onlyConfigErrors(() =>
          loadConfig({
            env,
            readFile: (path) => {
              if (path.length % 2 === 0) throw Object.assign(new Error('nope'), { code: 'ENOENT' });
              return path;
            },
          }),
        );
      }),
      params(1_500),
    );
    expect(Object.prototype).not.toHaveProperty('polluted');
  });

  it('any config file: a config, or ERR_CONFIG_INVALID — never another error', () => {
    const fileText = fc.oneof(
      fc.string({ maxLength: 200 }),
      fc.jsonValue({ maxDepth: 5 }).map((value) => JSON.stringify(value) ?? ''),
      fc
        .record(
          {
            mode: fc.oneof(fc.constantFrom('production', 'development'), fc.jsonValue({ maxDepth: 1 })),
            server: fc.dictionary(
              fc.constantFrom(
                'port',
                'host',
                'publicUrl',
                'maxBodyBytes',
                'trustedProxies',
                'requestTimeoutMs',
                '__proto__',
              ),
              fc.jsonValue({ maxDepth: 2 }),
            ),
            upstream: fc.jsonValue({ maxDepth: 3 }),
            auth: fc.jsonValue({ maxDepth: 3 }),
            authorizationServer: fc.jsonValue({ maxDepth: 3 }),
            store: fc.jsonValue({ maxDepth: 2 }),
            constructor: fc.jsonValue({ maxDepth: 2 }),
          },
          { requiredKeys: [] },
        )
        .map((value) => JSON.stringify(value)),
      fc.constant('{"__proto__":{"polluted":true},"server":{"__proto__":{"polluted":true}}}'),
    );
    fc.assert(
      fc.property(fileText, fc.dictionary(envName, envValue, { maxKeys: 2 }), (text, env) => {
        onlyConfigErrors(() => loadConfig({ file: 'gatehouse.json', env, readFile: () => text }));
      }),
      params(1_500),
    );
    expect(Object.prototype).not.toHaveProperty('polluted');
  });
});
