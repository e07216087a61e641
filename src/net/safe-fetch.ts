import { lookup as dnsLookup } from 'node:dns/promises';
import type { IncomingMessage } from 'node:http';
import * as http from 'node:http';
import * as https from 'node:https';
import type { LookupFunction } from 'node:net';
import { isIP } from 'node:net';
import * as tls from 'node:tls';

/** Stable codes of {@link SafeFetchError}; tests and callers branch on these, never on message text. */
export type SafeFetchErrorCode =
  /** The URL could not be parsed, or carries a username or password. */
  | 'ERR_FETCH_INVALID_URL'
  /** The host resolved to (or is) a loopback, private, link-local or other special-use address. */
  | 'ERR_FETCH_FORBIDDEN_ADDRESS'
  /** A scheme other than `https:` (or `http:` with `allowPrivateNetworks`), or an https→http redirect. */
  | 'ERR_FETCH_SCHEME'
  | 'ERR_FETCH_TIMEOUT'
  /** The body (or its declared `content-length`) exceeded `maxBytes`. */
  | 'ERR_FETCH_TOO_LARGE'
  | 'ERR_FETCH_TOO_MANY_REDIRECTS'
  /** DNS failure, connection refused or reset, TLS failure, malformed response. */
  | 'ERR_FETCH_FAILED';

/** Why an outbound fetch was refused or failed. The message never includes response bodies. */
export class SafeFetchError extends Error {
  override readonly name = 'SafeFetchError';
  readonly code: SafeFetchErrorCode;

  constructor(code: SafeFetchErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.code = code;
  }
}

export interface SafeResponse {
  readonly status: number;
  readonly headers: Headers;
  /** The URL of the final response, after any redirects. */
  readonly url: string;
  /** The body decoded as UTF-8. */
  readonly text: string;
}

export interface SafeFetchInit {
  /** `Accept` header. Default `*\/*`. */
  accept?: string;
  /** Tightens the instance's `maxRedirects` for this call (the lower of the two applies). `0` follows none. */
  maxRedirects?: number;
  /** Tightens the instance's `maxBytes` for this call (the lower of the two applies). */
  maxBytes?: number;
}

/** A GET that refuses special-use addresses, pins the connection to the address it checked, and is bounded. */
export type SafeFetch = (url: string, init?: SafeFetchInit) => Promise<SafeResponse>;

/** Resolves a host name to every address it has (IPv4 and IPv6). */
export type HostResolver = (hostname: string) => Promise<string[]>;

export interface SafeFetchOptions {
  /**
   * Development only: allow loopback, private and other special-use addresses, and `http:` URLs.
   * Never enable in production: it lets anyone who can name a URL reach services behind the firewall.
   * Default `false`.
   */
  allowPrivateNetworks?: boolean;
  /**
   * Exact addresses (IPv4 or IPv6 literals) allowed even though they are special-use, for a known internal
   * host or for tests. Schemes are unaffected: `http:` still needs `allowPrivateNetworks`. Default none.
   */
  allowAddresses?: readonly string[];
  /** Extra trust anchors (PEM) for TLS, such as a private CA; Node's bundled roots stay trusted. */
  ca?: string | readonly string[];
  /** Deadline for the whole fetch, DNS and redirects included, in milliseconds. Default 5000. */
  timeoutMs?: number;
  /** Largest accepted body, in bytes. Default 1 MiB. */
  maxBytes?: number;
  /** Redirects followed before failing; each hop is validated again. Default 3. */
  maxRedirects?: number;
  /** `User-Agent` header. Default `gatehouse`. */
  userAgent?: string;
  /**
   * How host names are resolved; default `dns.lookup` with `all: true`. Tests inject a map
   * (`cimd.example` → `127.0.0.1`) to prove that whatever a name resolves to is checked and pinned.
   */
  resolve?: HostResolver;
}

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

/**
 * Creates an SSRF-safe GET for fetching URLs that outsiders name (client metadata documents, JWKS).
 *
 * Every address a host resolves to must be a public unicast address; the connection is then pinned to
 * the checked addresses through the socket `lookup` hook, so a second DNS answer (DNS rebinding) can
 * never swap in an internal address, while TLS SNI, certificate checks and `Host` still use the name.
 * No cookies, credentials or proxies are ever used. Redirects are followed only up to `maxRedirects`,
 * each hop validated again, and never from https to http.
 *
 * @example
 * ```ts
 * const fetch = createSafeFetch({ timeoutMs: 3000, maxBytes: 5120 });
 * const response = await fetch('https://client.example/metadata.json', { accept: 'application/json' });
 * ```
 */
export function createSafeFetch(options: SafeFetchOptions = {}): SafeFetch {
  const allowPrivate = options.allowPrivateNetworks ?? false;
  const timeoutMs = options.timeoutMs ?? 5000;
  const maxBytes = options.maxBytes ?? 1024 * 1024;
  const maxRedirects = options.maxRedirects ?? 3;
  const userAgent = options.userAgent ?? 'gatehouse';
  const resolve = options.resolve ?? defaultResolve;
  const allowAddresses = new Set(options.allowAddresses ?? []);
  // Built once: a secure context with ~150 roots costs milliseconds, far more than the request itself.
  const secureContext =
    options.ca === undefined
      ? undefined
      : tls.createSecureContext({ ca: [...tls.rootCertificates, ...[options.ca].flat()] });

  const checkUrl = (raw: string | URL, previous?: URL): URL => {
    let url: URL;
    try {
      url = typeof raw === 'string' ? new URL(raw) : raw;
    } catch (cause) {
      throw new SafeFetchError('ERR_FETCH_INVALID_URL', 'The URL is not valid.', { cause });
    }
    if (url.protocol !== 'https:' && !(allowPrivate && url.protocol === 'http:')) {
      throw new SafeFetchError('ERR_FETCH_SCHEME', `The ${url.protocol} scheme is not allowed.`);
    }
    if (previous?.protocol === 'https:' && url.protocol !== 'https:') {
      throw new SafeFetchError('ERR_FETCH_SCHEME', 'A redirect from https to http is not followed.');
    }
    if (url.username !== '' || url.password !== '') {
      throw new SafeFetchError('ERR_FETCH_INVALID_URL', 'The URL must not carry credentials.');
    }
    return url;
  };

  const addressesOf = async (hostname: string): Promise<string[]> => {
    const literal = hostname.startsWith('[') ? hostname.slice(1, -1) : hostname;
    let addresses: string[];
    if (isIP(literal) !== 0) {
      addresses = [literal];
    } else {
      try {
        addresses = await resolve(literal);
      } catch (cause) {
        throw new SafeFetchError('ERR_FETCH_FAILED', `Could not resolve ${literal}.`, { cause });
      }
    }
    if (addresses.length === 0) throw new SafeFetchError('ERR_FETCH_FAILED', `${literal} has no address.`);
    if (!allowPrivate) {
      for (const address of addresses) {
        if (isForbiddenAddress(address) && !allowAddresses.has(address)) {
          throw new SafeFetchError(
            'ERR_FETCH_FORBIDDEN_ADDRESS',
            `${literal} resolves to a special-use address, which is never fetched.`,
          );
        }
      }
    }
    return addresses;
  };

  return async (rawUrl, init = {}) => {
    const redirectLimit = Math.min(maxRedirects, init.maxRedirects ?? maxRedirects);
    const byteLimit = Math.min(maxBytes, init.maxBytes ?? maxBytes);
    const accept = init.accept ?? '*/*';
    const controller = new AbortController();
    const timer = setTimeout(
      () =>
        controller.abort(
          new SafeFetchError('ERR_FETCH_TIMEOUT', `No complete answer within ${timeoutMs} ms.`),
        ),
      timeoutMs,
    );
    try {
      let url = checkUrl(rawUrl);
      for (let hop = 0; ; hop++) {
        const addresses = await raceAbort(addressesOf(url.hostname), controller.signal);
        const response = await request(url, addresses, {
          accept,
          userAgent,
          byteLimit,
          signal: controller.signal,
          secureContext,
        });
        const location = response.headers.get('location');
        if (!REDIRECT_STATUSES.has(response.status) || location === null) return response;
        if (hop >= redirectLimit) {
          throw new SafeFetchError('ERR_FETCH_TOO_MANY_REDIRECTS', `More than ${redirectLimit} redirects.`);
        }
        let next: URL;
        try {
          next = new URL(location, url);
        } catch (cause) {
          throw new SafeFetchError('ERR_FETCH_FAILED', 'A redirect carried an invalid Location.', { cause });
        }
        url = checkUrl(next, url);
      }
    } finally {
      clearTimeout(timer);
    }
  };
}

async function defaultResolve(hostname: string): Promise<string[]> {
  const results = await dnsLookup(hostname, { all: true, verbatim: true });
  return results.map((result) => result.address);
}

function raceAbort<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolvePromise, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolvePromise(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}

/** A socket `lookup` that answers only with addresses already checked, whatever DNS says now. */
function pinnedLookup(addresses: readonly string[]): LookupFunction {
  const entries = addresses.map((address) => ({ address, family: isIP(address) }));
  return (_hostname, options, callback) => {
    const family = options.family === 'IPv4' ? 4 : options.family === 'IPv6' ? 6 : (options.family ?? 0);
    const matching = family === 0 ? entries : entries.filter((entry) => entry.family === family);
    const first = matching[0];
    if (first === undefined) {
      const error: NodeJS.ErrnoException = new Error('No checked address of the requested family.');
      error.code = 'ENOTFOUND';
      callback(error, '');
    } else if (options.all === true) {
      callback(null, matching);
    } else {
      callback(null, first.address, first.family);
    }
  };
}

interface RequestOptions {
  accept: string;
  userAgent: string;
  byteLimit: number;
  signal: AbortSignal;
  secureContext: tls.SecureContext | undefined;
}

function request(url: URL, addresses: readonly string[], options: RequestOptions): Promise<SafeResponse> {
  const { signal, byteLimit } = options;
  return new Promise<SafeResponse>((resolvePromise, reject) => {
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    const hostname = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
    const client = url.protocol === 'https:' ? https : http;
    let settled = false;
    const fail = (error: unknown): void => {
      if (settled) return;
      settled = true;
      signal.removeEventListener('abort', onAbort);
      req.destroy();
      reject(
        error instanceof SafeFetchError
          ? error
          : new SafeFetchError('ERR_FETCH_FAILED', `Fetching ${url.origin} failed.`, { cause: error }),
      );
    };
    const onAbort = (): void => fail(signal.reason);

    const req = client.request({
      protocol: url.protocol,
      hostname,
      port: url.port === '' ? undefined : Number(url.port),
      path: `${url.pathname}${url.search}`,
      method: 'GET',
      headers: { accept: options.accept, 'accept-encoding': 'identity', 'user-agent': options.userAgent },
      // A fresh agent per request: no pooled socket from an earlier resolution, no proxy, no cookies.
      agent: false,
      lookup: pinnedLookup(addresses),
      ...(options.secureContext !== undefined && url.protocol === 'https:'
        ? { secureContext: options.secureContext }
        : {}),
    });
    signal.addEventListener('abort', onAbort, { once: true });
    req.on('error', fail);
    req.on('response', (res: IncomingMessage) => {
      const headers = toHeaders(res.rawHeaders);
      const status = res.statusCode ?? 0;
      const declared = Number(headers.get('content-length') ?? Number.NaN);
      const isRedirect = REDIRECT_STATUSES.has(status) && headers.has('location');
      if (isRedirect) {
        settled = true;
        signal.removeEventListener('abort', onAbort);
        res.destroy();
        req.destroy();
        resolvePromise({ status, headers, url: url.href, text: '' });
        return;
      }
      if (Number.isFinite(declared) && declared > byteLimit) {
        fail(
          new SafeFetchError(
            'ERR_FETCH_TOO_LARGE',
            `The body declares ${declared} bytes; the limit is ${byteLimit}.`,
          ),
        );
        return;
      }
      const chunks: Buffer[] = [];
      let received = 0;
      res.on('data', (chunk: Buffer) => {
        received += chunk.byteLength;
        if (received > byteLimit) {
          fail(new SafeFetchError('ERR_FETCH_TOO_LARGE', `The body exceeds ${byteLimit} bytes.`));
          return;
        }
        chunks.push(chunk);
      });
      res.on('error', fail);
      res.on('close', () => {
        if (!res.complete) fail(new SafeFetchError('ERR_FETCH_FAILED', 'The connection closed mid-body.'));
      });
      res.on('end', () => {
        if (settled) return;
        settled = true;
        signal.removeEventListener('abort', onAbort);
        resolvePromise({ status, headers, url: url.href, text: Buffer.concat(chunks).toString('utf8') });
      });
    });
    req.end();
  });
}

function toHeaders(raw: readonly string[]): Headers {
  const headers = new Headers();
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i];
    const value = raw[i + 1];
    if (name === undefined || value === undefined) continue;
    try {
      headers.append(name, value);
    } catch {
      // A header the Fetch API refuses (invalid name or value) is dropped rather than failing the fetch.
    }
  }
  return headers;
}

/* ----------------------------------------------------------------------------------------------
 * Special-use addresses (RFC 6890 and its successors). Everything not known to be public unicast is
 * refused; IPv4 embedded in IPv6 (mapped, NAT64) is judged as the IPv4 address it carries.
 * -------------------------------------------------------------------------------------------- */

const FORBIDDEN_V4: readonly (readonly [string, number])[] = [
  ['0.0.0.0', 8], // "this network", unspecified
  ['10.0.0.0', 8], // RFC 1918
  ['100.64.0.0', 10], // CGNAT shared space
  ['127.0.0.0', 8], // loopback
  ['169.254.0.0', 16], // link-local, cloud metadata (169.254.169.254)
  ['172.16.0.0', 12], // RFC 1918
  ['192.0.0.0', 24], // IETF protocol assignments
  ['192.0.2.0', 24], // TEST-NET-1
  ['192.88.99.0', 24], // 6to4 relay anycast (deprecated)
  ['192.168.0.0', 16], // RFC 1918
  ['198.18.0.0', 15], // benchmarking
  ['198.51.100.0', 24], // TEST-NET-2
  ['203.0.113.0', 24], // TEST-NET-3
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, and 255.255.255.255 broadcast
];

const FORBIDDEN_V4_RANGES = FORBIDDEN_V4.map(([base, bits]) => {
  const parsed = parseIPv4(base);
  if (parsed === undefined) throw new Error(`bad range ${base}`);
  return { base: parsed, bits };
});

/**
 * Whether `address` (an IPv4 or IPv6 literal, without brackets) is anything but public unicast:
 * loopback, private, link-local, CGNAT, multicast, broadcast, documentation, reserved, unique-local,
 * IPv4-mapped or NAT64 forms of those. Unparsable input counts as forbidden.
 */
export function isForbiddenAddress(address: string): boolean {
  const v4 = parseIPv4(address);
  if (v4 !== undefined) return isForbiddenV4(v4);
  const v6 = parseIPv6(address);
  if (v6 === undefined) return true;
  return isForbiddenV6(v6);
}

function isForbiddenV4(address: number): boolean {
  return FORBIDDEN_V4_RANGES.some(({ base, bits }) => inPrefix32(address, base, bits));
}

function inPrefix32(address: number, base: number, bits: number): boolean {
  const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
  return (address & mask) >>> 0 === (base & mask) >>> 0;
}

function isForbiddenV6(bytes: Uint8Array): boolean {
  const word = (i: number): number => ((bytes[i * 2] ?? 0) << 8) | (bytes[i * 2 + 1] ?? 0);
  const embeddedV4 = (): number =>
    (((bytes[12] ?? 0) << 24) | ((bytes[13] ?? 0) << 16) | ((bytes[14] ?? 0) << 8) | (bytes[15] ?? 0)) >>> 0;
  const firstFive = [0, 1, 2, 3, 4].every((i) => word(i) === 0);
  // ::ffff:a.b.c.d (IPv4-mapped): judged as the IPv4 address.
  if (firstFive && word(5) === 0xffff) return isForbiddenV4(embeddedV4());
  // 64:ff9b::a.b.c.d (RFC 6052 well-known NAT64 prefix, DNS64 networks): judged as the IPv4 address.
  if (word(0) === 0x64 && word(1) === 0xff9b && [2, 3, 4, 5].every((i) => word(i) === 0)) {
    return isForbiddenV4(embeddedV4());
  }
  const first = word(0);
  // Only 2000::/3 is global unicast; ::, ::1, ::/96, fc00::/7, fe80::/10, ff00::/8 and the rest fall outside.
  if ((first & 0xe000) !== 0x2000) return true;
  if (first === 0x2001 && word(1) < 0x0200) return true; // 2001::/23 IETF protocol assignments, Teredo
  if (first === 0x2001 && word(1) === 0x0db8) return true; // 2001:db8::/32 documentation
  if (first === 0x2002) return true; // 6to4, which can embed any IPv4 address
  if ((first & 0xfff0) === 0x3ff0) return true; // 3fff::/20 documentation (RFC 9637)
  return false;
}

function parseIPv4(text: string): number | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  let value = 0;
  for (const part of parts) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(part)) return undefined;
    const octet = Number(part);
    if (octet > 255) return undefined;
    value = value * 256 + octet;
  }
  return value;
}

function parseIPv6(text: string): Uint8Array | undefined {
  if (text.includes('%') || isIP(text) !== 6) return undefined;
  let head = text;
  let tailV4: number | undefined;
  const lastColon = text.lastIndexOf(':');
  if (text.slice(lastColon + 1).includes('.')) {
    tailV4 = parseIPv4(text.slice(lastColon + 1));
    if (tailV4 === undefined) return undefined;
    head = `${text.slice(0, lastColon + 1)}0:0`;
  }
  const halves = head.split('::');
  if (halves.length > 2) return undefined;
  const toWords = (part: string | undefined): number[] =>
    part === undefined || part === '' ? [] : part.split(':').map((w) => Number.parseInt(w, 16));
  const left = toWords(halves[0]);
  const right = toWords(halves[1]);
  const missing = 8 - left.length - right.length;
  if (halves.length === 1 ? missing !== 0 : missing < 0) return undefined;
  const words = [...left, ...new Array<number>(halves.length === 1 ? 0 : missing).fill(0), ...right];
  const bytes = new Uint8Array(16);
  words.forEach((w, i) => {
    bytes[i * 2] = (w >> 8) & 0xff;
    bytes[i * 2 + 1] = w & 0xff;
  });
  if (tailV4 !== undefined) {
    bytes[12] = (tailV4 >>> 24) & 0xff;
    bytes[13] = (tailV4 >>> 16) & 0xff;
    bytes[14] = (tailV4 >>> 8) & 0xff;
    bytes[15] = tailV4 & 0xff;
  }
  return bytes;
}
