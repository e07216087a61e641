import { z } from 'zod';

/**
 * The one configuration schema: the library, the config file and the environment all go through it.
 * Every option says its unit and default where it is declared. Durations are milliseconds unless the
 * name says `Seconds`.
 */

const durationMs = z.number().int().positive();
const url = z.url({ protocol: /^https?$/ });

const HEADER_NAME = /^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

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
  })
  .strict();

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
    /** The `iss` of tokens Gatehouse signs. Default: `server.publicUrl`. */
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

export const sessionsSchema = z
  .object({
    /** A session with no request for this long ends. Default 30 min. */
    idleTimeoutMs: durationMs.default(30 * 60_000),
    /** A session ends this long after it began, however active. Default 24 h. */
    absoluteLifetimeMs: durationMs.default(24 * 60 * 60_000),
    /** Live sessions one user may hold; one more gets 429 `ERR_SESSION_LIMIT`. Default 10. */
    maxPerUser: z.number().int().positive().default(10),
    /** How often the sweeper ends expired sessions. Default 30 s. */
    sweepIntervalMs: durationMs.default(30_000),
  })
  .strict()
  .refine((v) => v.idleTimeoutMs <= v.absoluteLifetimeMs, {
    message: 'must not exceed absoluteLifetimeMs',
    path: ['idleTimeoutMs'],
  });

export const storeSchema = z.discriminatedUnion('kind', [
  z
    .object({
      kind: z.literal('sqlite'),
      /** Database file. Default `<dataDir>/gatehouse.db`. */
      path: z.string().min(1).optional(),
    })
    .strict(),
  z.object({ kind: z.literal('memory') }).strict(),
]);

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
    sessions: sessionsSchema.default(sessionsSchema.parse({})),
    /** Default: SQLite under `dataDir`. */
    store: storeSchema.default({ kind: 'sqlite' }),
    log: z
      .object({
        /** pino level. Default `info`. */
        level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
      })
      .strict()
      .default({ level: 'info' }),
  })
  .strict();

/** What the user writes (every field optional where it has a default). */
export type GatehouseConfigInput = z.input<typeof configSchema>;
/** The validated configuration, with every default filled in. */
export type GatehouseConfig = z.output<typeof configSchema>;
export type UpstreamConfig = z.output<typeof upstreamSchema>;
export type StdioUpstreamConfig = z.output<typeof stdioUpstreamSchema>;
export type HttpUpstreamConfig = z.output<typeof httpUpstreamSchema>;
export type VerifierConfig = z.output<typeof verifierSchema>;
export type Hs256VerifierConfig = z.output<typeof hs256VerifierSchema>;
export type JwksVerifierConfig = z.output<typeof jwksVerifierSchema>;
export type SessionsConfig = z.output<typeof sessionsSchema>;
