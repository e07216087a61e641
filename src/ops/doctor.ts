import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { decodeJwt, decodeProtectedHeader, type JWTPayload, type ProtectedHeaderParameters } from 'jose';
import { buildVerifier, gatewayUrls } from '../app.js';
import { isLoopbackHost, productionIssues, secretWeakness } from '../config/production.js';
import type { GatehouseConfig, Hs256VerifierConfig, JwksVerifierConfig } from '../config/schema.js';
import { createSealer } from '../crypto/seal.js';
import { loadSecretKey, SECRET_KEY_FILE } from '../crypto/secret-key.js';
import { isGatehouseError } from '../errors/gatehouse-error.js';
import { OAuthError } from '../errors/oauth-error.js';
import { createMemoryStores } from '../stores/memory/index.js';
import type { SigningKeyStore, Stores } from '../stores/ports.js';
import { createSqliteStores } from '../stores/sqlite/index.js';
import { describeSecret } from '../tokens/fingerprint.js';
import { createKeyStore, type KeyStore } from '../tokens/keys.js';
import { createLocalVerifier } from '../tokens/local-verifier.js';
import type { TokenVerifier } from '../tokens/verifier.js';
import { type Clock, systemClock } from './clock.js';

export type DoctorStatus = 'ok' | 'warn' | 'fail';

/** One finding. Never carries a secret or a token: secrets appear as length and fingerprint only. */
export interface DoctorCheck {
  /** Stable id: `config`, `production`, `store`, `secretKey`, `signingKeys`, `verifier:<name>`, … */
  readonly id: string;
  readonly status: DoctorStatus;
  readonly summary: string;
  readonly details?: Record<string, unknown>;
  /** What to do next. */
  readonly hints?: readonly string[];
}

export interface DoctorReport {
  /** False when any check failed. */
  readonly ok: boolean;
  /** `undefined` when the configuration did not load. */
  readonly mode: GatehouseConfig['mode'] | undefined;
  readonly checks: readonly DoctorCheck[];
}

export interface DoctorOptions {
  /** A token to decode, route and verify. Never echoed. */
  readonly token?: string | undefined;
  /** Fingerprints the operator expects, by verifier name (or `secretKey`), e.g. from the other deployment. */
  readonly expectFingerprints?: ReadonlyMap<string, string> | undefined;
  readonly clock?: Clock | undefined;
  /** Largest tolerated difference between an issuer's `Date` header and the local clock, in ms. Default 30 s. */
  readonly maxClockSkewMs?: number | undefined;
}

/** Default for {@link DoctorOptions.maxClockSkewMs}: `Date` headers have one-second resolution. */
export const DEFAULT_MAX_CLOCK_SKEW_MS = 30_000;

const FINGERPRINT = /^(?:sha256:)?([0-9a-f]{8,64})$/;

/** Normalises `sha256:ABCDEF…` / `abcdef…` to `sha256:abcdef…`; `undefined` when it is not a fingerprint. */
export function parseFingerprint(input: string): string | undefined {
  const match = FINGERPRINT.exec(input.trim().toLowerCase());
  return match?.[1] === undefined ? undefined : `sha256:${match[1]}`;
}

/** Fingerprints match when one hex string starts with the other (a full `sha256sum` matches the 12-digit form). */
function sameFingerprint(a: string, b: string): boolean {
  const x = a.slice('sha256:'.length);
  const y = b.slice('sha256:'.length);
  return x.length <= y.length ? y.startsWith(x) : x.startsWith(y);
}

/**
 * Checks a deployment without changing it: configuration, production readiness, store, secret key,
 * signing keys, each verifier (HS256 fingerprint; JWKS reachability, key ids, issuer metadata, clock
 * skew), the authorization server, expected fingerprints and, optionally, one token.
 *
 * @example
 * const report = await runDoctor(config, { token, expectFingerprints: new Map([['supabase', 'sha256:…']]) });
 */
export async function runDoctor(config: GatehouseConfig, options: DoctorOptions = {}): Promise<DoctorReport> {
  const clock = options.clock ?? systemClock;
  const maxSkewMs = options.maxClockSkewMs ?? DEFAULT_MAX_CLOCK_SKEW_MS;
  const checks: DoctorCheck[] = [];
  const urls = gatewayUrls(config);

  checks.push({
    id: 'config',
    status: 'ok',
    summary: `configuration loads (mode ${config.mode}, store ${config.store.kind}, ${config.auth.verifiers.length} external verifier(s))`,
  });
  checks.push(productionCheck(config));

  const opened = await storeCheck(config, clock);
  checks.push(opened.check);
  const secret = secretKeyCheck(config);
  checks.push(secret.check);
  let keys: KeyStore | undefined;
  if (opened.stores !== undefined && secret.key !== undefined) {
    const loaded = await signingKeysCheck(opened.stores, secret.key, config, clock);
    checks.push(loaded.check);
    keys = loaded.keys;
  }

  try {
    const hs256Fingerprints = new Map<string, { length: number; fingerprint: string }>();
    for (const verifier of config.auth.verifiers) {
      if (verifier.kind === 'hs256') {
        const described = hs256Check(verifier);
        checks.push(described.check);
        if (described.secret !== undefined) hs256Fingerprints.set(verifier.name, described.secret);
      } else {
        checks.push(...(await jwksChecks(verifier, clock, maxSkewMs)));
      }
    }
    if (config.authorizationServer.enabled) checks.push(...(await authorizationServerChecks(config, urls)));

    const fingerprints = new Map(hs256Fingerprints);
    if (secret.described !== undefined) fingerprints.set('secretKey', secret.described);
    for (const [name, expected] of options.expectFingerprints ?? []) {
      checks.push(expectationCheck(name, expected, fingerprints));
    }

    if (options.token !== undefined) {
      const verifiers: TokenVerifier[] = [];
      if (keys !== undefined) {
        verifiers.push(
          createLocalVerifier({
            keys,
            issuer: urls.issuer,
            audience: urls.resource,
            clockToleranceSeconds: config.auth.clockToleranceSeconds,
            clock,
          }),
        );
      }
      for (const verifier of config.auth.verifiers) {
        try {
          verifiers.push(buildVerifier(verifier, config, clock));
        } catch {
          // Reported by the verifier's own check.
        }
      }
      checks.push(
        await tokenCheck(options.token, verifiers, hs256Fingerprints, options.expectFingerprints, clock),
      );
    }
  } finally {
    await opened.stores?.close();
  }
  return { ok: !checks.some((check) => check.status === 'fail'), mode: config.mode, checks };
}

function productionCheck(config: GatehouseConfig): DoctorCheck {
  const issues = productionIssues(config);
  if (issues.length === 0) {
    return { id: 'production', status: 'ok', summary: 'nothing production mode would refuse' };
  }
  const production = config.mode === 'production';
  return {
    id: 'production',
    status: production ? 'fail' : 'warn',
    summary: production
      ? `production mode refuses to start: ${issues.map((issue) => issue.code).join(', ')}`
      : `fine for development; production mode would refuse: ${issues.map((issue) => issue.code).join(', ')}`,
    details: { issues },
    hints: issues.map((issue) => `${issue.path}: ${issue.message}`),
  };
}

function modeOf(path: string): number | undefined {
  try {
    return statSync(path).mode & 0o777;
  } catch {
    return undefined;
  }
}

const octal = (mode: number) => `0${mode.toString(8)}`;

async function storeCheck(
  config: GatehouseConfig,
  clock: Clock,
): Promise<{ check: DoctorCheck; stores?: Stores }> {
  if (config.store.kind === 'memory') {
    return {
      check: { id: 'store', status: 'warn', summary: 'memory store: nothing survives a restart' },
      stores: createMemoryStores(),
    };
  }
  const dataDir = config.dataDir;
  const path = config.store.path ?? join(dataDir, 'gatehouse.db');
  const hints: string[] = [];
  const details: Record<string, unknown> = { kind: 'sqlite', path };
  if (!existsSync(path)) {
    return {
      check: {
        id: 'store',
        status: 'warn',
        summary: `no database at ${path} yet (gatehouse serve creates it)`,
        details,
      },
    };
  }
  const dirMode = modeOf(dataDir);
  const fileMode = modeOf(path);
  if (dirMode !== undefined) details.dataDirMode = octal(dirMode);
  if (fileMode !== undefined) details.fileMode = octal(fileMode);
  if (dirMode !== undefined && (dirMode & 0o077) !== 0) hints.push(`chmod 700 ${dataDir}`);
  if (fileMode !== undefined && (fileMode & 0o077) !== 0) hints.push(`chmod 600 ${path}`);
  let stores: Stores;
  try {
    stores = createSqliteStores({ path });
    await stores.sessions.get('gatehouse-doctor-probe', clock.now());
  } catch (error) {
    return {
      check: {
        id: 'store',
        status: 'fail',
        summary: `cannot read the SQLite store at ${path}: ${error instanceof Error ? error.message : String(error)}`,
        details,
      },
    };
  }
  return {
    check: {
      id: 'store',
      status: hints.length > 0 ? 'warn' : 'ok',
      summary:
        hints.length > 0
          ? `SQLite store readable, but others may read it (${[details.dataDirMode, details.fileMode].join(', ')})`
          : `SQLite store at ${path} answers`,
      details,
      ...(hints.length > 0 && { hints }),
    },
    stores,
  };
}

function secretKeyCheck(config: GatehouseConfig): {
  check: DoctorCheck;
  key?: Uint8Array;
  described?: { length: number; fingerprint: string };
} {
  const configured = config.authorizationServer.secretKey;
  const file = join(config.dataDir, SECRET_KEY_FILE);
  if (configured === undefined && config.store.kind === 'memory') {
    return {
      check: {
        id: 'secretKey',
        status: 'warn',
        summary: 'ephemeral: a new secret key every start (memory store)',
      },
    };
  }
  if (configured === undefined && !existsSync(file)) {
    return {
      check: {
        id: 'secretKey',
        status: 'warn',
        summary: `not generated yet (gatehouse serve writes ${file})`,
      },
    };
  }
  try {
    const loaded = loadSecretKey({ configured, dataDir: config.dataDir });
    const described = describeSecret(loaded.key);
    const mode = loaded.source === 'configured' ? undefined : modeOf(file);
    const loose = mode !== undefined && (mode & 0o077) !== 0;
    return {
      check: {
        id: 'secretKey',
        status: loose ? 'warn' : 'ok',
        summary: `${loaded.source === 'configured' ? 'configured' : `file ${file}`}: ${described.length} bytes, ${described.fingerprint}`,
        details: {
          source: loaded.source,
          ...described,
          ...(mode !== undefined && { fileMode: octal(mode) }),
        },
        ...(loose && { hints: [`chmod 600 ${file}`] }),
      },
      key: loaded.key,
      described,
    };
  } catch (error) {
    return {
      check: {
        id: 'secretKey',
        status: 'fail',
        summary: error instanceof Error ? error.message : 'the secret key cannot be read',
      },
    };
  }
}

/** Marks the point where `createKeyStore` would write: the doctor never changes the deployment. */
class WouldWrite extends Error {}

function readOnly(store: SigningKeyStore): SigningKeyStore {
  return {
    list: (now) => store.list(now),
    create: () => Promise.reject(new WouldWrite()),
    deleteExpired: () => Promise.resolve(0),
  };
}

async function signingKeysCheck(
  stores: Stores,
  secretKey: Uint8Array,
  config: GatehouseConfig,
  clock: Clock,
): Promise<{ check: DoctorCheck; keys?: KeyStore }> {
  try {
    const records = await stores.signingKeys.list(clock.now());
    const keys = await createKeyStore({
      store: readOnly(stores.signingKeys),
      sealer: createSealer([secretKey]),
      clock,
      rotationMs: config.authorizationServer.signingKeyRotationSeconds * 1000,
    });
    const list = records.map((record) => ({
      kid: record.kid,
      alg: record.alg,
      createdAt: new Date(record.createdAt).toISOString(),
      retiresAt: new Date(record.retiresAt).toISOString(),
    }));
    return {
      check: {
        id: 'signingKeys',
        status: 'ok',
        summary: `${list.length} key(s); signing with ${keys.describe().kid} (retires ${keys.describe().retiresAt})`,
        details: { keys: list },
      },
      keys,
    };
  } catch (error) {
    if (error instanceof WouldWrite) {
      return {
        check: {
          id: 'signingKeys',
          status: 'warn',
          summary: 'no current signing key (gatehouse serve generates one on start)',
        },
      };
    }
    if (isGatehouseError(error, 'ERR_KEY_INVALID')) {
      return {
        check: {
          id: 'signingKeys',
          status: 'fail',
          summary: error.message,
          hints: [
            'the stored keys were sealed with another secret key: compare secret-key fingerprints across instances with --expect-fingerprint secretKey=<fingerprint>',
          ],
        },
      };
    }
    return {
      check: {
        id: 'signingKeys',
        status: 'fail',
        summary: `cannot load the signing keys: ${error instanceof Error ? error.message : String(error)}`,
      },
    };
  }
}

function hs256Check(verifier: Hs256VerifierConfig): {
  check: DoctorCheck;
  secret?: { length: number; fingerprint: string };
} {
  const id = `verifier:${verifier.name}`;
  if (verifier.secret === undefined) {
    return { check: { id, status: 'fail', summary: 'HS256 secret was not loaded' } };
  }
  const secret = describeSecret(verifier.secret);
  const weakness = secretWeakness(verifier.secret);
  const scope = `issuer ${verifier.issuer ?? '(any)'}, audience ${[verifier.audience].flat().join(' ')}`;
  return {
    check: {
      id,
      status: weakness === undefined ? 'ok' : 'warn',
      summary: `HS256 secret: ${secret.length} bytes, ${secret.fingerprint}; ${scope}${
        weakness === undefined
          ? ''
          : ` (${weakness === 'dev_secret' ? 'a published development secret' : 'a weak secret'})`
      }`,
      details: { kind: 'hs256', ...secret, issuer: verifier.issuer ?? null, audience: verifier.audience },
    },
    secret,
  };
}

interface Fetched {
  readonly status: number;
  readonly body: unknown;
  /** Issuer clock minus local clock, in ms, from the `Date` header; `undefined` without one. */
  readonly skewMs: number | undefined;
}

async function fetchJson(url: string, timeoutMs: number, clock: Clock): Promise<Fetched> {
  const started = clock.now();
  const response = await fetch(url, {
    headers: { accept: 'application/json' },
    signal: AbortSignal.timeout(timeoutMs),
  });
  const ended = clock.now();
  const date = Date.parse(response.headers.get('date') ?? '');
  let body: unknown;
  try {
    body = await response.json();
  } catch {
    body = undefined;
  }
  return {
    status: response.status,
    body,
    skewMs: Number.isNaN(date) ? undefined : date - (started + ended) / 2,
  };
}

function describeFetchError(error: unknown): string {
  if (error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError'))
    return 'timed out';
  const cause = (error as { cause?: { code?: unknown } } | null)?.cause?.code;
  return typeof cause === 'string' ? cause : error instanceof Error ? error.message : String(error);
}

function skewCheck(id: string, source: string, skewMs: number | undefined, maxSkewMs: number): DoctorCheck {
  if (skewMs === undefined) {
    return { id, status: 'warn', summary: `${source} sent no Date header; clock skew unknown` };
  }
  const seconds = Math.round(skewMs / 1000);
  const ahead = seconds >= 0 ? 'ahead of' : 'behind';
  const text = `${source} clock is ${Math.abs(seconds)} s ${ahead} this machine`;
  return Math.abs(skewMs) > maxSkewMs
    ? {
        id,
        status: 'warn',
        summary: `clock skew: ${text} (more than ${Math.round(maxSkewMs / 1000)} s)`,
        details: { skewSeconds: seconds },
        hints: ['tokens may be refused as expired or not yet valid: synchronise the clocks (NTP)'],
      }
    : { id, status: 'ok', summary: text, details: { skewSeconds: seconds } };
}

async function jwksChecks(
  verifier: JwksVerifierConfig,
  clock: Clock,
  maxSkewMs: number,
): Promise<DoctorCheck[]> {
  const id = `verifier:${verifier.name}`;
  const checks: DoctorCheck[] = [];
  let skewMs: number | undefined;
  try {
    const fetched = await fetchJson(verifier.jwksUrl, verifier.timeoutMs, clock);
    skewMs = fetched.skewMs;
    const keys = (fetched.body as { keys?: unknown } | undefined)?.keys;
    if (fetched.status !== 200 || !Array.isArray(keys)) {
      checks.push({
        id,
        status: 'fail',
        summary: `JWKS at ${verifier.jwksUrl} answered ${fetched.status}${Array.isArray(keys) ? '' : ' without a key set'}`,
      });
    } else {
      const described = keys.map((key: Record<string, unknown>) => ({
        kid: typeof key.kid === 'string' ? key.kid : null,
        kty: typeof key.kty === 'string' ? key.kty : null,
        alg: typeof key.alg === 'string' ? key.alg : null,
      }));
      const accepted: readonly string[] = verifier.algorithms;
      const usable = described.filter((key) => key.alg === null || accepted.includes(key.alg));
      checks.push({
        id,
        status: usable.length > 0 ? 'ok' : 'fail',
        summary:
          usable.length > 0
            ? `JWKS reachable: ${described.length} key(s), kids ${described.map((key) => key.kid ?? '(none)').join(', ')}; algorithms ${[...new Set(described.map((key) => key.alg ?? '(unspecified)'))].join(', ')}`
            : `JWKS has no key for the accepted algorithms ${accepted.join(', ')}`,
        details: {
          kind: 'jwks',
          jwksUrl: verifier.jwksUrl,
          keys: described,
          algorithms: verifier.algorithms,
        },
      });
    }
  } catch (error) {
    checks.push({
      id,
      status: 'fail',
      summary: `JWKS at ${verifier.jwksUrl} unreachable (${describeFetchError(error)}); tokens from ${verifier.issuer} get 503`,
    });
  }

  const metadata = await issuerMetadata(verifier.issuer, verifier.timeoutMs, clock);
  if (metadata === undefined) {
    checks.push({
      id: `metadata:${verifier.name}`,
      status: 'warn',
      summary: `no issuer metadata reachable for ${verifier.issuer} (openid-configuration, oauth-authorization-server)`,
    });
  } else {
    skewMs ??= metadata.skewMs;
    const doc = metadata.body as { issuer?: unknown; jwks_uri?: unknown };
    const problems: string[] = [];
    if (doc.issuer !== verifier.issuer) problems.push(`it names issuer ${String(doc.issuer)}`);
    if (typeof doc.jwks_uri === 'string' && doc.jwks_uri !== verifier.jwksUrl) {
      problems.push(`its jwks_uri is ${doc.jwks_uri}`);
    }
    checks.push({
      id: `metadata:${verifier.name}`,
      status: problems.length > 0 ? (doc.issuer !== verifier.issuer ? 'fail' : 'warn') : 'ok',
      summary:
        problems.length > 0
          ? `issuer metadata at ${metadata.url} disagrees with the configuration: ${problems.join('; ')}`
          : `issuer metadata at ${metadata.url} matches`,
    });
  }
  checks.push(skewCheck(`clock:${verifier.name}`, verifier.name, skewMs, maxSkewMs));
  return checks;
}

async function issuerMetadata(
  issuer: string,
  timeoutMs: number,
  clock: Clock,
): Promise<(Fetched & { url: string }) | undefined> {
  let candidates: string[];
  try {
    const parsed = new URL(issuer);
    const path = parsed.pathname.replace(/\/+$/, '');
    candidates = [
      `${parsed.origin}${path}/.well-known/openid-configuration`,
      `${parsed.origin}/.well-known/oauth-authorization-server${path}`,
    ];
  } catch {
    return undefined;
  }
  for (const url of candidates) {
    try {
      const fetched = await fetchJson(url, timeoutMs, clock);
      if (fetched.status === 200 && typeof fetched.body === 'object' && fetched.body !== null) {
        return { ...fetched, url };
      }
    } catch {
      // Try the next form.
    }
  }
  return undefined;
}

async function authorizationServerChecks(
  config: GatehouseConfig,
  urls: ReturnType<typeof gatewayUrls>,
): Promise<DoctorCheck[]> {
  const checks: DoctorCheck[] = [];
  const publicUrl = new URL(urls.publicUrl);
  const problems: string[] = [];
  if (publicUrl.protocol !== 'https:' && !isLoopbackHost(publicUrl.hostname)) {
    problems.push(`public URL ${urls.publicUrl} is not https`);
  }
  if (!urls.issuer.startsWith(urls.publicUrl)) {
    problems.push(`issuer ${urls.issuer} is not under the public URL ${urls.publicUrl}`);
  }
  if (config.server.publicUrl === undefined)
    problems.push('server.publicUrl is not set (derived from host and port)');
  checks.push({
    id: 'authorizationServer',
    status: problems.length > 0 ? 'warn' : 'ok',
    summary: problems.length > 0 ? problems.join('; ') : `issuer ${urls.issuer}, resource ${urls.resource}`,
    details: { publicUrl: urls.publicUrl, issuer: urls.issuer, resource: urls.resource },
  });
  const federation = config.authorizationServer.federation;
  if (federation !== undefined) {
    const metadata = await issuerMetadata(federation.issuer, federation.timeoutMs, systemClock);
    const issuer = (metadata?.body as { issuer?: unknown } | undefined)?.issuer;
    checks.push(
      metadata === undefined
        ? {
            id: 'federation',
            status: 'fail',
            summary: `federation issuer ${federation.issuer} unreachable: no discovery document; sign-in will fail`,
          }
        : issuer !== federation.issuer
          ? {
              id: 'federation',
              status: 'fail',
              summary: `federation discovery at ${metadata.url} names issuer ${String(issuer)}, not ${federation.issuer}`,
            }
          : { id: 'federation', status: 'ok', summary: `federation issuer ${federation.issuer} reachable` },
    );
  }
  return checks;
}

function expectationCheck(
  name: string,
  expected: string,
  fingerprints: ReadonlyMap<string, { length: number; fingerprint: string }>,
): DoctorCheck {
  const id = `fingerprint:${name}`;
  const actual = fingerprints.get(name);
  if (actual === undefined) {
    return {
      id,
      status: 'fail',
      summary: `nothing named "${name}" has a fingerprint here (known: ${[...fingerprints.keys()].join(', ') || 'none'})`,
    };
  }
  return sameFingerprint(expected, actual.fingerprint)
    ? { id, status: 'ok', summary: `${name}: ${actual.fingerprint} as expected` }
    : {
        id,
        status: 'fail',
        summary: `${name}: fingerprint mismatch: configured ${actual.fingerprint} (${actual.length} bytes), expected ${expected}`,
        details: { configured: actual.fingerprint, expected },
      };
}

interface Attempt {
  readonly verifier: string;
  readonly result: 'verified' | 'rejected' | 'unavailable';
  readonly reason?: string;
}

async function tokenCheck(
  token: string,
  verifiers: readonly TokenVerifier[],
  hs256: ReadonlyMap<string, { length: number; fingerprint: string }>,
  expectations: ReadonlyMap<string, string> | undefined,
  clock: Clock,
): Promise<DoctorCheck> {
  let header: ProtectedHeaderParameters;
  let payload: JWTPayload;
  try {
    header = decodeProtectedHeader(token);
    payload = decodeJwt(token);
  } catch {
    return {
      id: 'token',
      status: 'fail',
      summary: 'not a well-formed JWT',
      details: { reason: 'malformed' },
    };
  }
  const nowSeconds = clock.now() / 1000;
  const decoded = {
    alg: header.alg ?? null,
    kid: header.kid ?? null,
    typ: header.typ ?? null,
    iss: payload.iss ?? null,
    aud: payload.aud ?? null,
    sub: payload.sub ?? null,
    exp: typeof payload.exp === 'number' ? new Date(payload.exp * 1000).toISOString() : null,
    expiresInSeconds: typeof payload.exp === 'number' ? Math.round(payload.exp - nowSeconds) : null,
  };
  const expiry =
    decoded.expiresInSeconds === null
      ? 'no exp'
      : decoded.expiresInSeconds >= 0
        ? `expires in ${decoded.expiresInSeconds} s`
        : `expired ${-decoded.expiresInSeconds} s ago`;

  const byIssuer = verifiers.filter(
    (verifier) => verifier.issuer !== undefined && verifier.issuer === payload.iss,
  );
  const candidates =
    byIssuer.length > 0 ? byIssuer : verifiers.filter((verifier) => verifier.issuer === undefined);
  if (candidates.length === 0) {
    return {
      id: 'token',
      status: 'fail',
      summary: `no verifier accepts issuer ${String(payload.iss ?? '(none)')} (reason unknown_issuer)`,
      details: { ...decoded, reason: 'unknown_issuer' },
      hints: [
        `configured issuers: ${verifiers.map((verifier) => verifier.issuer ?? `(any, ${verifier.name})`).join(', ')}`,
      ],
    };
  }
  const attempts: Attempt[] = [];
  for (const verifier of candidates) {
    try {
      const principal = await verifier.verify(token);
      return {
        id: 'token',
        status: 'ok',
        summary: `verified by ${verifier.name}: sub ${principal.subject}, issuer ${principal.issuer}, audience ${[payload.aud ?? ''].flat().join(' ')}, ${expiry}`,
        details: { ...decoded, verifier: verifier.name, attempts },
      };
    } catch (error) {
      if (error instanceof OAuthError) {
        attempts.push({ verifier: verifier.name, result: 'rejected', reason: error.reason ?? error.code });
      } else if (isGatehouseError(error, 'ERR_JWKS_UNAVAILABLE')) {
        attempts.push({ verifier: verifier.name, result: 'unavailable', reason: 'jwks_unavailable' });
      } else {
        attempts.push({ verifier: verifier.name, result: 'rejected', reason: 'error' });
      }
    }
  }
  const badSecret = attempts.find(
    (attempt) => attempt.reason === 'bad_signature' && hs256.has(attempt.verifier),
  );
  if (badSecret !== undefined) {
    const configured = hs256.get(badSecret.verifier) as { length: number; fingerprint: string };
    const expected = expectations?.get(badSecret.verifier);
    const hints: string[] = [];
    let summary = `signature does not match the configured secret of verifier ${badSecret.verifier} (${configured.length} bytes, ${configured.fingerprint}); reason bad_signature`;
    if (expected === undefined) {
      hints.push(
        'a token cannot reveal the secret that signed it: fingerprint the secret of the deployment that issued it (gatehouse doctor there, or printf %s "$SECRET" | sha256sum, first 12 hex digits)',
        `then compare: gatehouse doctor --token-file <file> --expect-fingerprint ${badSecret.verifier}=<that fingerprint>`,
      );
    } else if (sameFingerprint(expected, configured.fingerprint)) {
      summary += `; the expected fingerprint ${expected} matches, so the token was signed with yet another secret or altered`;
    } else {
      summary += `; the issuing secret is ${expected} but this deployment has ${configured.fingerprint}: the secrets differ`;
      hints.push(
        `make both deployments use the same secret (configured ${configured.fingerprint}, issuer ${expected})`,
      );
    }
    return {
      id: 'token',
      status: 'fail',
      summary: `${summary}; ${expiry}`,
      details: {
        ...decoded,
        reason: 'bad_signature',
        verifier: badSecret.verifier,
        configuredFingerprint: configured.fingerprint,
        ...(expected !== undefined && { expectedFingerprint: expected }),
        attempts,
      },
      ...(hints.length > 0 && { hints }),
    };
  }
  const first = attempts.find((attempt) => attempt.reason !== 'alg_not_allowed') ?? attempts[0];
  return {
    id: 'token',
    status: 'fail',
    summary: `rejected by ${first?.verifier}: ${first?.reason}; ${expiry}`,
    details: { ...decoded, reason: first?.reason ?? null, attempts },
  };
}
