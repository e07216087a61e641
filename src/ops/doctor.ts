import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { decodeJwt, decodeProtectedHeader, type JWTPayload, type ProtectedHeaderParameters } from 'jose';
import { buildVerifier, gatewayUrls } from '../app.js';
import { isLoopbackHost, productionIssues, secretWeakness } from '../config/production.js';
import type {
  GatehouseConfig,
  Hs256VerifierConfig,
  JwksVerifierConfig,
  SupabaseDownstreamConfig,
} from '../config/schema.js';
import { createSealer } from '../crypto/seal.js';
import { loadSecretKey, SECRET_KEY_FILE } from '../crypto/secret-key.js';
import { isGatehouseError } from '../errors/gatehouse-error.js';
import { OAuthError } from '../errors/oauth-error.js';
import type { FederationConfig } from '../identity/oidc-config.js';
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
  /**
   * Stable id: `config`, `production`, `store`, `secretKey`, `signingKeys`, `verifier:<name>`,
   * `metadata:<name>`, `clock:<name>`, `authorizationServer`, `federation`, `federation:jwks`,
   * `federation:clock`, `fingerprint:<name>`, `token`.
   */
  readonly id: string;
  readonly status: DoctorStatus;
  /** One line for a person; its wording may change. Match on `id`, `status` and `details.reason` instead. */
  readonly summary: string;
  /** Machine-readable facts; a failing network or file check carries a stable `reason` code here. */
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
  /**
   * Fingerprints the operator expects, by verifier name (or `secretKey`), e.g. from the other deployment:
   * `sha256:<hex>` or bare hex, at least 8 digits (a full `sha256sum` works).
   */
  readonly expectFingerprints?: ReadonlyMap<string, string> | undefined;
  /** Time source for clock-skew and expiry checks. Default the system clock. */
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
 * Checks a deployment without changing it: configuration, production readiness, store and secret key
 * (including file permissions), signing keys, each verifier (HS256 fingerprint; JWKS reachability, key
 * ids, issuer metadata, clock skew), the authorization server and its federated identity provider
 * (discovery, JWKS, clock skew), expected fingerprints and, optionally, one token. Never throws for
 * something it checks: an unreachable endpoint or unreadable file is a failing check. `ok` is false
 * when any check failed; `gatehouse doctor` exits 1 then.
 *
 * @example
 * const config = loadConfig({ env: process.env });
 * const report = await runDoctor(config, { token, expectFingerprints: new Map([['supabase', 'sha256:…']]) });
 * for (const check of report.checks) if (check.status !== 'ok') console.warn(check.id, check.summary);
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
    if (config.authorizationServer.enabled) {
      checks.push(authorizationServerCheck(config, urls));
      const federation = config.authorizationServer.federation;
      if (federation !== undefined) checks.push(...(await federationChecks(federation, clock, maxSkewMs)));
    }

    const supabase = config.downstream.supabase;
    const minting = supabase === undefined ? undefined : supabaseMintingCheck(supabase);
    if (minting !== undefined) checks.push(minting.check);

    const fingerprints = new Map(hs256Fingerprints);
    if (secret.described !== undefined) fingerprints.set('secretKey', secret.described);
    if (minting?.secret !== undefined) fingerprints.set('downstream.supabase', minting.secret);
    const expectations = new Map<string, string>();
    for (const [name, wanted] of options.expectFingerprints ?? []) {
      checks.push(expectationCheck(name, wanted, fingerprints));
      const parsed = parseFingerprint(wanted);
      if (parsed !== undefined) expectations.set(name, parsed);
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
      checks.push(await tokenCheck(options.token, verifiers, hs256Fingerprints, expectations, clock));
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

const octal = (mode: number) => `0${mode.toString(8).padStart(3, '0')}`;

type Audience = 'group' | 'others';

/** Who besides the owner may read, write or enter a file or directory with this mode; empty when nobody. */
function exposedTo(mode: number): Audience[] {
  const who: Audience[] = [];
  if ((mode & 0o070) !== 0) who.push('group');
  if ((mode & 0o007) !== 0) who.push('others');
  return who;
}

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
  // A warning, not a failure: what the database holds is hashed (codes, refresh tokens, passwords) or
  // sealed with the secret key (signing keys, upstream tokens), so the file alone gives no secret away.
  const exposures: string[] = [];
  const dirMode = modeOf(dataDir);
  if (dirMode !== undefined) {
    details.dataDirMode = octal(dirMode);
    const who = exposedTo(dirMode);
    if (who.length > 0) {
      details.dataDirExposedTo = who;
      exposures.push(`data directory ${dataDir} is open to ${who.join(' and ')} (${octal(dirMode)})`);
      hints.push(`chmod 700 ${dataDir}`);
    }
  }
  const fileMode = modeOf(path);
  if (fileMode !== undefined) {
    details.fileMode = octal(fileMode);
    const who = exposedTo(fileMode);
    if (who.length > 0) {
      details.fileExposedTo = who;
      exposures.push(`database ${path} is open to ${who.join(' and ')} (${octal(fileMode)})`);
      hints.push(`chmod 600 ${path}`);
    }
  }
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
      status: exposures.length > 0 ? 'warn' : 'ok',
      summary:
        exposures.length > 0
          ? `SQLite store answers, but ${exposures.join('; ')}: other accounts on this host can read its accounts, grants and sessions`
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
    const who = mode === undefined ? [] : exposedTo(mode);
    const base = `${loaded.source === 'configured' ? 'configured' : `file ${file}`}: ${described.length} bytes, ${described.fingerprint}`;
    // The key opens every sealed signing key and upstream token: a copy lets its reader forge Gatehouse's
    // tokens and act upstream as any user. In production mode the doctor fails it, as ssh refuses a
    // readable private key; in development it warns, since a checkout's umask often leaves files 0644.
    const production = config.mode === 'production';
    return {
      check: {
        id: 'secretKey',
        status: who.length === 0 ? 'ok' : production ? 'fail' : 'warn',
        summary:
          mode === undefined || who.length === 0
            ? base
            : `${base}; mode ${octal(mode)} opens it to ${who.join(' and ')}, who could read it and unseal the signing keys and upstream tokens${production ? '' : ' (a failure in production mode)'}`,
        details: {
          source: loaded.source,
          ...described,
          ...(mode !== undefined && { fileMode: octal(mode) }),
          ...(who.length > 0 && { reason: 'file_exposed', exposedTo: who }),
        },
        ...(who.length > 0 && { hints: [`chmod 600 ${file}`] }),
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
  return describedHs256Secret(id, 'HS256 secret', verifier.secret, {
    scope: `issuer ${verifier.issuer ?? '(any)'}, audience ${[verifier.audience].flat().join(' ')}`,
    details: { issuer: verifier.issuer ?? null, audience: verifier.audience },
  });
}

/** An HS256 secret by length and fingerprint, warned about when weak or a published development one. */
function describedHs256Secret(
  id: string,
  label: string,
  value: string,
  context: { scope: string; details: Record<string, unknown> },
): { check: DoctorCheck; secret: { length: number; fingerprint: string } } {
  const secret = describeSecret(value);
  const weakness = secretWeakness(value);
  const note =
    weakness === undefined
      ? ''
      : ` (${weakness === 'dev_secret' ? 'a published development secret' : 'a weak secret'})`;
  return {
    check: {
      id,
      status: weakness === undefined ? 'ok' : 'warn',
      summary: `${label}: ${secret.length} bytes, ${secret.fingerprint}; ${context.scope}${note}`,
      details: { kind: 'hs256', ...secret, ...context.details },
    },
    secret,
  };
}

/**
 * `downstream.supabase`: the secret (or key) Supabase user tokens are minted with, by length and
 * fingerprint (compare with `--expect-fingerprint downstream.supabase=sha256:…` against the project's).
 */
function supabaseMintingCheck(supabase: SupabaseDownstreamConfig): {
  check: DoctorCheck;
  secret?: { length: number; fingerprint: string };
} {
  const id = 'downstream:supabase';
  const scope = `issuer ${supabase.issuer}, ${supabase.ttlSeconds} s tokens, stdio variable ${supabase.env}`;
  if (supabase.secret !== undefined) {
    return describedHs256Secret(id, 'Supabase minting secret (HS256)', supabase.secret, {
      scope,
      details: { issuer: supabase.issuer },
    });
  }
  if (supabase.privateKey !== undefined) {
    const key = describeSecret(supabase.privateKey.trim());
    return {
      check: {
        id,
        status: 'ok',
        summary: `Supabase minting key (${supabase.algorithm}, kid ${supabase.kid ?? '?'}): ${key.length} bytes, ${key.fingerprint}; ${scope}`,
        details: { kind: supabase.algorithm, kid: supabase.kid ?? null, ...key, issuer: supabase.issuer },
      },
      secret: key,
    };
  }
  return { check: { id, status: 'fail', summary: 'the Supabase minting secret or key was not loaded' } };
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

interface DescribedKey {
  readonly kid: string | null;
  readonly kty: string | null;
  readonly alg: string | null;
}

type JwksProbe =
  | { readonly ok: true; readonly keys: readonly DescribedKey[]; readonly skewMs: number | undefined }
  | {
      readonly ok: false;
      readonly reason: 'jwks_unreachable' | 'jwks_http_status' | 'jwks_no_key_set';
      /** Names the URL and what went wrong; the caller adds what it means. */
      readonly problem: string;
      /** `undefined` when nothing answered. */
      readonly answered: { readonly skewMs: number | undefined } | undefined;
    };

/** Fetches a key set and lists its keys (ids and algorithms only); every failure is a value, never thrown. */
async function probeJwks(url: string, timeoutMs: number, clock: Clock): Promise<JwksProbe> {
  let fetched: Fetched;
  try {
    fetched = await fetchJson(url, timeoutMs, clock);
  } catch (error) {
    return {
      ok: false,
      reason: 'jwks_unreachable',
      problem: `JWKS at ${url} unreachable (${describeFetchError(error)})`,
      answered: undefined,
    };
  }
  const keys = (fetched.body as { keys?: unknown } | undefined)?.keys;
  if (fetched.status !== 200 || !Array.isArray(keys)) {
    return {
      ok: false,
      reason: fetched.status !== 200 ? 'jwks_http_status' : 'jwks_no_key_set',
      problem: `JWKS at ${url} answered ${fetched.status}${Array.isArray(keys) ? '' : ' without a key set'}`,
      answered: { skewMs: fetched.skewMs },
    };
  }
  const text = (key: unknown, name: string): string | null => {
    const value = typeof key === 'object' && key !== null ? (key as Record<string, unknown>)[name] : null;
    return typeof value === 'string' ? value : null;
  };
  return {
    ok: true,
    keys: keys.map((key: unknown) => ({
      kid: text(key, 'kid'),
      kty: text(key, 'kty'),
      alg: text(key, 'alg'),
    })),
    skewMs: fetched.skewMs,
  };
}

const kidList = (keys: readonly DescribedKey[]) => keys.map((key) => key.kid ?? '(none)').join(', ');
const algList = (keys: readonly DescribedKey[]) =>
  [...new Set(keys.map((key) => key.alg ?? '(unspecified)'))].join(', ');

async function jwksChecks(
  verifier: JwksVerifierConfig,
  clock: Clock,
  maxSkewMs: number,
): Promise<DoctorCheck[]> {
  const id = `verifier:${verifier.name}`;
  const checks: DoctorCheck[] = [];
  const probe = await probeJwks(verifier.jwksUrl, verifier.timeoutMs, clock);
  let answered = probe.ok || probe.answered !== undefined;
  let skewMs = probe.ok ? probe.skewMs : probe.answered?.skewMs;
  if (!probe.ok) {
    checks.push({
      id,
      status: 'fail',
      summary: `${probe.problem}; tokens from ${verifier.issuer} get 503`,
      details: { kind: 'jwks', jwksUrl: verifier.jwksUrl, reason: probe.reason },
    });
  } else {
    const accepted: readonly string[] = verifier.algorithms;
    const usable = probe.keys.filter((key) => key.alg === null || accepted.includes(key.alg));
    checks.push({
      id,
      status: usable.length > 0 ? 'ok' : 'fail',
      summary:
        usable.length > 0
          ? `JWKS reachable: ${probe.keys.length} key(s), kids ${kidList(probe.keys)}; algorithms ${algList(probe.keys)}`
          : `JWKS at ${verifier.jwksUrl} has no key for the accepted algorithms ${accepted.join(', ')}`,
      details: {
        kind: 'jwks',
        jwksUrl: verifier.jwksUrl,
        keys: probe.keys,
        algorithms: verifier.algorithms,
        ...(usable.length === 0 && { reason: 'jwks_no_usable_key' }),
      },
    });
  }

  const metadata = await issuerMetadata(verifier.issuer, verifier.timeoutMs, clock);
  if (metadata === undefined) {
    checks.push({
      id: `metadata:${verifier.name}`,
      status: 'warn',
      summary: `no issuer metadata reachable for ${verifier.issuer} (openid-configuration, oauth-authorization-server)`,
      details: { reason: 'metadata_unreachable' },
    });
  } else {
    answered = true;
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
      details: {
        url: metadata.url,
        ...(problems.length > 0 && {
          reason: doc.issuer !== verifier.issuer ? 'issuer_mismatch' : 'jwks_uri_mismatch',
        }),
      },
    });
  }
  // With nothing answering there is no Date header to compare; the failures above already say so.
  if (answered) checks.push(skewCheck(`clock:${verifier.name}`, verifier.name, skewMs, maxSkewMs));
  return checks;
}

/** Where OpenID Connect Discovery 1.0 §4 (and oauth4webapi, which signs users in) looks: issuer + path. */
function openidConfigurationUrl(issuer: string): string {
  const parsed = new URL(issuer);
  return `${parsed.origin}${parsed.pathname.replace(/\/+$/, '')}/.well-known/openid-configuration`;
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

function authorizationServerCheck(
  config: GatehouseConfig,
  urls: ReturnType<typeof gatewayUrls>,
): DoctorCheck {
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
  return {
    id: 'authorizationServer',
    status: problems.length > 0 ? 'warn' : 'ok',
    summary: problems.length > 0 ? problems.join('; ') : `issuer ${urls.issuer}, resource ${urls.resource}`,
    details: { publicUrl: urls.publicUrl, issuer: urls.issuer, resource: urls.resource },
  };
}

/**
 * The upstream identity provider as sign-in will meet it: its discovery document (fetched where
 * oauth4webapi fetches it, issuer compared exactly as ID tokens carry it), its key set, and its clock.
 */
async function federationChecks(
  federation: FederationConfig,
  clock: Clock,
  maxSkewMs: number,
): Promise<DoctorCheck[]> {
  const { issuer, timeoutMs } = federation;
  const discoveryUrl = openidConfigurationUrl(issuer);
  const fail = (reason: string, summary: string): DoctorCheck => ({
    id: 'federation',
    status: 'fail',
    summary: `${summary}; sign-in through ${federation.name} will fail`,
    details: { idp: federation.name, issuer, discoveryUrl, reason },
  });
  let discovery: Fetched;
  try {
    discovery = await fetchJson(discoveryUrl, timeoutMs, clock);
  } catch (error) {
    return [
      fail(
        'discovery_unreachable',
        `federation issuer ${issuer} unreachable: GET ${discoveryUrl} failed (${describeFetchError(error)})`,
      ),
    ];
  }
  const clockOf = (skewMs: number | undefined) =>
    skewCheck('federation:clock', `identity provider ${federation.name}`, skewMs, maxSkewMs);
  const doc = discovery.body;
  if (discovery.status !== 200 || typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    return [
      fail(
        'discovery_failed',
        `federation discovery at ${discoveryUrl} answered ${discovery.status}${discovery.status === 200 ? ' without a JSON document' : ''}`,
      ),
      clockOf(discovery.skewMs),
    ];
  }
  const metadata = doc as Record<string, unknown>;
  if (metadata.issuer !== issuer) {
    return [
      fail(
        'issuer_mismatch',
        `federation discovery at ${discoveryUrl} names issuer ${JSON.stringify(metadata.issuer)}, not the configured ${JSON.stringify(issuer)} (compared exactly: a trailing "/" matters)`,
      ),
      clockOf(discovery.skewMs),
    ];
  }
  const missing = ['authorization_endpoint', 'token_endpoint'].filter(
    (field) => typeof metadata[field] !== 'string',
  );
  if (missing.length > 0) {
    return [
      fail('endpoints_missing', `federation discovery at ${discoveryUrl} lacks ${missing.join(' and ')}`),
      clockOf(discovery.skewMs),
    ];
  }
  const checks: DoctorCheck[] = [
    {
      id: 'federation',
      status: 'ok',
      summary: `federation issuer ${issuer} answers discovery at ${discoveryUrl}`,
      details: { idp: federation.name, issuer, discoveryUrl },
    },
  ];
  const jwksUri = metadata.jwks_uri;
  if (typeof jwksUri !== 'string') {
    checks.push({
      id: 'federation:jwks',
      status: 'warn',
      summary:
        'discovery names no jwks_uri: ID-token signatures go unchecked (TLS to the token endpoint only)',
      details: { reason: 'no_jwks_uri' },
    });
    checks.push(clockOf(discovery.skewMs));
    return checks;
  }
  const probe = await probeJwks(jwksUri, timeoutMs, clock);
  if (!probe.ok) {
    checks.push({
      id: 'federation:jwks',
      status: 'fail',
      summary: `${probe.problem}; ID tokens from ${issuer} cannot be verified, so sign-in will fail`,
      details: { jwksUrl: jwksUri, reason: probe.reason },
    });
  } else {
    checks.push({
      id: 'federation:jwks',
      status: probe.keys.length > 0 ? 'ok' : 'fail',
      summary:
        probe.keys.length > 0
          ? `JWKS reachable: ${probe.keys.length} key(s), kids ${kidList(probe.keys)}; algorithms ${algList(probe.keys)}`
          : `JWKS at ${jwksUri} is empty; ID tokens from ${issuer} cannot be verified, so sign-in will fail`,
      details: {
        jwksUrl: jwksUri,
        keys: probe.keys,
        ...(probe.keys.length === 0 && { reason: 'jwks_empty' }),
      },
    });
  }
  checks.push(clockOf(discovery.skewMs));
  return checks;
}

function expectationCheck(
  name: string,
  wanted: string,
  fingerprints: ReadonlyMap<string, { length: number; fingerprint: string }>,
): DoctorCheck {
  const id = `fingerprint:${name}`;
  const actual = fingerprints.get(name);
  const expected = parseFingerprint(wanted);
  if (expected === undefined) {
    return {
      id,
      status: 'fail',
      summary: `the expected fingerprint for "${name}" is not sha256:<hex> (at least 8 hex digits)`,
      details: { reason: 'bad_expectation' },
    };
  }
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
