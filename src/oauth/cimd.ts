import { OAuthError } from '../errors/oauth-error.js';
import type { SafeFetch, SafeResponse } from '../net/safe-fetch.js';
import { SafeFetchError } from '../net/safe-fetch.js';
import type { Clock } from '../ops/clock.js';
import type { ClientRecord } from '../stores/ports.js';
import { parseClientMetadata, toClientRecord } from './client-metadata.js';

/** Resolves Client ID Metadata Document URLs (draft-ietf-oauth-client-id-metadata-document) to clients. */
/** Who a client lookup is made for, so work it causes elsewhere (a metadata-document fetch) can be limited. */
export interface ClientLookup {
  /** The address of the browser or client whose request needs the client. */
  readonly clientAddress?: string;
}

export interface CimdResolver {
  /** Whether `clientId` is a Client Identifier URL this resolver fetches. */
  isMetadataDocumentUrl(clientId: string): boolean;
  /**
   * The client described by the document at `clientId`, from cache while fresh. `lookup` says who it is
   * resolved for; it reaches `beforeFetch`.
   * @throws OAuthError `invalid_client` with a `reason` (`cimd_invalid_url`, `cimd_fetch_failed`,
   *   `cimd_forbidden_address`, `cimd_too_large`, `cimd_not_json`, `cimd_client_id_mismatch`,
   *   `cimd_invalid_metadata`).
   * @throws whatever `beforeFetch` throws (`GatehouseError` `ERR_RATE_LIMITED` for the limiter).
   */
  resolve(clientId: string, lookup?: ClientLookup): Promise<ClientRecord>;
}

export interface CimdResolverOptions {
  /** The SSRF-safe fetch; its own limits apply too (the lower limit wins). */
  fetch: SafeFetch;
  clock: Clock;
  /** Most documents (and remembered failures) kept; least recently used go first. Default 1000. */
  maxEntries?: number;
  /** Shortest time a document is cached, in milliseconds, whatever its headers say. Default 60 s. */
  minCacheMs?: number;
  /** Longest time a document is cached, in milliseconds, whatever its headers say. Default 24 h. */
  maxCacheMs?: number;
  /** Largest document read, in bytes. Default 5120 (the draft recommends 5 kB). */
  maxBytes?: number;
  /**
   * How long a failed resolution is remembered, in milliseconds, so one bad URL cannot make Gatehouse
   * hammer a host on every authorization request. `0` disables. Default 30 s.
   */
  failureCacheMs?: number;
  /**
   * Called before each outbound fetch — never for a cached answer nor for a fetch already under way — with
   * the document URL and who it is resolved for; what it throws reaches the caller and nothing is fetched.
   * Limits belong here (see `createCimdFetchLimiter`): the draft forbids caching error responses, so a
   * limit is what stops anyone from making Gatehouse fetch URLs on demand. While it refuses, a document
   * that expired less than 10 minutes ago is still served (RFC 5861 `stale-if-error`), so a host budget
   * spent by others does not lock out a client already known. Default: none.
   */
  beforeFetch?: (url: URL, lookup: ClientLookup) => Promise<void>;
}

/** Longest client_id URL accepted, in characters. */
const MAX_URL_LENGTH = 2000;
const DOT_SEGMENT = /^(\.|%2e){1,2}$/i;
const JSON_TYPE = /^application\/([a-z0-9.+-]+\+)?json$/i;
/** How long past its expiry a document may still be served while `beforeFetch` refuses a new fetch. */
const STALE_WHILE_REFUSED_MS = 10 * 60_000;

type CacheEntry =
  | { readonly ok: true; readonly record: ClientRecord; readonly expiresAt: number }
  | { readonly ok: false; readonly error: OAuthError; readonly expiresAt: number };

/**
 * Creates a resolver for Client ID Metadata Documents: fetches the document at the `client_id` URL
 * (Accept: application/json, no redirects followed), requires 200, JSON, and `client_id` equal to the URL
 * by simple string comparison, validates it like a registration, and caches the client for the
 * document's `Cache-Control: max-age` / `Expires`, clamped to `[minCacheMs, maxCacheMs]`. Concurrent
 * resolutions of one URL share one fetch; the cache is a bounded LRU.
 *
 * @example
 * ```ts
 * const cimd = createCimdResolver({ fetch: createSafeFetch({ timeoutMs: 3000 }), clock: systemClock });
 * if (cimd.isMetadataDocumentUrl(clientId)) client = await cimd.resolve(clientId);
 * ```
 */
export function createCimdResolver(options: CimdResolverOptions): CimdResolver {
  const { fetch, clock } = options;
  const maxEntries = options.maxEntries ?? 1000;
  const minCacheMs = options.minCacheMs ?? 60_000;
  const maxCacheMs = options.maxCacheMs ?? 24 * 60 * 60 * 1000;
  const maxBytes = options.maxBytes ?? 5120;
  const failureCacheMs = options.failureCacheMs ?? 30_000;

  const cache = new Map<string, CacheEntry>();
  const inflight = new Map<string, Promise<ClientRecord>>();

  const remember = (clientId: string, entry: CacheEntry): void => {
    cache.delete(clientId);
    cache.set(clientId, entry);
    while (cache.size > maxEntries) {
      const oldest = cache.keys().next();
      if (oldest.done === true) break;
      cache.delete(oldest.value);
    }
  };

  const fetchDocument = async (clientId: string): Promise<ClientRecord> => {
    let response: SafeResponse;
    try {
      // The draft forbids following redirects: the document must live at the client_id URL itself.
      response = await fetch(clientId, { accept: 'application/json', maxRedirects: 0, maxBytes });
    } catch (error) {
      throw fetchFailure(error);
    }
    if (response.status !== 200) {
      throw invalidClient(
        'cimd_fetch_failed',
        `the client metadata document answered HTTP ${response.status}`,
      );
    }
    const type = response.headers.get('content-type')?.split(';')[0]?.trim() ?? '';
    if (!JSON_TYPE.test(type)) {
      throw invalidClient('cimd_not_json', 'the client metadata document is not served as JSON');
    }
    let document: unknown;
    try {
      document = JSON.parse(response.text);
    } catch (cause) {
      throw invalidClient('cimd_not_json', 'the client metadata document is not valid JSON', cause);
    }
    const documentClientId =
      typeof document === 'object' && document !== null
        ? (document as Record<string, unknown>).client_id
        : undefined;
    if (documentClientId !== clientId) {
      throw invalidClient('cimd_client_id_mismatch', 'the document client_id does not match its URL');
    }
    let record: ClientRecord;
    try {
      const metadata = parseClientMetadata(document, { mode: 'metadata-document' });
      record = toClientRecord(metadata, { clientId, createdAt: clock.now() });
    } catch (error) {
      if (error instanceof OAuthError) {
        throw invalidClient(
          'cimd_invalid_metadata',
          `client metadata document: ${error.description ?? error.code}`,
        );
      }
      throw error;
    }
    const now = clock.now();
    remember(clientId, { ok: true, record: freeze(record), expiresAt: now + lifetime(response, now) });
    return record;
  };

  /** Cache lifetime from `Cache-Control`/`Expires`, clamped (the draft lets the AS bound it both ways). */
  const lifetime = (response: SafeResponse, now: number): number => {
    const clamp = (ms: number): number => Math.min(maxCacheMs, Math.max(minCacheMs, ms));
    const directives = parseCacheControl(response.headers.get('cache-control'));
    // `no-store`/`no-cache` still get `minCacheMs`: fetching on every authorization request would make each
    // login an outbound request the document's host can observe and time, and a lever to flood that host.
    if (directives.has('no-store') || directives.has('no-cache')) return minCacheMs;
    const maxAge = directives.get('max-age');
    if (maxAge !== undefined && /^\d+$/.test(maxAge)) return clamp(Number(maxAge) * 1000);
    const expires = response.headers.get('expires');
    if (expires !== null) {
      const expiresAt = Date.parse(expires);
      if (Number.isNaN(expiresAt)) return minCacheMs;
      // Relative to the origin's own Date header when present, so a skewed origin clock doesn't matter.
      const date = Date.parse(response.headers.get('date') ?? '');
      return clamp(expiresAt - (Number.isNaN(date) ? now : date));
    }
    return minCacheMs;
  };

  return {
    isMetadataDocumentUrl: isClientIdentifierUrl,

    async resolve(clientId, lookup = {}) {
      if (!isClientIdentifierUrl(clientId)) {
        throw invalidClient('cimd_invalid_url', 'client_id is not a valid client metadata document URL');
      }
      const cached = cache.get(clientId);
      let stale: ClientRecord | undefined;
      if (cached !== undefined) {
        const now = clock.now();
        if (cached.expiresAt > now) {
          remember(clientId, cached);
          if (cached.ok) return cached.record;
          throw cached.error;
        }
        if (cached.ok && now < cached.expiresAt + STALE_WHILE_REFUSED_MS) stale = cached.record;
        else cache.delete(clientId);
      }
      const pending = inflight.get(clientId);
      if (pending !== undefined) return pending;
      const permitted = async (): Promise<ClientRecord | undefined> => {
        try {
          await options.beforeFetch?.(new URL(clientId), lookup);
          return undefined;
        } catch (error) {
          if (stale !== undefined) return stale;
          throw error;
        }
      };
      // Registered as in flight before the first await, so concurrent resolutions share one permission too.
      const promise = permitted()
        .then((served) => served ?? fetchDocument(clientId))
        .catch((error: unknown) => {
          // A short negative cache: retries within the window fail without another outbound request.
          if (error instanceof OAuthError && failureCacheMs > 0) {
            remember(clientId, { ok: false, error, expiresAt: clock.now() + failureCacheMs });
          }
          throw error;
        })
        .finally(() => inflight.delete(clientId));
      inflight.set(clientId, promise);
      return promise;
    },
  };
}

/**
 * Whether `value` is a Client Identifier URL: `https`, no userinfo, a path, no `.`/`..` segments, no
 * fragment. Compared by simple string comparison afterwards, so only printable ASCII is accepted — a URL
 * parser would otherwise silently rewrite tabs, backslashes or spaces.
 */
export function isClientIdentifierUrl(value: string): boolean {
  if (value.length > MAX_URL_LENGTH || !/^[\x21-\x7e]+$/.test(value) || value.includes('\\')) return false;
  const match = /^https:\/\/([^/?#]+)(\/[^?#]*)(\?[^#]*)?$/.exec(value);
  if (match === null) return false;
  const authority = match[1] ?? '';
  const path = match[2] ?? '';
  if (authority.includes('@')) return false;
  if (path.split('/').some((segment) => DOT_SEGMENT.test(segment))) return false;
  if (!URL.canParse(value)) return false;
  return new URL(value).hostname !== '';
}

function parseCacheControl(header: string | null): Map<string, string | undefined> {
  const directives = new Map<string, string | undefined>();
  for (const part of (header ?? '').split(',')) {
    const [name, value] = part.split('=', 2);
    const key = name?.trim().toLowerCase();
    if (key === undefined || key === '') continue;
    directives.set(key, value?.trim().replace(/^"|"$/g, ''));
  }
  return directives;
}

function fetchFailure(error: unknown): OAuthError {
  if (!(error instanceof SafeFetchError)) {
    return invalidClient('cimd_fetch_failed', 'the client metadata document could not be fetched', error);
  }
  switch (error.code) {
    case 'ERR_FETCH_FORBIDDEN_ADDRESS':
    case 'ERR_FETCH_SCHEME':
      return invalidClient(
        'cimd_forbidden_address',
        'the client metadata document URL is not fetchable',
        error,
      );
    case 'ERR_FETCH_TOO_LARGE':
      return invalidClient('cimd_too_large', 'the client metadata document is too large', error);
    case 'ERR_FETCH_TOO_MANY_REDIRECTS':
      return invalidClient('cimd_fetch_failed', 'the client metadata document URL redirects', error);
    case 'ERR_FETCH_TIMEOUT':
      return invalidClient('cimd_fetch_failed', 'fetching the client metadata document timed out', error);
    default:
      return invalidClient('cimd_fetch_failed', 'the client metadata document could not be fetched', error);
  }
}

function invalidClient(reason: string, description: string, cause?: unknown): OAuthError {
  return new OAuthError('invalid_client', { reason, description, cause });
}

function freeze(record: ClientRecord): ClientRecord {
  Object.freeze(record.redirectUris);
  Object.freeze(record.grantTypes);
  Object.freeze(record.responseTypes);
  Object.freeze(record.metadata);
  return Object.freeze(record);
}
