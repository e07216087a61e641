import { z } from 'zod';
import { isCidr } from '../net/client-address.js';
import { normaliseHostname } from '../net/host.js';
import { federationConfigSchema } from './federation.js';

/**
 * The one configuration schema: the library, the config file and the environment all go through it.
 * Every option says its unit and default where it is declared. Durations are milliseconds unless the
 * name says `Seconds`.
 */

const durationMs = z.number().int().positive();
const url = z.url({ protocol: /^https?$/ });

/**
 * A store server's URL with one of `protocols`. Its password is never echoed: a malformed URL is reported
 * without its text.
 */
function storeUrl(protocols: readonly string[]) {
  return z.string().refine(
    (text) => {
      try {
        return protocols.includes(new URL(text).protocol);
      } catch {
        return false;
      }
    },
    { message: `must be a ${protocols.map((p) => `${p}//`).join(' or ')} URL` },
  );
}

const HEADER_NAME = /^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * A `…File` field is input only: `loadConfig` replaces it by the value it names before the schema parses,
 * so a parsed configuration always holds its secrets and nothing downstream checks for one "not loaded".
 * One that reaches the schema was never read (the configuration was parsed without `loadConfig`).
 */
function unreadFile(ctx: z.core.$RefinementCtx, field: string): never {
  ctx.addIssue({
    code: 'custom',
    path: [field],
    message: `not read: ${field} is read by loadConfig; load the configuration with it, or set the value itself`,
  });
  return z.NEVER;
}

export const serverSchema = z
  .object({
    /** Interface to bind. Default `127.0.0.1`: nothing is exposed beyond this machine unless asked. */
    host: z.string().min(1).default('127.0.0.1'),
    /** TCP port. Default `8787`; `0` picks a free port (tests). */
    port: z.number().int().min(0).max(65535).default(8787),
    /**
     * The base URL clients use to reach Gatehouse (scheme, host, port, no trailing path). It is the
     * root of every URL Gatehouse publishes: the resource identifier, metadata and the issuer.
     * Default: `http://<host>:<port>` (with `localhost` kept as is).
     */
    publicUrl: url.optional(),
    /** Path of the MCP endpoint. Default `/mcp`. */
    mcpPath: z
      .string()
      .regex(/^\/[A-Za-z0-9._~\-/]*$/, 'must be an absolute path')
      .default('/mcp'),
    /** Largest accepted request body, in bytes. Default 1 MiB. Larger bodies get 413. */
    maxBodyBytes: z
      .number()
      .int()
      .positive()
      .default(1024 * 1024),
    /**
     * Browser origins allowed to call the MCP endpoint (exact `scheme://host[:port]`). Requests without an
     * `Origin` header (non-browser clients) are allowed. Default: none beyond loopback origins
     * (`http://localhost:*`, `http://127.0.0.1:*`, `http://[::1]:*`).
     */
    allowedOrigins: z.array(z.string().min(1)).default([]),
    /**
     * Names a request's `Host` may carry besides `publicUrl`'s hostname (DNS-rebinding defence: any other
     * `Host` is refused with 403 on every route but `/healthz` and `/readyz`). Hostnames or IP addresses,
     * no scheme or port: the port is not compared. A loopback `publicUrl` also allows `localhost`,
     * `127.0.0.1` and `[::1]`. Default: none.
     */
    allowedHosts: z
      .array(
        z.string().refine((entry) => normaliseHostname(entry) !== undefined, {
          message: 'must be a hostname or IP address without scheme, port or path, e.g. mcp.example.com',
        }),
      )
      .default([]),
    /**
     * Reverse proxies whose forwarding header is believed (CIDR ranges or single addresses, IPv4 or IPv6).
     * From any other peer the header is ignored and the TCP peer is the client. With proxies listed, the
     * client is the rightmost address in the header that is not itself a trusted proxy. Default: none.
     */
    trustedProxies: z
      .array(z.string().refine(isCidr, { message: 'must be an IP address or CIDR range, e.g. 10.0.0.0/8' }))
      .default([]),
    /**
     * The header the trusted proxies write: `x-forwarded-for` or RFC 7239 `forwarded`. Only this one is
     * read: a proxy that appends to one passes the other through from the client untouched. Default
     * `x-forwarded-for`.
     */
    forwardedHeader: z.enum(['x-forwarded-for', 'forwarded']).default('x-forwarded-for'),
    /** Time to receive a request's headers, in milliseconds; slower clients are disconnected (408). Default 10 s. */
    headersTimeoutMs: durationMs.default(10_000),
    /**
     * Time to receive a whole request, headers and body, in milliseconds; a body that trickles in is cut
     * off (408). Responses, such as SSE streams, are not limited by it. Default 30 s.
     */
    requestTimeoutMs: durationMs.default(30_000),
    /**
     * How long a shutdown (SIGTERM, SIGINT) may take, in milliseconds: requests and tool calls in flight
     * finish, streams close, upstreams end and the audit queue is written within it; past it, what is left
     * is cut off and the process exits 1. Default 10 s.
     */
    shutdownTimeoutMs: durationMs.default(10_000),
  })
  .strict()
  .refine((v) => v.headersTimeoutMs <= v.requestTimeoutMs, {
    message: 'must not exceed requestTimeoutMs',
    path: ['headersTimeoutMs'],
  });

export const identityEnvSchema = z
  .object({
    /** Variable carrying the principal's `sub`. Default `GATEHOUSE_USER_ID`. */
    userId: z.string().regex(ENV_NAME).default('GATEHOUSE_USER_ID'),
    /** Variable carrying the principal's email (empty when absent). Default `GATEHOUSE_USER_EMAIL`. */
    email: z.string().regex(ENV_NAME).default('GATEHOUSE_USER_EMAIL'),
    /** Variable carrying the space-separated scopes. Default `GATEHOUSE_SCOPES`. */
    scopes: z.string().regex(ENV_NAME).default('GATEHOUSE_SCOPES'),
    /** Variable carrying the token issuer. Default `GATEHOUSE_ISSUER`. */
    issuer: z.string().regex(ENV_NAME).default('GATEHOUSE_ISSUER'),
    /** Variable carrying the Gatehouse session id (empty for stateless requests). Default `GATEHOUSE_SESSION_ID`. */
    sessionId: z.string().regex(ENV_NAME).default('GATEHOUSE_SESSION_ID'),
  })
  .strict();

export const stdioUpstreamSchema = z
  .object({
    kind: z.literal('stdio'),
    /** Executable to run, one child per MCP session (and one per user for stateless requests). */
    command: z.string().min(1),
    /** Arguments. Default none. */
    args: z.array(z.string()).default([]),
    /** Extra environment for the child. The gateway's own environment is not inherited beyond `PATH`-like basics. */
    env: z.record(z.string().regex(ENV_NAME), z.string()).default({}),
    /** Working directory. Default: the gateway's. */
    cwd: z.string().optional(),
    /** Names of the variables that carry the principal into the child. */
    identityEnv: identityEnvSchema.default(identityEnvSchema.parse({})),
    /** A per-user child that served stateless (2026-07-28) requests is stopped after this much idleness. Default 5 min. */
    statelessIdleMs: durationMs.default(5 * 60_000),
    /** How long to wait for the child to answer `initialize`. Default 10 s. */
    startTimeoutMs: durationMs.default(10_000),
  })
  .strict();

export const httpUpstreamSchema = z
  .object({
    kind: z.literal('http'),
    /** The upstream's Streamable HTTP endpoint. */
    url,
    /** `aud` of the identity token minted for the upstream. Default: the upstream URL. */
    audience: z.string().min(1).optional(),
    /** Lifetime of the minted identity token, in seconds. Default 60. */
    tokenTtlSeconds: z.number().int().min(5).max(3600).default(60),
    /** Extra static headers for the upstream (not for credentials of the caller: those are never passed through). */
    headers: z
      .record(z.string().regex(HEADER_NAME), z.string())
      .refine((headers) => !Object.keys(headers).some((name) => name.toLowerCase() === 'authorization'), {
        message: 'the Authorization header is set by Gatehouse (a minted identity token); remove it',
      })
      .default({}),
    /** Timeout for one upstream request, in milliseconds. Default 60 s. */
    requestTimeoutMs: durationMs.default(60_000),
  })
  .strict();

export const upstreamSchema = z.discriminatedUnion('kind', [stdioUpstreamSchema, httpUpstreamSchema]);

const audienceSchema = z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]);

export const hs256VerifierSchema = z
  .object({
    kind: z.literal('hs256'),
    /** Name shown in logs and diagnostics. Default `hs256`. */
    name: z.string().min(1).default('hs256'),
    /** The shared secret (Supabase: the project's legacy JWT secret). At least 32 bytes. Prefer `secretFile`. */
    secret: z.string().min(32, 'must be at least 32 bytes').optional(),
    /** A file holding the secret (trailing newline ignored). */
    secretFile: z.string().min(1).optional(),
    /** Required `iss`. Supabase: `https://<ref>.supabase.co/auth/v1`. Optional for legacy HS256 projects. */
    issuer: z.string().min(1).optional(),
    /** Required `aud`. Default `authenticated` (Supabase). */
    audience: audienceSchema.default('authenticated'),
  })
  .strict()
  .refine((v) => (v.secret === undefined) !== (v.secretFile === undefined), {
    message: 'set exactly one of secret and secretFile',
    path: ['secret'],
  })
  .transform(({ secretFile, ...verifier }, ctx) => {
    if (verifier.secret === undefined) return unreadFile(ctx, 'secretFile');
    return { ...verifier, secret: verifier.secret };
  });

export const jwksVerifierSchema = z
  .object({
    kind: z.literal('jwks'),
    /** Name shown in logs and diagnostics. Default `jwks`. */
    name: z.string().min(1).default('jwks'),
    /** Where the issuer publishes its keys (Auth0: `<issuer>.well-known/jwks.json`; Keycloak: `<issuer>/protocol/openid-connect/certs`). */
    jwksUrl: url,
    /** Required `iss`, compared exactly (Auth0 issuers end with `/`). */
    issuer: z.string().min(1),
    /** Required `aud` (one of). */
    audience: audienceSchema,
    /** Accepted algorithms. Default `RS256`, `ES256`. Never `none`, never an HMAC algorithm here. */
    algorithms: z
      .array(
        z.enum(['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA']),
      )
      .min(1)
      .default(['RS256', 'ES256']),
    /** Timeout for one JWKS fetch. Default 5 s. */
    timeoutMs: durationMs.default(5_000),
    /** Minimum time between refetches triggered by an unknown `kid`. Default 30 s. */
    cooldownMs: durationMs.default(30_000),
    /** How long a fetched key set is trusted before it is refetched. Default 10 min. */
    cacheMaxAgeMs: durationMs.default(10 * 60_000),
  })
  .strict();

export const verifierSchema = z.union([hs256VerifierSchema, jwksVerifierSchema]);

export const authSchema = z
  .object({
    /**
     * Extra token issuers to accept (resource-server mode). Tokens Gatehouse signs with its own keys are
     * always accepted.
     */
    verifiers: z.array(verifierSchema).default([]),
    /** The `iss` of tokens Gatehouse signs, compared exactly. Default: `server.publicUrl` + `/`. */
    issuer: z.string().min(1).optional(),
    /** Scopes every MCP request needs. Default none. A token lacking one gets 403 `insufficient_scope`. */
    requiredScopes: z.array(z.string().regex(/^[\x21\x23-\x5B\x5D-\x7E]+$/)).default([]),
    /** Scopes advertised in protected-resource metadata. Default: `requiredScopes`. */
    scopesSupported: z.array(z.string().min(1)).optional(),
    /** Allowed clock skew for `exp`/`nbf`/`iat`, in seconds. Default 5. */
    clockToleranceSeconds: z.number().int().min(0).max(300).default(5),
    /** Verified tokens kept in the verification cache. Default 10 000. */
    cacheMaxEntries: z.number().int().min(0).default(10_000),
    /** Longest time one cache entry lives, whatever the token's `exp`. Default 5 min. */
    cacheMaxTtlMs: durationMs.default(5 * 60_000),
    /**
     * Allow `gatehouse token` to mint development tokens with Gatehouse's own key. Default: on in
     * development mode, refused in production.
     */
    devTokens: z.boolean().optional(),
  })
  .strict();

const preRegisteredClientSchema = z
  .object({
    /** The client's `client_id`. */
    clientId: z.string().min(1).max(255),
    /** Secret for `client_secret_basic`/`client_secret_post`; omit for a public client. At least 32 characters. */
    clientSecret: z.string().min(32, 'must be at least 32 characters').optional(),
    /** Exact redirect URIs (https, or http on a loopback host). */
    redirectUris: z.array(z.string().min(1)).min(1),
    /** Shown on the consent page. */
    clientName: z.string().min(1).max(200).optional(),
    /** Default `['authorization_code', 'refresh_token']`. */
    grantTypes: z
      .array(z.enum(['authorization_code', 'refresh_token']))
      .min(1)
      .default(['authorization_code', 'refresh_token']),
    /** Default: `client_secret_basic` with a secret, `none` without. */
    tokenEndpointAuthMethod: z.enum(['none', 'client_secret_basic', 'client_secret_post']).optional(),
    /** Space-separated scopes the client may request. Default: any supported scope. */
    scope: z.string().min(1).max(1000).optional(),
    /** May introspect tokens issued to any client (a resource server). Default false. */
    introspection: z.boolean().default(false),
    /** Skip the consent screen (a first-party client the operator trusts). Default false. */
    trusted: z.boolean().default(false),
  })
  .strict();

export const authorizationServerSchema = z
  .object({
    /**
     * Run Gatehouse's own OAuth authorization server (metadata, registration, authorize, token,
     * revocation, introspection). Default true. Turn it off when tokens come only from an external
     * identity provider (`auth.verifiers`).
     */
    enabled: z.boolean().default(true),
    /** Sign-in with local accounts (`gatehouse users add`). Default true. */
    localAccounts: z.boolean().default(true),
    /**
     * Sign-in federated to the team's OpenID Connect provider (Auth0, WorkOS AuthKit, Supabase Auth,
     * Keycloak, Google, any OIDC). Its one callback is `<publicUrl>/oauth/callback`. Default: none.
     */
    federation: federationConfigSchema.optional(),
    /** Access-token lifetime, in seconds. Default 300 (5 min): short, since refresh is cheap. */
    accessTokenTtlSeconds: z.number().int().min(30).max(86_400).default(300),
    /** Absolute lifetime of a refresh-token family, in seconds. Default 30 days. */
    refreshTokenTtlSeconds: z
      .number()
      .int()
      .min(60)
      .default(30 * 86_400),
    /**
     * How long after a refresh a retry of the same refresh token gets the identical response, in
     * seconds; reuse after that revokes the whole family. Default 30.
     */
    refreshGraceSeconds: z.number().int().min(0).max(300).default(30),
    /** Authorization-code lifetime, in seconds. Default 60. */
    codeTtlSeconds: z.number().int().min(10).max(600).default(60),
    /** How long a browser stays signed in to Gatehouse, in seconds. Default 12 h. */
    loginSessionTtlSeconds: z
      .number()
      .int()
      .min(60)
      .default(12 * 3600),
    /** How long the consent screen and sign-in form stay valid, in seconds. Default 600. */
    interactionTtlSeconds: z.number().int().min(60).max(3600).default(600),
    /** How long a remembered consent lasts, in seconds. Default 90 days; 0 never remembers. */
    consentTtlSeconds: z
      .number()
      .int()
      .min(0)
      .default(90 * 86_400),
    /** How often the signing key is replaced, in seconds; old keys stay in the JWKS until their tokens expire. Default 30 days. */
    signingKeyRotationSeconds: z
      .number()
      .int()
      .min(3600)
      .default(30 * 86_400),
    /**
     * 32-byte key (base64url) that encrypts secrets at rest (upstream tokens, signing keys). Prefer
     * `secretKeyFile`. Default: generated once into `<dataDir>/secret.key` (SQLite) — set it explicitly when
     * several instances share a store.
     */
    secretKey: z.string().min(43).optional(),
    secretKeyFile: z.string().min(1).optional(),
    /** Clients registered by the operator. */
    clients: z.array(preRegisteredClientSchema).default([]),
    clientIdMetadataDocuments: z
      .object({
        /** Accept https `client_id` URLs (Client ID Metadata Documents). Default true. */
        enabled: z.boolean().default(true),
        /**
         * DEVELOPMENT ONLY: allow metadata documents on loopback, private and link-local addresses and
         * over plain http. Default false; refused in production mode.
         */
        allowPrivateNetworks: z.boolean().default(false),
        /** Fetch time limit, in milliseconds. Default 5000. */
        timeoutMs: durationMs.default(5000),
        /** Largest document accepted, in bytes. Default 5120. */
        maxBytes: z.number().int().positive().default(5120),
      })
      .strict()
      .default({ enabled: true, allowPrivateNetworks: false, timeoutMs: 5000, maxBytes: 5120 }),
    dynamicRegistration: z
      .object({
        /** RFC 7591 registration (deprecated by MCP in favour of metadata documents, still widely used). Default true. */
        enabled: z.boolean().default(true),
        /** Require this bearer token on registration requests. Default: open registration. */
        initialAccessToken: z.string().min(16).optional(),
        /** Registrations accepted per client IP per hour. Default 20. */
        perIpPerHour: z.number().int().positive().default(20),
        /**
         * A registered client cannot be authorized (its authorization page says so; the token endpoint
         * answers `invalid_client`) until an operator runs `gatehouse clients approve <client_id>`.
         * Default false.
         */
        requireApproval: z.boolean().default(false),
      })
      .strict()
      .default({ enabled: true, perIpPerHour: 20, requireApproval: false }),
    /**
     * RFC 8693 token exchange at the token endpoint: a confidential client trades a user's Gatehouse
     * access token for a short-lived token bound to another service. Off unless `audiences` lists one.
     */
    tokenExchange: z
      .object({
        /**
         * Services tokens may be exchanged for, compared exactly with the request's `audience` (or
         * `resource`). Default none, which disables the grant (`unsupported_grant_type`).
         */
        audiences: z.array(z.string().min(1)).default([]),
        /** Lifetime of an exchanged token, in seconds; never past the subject token's own expiry. Default 300. */
        ttlSeconds: z.number().int().min(1).max(3600).default(300),
        /**
         * Client ids allowed to exchange; each must be a confidential client. Default: every client in
         * `clients` that has a `clientSecret` (dynamically registered clients never).
         */
        clients: z.array(z.string().min(1)).optional(),
      })
      .strict()
      .default({ audiences: [], ttlSeconds: 300 }),
    /**
     * Sign-in throttling. Limits count per username *and* client address, and per address: never per
     * username alone, which would let anyone lock a person out by failing on purpose.
     */
    loginThrottle: z
      .object({
        /** Failed sign-ins for one username from one client address per window. Default 5. */
        perUsernameAndAddress: z.number().int().positive().default(5),
        /** Failed sign-ins from one client address per window, whatever the username. Default 50. */
        perAddress: z.number().int().positive().default(50),
        /** Window, in milliseconds. Default 15 min. */
        windowMs: durationMs.default(15 * 60_000),
      })
      .strict()
      .default({ perUsernameAndAddress: 5, perAddress: 50, windowMs: 15 * 60_000 }),
  })
  .strict()
  .refine((v) => v.secretKey === undefined || v.secretKeyFile === undefined, {
    message: 'set at most one of secretKey and secretKeyFile',
    path: ['secretKey'],
  })
  .refine((v) => !v.enabled || v.localAccounts || v.federation !== undefined, {
    message: 'no way to sign in: enable localAccounts or configure federation',
    path: ['localAccounts'],
  })
  .transform(({ secretKeyFile, ...server }, ctx) => {
    if (secretKeyFile !== undefined) return unreadFile(ctx, 'secretKeyFile');
    return server;
  });

export const supabaseDownstreamSchema = z
  .object({
    /** `iss` of minted tokens: `https://<project-ref>.supabase.co/auth/v1`. */
    issuer: url,
    /** The project's legacy HS256 JWT secret (at least 32 bytes). Prefer `secretFile`. */
    secret: z.string().min(32, 'must be at least 32 bytes').optional(),
    /** A file holding the secret (trailing newline ignored). */
    secretFile: z.string().min(1).optional(),
    /** The project's asymmetric private signing key (PKCS#8 PEM or private JWK JSON). Prefer `privateKeyFile`. */
    privateKey: z.string().min(1).optional(),
    /** A file holding the private key. */
    privateKeyFile: z.string().min(1).optional(),
    /** `kid` of the private key, as listed in the project's JWKS. Required with `privateKey`. */
    kid: z.string().min(1).optional(),
    /** Algorithm of the private key. Default `ES256`. */
    algorithm: z.enum(['ES256', 'RS256']).default('ES256'),
    /** Lifetime of each minted token, in seconds; never past the user's own token. Default 60. */
    ttlSeconds: z.number().int().min(1).max(3600).default(60),
    /**
     * Variable that carries the user's minted token into a stdio upstream's environment. The child is
     * replaced (its `initialize` replayed) when the token expires, so it never holds an expired one.
     * Default `SUPABASE_ACCESS_TOKEN`.
     */
    env: z.string().regex(ENV_NAME).default('SUPABASE_ACCESS_TOKEN'),
  })
  .strict()
  .refine(
    (v) =>
      [v.secret, v.secretFile, v.privateKey, v.privateKeyFile].filter((field) => field !== undefined)
        .length === 1,
    { message: 'set exactly one of secret, secretFile, privateKey and privateKeyFile', path: ['secret'] },
  )
  .refine((v) => (v.privateKey === undefined && v.privateKeyFile === undefined) || v.kid !== undefined, {
    message: 'kid is required with an asymmetric key',
    path: ['kid'],
  })
  .transform(
    (
      { secret, secretFile, privateKey, privateKeyFile, kid, ...common },
      ctx,
    ):
      | (typeof common & { secret: string; privateKey?: undefined; kid?: undefined })
      | (typeof common & { secret?: undefined; privateKey: string; kid: string }) => {
      if (secret !== undefined) return { ...common, secret };
      if (privateKey !== undefined && kid !== undefined) return { ...common, privateKey, kid };
      return unreadFile(ctx, secretFile !== undefined ? 'secretFile' : 'privateKeyFile');
    },
  );

export const downstreamSchema = z
  .object({
    /**
     * Mint Supabase user tokens (`role`/`aud` `authenticated`) so tools call Supabase as the user.
     * Default: off.
     */
    supabase: supabaseDownstreamSchema.optional(),
  })
  .strict();

export const sessionsSchema = z
  .object({
    /** A session with no request for this long ends. Default 30 min. */
    idleTimeoutMs: durationMs.default(30 * 60_000),
    /** A session ends this long after it began, however active. Default 24 h. */
    absoluteLifetimeMs: durationMs.default(24 * 60 * 60_000),
    /**
     * A session whose client never sent a request after `initialize` ends after this much idleness, in
     * milliseconds (clients that restart without DELETE leave such sessions behind). Default 2 min.
     */
    pendingIdleTimeoutMs: durationMs.default(2 * 60_000),
    /** Live sessions one user may hold. Default 10. */
    maxPerUser: z.number().int().positive().default(10),
    /**
     * What opening one session more than `maxPerUser` does. `evict-oldest` (default) ends the user's least
     * recently used Streamable HTTP session, whose client gets 404 and re-initializes; `refuse` answers 429
     * `ERR_SESSION_LIMIT`. WebSocket connections and legacy SSE streams are live and are never evicted: at
     * the cap with nothing to evict, a new one is refused either way.
     */
    onLimit: z.enum(['evict-oldest', 'refuse']).default('evict-oldest'),
    /** How often the sweeper ends expired sessions. Default 30 s. */
    sweepIntervalMs: durationMs.default(30_000),
  })
  .strict()
  .refine((v) => v.idleTimeoutMs <= v.absoluteLifetimeMs, {
    message: 'must not exceed absoluteLifetimeMs',
    path: ['idleTimeoutMs'],
  });

const absolutePath = z.string().regex(/^\/[A-Za-z0-9._~\-/]*$/, 'must be an absolute path');

export const legacySseSchema = z
  .object({
    /** Serve the 2024-11-05 HTTP+SSE transport for older clients. Default true. */
    enabled: z.boolean().default(true),
    /** Path of the event stream (`GET`). Default `/sse`. */
    ssePath: absolutePath.default('/sse'),
    /** Path clients post their messages to (`POST …?sessionId=`), announced on the stream. Default `/messages`. */
    messagesPath: absolutePath.default('/messages'),
    /** Interval between keep-alive comments on an open stream, in milliseconds. Default 15 s. */
    keepAliveMs: durationMs.default(15_000),
    /**
     * Unread bytes one stream may hold for a slow client, in bytes; beyond it the stream is closed and its
     * session ended. Default 4 MiB.
     */
    maxQueuedBytes: z
      .number()
      .int()
      .min(1024)
      .default(4 * 1024 * 1024),
  })
  .strict()
  .refine((v) => v.ssePath !== v.messagesPath, {
    message: 'must differ from messagesPath',
    path: ['ssePath'],
  });

export const websocketSchema = z
  .object({
    /** Serve MCP over WebSocket (JSON-RPC messages, one per text frame; subprotocol `mcp`). Default true. */
    enabled: z.boolean().default(true),
    /** Path that accepts WebSocket upgrades. Default `/ws`. */
    path: absolutePath.default('/ws'),
    /**
     * How long a connection opened without an `Authorization` header may take to send its
     * `{"op":"hello","token":…}` message, in milliseconds; then it is closed with 4408. Default 10 s.
     */
    helloTimeoutMs: durationMs.default(10_000),
    /** New connections one user may open per minute; more are refused (HTTP 429 or close 4429). Default 10. */
    connectPerUserPerMinute: z.number().int().positive().default(10),
    /** Upgrade requests one client IP may make per minute; more get HTTP 429. Default 50. */
    connectPerIpPerMinute: z.number().int().positive().default(50),
    /** Largest message a client may send, in bytes; a larger one closes the socket with 1009. Default: `server.maxBodyBytes`. */
    maxMessageBytes: z.number().int().positive().optional(),
    /**
     * Bytes the gateway holds for one connection in each direction, in bytes: answers waiting for a client
     * that does not read (beyond it the socket is closed with 4507), and client messages waiting for the
     * upstream (beyond it the gateway stops reading the socket until they drain). Default 1 MiB.
     */
    maxBufferedBytes: z
      .number()
      .int()
      .min(1024)
      .default(1024 * 1024),
    /**
     * Interval between WebSocket pings, in milliseconds; a peer that has not answered the previous ping
     * by the next one is disconnected, and so is an upstream that took none of the client's waiting
     * messages for two intervals (4500). Default 30 s.
     */
    heartbeatIntervalMs: durationMs.default(30_000),
  })
  .strict();

export const diagnosticsSchema = z
  .object({
    /**
     * Add the `gatehouse_whoami`, `gatehouse_validate_token` and `gatehouse_sessions` tools to the
     * upstream's tool list (answered by Gatehouse, never forwarded; they describe the caller only).
     * Default false.
     */
    enabled: z.boolean().default(false),
  })
  .strict();

/** A store on a server: its URL (it may carry a password) given as `url` or `urlFile`, exactly one. */
function oneUrl(v: { url?: string | undefined; urlFile?: string | undefined }): boolean {
  return (v.url === undefined) !== (v.urlFile === undefined);
}
const ONE_URL_ISSUE = { message: 'set exactly one of url and urlFile', path: ['url'] };

/** The parsed server store holds `url`: `loadConfig` read `urlFile` into it before parsing. */
function withUrl<T extends { url?: string | undefined; urlFile?: string | undefined }>(
  { urlFile: _urlFile, url, ...store }: T,
  ctx: z.core.$RefinementCtx,
): Omit<T, 'url' | 'urlFile'> & { url: string } {
  if (url === undefined) return unreadFile(ctx, 'urlFile');
  return { ...store, url };
}

/** A limit per minute; 0 turns it off. */
const perMinute = z.number().int().min(0);

export const limitsSchema = z
  .object({
    /**
     * MCP admissions (HTTP requests, WebSocket and SSE connections) per client address per minute,
     * counted before the token is checked. Behind NAT many people share an address: size it for that.
     * Default 0 (off).
     */
    requestsPerAddressPerMinute: perMinute.default(0),
    /** MCP admissions per user per minute. Default 0 (off). */
    requestsPerUserPerMinute: perMinute.default(0),
    /** MCP admissions per OAuth client (`client_id`/`azp` of the token), all its users together. Default 0 (off). */
    requestsPerClientPerMinute: perMinute.default(0),
  })
  .strict();

export const storeSchema = z.discriminatedUnion('kind', [
  z
    .object({
      kind: z.literal('sqlite'),
      /** Database file. Default `<dataDir>/gatehouse.db`. */
      path: z.string().min(1).optional(),
    })
    .strict(),
  z.object({ kind: z.literal('memory') }).strict(),
  z
    .object({
      kind: z.literal('postgres'),
      /**
       * `postgres://user:password@host:port/database` (`postgresql://` too). Prefer `urlFile` when it
       * carries a password.
       */
      url: storeUrl(['postgres:', 'postgresql:']).optional(),
      /** A file holding the URL (trailing newline ignored). */
      urlFile: z.string().min(1).optional(),
      /** Schema holding Gatehouse's tables, created when missing. Default `gatehouse`. */
      schema: z
        .string()
        .regex(/^[a-z_][a-z0-9_]{0,62}$/, 'a lower-case SQL identifier (letters, digits, _)')
        .default('gatehouse'),
      /** Connections per instance. Default 10. */
      poolSize: z.number().int().min(1).max(200).default(10),
    })
    .strict()
    .refine(oneUrl, ONE_URL_ISSUE)
    .transform(withUrl),
  z
    .object({
      kind: z.literal('redis'),
      /** `redis://[:password@]host:port/db` or `rediss://` (TLS). Prefer `urlFile` when it carries a password. */
      url: storeUrl(['redis:', 'rediss:']).optional(),
      /** A file holding the URL (trailing newline ignored). */
      urlFile: z.string().min(1).optional(),
      /** Prefix of every key Gatehouse writes, so it can share a Redis database. Default `gatehouse:`. */
      keyPrefix: z.string().min(1).max(64).default('gatehouse:'),
    })
    .strict()
    .refine(oneUrl, ONE_URL_ISSUE)
    .transform(withUrl),
]);

export const adminSchema = z
  .object({
    /**
     * The admin API (`/admin/api`) and web console (`/admin`). Callers are local accounts holding the
     * `admin` role, with a token the authorization server issued for the admin resource (`<publicUrl>/admin`),
     * or whoever holds `apiToken`. Default true (nobody is an admin until `gatehouse users admin` says so).
     */
    enabled: z.boolean().default(true),
    /**
     * A static credential for the admin API (`Authorization: Bearer <apiToken>`), for automation without a
     * signed-in person; at least 32 characters, and production refuses a guessable one. Prefer `apiTokenFile`.
     */
    apiToken: z.string().min(32, 'must be at least 32 characters').optional(),
    /** A file holding `apiToken` (trailing newline ignored). */
    apiTokenFile: z.string().min(1).optional(),
    /** Admin API and console requests per caller, and per client address, per minute. Default 120. */
    requestsPerMinute: z.number().int().min(1).default(120),
  })
  .strict()
  .refine((v) => v.apiToken === undefined || v.apiTokenFile === undefined, {
    message: 'set at most one of apiToken and apiTokenFile',
    path: ['apiToken'],
  })
  .transform(({ apiTokenFile, ...admin }, ctx) => {
    if (apiTokenFile !== undefined) return unreadFile(ctx, 'apiTokenFile');
    return admin;
  });

/** OpenTelemetry tracing, exported over OTLP/HTTP. Off by default: the SDK is not even loaded then. */
export const tracingSchema = z
  .object({
    /** Record spans and propagate W3C trace context to the upstream. Default false. */
    enabled: z.boolean().default(false),
    /** The collector's OTLP/HTTP traces URL. Default `http://127.0.0.1:4318/v1/traces` (a local collector). */
    endpoint: url.default('http://127.0.0.1:4318/v1/traces'),
    /** `service.name` of every span. Default `gatehouse`. */
    serviceName: z.string().min(1).max(256).default('gatehouse'),
    /**
     * Share of new traces recorded, 0 to 1; a request that arrives inside a trace follows its caller's
     * sampling decision. Default 1.
     */
    sampleRatio: z.number().min(0).max(1).default(1),
    /** Headers sent to the collector (its credentials): secrets, never logged. Default none. */
    headers: z.record(z.string().regex(HEADER_NAME), z.string()).default({}),
  })
  .strict();

/** The stored audit log (every event, kept in the store; `gatehouse audit`, the admin console). */
export const auditSchema = z
  .object({
    /** Keep the audit log in the store. Default true. */
    enabled: z.boolean().default(true),
    /** Entries older than this many days are deleted (in small batches, hourly); 0 keeps them forever. Default 90. */
    retentionDays: z.number().int().min(0).default(90),
    /**
     * Entries held in memory while the store is slow or down; past it the oldest are dropped (counted in
     * `gatehouse_audit_dropped_total`, warned about once a minute). Requests never wait for the audit log.
     * Default 10 000.
     */
    queueMax: z.number().int().min(1).max(1_000_000).default(10_000),
  })
  .strict();

/** Prometheus metrics. */
export const metricsSchema = z
  .object({
    /** Serve metrics in the Prometheus text format. Default true. */
    enabled: z.boolean().default(true),
    /** The path metrics are served on. Default `/metrics`. */
    path: absolutePath.default('/metrics'),
    /**
     * Serve metrics on this port of their own (0: any free port) instead of the main port, which then does
     * not serve them. Default: the main port.
     */
    port: z.number().int().min(0).max(65_535).optional(),
    /** The interface the metrics port binds. Default `127.0.0.1`. */
    host: z.string().min(1).default('127.0.0.1'),
    /**
     * Scrapers must send `Authorization: Bearer <bearerToken>` (compared in constant time). Default: none
     * (production warns when metrics are on the main port without one). Prefer `bearerTokenFile`.
     */
    bearerToken: z.string().min(16, 'must be at least 16 characters').optional(),
    /** A file holding `bearerToken` (trailing newline ignored). */
    bearerTokenFile: z.string().min(1).optional(),
  })
  .strict()
  .refine((v) => v.bearerToken === undefined || v.bearerTokenFile === undefined, {
    message: 'set at most one of bearerToken and bearerTokenFile',
    path: ['bearerToken'],
  })
  .transform(({ bearerTokenFile, ...metrics }, ctx) => {
    if (bearerTokenFile !== undefined) return unreadFile(ctx, 'bearerTokenFile');
    return metrics;
  });

/** Where logs go besides standard output: a file that rolls over (pino-roll). */
export const logFileSchema = z
  .object({
    /** The log file; rolled files are numbered (`gatehouse.log.1`, …). Its folder is created when missing. */
    path: z.string().min(1),
    /** Roll when the file reaches this size: megabytes, or a number with `k`, `m` or `g` (`50m`). Default: never by size. */
    size: z.union([z.number().positive(), z.string().regex(/^\d+(?:\.\d+)?[kmg]?$/i, 'like 10m')]).optional(),
    /** Roll `daily`, `hourly`, or every so many milliseconds. Default: never by time. */
    frequency: z.union([z.enum(['daily', 'hourly']), z.number().int().positive()]).optional(),
    /** Rolled files kept besides the current one; older ones are deleted. Default: all kept. */
    limit: z.number().int().min(1).optional(),
  })
  .strict();

export const configSchema = z
  .object({
    /** `production` refuses development keys and secrets. Default `development`. */
    mode: z.enum(['development', 'production']).default('development'),
    /** Where Gatehouse keeps its SQLite database and signing keys. Default `./.gatehouse`. */
    dataDir: z.string().min(1).default('.gatehouse'),
    server: serverSchema.default(serverSchema.parse({})),
    /** The MCP server behind the gateway. Default: the bundled demo notes server over stdio. */
    upstream: upstreamSchema.optional(),
    auth: authSchema.default(authSchema.parse({})),
    authorizationServer: authorizationServerSchema.default(authorizationServerSchema.parse({})),
    sessions: sessionsSchema.default(sessionsSchema.parse({})),
    /** Credentials Gatehouse mints for services tools call (Supabase user tokens). */
    downstream: downstreamSchema.default({}),
    /** The legacy 2024-11-05 HTTP+SSE transport (`GET /sse`, `POST /messages`). */
    legacySse: legacySseSchema.default(legacySseSchema.parse({})),
    /** MCP over WebSocket, with `Authorization` on the upgrade or a first `hello` message. */
    websocket: websocketSchema.default(websocketSchema.parse({})),
    /** Opt-in diagnostics tools for the MCP endpoint. */
    diagnostics: diagnosticsSchema.default(diagnosticsSchema.parse({})),
    /** Default: SQLite under `dataDir`. */
    store: storeSchema.default({ kind: 'sqlite' }),
    /** MCP request limits, shared by every instance on a PostgreSQL or Redis store. Default: off. */
    limits: limitsSchema.default(limitsSchema.parse({})),
    /** OpenTelemetry tracing. Default: off. */
    tracing: tracingSchema.default(tracingSchema.parse({})),
    /** The admin API and web console. */
    admin: adminSchema.default(adminSchema.parse({})),
    /** The stored audit log. */
    audit: auditSchema.default(auditSchema.parse({})),
    /** Prometheus metrics (`/metrics`). */
    metrics: metricsSchema.default(metricsSchema.parse({})),
    log: z
      .object({
        /** pino level. Default `info`. */
        level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
        /** `pretty` (human-readable), `json` (one object per line), `auto`: pretty on a terminal. Default `auto`. */
        format: z.enum(['auto', 'json', 'pretty']).default('auto'),
        /** Also write JSON lines to a rolling file. Default: standard output only. */
        file: logFileSchema.optional(),
      })
      .strict()
      .default({ level: 'info', format: 'auto' }),
  })
  .strict()
  .refine(
    (v) =>
      !v.authorizationServer.tokenExchange.audiences.includes('authenticated') ||
      v.downstream.supabase !== undefined,
    {
      message:
        "'authenticated' is Supabase's audience: configure downstream.supabase to exchange tokens for it",
      path: ['authorizationServer', 'tokenExchange', 'audiences'],
    },
  );

/** What the user writes (every field optional where it has a default). */
export type GatehouseConfigInput = z.input<typeof configSchema>;
/**
 * The validated configuration, with every default filled in and every secret present: `…File` fields are
 * read by `loadConfig` before parsing and are not part of it.
 */
export type GatehouseConfig = z.output<typeof configSchema>;
export type UpstreamConfig = z.output<typeof upstreamSchema>;
export type StdioUpstreamConfig = z.output<typeof stdioUpstreamSchema>;
export type HttpUpstreamConfig = z.output<typeof httpUpstreamSchema>;
export type VerifierConfig = z.output<typeof verifierSchema>;
export type Hs256VerifierConfig = z.output<typeof hs256VerifierSchema>;
export type JwksVerifierConfig = z.output<typeof jwksVerifierSchema>;
export type SessionsConfig = z.output<typeof sessionsSchema>;
export type LegacySseConfig = z.output<typeof legacySseSchema>;
export type AdminConfig = z.output<typeof adminSchema>;
export type WebSocketConfig = z.output<typeof websocketSchema>;
export type DiagnosticsConfig = z.output<typeof diagnosticsSchema>;
export type AuthorizationServerConfig = z.output<typeof authorizationServerSchema>;
export type PreRegisteredClientConfig = z.output<typeof preRegisteredClientSchema>;
export type SupabaseDownstreamConfig = z.output<typeof supabaseDownstreamSchema>;
export type TokenExchangeConfig = AuthorizationServerConfig['tokenExchange'];
