import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { GatehouseError } from '../../../src/errors/gatehouse-error.js';
import { OAuthError } from '../../../src/errors/oauth-error.js';
import { createSafeFetch, type SafeFetch } from '../../../src/net/safe-fetch.js';
import { createCimdResolver, isClientIdentifierUrl } from '../../../src/oauth/cimd.js';
import { createManualClock, type ManualClock } from '../../../src/ops/clock.js';
import { type LoopbackServer, startLoopbackServer, TEST_TLS_CERT } from '../net/loopback-server.js';

async function reasonOf(promise: Promise<unknown>): Promise<string | undefined> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(OAuthError);
  expect((error as OAuthError).code).toBe('invalid_client');
  return (error as OAuthError).reason;
}

let server: LoopbackServer;
let fetch: SafeFetch;
let clock: ManualClock;
let counter = 0;

/** A fresh document path per test, so caches and hit counts never leak between tests. */
function nextPath(): string {
  counter += 1;
  return `/clients/${counter}.json`;
}

function clientId(path: string): string {
  return `https://cimd.test:${server.port}${path}`;
}

function document(id: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    client_id: id,
    client_name: 'Example MCP Client',
    redirect_uris: ['http://127.0.0.1:3000/callback'],
    ...extra,
  };
}

beforeAll(async () => {
  // Real TLS on loopback: `cimd.test` is pinned to 127.0.0.1, the only special-use address let through.
  server = await startLoopbackServer({ tls: true });
  fetch = createSafeFetch({
    resolve: async (host) => (host === 'cimd.test' ? ['127.0.0.1'] : ['10.0.0.1']),
    allowAddresses: ['127.0.0.1'],
    ca: TEST_TLS_CERT,
    timeoutMs: 2000,
  });
});

afterAll(async () => {
  await server.close();
});

beforeEach(() => {
  clock = createManualClock();
});

describe('isClientIdentifierUrl', () => {
  // req: CIMD-URL-FORM
  it.each([
    ['https://app.example.com/oauth/client.json', true],
    ['https://app.example.com:8443/client', true],
    ['https://app.example.com/', true],
    ['https://app.example.com/client?v=1', true],
    ['https://app.example.com', false],
    ['http://app.example.com/client.json', false],
    ['HTTPS://app.example.com/client.json', false],
    ['https://app.example.com/client.json#x', false],
    ['https://user:pass@app.example.com/client.json', false],
    ['https://user@app.example.com/client.json', false],
    ['https://app.example.com/a/../client.json', false],
    ['https://app.example.com/./client.json', false],
    ['https://app.example.com/%2e%2e/client.json', false],
    ['https://app.example.com/a b', false],
    ['https://app.example.com\\client.json', false],
    ['aB3dE5fG7hJ9kL1mN3pQ5r', false],
    [`https://app.example.com/${'a'.repeat(2000)}`, false],
  ])('%s → %s', (value, expected) => {
    expect(isClientIdentifierUrl(value)).toBe(expected);
  });
});

describe('createCimdResolver', () => {
  it('resolves a document into a public client record', async () => {
    const path = nextPath();
    const id = clientId(path);
    server.route(path, {
      kind: 'json',
      body: document(id, {
        grant_types: ['authorization_code', 'refresh_token'],
        logo_uri: 'https://a.example/l.png',
      }),
    });
    const cimd = createCimdResolver({ fetch, clock });
    expect(cimd.isMetadataDocumentUrl(id)).toBe(true);
    const record = await cimd.resolve(id);
    expect(record).toMatchObject({
      clientId: id,
      tokenEndpointAuthMethod: 'none',
      redirectUris: ['http://127.0.0.1:3000/callback'],
      grantTypes: ['authorization_code', 'refresh_token'],
      applicationType: 'native',
      clientName: 'Example MCP Client',
      logoUri: 'https://a.example/l.png',
      createdAt: clock.now(),
    });
    expect(record.secretHash).toBeUndefined();
    expect(server.lastHeaders(path)?.accept).toBe('application/json');
  });

  // req: CIMD-CLIENT-ID-MATCH
  it('refuses a document whose client_id differs from its URL', async () => {
    const path = nextPath();
    server.route(path, { kind: 'json', body: document(`${clientId(path)}?other`) });
    const cimd = createCimdResolver({ fetch, clock });
    expect(await reasonOf(cimd.resolve(clientId(path)))).toBe('cimd_client_id_mismatch');
  });

  // req: CIMD-CLIENT-ID-MATCH
  it('refuses a document without client_id', async () => {
    const path = nextPath();
    const { client_id: _, ...withoutId } = document(clientId(path));
    server.route(path, { kind: 'json', body: withoutId });
    const cimd = createCimdResolver({ fetch, clock });
    expect(await reasonOf(cimd.resolve(clientId(path)))).toBe('cimd_client_id_mismatch');
  });

  it('refuses invalid JSON and non-JSON content types', async () => {
    const broken = nextPath();
    server.route(broken, {
      kind: 'respond',
      headers: { 'content-type': 'application/json' },
      body: '{"client_id":',
    });
    const html = nextPath();
    server.route(html, { kind: 'respond', headers: { 'content-type': 'text/html' }, body: '<html></html>' });
    const cimd = createCimdResolver({ fetch, clock });
    expect(await reasonOf(cimd.resolve(clientId(broken)))).toBe('cimd_not_json');
    expect(await reasonOf(cimd.resolve(clientId(html)))).toBe('cimd_not_json');
  });

  it('accepts an application/*+json content type', async () => {
    const path = nextPath();
    server.route(path, {
      kind: 'json',
      body: document(clientId(path)),
      headers: { 'content-type': 'application/client-metadata+json; charset=utf-8' },
    });
    const cimd = createCimdResolver({ fetch, clock });
    expect((await cimd.resolve(clientId(path))).clientId).toBe(clientId(path));
  });

  it('refuses a 404 and any other non-200 status', async () => {
    const missing = nextPath();
    const created = nextPath();
    server.route(created, { kind: 'json', status: 201, body: document(clientId(created)) });
    const cimd = createCimdResolver({ fetch, clock });
    expect(await reasonOf(cimd.resolve(clientId(missing)))).toBe('cimd_fetch_failed');
    expect(await reasonOf(cimd.resolve(clientId(created)))).toBe('cimd_fetch_failed');
  });

  // req: MCP-SECURITY-SSRF
  it('does not follow redirects', async () => {
    const target = nextPath();
    server.route(target, { kind: 'json', body: document(clientId(target)) });
    const path = nextPath();
    server.route(path, { kind: 'redirect', location: target });
    const cimd = createCimdResolver({ fetch, clock });
    expect(await reasonOf(cimd.resolve(clientId(path)))).toBe('cimd_fetch_failed');
    expect(server.requests(target)).toBe(0);
  });

  // req: CIMD-NO-SHARED-SECRETS
  it('refuses documents that fail metadata validation', async () => {
    const secretMethod = nextPath();
    server.route(secretMethod, {
      kind: 'json',
      body: document(clientId(secretMethod), { token_endpoint_auth_method: 'client_secret_basic' }),
    });
    const badRedirect = nextPath();
    server.route(badRedirect, {
      kind: 'json',
      body: document(clientId(badRedirect), { redirect_uris: ['http://evil.example/cb'] }),
    });
    const cimd = createCimdResolver({ fetch, clock });
    expect(await reasonOf(cimd.resolve(clientId(secretMethod)))).toBe('cimd_invalid_metadata');
    expect(await reasonOf(cimd.resolve(clientId(badRedirect)))).toBe('cimd_invalid_metadata');
  });

  it('refuses documents over maxBytes', async () => {
    const path = nextPath();
    server.route(path, { kind: 'json', body: document(clientId(path), { padding: 'x'.repeat(6000) }) });
    const cimd = createCimdResolver({ fetch, clock });
    expect(await reasonOf(cimd.resolve(clientId(path)))).toBe('cimd_too_large');
    const roomy = createCimdResolver({ fetch, clock, maxBytes: 10_000 });
    expect((await roomy.resolve(clientId(path))).clientId).toBe(clientId(path));
  });

  // req: MCP-SECURITY-SSRF
  it('refuses hosts that resolve to private addresses without connecting', async () => {
    const before = server.connections();
    const cimd = createCimdResolver({ fetch, clock });
    expect(await reasonOf(cimd.resolve('https://internal.test/client.json'))).toBe('cimd_forbidden_address');
    expect(await reasonOf(cimd.resolve(`https://127.0.0.2:${server.port}/client.json`))).toBe(
      'cimd_forbidden_address',
    );
    expect(server.connections()).toBe(before);
  });

  // req: CIMD-URL-FORM
  it('refuses a client_id that is not a Client Identifier URL without fetching', async () => {
    const cimd = createCimdResolver({ fetch, clock });
    const before = server.requests();
    expect(await reasonOf(cimd.resolve(`https://cimd.test:${server.port}`))).toBe('cimd_invalid_url');
    expect(await reasonOf(cimd.resolve(`http://cimd.test:${server.port}/c.json`))).toBe('cimd_invalid_url');
    expect(server.requests()).toBe(before);
  });

  describe('caching', () => {
    it('honours max-age, clamped to [minCacheMs, maxCacheMs]', async () => {
      const path = nextPath();
      server.route(path, {
        kind: 'json',
        body: document(clientId(path)),
        headers: { 'cache-control': 'public, max-age=300' },
      });
      const cimd = createCimdResolver({ fetch, clock });
      await cimd.resolve(clientId(path));
      clock.advance(299_000);
      await cimd.resolve(clientId(path));
      expect(server.requests(path)).toBe(1);
      clock.advance(1_000);
      await cimd.resolve(clientId(path));
      expect(server.requests(path)).toBe(2);
    });

    it('raises a short max-age to minCacheMs and caps a long one at maxCacheMs', async () => {
      const short = nextPath();
      server.route(short, {
        kind: 'json',
        body: document(clientId(short)),
        headers: { 'cache-control': 'max-age=1' },
      });
      const long = nextPath();
      server.route(long, {
        kind: 'json',
        body: document(clientId(long)),
        headers: { 'cache-control': 'max-age=31536000' },
      });
      const cimd = createCimdResolver({ fetch, clock, minCacheMs: 10_000, maxCacheMs: 100_000 });
      await cimd.resolve(clientId(short));
      await cimd.resolve(clientId(long));
      clock.advance(9_999);
      await cimd.resolve(clientId(short));
      expect(server.requests(short)).toBe(1);
      clock.advance(1);
      await cimd.resolve(clientId(short));
      expect(server.requests(short)).toBe(2);
      clock.advance(90_000);
      await cimd.resolve(clientId(long));
      expect(server.requests(long)).toBe(2);
    });

    it('treats no-store as minCacheMs', async () => {
      const path = nextPath();
      server.route(path, {
        kind: 'json',
        body: document(clientId(path)),
        headers: { 'cache-control': 'no-store' },
      });
      const cimd = createCimdResolver({ fetch, clock, minCacheMs: 5_000 });
      await cimd.resolve(clientId(path));
      await cimd.resolve(clientId(path));
      expect(server.requests(path)).toBe(1);
      clock.advance(5_000);
      await cimd.resolve(clientId(path));
      expect(server.requests(path)).toBe(2);
    });

    it('honours Expires relative to the origin Date header', async () => {
      const path = nextPath();
      const date = new Date('2030-01-01T00:00:00Z');
      server.route(path, {
        kind: 'json',
        body: document(clientId(path)),
        headers: { date: date.toUTCString(), expires: new Date(date.getTime() + 600_000).toUTCString() },
      });
      const cimd = createCimdResolver({ fetch, clock });
      await cimd.resolve(clientId(path));
      clock.advance(599_000);
      await cimd.resolve(clientId(path));
      expect(server.requests(path)).toBe(1);
      clock.advance(1_000);
      await cimd.resolve(clientId(path));
      expect(server.requests(path)).toBe(2);
    });

    it('coalesces concurrent resolutions of one URL into one fetch', async () => {
      const path = nextPath();
      server.route(path, { kind: 'json', body: document(clientId(path)) });
      const cimd = createCimdResolver({ fetch, clock });
      const records = await Promise.all(Array.from({ length: 10 }, () => cimd.resolve(clientId(path))));
      expect(server.requests(path)).toBe(1);
      expect(new Set(records.map((record) => record.clientId))).toEqual(new Set([clientId(path)]));
    });

    it('coalesces concurrent failures too', async () => {
      const path = nextPath();
      const cimd = createCimdResolver({ fetch, clock, failureCacheMs: 0 });
      const results = await Promise.allSettled(
        Array.from({ length: 10 }, () => cimd.resolve(clientId(path))),
      );
      expect(results.every((result) => result.status === 'rejected')).toBe(true);
      expect(server.requests(path)).toBe(1);
    });

    it('remembers a failure for failureCacheMs, then tries again', async () => {
      const path = nextPath();
      const cimd = createCimdResolver({ fetch, clock, failureCacheMs: 30_000 });
      expect(await reasonOf(cimd.resolve(clientId(path)))).toBe('cimd_fetch_failed');
      expect(await reasonOf(cimd.resolve(clientId(path)))).toBe('cimd_fetch_failed');
      expect(server.requests(path)).toBe(1);
      server.route(path, { kind: 'json', body: document(clientId(path)) });
      clock.advance(29_999);
      expect(await reasonOf(cimd.resolve(clientId(path)))).toBe('cimd_fetch_failed');
      expect(server.requests(path)).toBe(1);
      clock.advance(1);
      expect((await cimd.resolve(clientId(path))).clientId).toBe(clientId(path));
      expect(server.requests(path)).toBe(2);
    });

    it('with failureCacheMs 0, fetches again after every failure', async () => {
      const path = nextPath();
      const cimd = createCimdResolver({ fetch, clock, failureCacheMs: 0 });
      await reasonOf(cimd.resolve(clientId(path)));
      await reasonOf(cimd.resolve(clientId(path)));
      expect(server.requests(path)).toBe(2);
    });

    it('asks beforeFetch before every outbound fetch, with who is asking, and never for a cached answer', async () => {
      const path = nextPath();
      server.route(path, { kind: 'json', body: document(clientId(path)) });
      const asked: [string, string | undefined][] = [];
      const cimd = createCimdResolver({
        fetch,
        clock,
        beforeFetch: async (url, lookup) => {
          asked.push([url.href, lookup.clientAddress]);
        },
      });
      await Promise.all([
        cimd.resolve(clientId(path), { clientAddress: '203.0.113.7' }),
        cimd.resolve(clientId(path), { clientAddress: '198.51.100.1' }),
      ]);
      await cimd.resolve(clientId(path));
      expect(asked).toEqual([[clientId(path), '203.0.113.7']]);
      clock.advance(60_000);
      await cimd.resolve(clientId(path));
      expect(asked).toEqual([
        [clientId(path), '203.0.113.7'],
        [clientId(path), undefined],
      ]);
    });

    it('a refusal by beforeFetch reaches the caller and no request leaves', async () => {
      const path = nextPath();
      server.route(path, { kind: 'json', body: document(clientId(path)) });
      const refused = new GatehouseError('ERR_RATE_LIMITED', 'slow down', { retryAfterSeconds: 7 });
      const cimd = createCimdResolver({
        fetch,
        clock,
        beforeFetch: async () => {
          throw refused;
        },
      });
      await expect(cimd.resolve(clientId(path))).rejects.toBe(refused);
      expect(server.requests(path)).toBe(0);
    });

    it('while beforeFetch refuses, a document that expired recently is served stale (RFC 5861 stale-if-error)', async () => {
      const path = nextPath();
      server.route(path, { kind: 'json', body: document(clientId(path)) });
      let refuse = false;
      const cimd = createCimdResolver({
        fetch,
        clock,
        beforeFetch: async () => {
          if (refuse) throw new GatehouseError('ERR_RATE_LIMITED', 'slow down', { retryAfterSeconds: 7 });
        },
      });
      await cimd.resolve(clientId(path));
      refuse = true;
      clock.advance(60_000);
      expect((await cimd.resolve(clientId(path))).clientId).toBe(clientId(path));
      expect(server.requests(path)).toBe(1);
      // Not forever: ten minutes past its expiry the stale document is no longer an answer.
      clock.advance(10 * 60_000);
      await expect(cimd.resolve(clientId(path))).rejects.toBeInstanceOf(GatehouseError);
      refuse = false;
      await cimd.resolve(clientId(path));
      expect(server.requests(path)).toBe(2);
    });

    it('refuses a document whose redirect URI hands off to the operating system (ms-msdt:, search-ms:)', async () => {
      for (const uri of ['ms-msdt:/id', 'search-ms:query=x', 'chrome-extension://abc/cb']) {
        const path = nextPath();
        server.route(path, { kind: 'json', body: document(clientId(path), { redirect_uris: [uri] }) });
        const cimd = createCimdResolver({ fetch, clock });
        expect(await reasonOf(cimd.resolve(clientId(path)))).toBe('cimd_invalid_metadata');
      }
    });

    it('evicts the least recently used entry beyond maxEntries', async () => {
      const [a, b, c] = [nextPath(), nextPath(), nextPath()];
      for (const path of [a, b, c]) {
        server.route(path, { kind: 'json', body: document(clientId(path)) });
      }
      const cimd = createCimdResolver({ fetch, clock, maxEntries: 2 });
      await cimd.resolve(clientId(a));
      await cimd.resolve(clientId(b));
      await cimd.resolve(clientId(a)); // a is now the most recent
      await cimd.resolve(clientId(c)); // evicts b
      await cimd.resolve(clientId(a));
      expect(server.requests(a)).toBe(1);
      await cimd.resolve(clientId(b));
      expect(server.requests(b)).toBe(2);
    });
  });
});
