import * as oauth from 'oauth4webapi';
import { z } from 'zod';
import type { FederationConfig } from '../config/federation.js';
import { fingerprint } from '../crypto/fingerprint.js';
import type { Sealer } from '../crypto/seal.js';
import { GatehouseError, type GatehouseErrorCode, isGatehouseError } from '../errors/gatehouse-error.js';
import type { Clock } from '../ops/clock.js';
import type { Logger } from '../ops/logger.js';
import type {
  EphemeralStore,
  PrincipalSnapshot,
  UpstreamTokenRecord,
  UpstreamTokenStore,
} from '../stores/ports.js';
import { snapshotPrincipalKey } from '../stores/principal-key.js';

/** `EphemeralStore` namespace of pending federated logins, keyed by the `state` sent to the IdP. */
export const FEDERATION_STATE_NAMESPACE = 'federation';
/** How long a user has to finish logging in at the IdP. */
export const FEDERATION_STATE_TTL_MS = 10 * 60_000;
/** An upstream access token expiring sooner than this is refreshed before it is handed out. */
export const UPSTREAM_REFRESH_MARGIN_MS = 60_000;
/** After a failed discovery, requests fail fast for this long before discovery is tried again. */
export const DISCOVERY_RETRY_MS = 30_000;
/**
 * Tolerance for ID-token `exp`/`nbf`, in seconds. The token comes straight from the token endpoint, so
 * only clock skew between Gatehouse and the IdP needs absorbing.
 */
const CLOCK_TOLERANCE_SECONDS = 30;
/** RFC 6749 §4.1.2.1 `error` charset; anything else from the IdP is reported as `invalid`. */
const OAUTH_ERROR_CODE = /^[\x20\x21\x23-\x5B\x5D-\x7E]{1,64}$/;

export interface FederationOptions {
  /** The parsed `auth.federation` ({@link federationConfigSchema}). */
  readonly config: FederationConfig;
  /** Gatehouse's one fixed callback, registered at the IdP (for example `<publicUrl>/oauth/callback`). */
  readonly callbackUrl: string | URL;
  /** Holds the pending login (PKCE verifier, nonce, interaction) between `begin` and `complete`. */
  readonly ephemeral: EphemeralStore;
  /** Holds each federated user's upstream tokens, sealed. */
  readonly upstreamTokens: UpstreamTokenStore;
  /** Seals upstream tokens at rest. */
  readonly sealer: Sealer;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Fetch used for every request to the IdP. Default: the global `fetch`. */
  readonly fetch?: typeof fetch;
}

export interface FederationCallbackResult {
  /** The interaction passed to `begin`, so the caller can resume the MCP client's authorization. */
  readonly interactionId: string;
  readonly principal: PrincipalSnapshot;
}

/** Login federated to one upstream OpenID Connect provider. */
export interface Federation {
  /** `config.name`: the `idp` of every principal this provider signs in. */
  readonly name: string;
  readonly displayName: string;
  /**
   * Starts a login for `interactionId` (Gatehouse's pending authorization) and returns the IdP's
   * authorization URL to redirect the browser to. The pending login lives 10 minutes.
   */
  begin(interactionId: string): Promise<URL>;
  /**
   * Finishes the login the IdP redirected back with (`callbackRequestUrl` is the full callback URL with
   * its query). The state is single-use. Throws `GatehouseError`:
   * `ERR_FEDERATION_STATE_INVALID` (unknown, expired or replayed state),
   * `ERR_IDP_LOGIN_FAILED` (the IdP answered with an error such as `access_denied`; `details.idpError`),
   * `ERR_IDP_RESPONSE_INVALID` (a response failed validation or the IdP refused the code),
   * `ERR_IDP_UNAVAILABLE` (network, timeout, 5xx). Every error after the state was recognised carries
   * `details.interactionId`.
   */
  complete(callbackRequestUrl: URL): Promise<FederationCallbackResult>;
  /**
   * The user's upstream access token, refreshed first when it expires within 60 s; `undefined` when
   * there is none or the IdP no longer honours the refresh token (the stored tokens are then deleted and
   * the user must log in again). Throws `ERR_IDP_UNAVAILABLE` / `ERR_IDP_RESPONSE_INVALID` when a refresh
   * fails otherwise.
   */
  accessToken(principalKey: string): Promise<string | undefined>;
  /** Forgets cached provider metadata and in-flight refreshes. */
  close(): void;
}

const pendingLoginSchema = z.object({
  interactionId: z.string().min(1),
  codeVerifier: z.string().min(43),
  nonce: z.string().min(1),
});

/** The plaintext of `UpstreamTokenRecord.ciphertext`. */
const storedTokensSchema = z.object({
  v: z.literal(1),
  /** The principal's subject (per the claim mapping). */
  subject: z.string().min(1),
  /** The ID token's `sub`, which every refreshed ID token must repeat (OIDC Core §12.2). */
  sub: z.string().min(1),
  accessToken: z.string().min(1),
  tokenType: z.string().min(1),
  refreshToken: z.string().min(1).optional(),
  idToken: z.string().min(1).optional(),
  scope: z.string().optional(),
});
type StoredTokens = z.infer<typeof storedTokensSchema>;

type ClaimSet = Readonly<Record<string, unknown>>;

/** Options of {@link discoverIdentityProvider}. */
export interface DiscoverIdentityProviderOptions {
  /** Fetch used for the request. Default: the global `fetch`. */
  readonly fetch?: typeof fetch | undefined;
}

/**
 * The provider's discovery document as sign-in uses it: fetched where oauth4webapi fetches it
 * (`<issuer>/.well-known/openid-configuration`, within `config.timeoutMs`), its issuer compared exactly
 * with the configured one (ID tokens carry the exact string), its authorization and token endpoints
 * required. Sign-in and `gatehouse doctor` both discover through it. Throws
 * `GatehouseError('ERR_IDP_RESPONSE_INVALID')` with `details.check` `issuer` (`details.issuer`: what the
 * document names) or `metadata` (`details.missing`: the absent endpoints); oauth4webapi's other errors
 * and network failures pass through unchanged.
 */
export async function discoverIdentityProvider(
  config: FederationConfig,
  options: DiscoverIdentityProviderOptions = {},
): Promise<oauth.AuthorizationServer> {
  const issuerUrl = new URL(config.issuer);
  const response = await oauth.discoveryRequest(issuerUrl, {
    algorithm: 'oidc',
    signal: AbortSignal.timeout(config.timeoutMs),
    ...(options.fetch === undefined ? {} : { [oauth.customFetch]: options.fetch }),
    ...(config.allowInsecureHttp ? { [oauth.allowInsecureRequests]: true } : {}),
  });
  let as: oauth.AuthorizationServer;
  try {
    as = await oauth.processDiscoveryResponse(issuerUrl, response);
  } catch (error) {
    // oauth4webapi refuses an issuer that differs even after URL normalisation before the exact check below.
    if (error instanceof oauth.OperationProcessingError && error.code === oauth.JSON_ATTRIBUTE_COMPARISON) {
      const body = (error.cause as { body?: { issuer?: unknown } } | undefined)?.body;
      throw issuerMismatch(config, body?.issuer, error);
    }
    throw error;
  }
  // oauth4webapi compares URL-normalised issuers; ID tokens carry the exact string, so insist on it.
  if (as.issuer !== config.issuer) throw issuerMismatch(config, as.issuer);
  const missing = (['authorization_endpoint', 'token_endpoint'] as const).filter(
    (field) => as[field] === undefined,
  );
  if (missing.length > 0) {
    throw new GatehouseError(
      'ERR_IDP_RESPONSE_INVALID',
      `The IdP's discovery document lacks ${missing.join(' and ')}.`,
      { details: { idp: config.name, check: 'metadata', missing } },
    );
  }
  return as;
}

function issuerMismatch(config: FederationConfig, named: unknown, cause?: unknown): GatehouseError {
  return new GatehouseError(
    'ERR_IDP_RESPONSE_INVALID',
    `The IdP's discovery document names issuer ${JSON.stringify(named)}, not the configured "${config.issuer}".`,
    { cause, details: { idp: config.name, check: 'issuer', issuer: named } },
  );
}

/**
 * Federated login through `oauth4webapi`: authorization code flow with PKCE (S256), `state` and `nonce`,
 * RFC 9207 `iss` validation when the IdP advertises it, ID-token validation (signature against the IdP's
 * JWKS, `iss`, `aud`, `azp`, `exp`, `nonce`), and the upstream tokens stored sealed per user.
 *
 * Discovery happens on first use and is cached; after a failure, calls fail fast with
 * `ERR_IDP_UNAVAILABLE` (and `retryAfterSeconds`) for {@link DISCOVERY_RETRY_MS} before it is tried again.
 *
 * @example
 * ```ts
 * const federation = createFederation({
 *   config: federationConfigSchema.parse({ preset: 'auth0', issuer: 'https://acme.eu.auth0.com/',
 *     clientId, clientSecret, audience: 'https://api.acme.example' }),
 *   callbackUrl: 'https://gatehouse.acme.example/oauth/callback',
 *   ephemeral: stores.ephemeral, upstreamTokens: stores.upstreamTokens, sealer, clock, logger,
 * });
 * const redirectTo = await federation.begin(interactionId);
 * // … the browser comes back to the callback:
 * const { interactionId, principal } = await federation.complete(new URL(request.url));
 * ```
 */
export function createFederation(options: FederationOptions): Federation {
  const { config, ephemeral, upstreamTokens, sealer, clock } = options;
  const callbackUrl = new URL(options.callbackUrl).href;
  const logger = options.logger.child({ component: 'federation', idp: config.name });
  const clientAuth =
    config.clientSecret === undefined ? oauth.None() : oauth.ClientSecretBasic(config.clientSecret);
  const keyPrefix = `${config.name}#`;

  let metadata: oauth.AuthorizationServer | undefined;
  let discovering: Promise<oauth.AuthorizationServer> | undefined;
  let lastFailure: { at: number; code: GatehouseErrorCode } | undefined;
  const refreshing = new Map<string, Promise<string | undefined>>();

  function http(): oauth.HttpRequestOptions<'GET' | 'POST', URLSearchParams | undefined> {
    return {
      signal: () => AbortSignal.timeout(config.timeoutMs),
      ...(options.fetch === undefined ? {} : { [oauth.customFetch]: options.fetch }),
      ...(config.allowInsecureHttp ? { [oauth.allowInsecureRequests]: true } : {}),
    };
  }

  /**
   * oauth4webapi checks ID-token times against the wall clock; `clockSkew` moves its "now" onto the
   * injected clock so there is one notion of time (tests advance it; production passes the system clock).
   */
  function client(): oauth.Client {
    return {
      client_id: config.clientId,
      [oauth.clockSkew]: Math.trunc((clock.now() - Date.now()) / 1000),
      [oauth.clockTolerance]: CLOCK_TOLERANCE_SECONDS,
    };
  }

  function discover(): Promise<oauth.AuthorizationServer> {
    return discoverIdentityProvider(config, { fetch: options.fetch });
  }

  async function server(): Promise<oauth.AuthorizationServer> {
    if (metadata !== undefined) return metadata;
    if (discovering !== undefined) return discovering;
    if (lastFailure !== undefined) {
      const waitMs = lastFailure.at + DISCOVERY_RETRY_MS - clock.now();
      if (waitMs > 0) {
        throw new GatehouseError(lastFailure.code, 'Discovery at the identity provider failed moments ago.', {
          retryAfterSeconds: Math.ceil(waitMs / 1000),
          details: { idp: config.name },
        });
      }
    }
    const attempt = discover().then(
      (as) => {
        metadata = as;
        lastFailure = undefined;
        logger.info({ issuer: as.issuer }, 'identity provider discovered');
        return as;
      },
      (error: unknown) => {
        const failure = toIdpError(error, 'discovery');
        lastFailure = { at: clock.now(), code: failure.code };
        logger.warn({ code: failure.code, err: describeError(error) }, 'identity provider discovery failed');
        throw failure;
      },
    );
    discovering = attempt;
    try {
      return await attempt;
    } finally {
      if (discovering === attempt) discovering = undefined;
    }
  }

  function sealContext(principalKey: string): string {
    return `gatehouse.upstream-token\n${config.name}\n${principalKey}`;
  }

  function openRecord(record: UpstreamTokenRecord): StoredTokens {
    let plaintext: string;
    try {
      plaintext = sealer.open(record.ciphertext, sealContext(record.principalKey));
    } catch (error) {
      throw new GatehouseError(
        'ERR_KEY_INVALID',
        'Stored upstream tokens cannot be opened with the current keys.',
        {
          cause: error,
          details: { idp: config.name },
        },
      );
    }
    const parsed = storedTokensSchema.safeParse(parseJson(plaintext));
    if (!parsed.success) {
      throw new GatehouseError('ERR_KEY_INVALID', 'Stored upstream tokens are malformed.', {
        details: { idp: config.name },
      });
    }
    return parsed.data;
  }

  function recordFor(
    principalKey: string,
    tokens: StoredTokens,
    expiresInSeconds: number | undefined,
  ): Omit<UpstreamTokenRecord, 'version'> {
    const now = clock.now();
    return {
      principalKey,
      provider: config.name,
      ciphertext: sealer.seal(JSON.stringify(tokens), sealContext(principalKey)),
      ...(expiresInSeconds === undefined ? {} : { accessExpiresAt: now + expiresInSeconds * 1000 }),
      updatedAt: now,
    };
  }

  function tokensFrom(
    subject: string,
    sub: string,
    response: oauth.TokenEndpointResponse,
    previous?: StoredTokens,
  ): StoredTokens {
    // RFC 6749 §6: a refresh response may omit the refresh token; the old one then stays valid.
    const refreshToken = response.refresh_token ?? previous?.refreshToken;
    const idToken = response.id_token ?? previous?.idToken;
    const scope = response.scope ?? previous?.scope;
    return {
      v: 1,
      subject,
      sub,
      accessToken: response.access_token,
      tokenType: response.token_type,
      ...(refreshToken === undefined ? {} : { refreshToken }),
      ...(idToken === undefined ? {} : { idToken }),
      ...(scope === undefined ? {} : { scope }),
    };
  }

  /** A new login replaces whatever was stored; a lost race means another login or refresh just stored fresh tokens. */
  async function storeLogin(principalKey: string, tokens: StoredTokens, expiresIn: number | undefined) {
    for (let attempt = 0; attempt < 3; attempt += 1) {
      const current = await upstreamTokens.get(principalKey, config.name);
      const stored = await upstreamTokens.put(
        recordFor(principalKey, tokens, expiresIn),
        current?.version ?? 0,
      );
      if (stored !== undefined) return;
    }
    logger.info('upstream tokens of a concurrent login kept');
  }

  function stateError(state: string | null): GatehouseError {
    logger.info(
      { state: state === null ? undefined : fingerprint(state) },
      'federation callback with an unknown, expired or used state',
    );
    return new GatehouseError(
      'ERR_FEDERATION_STATE_INVALID',
      'This login link is unknown, expired or already used; start the login again.',
      { details: { idp: config.name } },
    );
  }

  async function exchange(
    as: oauth.AuthorizationServer,
    callbackRequestUrl: URL,
    state: string,
    pending: z.infer<typeof pendingLoginSchema>,
  ): Promise<{ tokens: oauth.TokenEndpointResponse; idClaims: oauth.IDToken }> {
    let params: URLSearchParams;
    try {
      params = oauth.validateAuthResponse(as, client(), callbackRequestUrl, state);
    } catch (error) {
      if (error instanceof oauth.AuthorizationResponseError) {
        const idpError = safeErrorCode(error.error);
        logger.info({ idpError }, 'the identity provider refused the login');
        throw new GatehouseError('ERR_IDP_LOGIN_FAILED', `The identity provider answered "${idpError}".`, {
          details: { idp: config.name, idpError, interactionId: pending.interactionId },
        });
      }
      throw toIdpError(error, 'callback', pending.interactionId);
    }
    const response = await oauth.authorizationCodeGrantRequest(
      as,
      client(),
      clientAuth,
      params,
      callbackUrl,
      pending.codeVerifier,
      http(),
    );
    const tokens = await oauth.processAuthorizationCodeResponse(as, client(), response, {
      expectedNonce: pending.nonce,
      requireIdToken: true,
    });
    // Verify, never decode-and-trust: oauth4webapi accepts a token-endpoint ID token on TLS alone.
    if (as.jwks_uri !== undefined) await oauth.validateApplicationLevelSignature(as, response, http());
    const idClaims = oauth.getValidatedIdTokenClaims(tokens);
    if (idClaims === undefined) throw new TypeError('ID token missing after validation');
    return { tokens, idClaims };
  }

  async function userinfo(
    as: oauth.AuthorizationServer,
    accessToken: string,
    subject: string,
  ): Promise<ClaimSet | undefined> {
    if (as.userinfo_endpoint === undefined) return undefined;
    try {
      const response = await oauth.userInfoRequest(as, client(), accessToken, http());
      return await oauth.processUserInfoResponse(as, client(), subject, response);
    } catch (error) {
      // Best effort: the ID token already proved who the user is; only profile claims are missing.
      logger.warn({ err: describeError(error) }, 'userinfo request failed; continuing with ID-token claims');
      return undefined;
    }
  }

  async function principalFrom(
    as: oauth.AuthorizationServer,
    tokens: oauth.TokenEndpointResponse,
    idClaims: oauth.IDToken,
    interactionId: string,
  ): Promise<PrincipalSnapshot> {
    const subject = readClaim(idClaims, config.claims.subject);
    if (typeof subject !== 'string' || subject === '') {
      throw new GatehouseError(
        'ERR_IDP_RESPONSE_INVALID',
        `The ID token has no string "${config.claims.subject}" claim to identify the user.`,
        { details: { idp: config.name, check: 'subject', interactionId } },
      );
    }
    const mapping = config.claims;
    const wanted = [mapping.email, mapping.name, mapping.organization, mapping.roles].filter(
      (paths): paths is readonly string[] => paths !== undefined && paths.length > 0,
    );
    const sources: ClaimSet[] = [idClaims];
    if (wanted.some((paths) => firstClaim(sources, paths) === undefined)) {
      const extra = await userinfo(as, tokens.access_token, idClaims.sub);
      if (extra !== undefined) sources.push(extra);
    }
    const email = firstClaim(sources, mapping.email, (value, source) =>
      typeof value === 'string' && value !== '' && source.email_verified !== false ? value : undefined,
    );
    const name = firstClaim(sources, mapping.name, nonEmptyString);
    const organization =
      mapping.organization === undefined
        ? undefined
        : firstClaim(sources, mapping.organization, nonEmptyString);
    const roles = mapping.roles === undefined ? undefined : firstClaim(sources, mapping.roles, toRoles);
    const claims = {
      ...(organization === undefined ? {} : { organization }),
      ...(roles === undefined ? {} : { roles }),
    };
    return {
      subject,
      idp: config.name,
      ...(email === undefined ? {} : { email }),
      ...(name === undefined ? {} : { name }),
      ...(Object.keys(claims).length === 0 ? {} : { claims }),
    };
  }

  async function refresh(record: UpstreamTokenRecord, tokens: StoredTokens): Promise<string | undefined> {
    const { principalKey } = record;
    if (tokens.refreshToken === undefined) {
      return record.accessExpiresAt !== undefined && record.accessExpiresAt <= clock.now()
        ? undefined
        : tokens.accessToken;
    }
    const as = await server();
    let response: oauth.TokenEndpointResponse;
    try {
      const answer = await oauth.refreshTokenGrantRequest(
        as,
        client(),
        clientAuth,
        tokens.refreshToken,
        http(),
      );
      response = await oauth.processRefreshTokenResponse(as, client(), answer);
    } catch (error) {
      if (error instanceof oauth.ResponseBodyError && error.error === 'invalid_grant') {
        // Another instance may have rotated the refresh token a moment ago: use its result if so.
        const current = await upstreamTokens.get(principalKey, config.name);
        if (current !== undefined && current.version !== record.version) return usable(current);
        await upstreamTokens.delete(principalKey, config.name);
        logger.info('upstream refresh token refused (invalid_grant); stored tokens deleted');
        return undefined;
      }
      const failure = toIdpError(error, 'refresh');
      logger.warn({ code: failure.code, err: describeError(error) }, 'upstream token refresh failed');
      throw failure;
    }
    const claims = oauth.getValidatedIdTokenClaims(response);
    // OIDC Core §12.2: a refreshed ID token must name the same user.
    if (claims !== undefined && claims.sub !== tokens.sub) {
      throw new GatehouseError('ERR_IDP_RESPONSE_INVALID', 'The refreshed ID token names another user.', {
        details: { idp: config.name, check: 'subject' },
      });
    }
    const next = tokensFrom(tokens.subject, tokens.sub, response, tokens);
    const stored = await upstreamTokens.put(
      recordFor(principalKey, next, response.expires_in),
      record.version,
    );
    if (stored !== undefined) {
      logger.debug('upstream access token refreshed');
      return next.accessToken;
    }
    // Compare-and-swap lost: another instance refreshed first (use its token) or the tokens were deleted.
    const current = await upstreamTokens.get(principalKey, config.name);
    return current === undefined ? undefined : usable(current);
  }

  function usable(record: UpstreamTokenRecord): string | undefined {
    if (record.accessExpiresAt !== undefined && record.accessExpiresAt <= clock.now()) return undefined;
    return openRecord(record).accessToken;
  }

  return {
    name: config.name,
    displayName: config.displayName,

    async begin(interactionId) {
      if (typeof interactionId !== 'string' || interactionId === '') {
        throw new TypeError('begin() needs the interaction id');
      }
      const as = await server();
      const authorizationEndpoint = as.authorization_endpoint;
      if (authorizationEndpoint === undefined)
        throw new TypeError('authorization_endpoint checked at discovery');
      const state = oauth.generateRandomState();
      const nonce = oauth.generateRandomNonce();
      const codeVerifier = oauth.generateRandomCodeVerifier();
      const codeChallenge = await oauth.calculatePKCECodeChallenge(codeVerifier);
      await ephemeral.put(
        FEDERATION_STATE_NAMESPACE,
        state,
        { interactionId, codeVerifier, nonce },
        clock.now() + FEDERATION_STATE_TTL_MS,
      );
      const url = new URL(authorizationEndpoint);
      for (const [key, value] of Object.entries(config.extraAuthorizationParams))
        url.searchParams.set(key, value);
      url.searchParams.set('response_type', 'code');
      url.searchParams.set('client_id', config.clientId);
      url.searchParams.set('redirect_uri', callbackUrl);
      url.searchParams.set('scope', config.scopes.join(' '));
      url.searchParams.set('state', state);
      url.searchParams.set('nonce', nonce);
      url.searchParams.set('code_challenge', codeChallenge);
      url.searchParams.set('code_challenge_method', 'S256');
      if (config.audience !== undefined) url.searchParams.set('audience', config.audience);
      return url;
    },

    async complete(callbackRequestUrl) {
      const state = callbackRequestUrl.searchParams.get('state');
      if (state === null || state === '') throw stateError(state);
      // Resolve the IdP before spending the single-use state, so a retry can succeed after an outage.
      const as = await server();
      const taken = await ephemeral.take(FEDERATION_STATE_NAMESPACE, state, clock.now());
      const pending = pendingLoginSchema.safeParse(taken);
      if (taken === undefined || !pending.success) throw stateError(state);
      const { interactionId } = pending.data;
      let login: {
        tokens: oauth.TokenEndpointResponse;
        idClaims: oauth.IDToken;
        principal: PrincipalSnapshot;
      };
      try {
        const { tokens, idClaims } = await exchange(as, callbackRequestUrl, state, pending.data);
        login = { tokens, idClaims, principal: await principalFrom(as, tokens, idClaims, interactionId) };
      } catch (error) {
        const failure = withInteraction(toIdpError(error, 'token'), interactionId);
        if (failure.code !== 'ERR_IDP_LOGIN_FAILED') {
          logger.warn({ code: failure.code, err: describeError(error) }, 'federated login failed');
        }
        throw failure;
      }
      const { tokens, idClaims, principal } = login;
      await storeLogin(
        snapshotPrincipalKey(principal),
        tokensFrom(principal.subject, idClaims.sub, tokens),
        tokens.expires_in,
      );
      logger.info({ subject: principal.subject }, 'federated login completed');
      return { interactionId, principal };
    },

    async accessToken(principalKey) {
      if (!principalKey.startsWith(keyPrefix)) return undefined;
      const inFlight = refreshing.get(principalKey);
      if (inFlight !== undefined) return inFlight;
      const record = await upstreamTokens.get(principalKey, config.name);
      if (record === undefined) return undefined;
      const tokens = openRecord(record);
      if (
        record.accessExpiresAt === undefined ||
        record.accessExpiresAt - clock.now() > UPSTREAM_REFRESH_MARGIN_MS
      ) {
        return tokens.accessToken;
      }
      // Coalesce: every caller that finds the token expiring while a refresh runs waits for that refresh.
      const joined = refreshing.get(principalKey);
      if (joined !== undefined) return joined;
      const running: Promise<string | undefined> = refresh(record, tokens).finally(() => {
        if (refreshing.get(principalKey) === running) refreshing.delete(principalKey);
      });
      refreshing.set(principalKey, running);
      return running;
    },

    close() {
      metadata = undefined;
      lastFailure = undefined;
      refreshing.clear();
    },
  };

  /**
   * Maps a failure talking to the IdP onto the stable codes. The original oauth4webapi error is never
   * kept as `cause`: some carry the response body (tokens included) and causes get logged.
   */
  function toIdpError(error: unknown, phase: string, interactionId?: string): GatehouseError {
    if (isGatehouseError(error)) return error;
    const base = { idp: config.name, phase, ...(interactionId === undefined ? {} : { interactionId }) };
    const cause = describeError(error);
    if (error instanceof oauth.ResponseBodyError) {
      const idpError = safeErrorCode(error.error);
      const code = error.status >= 500 ? 'ERR_IDP_UNAVAILABLE' : 'ERR_IDP_RESPONSE_INVALID';
      return new GatehouseError(code, `The identity provider answered "${idpError}" (${phase}).`, {
        cause,
        details: { ...base, idpError },
      });
    }
    if (
      error instanceof oauth.WWWAuthenticateChallengeError ||
      error instanceof oauth.UnsupportedOperationError
    ) {
      return new GatehouseError(
        'ERR_IDP_RESPONSE_INVALID',
        `The identity provider refused the request (${phase}).`,
        {
          cause,
          details: base,
        },
      );
    }
    if (error instanceof oauth.OperationProcessingError) {
      const status = error.cause instanceof Response ? error.cause.status : undefined;
      if (status !== undefined && status >= 500) {
        return new GatehouseError(
          'ERR_IDP_UNAVAILABLE',
          `The identity provider answered HTTP ${status} (${phase}).`,
          {
            cause,
            details: base,
          },
        );
      }
      return new GatehouseError(
        'ERR_IDP_RESPONSE_INVALID',
        `The identity provider's answer failed validation (${phase}).`,
        {
          cause,
          details: { ...base, ...(error.code === undefined ? {} : { check: error.code }) },
        },
      );
    }
    return new GatehouseError(
      'ERR_IDP_UNAVAILABLE',
      `The identity provider could not be reached (${phase}).`,
      {
        cause,
        details: base,
      },
    );
  }

  function withInteraction(error: GatehouseError, interactionId: string): GatehouseError {
    if (error.details?.interactionId === interactionId) return error;
    return new GatehouseError(error.code, error.message, {
      cause: error.cause,
      ...(error.retryAfterSeconds === undefined ? {} : { retryAfterSeconds: error.retryAfterSeconds }),
      details: { ...error.details, interactionId },
    });
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function safeErrorCode(value: string): string {
  return OAUTH_ERROR_CODE.test(value) ? value : 'invalid';
}

/** A loggable, token-free description of a failure: its name, code and (static) message. */
function describeError(error: unknown): Error {
  if (!(error instanceof Error)) return new Error(String(error).slice(0, 200));
  const described = new Error(error.message);
  described.name = error.name;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string') Object.assign(described, { code });
  return described;
}

/** Reads `path` as a claim name, or else as a dotted path into nested objects. */
function readClaim(claims: ClaimSet, path: string): unknown {
  if (Object.hasOwn(claims, path)) return claims[path];
  let current: unknown = claims;
  for (const segment of path.split('.')) {
    if (typeof current !== 'object' || current === null || Array.isArray(current)) return undefined;
    if (!Object.hasOwn(current, segment)) return undefined;
    current = (current as Record<string, unknown>)[segment];
  }
  return current;
}

function firstClaim<T = unknown>(
  sources: readonly ClaimSet[],
  paths: readonly string[],
  accept: (value: unknown, source: ClaimSet) => T | undefined = (value) => value as T | undefined,
): T | undefined {
  // Path order is preference order: a later path is read only when no source has an earlier one.
  for (const path of paths) {
    for (const source of sources) {
      const value = readClaim(source, path);
      if (value === undefined || value === null) continue;
      const accepted = accept(value, source);
      if (accepted !== undefined) return accepted;
    }
  }
  return undefined;
}

function nonEmptyString(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

function toRoles(value: unknown): readonly string[] | undefined {
  if (typeof value === 'string') return value === '' ? undefined : [value];
  if (!Array.isArray(value)) return undefined;
  const roles = value.filter((role): role is string => typeof role === 'string' && role !== '');
  return roles.length === 0 ? undefined : roles;
}
