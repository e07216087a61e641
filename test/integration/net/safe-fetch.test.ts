import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  createSafeFetch,
  isForbiddenAddress,
  SafeFetchError,
  type SafeFetchErrorCode,
} from '../../../src/net/safe-fetch.js';
import { type LoopbackServer, startLoopbackServer, TEST_TLS_CERT } from './loopback-server.js';

async function expectCode(promise: Promise<unknown>, code: SafeFetchErrorCode): Promise<void> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(SafeFetchError);
  expect((error as SafeFetchError).code).toBe(code);
}

/** A resolver that answers from a fixed map and records what it was asked. */
function mapResolver(map: Record<string, string[]>): {
  resolve: (host: string) => Promise<string[]>;
  asked: string[];
} {
  const asked: string[] = [];
  return {
    asked,
    resolve: async (host) => {
      asked.push(host);
      const addresses = map[host];
      if (addresses === undefined) throw new Error(`unexpected lookup of ${host}`);
      return addresses;
    },
  };
}

let server: LoopbackServer;

beforeAll(async () => {
  server = await startLoopbackServer();
  server.route('/doc', { kind: 'json', body: { hello: 'world' } });
});

afterAll(async () => {
  await server.close();
});

describe('isForbiddenAddress', () => {
  it.each([
    ['127.0.0.1', true],
    ['127.255.255.254', true],
    ['10.1.2.3', true],
    ['172.16.0.1', true],
    ['172.31.255.255', true],
    ['192.168.0.1', true],
    ['169.254.169.254', true],
    ['100.64.0.1', true],
    ['100.127.255.255', true],
    ['0.0.0.0', true],
    ['224.0.0.1', true],
    ['255.255.255.255', true],
    ['192.0.2.1', true],
    ['198.18.0.1', true],
    ['::', true],
    ['::1', true],
    ['::ffff:127.0.0.1', true],
    ['::ffff:7f00:1', true],
    ['::ffff:10.0.0.1', true],
    ['::ffff:169.254.169.254', true],
    ['fe80::1', true],
    ['fc00::1', true],
    ['fd12:3456::1', true],
    ['ff02::1', true],
    ['2001:db8::1', true],
    ['2002:7f00:1::1', true],
    ['2001::1', true],
    ['64:ff9b::a00:1', true],
    ['::127.0.0.1', true],
    ['fe80::1%eth0', true],
    ['not-an-ip', true],
    ['8.8.8.8', false],
    ['1.1.1.1', false],
    ['172.32.0.1', false],
    ['100.128.0.1', false],
    ['::ffff:8.8.8.8', false],
    ['64:ff9b::808:808', false],
    ['2606:4700:4700::1111', false],
    ['2a00:1450:4001:80b::200e', false],
  ])('%s → forbidden: %s', (address, forbidden) => {
    expect(isForbiddenAddress(address)).toBe(forbidden);
  });
});

describe('createSafeFetch — private networks not allowed (production)', () => {
  const before = { connections: 0, requests: 0 };
  const snapshot = (): void => {
    before.connections = server.connections();
    before.requests = server.requests();
  };
  afterEach(() => {
    // The point of every case here: refused before any connection was made.
    expect(server.connections()).toBe(before.connections);
    expect(server.requests()).toBe(before.requests);
  });

  it.each([
    ['loopback IPv4', (port: number) => `https://127.0.0.1:${port}/doc`],
    ['loopback IPv6', (port: number) => `https://[::1]:${port}/doc`],
    ['IPv4-mapped loopback', (port: number) => `https://[::ffff:127.0.0.1]:${port}/doc`],
    ['decimal loopback', (port: number) => `https://2130706433:${port}/doc`],
    ['unspecified', (port: number) => `https://0.0.0.0:${port}/doc`],
    ['cloud metadata', () => 'https://169.254.169.254/latest/meta-data/'],
    ['RFC 1918 10/8', () => 'https://10.0.0.1/doc'],
    ['RFC 1918 192.168/16', () => 'https://192.168.1.1/doc'],
    ['CGNAT', () => 'https://100.64.0.1/doc'],
    ['link-local IPv6', () => 'https://[fe80::1]/doc'],
    ['unique-local IPv6', () => 'https://[fd00::1]/doc'],
  ])('refuses %s with ERR_FETCH_FORBIDDEN_ADDRESS', async (_name, url) => {
    snapshot();
    await expectCode(createSafeFetch()(url(server.port)), 'ERR_FETCH_FORBIDDEN_ADDRESS');
  });

  it('refuses localhost after resolving it', async () => {
    snapshot();
    await expectCode(
      createSafeFetch()(`https://localhost:${server.port}/doc`),
      'ERR_FETCH_FORBIDDEN_ADDRESS',
    );
  });

  it.each([
    ['http to loopback', (port: number) => `http://127.0.0.1:${port}/doc`],
    ['http to a public name', () => 'http://example.com/doc'],
    ['file', () => 'file:///etc/passwd'],
    ['ftp', () => 'ftp://example.com/doc'],
    ['data', () => 'data:application/json,{}'],
  ])('refuses %s with ERR_FETCH_SCHEME', async (_name, url) => {
    snapshot();
    await expectCode(createSafeFetch()(url(server.port)), 'ERR_FETCH_SCHEME');
  });

  it('refuses URLs with credentials or that do not parse', async () => {
    snapshot();
    await expectCode(createSafeFetch()('https://user:pass@example.com/doc'), 'ERR_FETCH_INVALID_URL');
    await expectCode(createSafeFetch()('not a url'), 'ERR_FETCH_INVALID_URL');
  });

  it('refuses a name that resolves to loopback (the pinned address is the checked one)', async () => {
    snapshot();
    const { resolve, asked } = mapResolver({ 'cimd.example': ['127.0.0.1'] });
    await expectCode(
      createSafeFetch({ resolve })(`https://cimd.example:${server.port}/doc`),
      'ERR_FETCH_FORBIDDEN_ADDRESS',
    );
    expect(asked).toEqual(['cimd.example']);
  });

  it('refuses a name when ANY of its addresses is special-use', async () => {
    snapshot();
    const { resolve } = mapResolver({ 'mixed.example': ['93.184.216.34', '10.0.0.1'] });
    await expectCode(
      createSafeFetch({ resolve })('https://mixed.example/doc'),
      'ERR_FETCH_FORBIDDEN_ADDRESS',
    );
  });

  it('refuses IPv4-mapped and NAT64 forms of private addresses from DNS', async () => {
    snapshot();
    const { resolve } = mapResolver({
      'mapped.example': ['::ffff:192.168.0.10'],
      'nat64.example': ['64:ff9b::a9fe:a9fe'],
    });
    const fetch = createSafeFetch({ resolve });
    await expectCode(fetch('https://mapped.example/doc'), 'ERR_FETCH_FORBIDDEN_ADDRESS');
    await expectCode(fetch('https://nat64.example/doc'), 'ERR_FETCH_FORBIDDEN_ADDRESS');
  });

  it('fails with ERR_FETCH_FAILED when the name does not resolve', async () => {
    snapshot();
    const fetch = createSafeFetch({ resolve: async () => [] });
    await expectCode(fetch('https://nothing.example/doc'), 'ERR_FETCH_FAILED');
    const failing = createSafeFetch({
      resolve: async () => {
        throw new Error('ENOTFOUND');
      },
    });
    await expectCode(failing('https://nothing.example/doc'), 'ERR_FETCH_FAILED');
  });
});

describe('createSafeFetch — private networks allowed (development)', () => {
  const fetch = createSafeFetch({ allowPrivateNetworks: true, timeoutMs: 2000 });

  it('fetches over http from loopback and reports status, headers, final url and text', async () => {
    const response = await fetch(server.url('/doc'), { accept: 'application/json' });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('application/json');
    expect(response.url).toBe(server.url('/doc'));
    expect(JSON.parse(response.text)).toEqual({ hello: 'world' });
    const headers = server.lastHeaders('/doc');
    expect(headers?.accept).toBe('application/json');
    expect(headers?.cookie).toBeUndefined();
    expect(headers?.authorization).toBeUndefined();
  });

  it('returns non-200 answers as they are', async () => {
    const response = await fetch(server.url('/missing'));
    expect(response.status).toBe(404);
  });

  it('connects to the resolved address while keeping the name in Host', async () => {
    const { resolve } = mapResolver({ 'cimd.example': ['127.0.0.1'] });
    const pinned = createSafeFetch({ allowPrivateNetworks: true, resolve });
    const response = await pinned(`http://cimd.example:${server.port}/doc`);
    expect(response.status).toBe(200);
    expect(server.lastHeaders('/doc')?.host).toBe(`cimd.example:${server.port}`);
  });

  it('follows relative redirects, resolving each hop again', async () => {
    server.route('/hop', { kind: 'redirect', location: '/doc' });
    server.route('/to-other', { kind: 'redirect', location: `http://other.example:${server.port}/doc` });
    expect((await fetch(server.url('/hop'))).url).toBe(server.url('/doc'));

    const { resolve, asked } = mapResolver({ 'cimd.example': ['127.0.0.1'], 'other.example': ['127.0.0.1'] });
    const response = await createSafeFetch({ allowPrivateNetworks: true, resolve })(
      `http://cimd.example:${server.port}/to-other`,
    );
    expect(response.url).toBe(`http://other.example:${server.port}/doc`);
    expect(asked).toEqual(['cimd.example', 'other.example']);
  });

  it('gives up after maxRedirects', async () => {
    server.route('/r1', { kind: 'redirect', location: '/r2' });
    server.route('/r2', { kind: 'redirect', location: '/r3' });
    server.route('/r3', { kind: 'redirect', location: '/doc' });
    const limited = createSafeFetch({ allowPrivateNetworks: true, maxRedirects: 2 });
    await expectCode(limited(server.url('/r1')), 'ERR_FETCH_TOO_MANY_REDIRECTS');
    expect((await limited(server.url('/r2'))).status).toBe(200);
    // A call can only tighten the limit.
    await expectCode(limited(server.url('/r3'), { maxRedirects: 0 }), 'ERR_FETCH_TOO_MANY_REDIRECTS');
    await expectCode(limited(server.url('/r1'), { maxRedirects: 10 }), 'ERR_FETCH_TOO_MANY_REDIRECTS');
  });

  it('refuses a body larger than maxBytes, declared or streamed', async () => {
    server.route('/big-declared', { kind: 'respond', body: 'x'.repeat(2048) });
    server.route('/big-streamed', { kind: 'stream', bytes: 1024 * 1024 });
    const small = createSafeFetch({ allowPrivateNetworks: true, maxBytes: 1024 });
    await expectCode(small(server.url('/big-declared')), 'ERR_FETCH_TOO_LARGE');
    await expectCode(small(server.url('/big-streamed')), 'ERR_FETCH_TOO_LARGE');
    await expectCode(fetch(server.url('/big-declared'), { maxBytes: 100 }), 'ERR_FETCH_TOO_LARGE');
    expect((await fetch(server.url('/big-declared'))).text).toHaveLength(2048);
  });

  it('times out on a server that never answers', async () => {
    server.route('/hang', { kind: 'hang' });
    const impatient = createSafeFetch({ allowPrivateNetworks: true, timeoutMs: 200 });
    await expectCode(impatient(server.url('/hang')), 'ERR_FETCH_TIMEOUT');
  });

  it('times out while resolving', async () => {
    const slow = createSafeFetch({
      allowPrivateNetworks: true,
      timeoutMs: 100,
      resolve: () => new Promise<string[]>(() => undefined),
    });
    await expectCode(slow('http://slow.example/doc'), 'ERR_FETCH_TIMEOUT');
  });

  it('fails with ERR_FETCH_FAILED when the connection drops mid-body', async () => {
    server.route('/truncated', { kind: 'truncate' });
    await expectCode(fetch(server.url('/truncated')), 'ERR_FETCH_FAILED');
  });

  it('fails with ERR_FETCH_FAILED when nothing listens', async () => {
    const closed = await startLoopbackServer();
    const url = closed.url('/doc');
    await closed.close();
    await expectCode(fetch(url), 'ERR_FETCH_FAILED');
  });
});

describe('createSafeFetch — https with pinning', () => {
  let tlsServer: LoopbackServer;

  beforeAll(async () => {
    tlsServer = await startLoopbackServer({ tls: true });
    tlsServer.route('/doc', { kind: 'json', body: { tls: true } });
    tlsServer.route('/downgrade', {
      kind: 'redirect',
      location: `http://cimd.example:${tlsServer.port}/doc`,
    });
    tlsServer.route('/to-internal', { kind: 'redirect', location: 'https://internal.example/doc' });
    tlsServer.route('/to-metadata', {
      kind: 'redirect',
      location: 'https://169.254.169.254/latest/meta-data/',
    });
  });

  afterAll(async () => {
    await tlsServer.close();
  });

  // 127.0.0.1 is let through by exact address so a loopback server can stand in for a public host; every
  // other special-use address stays refused, and http stays refused because private networks are not allowed.
  const resolver = mapResolver({
    'cimd.example': ['127.0.0.1'],
    'other.example': ['127.0.0.1'],
    'internal.example': ['10.0.0.5'],
  });
  const fetch = createSafeFetch({
    resolve: resolver.resolve,
    allowAddresses: ['127.0.0.1'],
    ca: TEST_TLS_CERT,
  });

  it('verifies the certificate against the name (SNI) while connecting to the pinned address', async () => {
    const response = await fetch(`https://cimd.example:${tlsServer.port}/doc`);
    expect(response.status).toBe(200);
    expect(JSON.parse(response.text)).toEqual({ tls: true });
    expect(tlsServer.lastHeaders('/doc')?.host).toBe(`cimd.example:${tlsServer.port}`);
  });

  it('fails the TLS handshake when the name is not on the certificate', async () => {
    const wrongName = createSafeFetch({
      resolve: async () => ['127.0.0.1'],
      allowAddresses: ['127.0.0.1'],
      ca: TEST_TLS_CERT,
    });
    await expectCode(wrongName(`https://wrong.example:${tlsServer.port}/doc`), 'ERR_FETCH_FAILED');
  });

  it('fails without the test CA: the default trust store is used', async () => {
    const untrusted = createSafeFetch({ resolve: resolver.resolve, allowAddresses: ['127.0.0.1'] });
    await expectCode(untrusted(`https://cimd.example:${tlsServer.port}/doc`), 'ERR_FETCH_FAILED');
  });

  it('refuses a redirect from https to http', async () => {
    const before = tlsServer.requests('/doc');
    await expectCode(fetch(`https://cimd.example:${tlsServer.port}/downgrade`), 'ERR_FETCH_SCHEME');
    expect(tlsServer.requests('/downgrade')).toBe(1);
    expect(tlsServer.requests('/doc')).toBe(before);
  });

  it('re-validates every redirect hop against the address rules', async () => {
    await expectCode(
      fetch(`https://cimd.example:${tlsServer.port}/to-internal`),
      'ERR_FETCH_FORBIDDEN_ADDRESS',
    );
    await expectCode(
      fetch(`https://cimd.example:${tlsServer.port}/to-metadata`),
      'ERR_FETCH_FORBIDDEN_ADDRESS',
    );
    expect(resolver.asked).toContain('internal.example');
  });
});
