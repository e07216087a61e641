import { createPrivateKey, type KeyObject } from 'node:crypto';
import { importJWK, type JWK, SignJWT } from 'jose';
import type { SupabaseDownstreamConfig } from '../config/schema.js';
import { GatehouseError } from '../errors/gatehouse-error.js';
import { OAuthError } from '../errors/oauth-error.js';
import type { Principal } from '../identity/principal.js';
import { type Clock, epochSeconds } from '../ops/clock.js';
import type { KeyStore } from '../tokens/keys.js';
import { MIN_SECRET_BYTES } from '../tokens/secret-verifier.js';
import { createTokenSigner, IDENTITY_TOKEN_TYPE, type TokenSigner } from '../tokens/sign.js';
import type { CredentialBroker } from './credential-broker.js';

/** A token minted for a downstream service. */
export interface MintedToken {
  /** The compact JWT. Never log it. */
  readonly token: string;
  /** Its lifetime from now, in seconds (what a token response calls `expires_in`). */
  readonly expiresIn: number;
  /** Its `exp`, in seconds since the epoch. */
  readonly expiresAt: number;
}

/** Longest lifetime of any minted token, in seconds. */
export const MAX_MINTED_TTL_SECONDS = 3600;

/**
 * The lifetime of a token minted for `principal`: `ttlSeconds`, but never past the verified token the
 * principal came from — a minted token must not outlive the authentication it derives from.
 */
function lifetime(principal: Principal, ttlSeconds: number, now: number): number {
  const remaining = principal.expiresAt - now;
  if (remaining < 1) {
    throw new OAuthError('invalid_token', {
      reason: 'principal_expired',
      description: 'the token this identity came from has expired',
    });
  }
  return Math.min(ttlSeconds, remaining);
}

function assertTtl(ttlSeconds: number, what: string): void {
  if (!Number.isInteger(ttlSeconds) || ttlSeconds < 1 || ttlSeconds > MAX_MINTED_TTL_SECONDS) {
    throw new GatehouseError(
      'ERR_CONFIG_INVALID',
      `${what} must be an integer from 1 to ${MAX_MINTED_TTL_SECONDS} seconds`,
    );
  }
}

// ---------------------------------------------------------------------------------------------------------
// Supabase

/** The `aud` and `role` of a signed-in Supabase user's token; RLS policies run as this Postgres role. */
export const SUPABASE_AUTHENTICATED = 'authenticated';

/** The algorithms Supabase projects sign user tokens with. */
export type SupabaseSigningAlgorithm = 'HS256' | 'ES256' | 'RS256';

interface SupabaseMinterCommon {
  /** `iss`, compared exactly by Supabase: `https://<project-ref>.supabase.co/auth/v1`. */
  issuer: string;
  /** Lifetime of each token, in seconds; capped at the principal's own expiry. Default 60, at most 3600. */
  ttlSeconds?: number | undefined;
  /**
   * The `sub` for a principal. Supabase's `auth.uid()` casts `sub` to `uuid`, so map non-uuid subjects
   * (local accounts, other IdPs) to the project's user ids here. Default: `principal.subject`.
   */
  subject?: ((principal: Principal) => string) | undefined;
  /** Source of `iat` and `exp`. */
  clock: Clock;
}

/** Options of {@link createSupabaseTokenMinter}: the project's legacy HS256 secret, or an asymmetric key. */
export type SupabaseTokenMinterOptions = SupabaseMinterCommon &
  (
    | {
        /** The project's legacy JWT secret (used as its UTF-8 bytes). At least 32 bytes. */
        secret: string;
        privateKey?: undefined;
      }
    | {
        secret?: undefined;
        /** The project's private signing key: a `KeyObject`, a PKCS#8 PEM, or a private JWK (JSON text or object). */
        privateKey: KeyObject | CryptoKey | string | JWK;
        /** `kid` header: the key's id in the project's JWKS (`<issuer>/.well-known/jwks.json`). */
        kid: string;
        /** Default `ES256` (Supabase's default asymmetric key). */
        algorithm?: 'ES256' | 'RS256' | undefined;
      }
  );

export interface SupabaseMintOptions {
  /** `session_id`. Default: the principal's own `session_id` claim, when it is a string. */
  sessionId?: string | undefined;
}

export interface SupabaseTokenMinter {
  readonly algorithm: SupabaseSigningAlgorithm;
  readonly issuer: string;
  /** The configured lifetime, in seconds. */
  readonly ttlSeconds: number;
  /** Mints a Supabase user access token for `principal`. */
  mint(principal: Principal, options?: SupabaseMintOptions): Promise<MintedToken>;
}

/**
 * Mints Supabase-compatible user access tokens, so a tool calls Supabase's APIs (PostgREST, Storage,
 * Realtime) as the user and row-level security (`auth.uid()`, `auth.jwt()`) sees that user. The claim
 * shape is Supabase Auth's: `role` and `aud` `authenticated`, `sub`, `email`, `session_id`,
 * `is_anonymous: false`, `aal: 'aal1'`, `app_metadata.provider: 'gatehouse'`, short `exp`.
 *
 * Throws `GatehouseError('ERR_KEY_INVALID')` for a secret shorter than 32 bytes or an unusable key, and
 * `ERR_CONFIG_INVALID` for a lifetime outside 1…3600 s. `mint` throws `OAuthError('invalid_token')` when
 * the principal's own token has expired.
 *
 * @example
 * ```ts
 * const supabase = createSupabaseTokenMinter({
 *   secret: process.env.SUPABASE_JWT_SECRET!,
 *   issuer: 'https://abcd.supabase.co/auth/v1',
 *   clock: systemClock,
 * });
 * const { token } = await supabase.mint(principal);
 * await fetch('https://abcd.supabase.co/rest/v1/notes', {
 *   headers: { apikey: anonKey, authorization: `Bearer ${token}` },
 * });
 * ```
 */
export function createSupabaseTokenMinter(options: SupabaseTokenMinterOptions): SupabaseTokenMinter {
  const { issuer, clock } = options;
  const ttlSeconds = options.ttlSeconds ?? 60;
  assertTtl(ttlSeconds, 'ttlSeconds');
  const subjectOf = options.subject ?? ((principal: Principal) => principal.subject);

  let algorithm: SupabaseSigningAlgorithm;
  let header: { alg: string; typ: string; kid?: string };
  let key: () => Promise<KeyObject | CryptoKey | Uint8Array>;
  if (options.secret !== undefined) {
    const secret = new TextEncoder().encode(options.secret);
    if (secret.byteLength < MIN_SECRET_BYTES) {
      throw new GatehouseError(
        'ERR_KEY_INVALID',
        `the Supabase JWT secret is ${secret.byteLength} bytes; at least ${MIN_SECRET_BYTES} are required`,
        { details: { length: secret.byteLength } },
      );
    }
    algorithm = 'HS256';
    header = { alg: algorithm, typ: 'JWT' };
    key = async () => secret;
  } else {
    algorithm = options.algorithm ?? 'ES256';
    header = { alg: algorithm, typ: 'JWT', kid: options.kid };
    const imported = importPrivateKey(options.privateKey, algorithm);
    // Surface a bad key on first use as ERR_KEY_INVALID, and never as an unhandled rejection before it.
    imported.catch(() => undefined);
    key = () => imported;
  }

  return {
    algorithm,
    issuer,
    ttlSeconds,
    async mint(principal, mintOptions = {}) {
      const now = epochSeconds(clock);
      const expiresIn = lifetime(principal, ttlSeconds, now);
      const ownSession = principal.claims.session_id;
      const sessionId = mintOptions.sessionId ?? (typeof ownSession === 'string' ? ownSession : undefined);
      const token = await new SignJWT({
        role: SUPABASE_AUTHENTICATED,
        ...(principal.email === undefined ? {} : { email: principal.email }),
        ...(sessionId === undefined ? {} : { session_id: sessionId }),
        is_anonymous: false,
        // Gatehouse cannot vouch for a second factor, so it never claims more than single-factor assurance.
        aal: 'aal1',
        app_metadata: { provider: 'gatehouse', providers: ['gatehouse'] },
        user_metadata: {},
      })
        .setProtectedHeader(header)
        .setIssuer(issuer)
        .setSubject(subjectOf(principal))
        .setAudience(SUPABASE_AUTHENTICATED)
        .setIssuedAt(now)
        .setExpirationTime(now + expiresIn)
        .sign(await key());
      return { token, expiresIn, expiresAt: now + expiresIn };
    },
  };
}

/**
 * The Supabase minter `downstream.supabase` describes (after `loadConfig`, which reads `secretFile` and
 * `privateKeyFile` into `secret` and `privateKey`).
 *
 * @example
 * ```ts
 * const config = loadConfig({ env: process.env });
 * const supabase = config.downstream.supabase && supabaseMinterFromConfig(config.downstream.supabase, systemClock);
 * ```
 */
export function supabaseMinterFromConfig(
  config: SupabaseDownstreamConfig,
  clock: Clock,
): SupabaseTokenMinter {
  const common = { issuer: config.issuer, ttlSeconds: config.ttlSeconds, clock };
  if (config.secret !== undefined) return createSupabaseTokenMinter({ ...common, secret: config.secret });
  return createSupabaseTokenMinter({
    ...common,
    privateKey: config.privateKey,
    kid: config.kid,
    algorithm: config.algorithm,
  });
}

/** Where {@link supabaseCredentialBroker} puts the token for in-process tools (library mode's `credentials`). */
export const SUPABASE_TOKEN_VALUE = 'supabaseAccessToken';

/**
 * The Supabase minter as a credential broker: each user (and session) gets a minted token in `env[envName]`
 * (a stdio upstream's environment) and `values.supabaseAccessToken` (library mode), expiring with the token,
 * so the credential cache replaces it — and a stdio child holding it — before it is ever used expired.
 */
export function supabaseCredentialBroker(minter: SupabaseTokenMinter, envName: string): CredentialBroker {
  // `session_id` stays the user's own (a Supabase session), never the Gatehouse session id.
  return async (principal) => {
    const { token, expiresAt } = await minter.mint(principal);
    return {
      env: { [envName]: token },
      values: { [SUPABASE_TOKEN_VALUE]: token },
      expiresAt: expiresAt * 1000,
    };
  };
}

async function importPrivateKey(
  input: KeyObject | CryptoKey | string | JWK,
  algorithm: 'ES256' | 'RS256',
): Promise<KeyObject | CryptoKey> {
  try {
    if (typeof input === 'string') {
      const text = input.trim();
      if (text.startsWith('{')) return toPrivate(await importJWK(JSON.parse(text) as JWK, algorithm));
      return createPrivateKey(text);
    }
    if (isJwk(input)) return toPrivate(await importJWK(input, algorithm));
    return input;
  } catch (error) {
    if (error instanceof GatehouseError) throw error;
    throw new GatehouseError('ERR_KEY_INVALID', 'the Supabase signing key cannot be read', { cause: error });
  }
}

function isJwk(input: KeyObject | CryptoKey | JWK): input is JWK {
  return typeof (input as JWK).kty === 'string';
}

function toPrivate(key: CryptoKey | Uint8Array): CryptoKey {
  if (key instanceof Uint8Array || key.type !== 'private') {
    throw new GatehouseError('ERR_KEY_INVALID', 'the Supabase signing key must be a private key');
  }
  return key;
}

// ---------------------------------------------------------------------------------------------------------
// Audience-scoped identity tokens

/** Claims an audience token carries that the caller may not override. */
const OWNED_CLAIMS = new Set([
  'iss',
  'sub',
  'aud',
  'exp',
  'iat',
  'nbf',
  'jti',
  'scope',
  'sid',
  'email',
  'name',
  'original_iss',
]);

export interface AudienceTokenOptions {
  /** `aud`: the service the token is for (its URL or logical name). */
  audience: string;
  /** Lifetime, in seconds (1…3600); capped at the principal's own expiry. */
  ttlSeconds: number;
  /** `scope` (space-separated). Default: the principal's scopes. */
  scope?: readonly string[] | undefined;
  /** `sid`: the Gatehouse session the token serves, when there is one. */
  sessionId?: string | undefined;
  /** Further claims (`client_id`, …). Claims the minter sets itself are refused. */
  claims?: Readonly<Record<string, unknown>> | undefined;
}

export interface AudienceTokenMinter {
  /** Mints a short-lived identity token for `principal`, bound to one audience. */
  mint(principal: Principal, options: AudienceTokenOptions): Promise<MintedToken>;
}

/** Options of {@link createAudienceTokenMinter}: Gatehouse's own signer, or its key store and issuer. */
export type AudienceTokenMinterOptions = { clock: Clock } & (
  | { signer: TokenSigner; keys?: undefined; issuer?: undefined }
  | {
      signer?: undefined;
      /** Gatehouse's signing keys (published at its JWKS endpoint, so services verify with that). */
      keys: KeyStore;
      /** `iss`: Gatehouse's issuer. */
      issuer: string;
    }
);

/**
 * Mints audience-bound identity tokens for any HTTP service, signed with Gatehouse's own keys (ES256,
 * verifiable with Gatehouse's JWKS). The header's `typ` is `JWT`, never `at+jwt`, and the audience is the
 * service's, so such a token is refused at Gatehouse's own MCP endpoint: a service that receives one
 * cannot replay it there. Claims: `iss`, `sub`, `aud`, `iat`, `exp`, `jti`, `scope`, `email`/`name` when
 * known, `sid` (the Gatehouse session) when given, `original_iss` (who authenticated the user).
 *
 * The HTTP upstream bridge mints with this, and so does the RFC 8693 token-exchange grant.
 *
 * @example
 * ```ts
 * const minter = createAudienceTokenMinter({ keys, issuer: 'https://gatehouse.example/', clock: systemClock });
 * const { token } = await minter.mint(principal, { audience: 'https://api.example', ttlSeconds: 60 });
 * ```
 */
export function createAudienceTokenMinter(options: AudienceTokenMinterOptions): AudienceTokenMinter {
  const { clock } = options;
  const signer =
    options.signer ?? createTokenSigner({ keys: options.keys, issuer: options.issuer, clock: options.clock });
  return {
    async mint(principal, input) {
      if (
        !Number.isInteger(input.ttlSeconds) ||
        input.ttlSeconds < 1 ||
        input.ttlSeconds > MAX_MINTED_TTL_SECONDS
      ) {
        throw new TypeError(`ttlSeconds must be an integer from 1 to ${MAX_MINTED_TTL_SECONDS}`);
      }
      if (input.audience === '') throw new TypeError('audience must not be empty');
      const extra = input.claims ?? {};
      const owned = Object.keys(extra).filter((claim) => OWNED_CLAIMS.has(claim));
      if (owned.length > 0) throw new TypeError(`claims must not set: ${owned.join(', ')}`);
      const now = epochSeconds(clock);
      const expiresIn = lifetime(principal, input.ttlSeconds, now);
      const token = await signer.sign({
        subject: principal.subject,
        audience: input.audience,
        expiresInSeconds: expiresIn,
        type: IDENTITY_TOKEN_TYPE,
        claims: {
          ...extra,
          ...(principal.email === undefined ? {} : { email: principal.email }),
          ...(principal.name === undefined ? {} : { name: principal.name }),
          scope: (input.scope ?? principal.scopes).join(' '),
          ...(input.sessionId === undefined ? {} : { sid: input.sessionId }),
          original_iss: principal.issuer,
        },
      });
      return { token, expiresIn, expiresAt: now + expiresIn };
    },
  };
}
