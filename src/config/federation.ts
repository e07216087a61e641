import { z } from 'zod';

/**
 * Configuration of one upstream OpenID Connect provider that Gatehouse federates login to
 * (`authorizationServer.federation`). A `preset` fills the defaults a known provider needs; anything set
 * explicitly wins over the preset. Parsing refuses what would fail at the first login (a wrong issuer shape for the
 * preset, a scope list without `openid`, a parameter Gatehouse must own) instead of guessing.
 */

export const FEDERATION_PRESETS = ['auth0', 'workos', 'supabase', 'keycloak', 'google', 'generic'] as const;
export type FederationPreset = (typeof FEDERATION_PRESETS)[number];

/** Authorization-request parameters Gatehouse sets itself; `extraAuthorizationParams` may not override them. */
export const RESERVED_AUTHORIZATION_PARAMS: readonly string[] = [
  'response_type',
  'client_id',
  'redirect_uri',
  'scope',
  'state',
  'nonce',
  'code_challenge',
  'code_challenge_method',
  'audience',
];

interface PresetDefaults {
  readonly displayName: string | undefined;
  readonly scopes: readonly string[];
  readonly authorizationParams: Readonly<Record<string, string>>;
  readonly claims: {
    readonly email: readonly string[];
    readonly name: readonly string[];
    readonly organization?: readonly string[];
    readonly roles?: readonly string[];
  };
}

const OIDC_SCOPES = ['openid', 'email', 'profile'] as const;
const STANDARD_CLAIMS = { email: ['email'], name: ['name'] } as const;

/**
 * What each preset fills in (sources: the providers' public documentation, see IDP-NOTES.md). Claims are
 * read from the ID token, then from userinfo; never from the upstream access token. Several providers put
 * organization and role claims only in their access token by default, so those need the provider set up
 * to release them in the ID token or at userinfo:
 *
 * - `auth0`: `offline_access` (Auth0 issues a refresh token only for it, and only when the API allows
 *   offline access); set `audience` to the API identifier or Auth0 returns an opaque access token.
 *   `org_id` is the Auth0 Organizations claim. Roles need an Action adding a namespaced claim; map it
 *   with `claims.roles: "https://…/roles"`.
 * - `workos` (AuthKit, `https://<subdomain>.authkit.app`): `offline_access` (adds the refresh token);
 *   `org_id`, `roles` / `role` (documented as session/access-token claims; add them to the ID token with
 *   a JWT template where they are missing).
 * - `supabase` (Supabase Auth's OAuth 2.1 server, `https://<ref>.supabase.co/auth/v1`): refresh tokens
 *   come without `offline_access`; roles from `app_metadata.roles` (admin-controlled, unlike
 *   `user_metadata`), else `role` (`authenticated`).
 * - `keycloak` (`https://<host>/realms/<realm>`): refresh tokens come by default (`offline_access` would
 *   ask for an offline token instead); `name` falling back to `preferred_username`;
 *   `realm_access.roles` (turn on "Add to ID token" or "Add to userinfo" on the realm-roles mapper).
 * - `google` (`https://accounts.google.com`): a refresh token only with `access_type=offline` and
 *   `prompt=consent`; Google refuses the `offline_access` scope; `hd` (the Workspace domain) as the
 *   organization.
 * - `generic`: OIDC Core §11 `offline_access` for the refresh token; standard claims only.
 */
const PRESET_DEFAULTS: Readonly<Record<FederationPreset, PresetDefaults>> = {
  auth0: {
    displayName: 'Auth0',
    scopes: [...OIDC_SCOPES, 'offline_access'],
    authorizationParams: {},
    claims: { ...STANDARD_CLAIMS, organization: ['org_id'] },
  },
  workos: {
    displayName: 'WorkOS',
    scopes: [...OIDC_SCOPES, 'offline_access'],
    authorizationParams: {},
    claims: { ...STANDARD_CLAIMS, organization: ['org_id'], roles: ['roles', 'role'] },
  },
  supabase: {
    displayName: 'Supabase',
    scopes: [...OIDC_SCOPES],
    authorizationParams: {},
    claims: { ...STANDARD_CLAIMS, roles: ['app_metadata.roles', 'role'] },
  },
  keycloak: {
    displayName: 'Keycloak',
    scopes: [...OIDC_SCOPES],
    authorizationParams: {},
    claims: { email: ['email'], name: ['name', 'preferred_username'], roles: ['realm_access.roles'] },
  },
  google: {
    displayName: 'Google',
    scopes: [...OIDC_SCOPES],
    authorizationParams: { access_type: 'offline', prompt: 'consent' },
    claims: { ...STANDARD_CLAIMS, organization: ['hd'] },
  },
  generic: {
    displayName: undefined,
    scopes: [...OIDC_SCOPES, 'offline_access'],
    authorizationParams: {},
    claims: { ...STANDARD_CLAIMS },
  },
};

/** RFC 6749 §3.3 scope-token. */
const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]+$/;
/** Lower-case, starts with a letter; it becomes part of every federated principal key (`<name>#<sub>`). */
const PROVIDER_NAME = /^[a-z][a-z0-9-]{0,31}$/;
const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]']);

/**
 * A claim to read: a top-level claim name (`email`, `https://example.com/roles`), or a dotted path into
 * nested objects (`realm_access.roles`, `app_metadata.roles`). A name that exists as written wins over the
 * dotted reading, so namespaced URL claims work.
 */
const claimPath = z.string().min(1).max(200);
/** One claim path or a list tried in order (the first claim present wins); `[]` maps nothing. */
const claimPaths = z.union([claimPath, z.array(claimPath).max(8)]);

export const federationClaimsSchema = z
  .object({
    /** The claim that identifies the user; must be stable and never reassigned. Default `sub`. */
    subject: claimPath.optional(),
    /** Default `email` (dropped when the same source says `email_verified: false`). */
    email: claimPaths.optional(),
    /** Default `name` (Keycloak: `name`, then `preferred_username`). */
    name: claimPaths.optional(),
    /** Organization or tenant claim, copied into the principal as `organization`. Default: per preset. */
    organization: claimPaths.optional(),
    /** Roles claim (string or array of strings), copied into the principal as `roles`. Default: per preset. */
    roles: claimPaths.optional(),
  })
  .strict();

export const federationConfigSchema = z
  .object({
    /**
     * Stable name of the provider: the `idp` of every principal it signs in, so part of every federated
     * principal key. Changing it orphans existing grants and stored upstream tokens. Default: the preset
     * (`auth0`, `google`, …), `oidc` for `generic`. `local` is reserved for local accounts.
     */
    name: z
      .string()
      .regex(PROVIDER_NAME, 'lower-case letters, digits and "-", starting with a letter, at most 32')
      .refine((value) => value !== 'local', { message: '"local" is reserved for local accounts' })
      .optional(),
    /** Shown on the login page ("Sign in with …"). Default: the provider's name, or the issuer's host. */
    displayName: z.string().min(1).max(100).optional(),
    /** Known provider whose quirks to apply. Default `generic`. */
    preset: z.enum(FEDERATION_PRESETS).default('generic'),
    /**
     * The provider's issuer identifier, exactly as its discovery document and ID tokens carry it:
     * `https://a.example/` and `https://a.example` differ (Auth0 issuers end with `/`). Discovery is
     * `<issuer>/.well-known/openid-configuration`.
     */
    issuer: z.url({ protocol: /^https?$/ }),
    /** Gatehouse's client id at the provider. */
    clientId: z.string().min(1),
    /**
     * Client secret; with it Gatehouse authenticates with `client_secret_basic`, without it as a public
     * client (PKCE only). Prefer a file, named by
     * `GATEHOUSE_AUTHORIZATION_SERVER__FEDERATION__CLIENT_SECRET_FILE`.
     */
    clientSecret: z.string().min(1).optional(),
    /** Scopes to request; must include `openid`. Default `openid email profile`, plus `offline_access` per preset. */
    scopes: z
      .array(z.string().regex(SCOPE_TOKEN, 'not a valid scope token'))
      .min(1)
      .refine((scopes) => scopes.includes('openid'), { message: 'must include "openid"' })
      .optional(),
    /**
     * Sent as `audience` on the authorization request. Auth0: the API identifier; without it Auth0 issues
     * an opaque access token (and no API refresh token). Default: not sent.
     */
    audience: z.string().min(1).optional(),
    /**
     * Extra authorization-request parameters (for example `{ "prompt": "select_account" }`), added to the
     * preset's (Google: `access_type=offline`, `prompt=consent`); a key set here replaces the preset's.
     * The protocol parameters Gatehouse sets (`state`, `nonce`, PKCE, `scope`, `audience`, …) are refused.
     */
    extraAuthorizationParams: z.record(z.string().min(1), z.string()).optional(),
    /** Which claims fill the principal; each key set here replaces the preset's. */
    claims: federationClaimsSchema.optional(),
    /**
     * Allow an `http:` issuer and `http:` provider endpoints. Only for a provider on a loopback address in
     * tests and local development; refused for any other host. Default `false`.
     */
    allowInsecureHttp: z.boolean().default(false),
    /** Timeout of one request to the provider (discovery, token, userinfo, JWKS), in milliseconds. Default 10 s. */
    timeoutMs: z.number().int().positive().max(120_000).default(10_000),
  })
  .strict()
  .superRefine((config, ctx) => {
    // zod runs this even when a field already failed; only cross-check what parsed.
    if (typeof config.issuer !== 'string' || !URL.canParse(config.issuer)) return;
    const issuer = new URL(config.issuer);
    if (issuer.search !== '' || issuer.hash !== '' || issuer.username !== '' || issuer.password !== '') {
      ctx.addIssue({
        code: 'custom',
        path: ['issuer'],
        message: 'an issuer has no query, fragment or credentials',
      });
    }
    if (issuer.protocol === 'http:' && !config.allowInsecureHttp) {
      ctx.addIssue({ code: 'custom', path: ['issuer'], message: 'must use https' });
    }
    if (config.allowInsecureHttp && !LOOPBACK_HOSTS.has(issuer.hostname)) {
      ctx.addIssue({
        code: 'custom',
        path: ['allowInsecureHttp'],
        message: 'only allowed for an issuer on a loopback address (127.0.0.1, localhost, [::1])',
      });
    }
    const extra = config.extraAuthorizationParams;
    for (const key of typeof extra === 'object' && extra !== null ? Object.keys(extra) : []) {
      if (RESERVED_AUTHORIZATION_PARAMS.includes(key)) {
        ctx.addIssue({
          code: 'custom',
          path: ['extraAuthorizationParams', key],
          message:
            key === 'audience'
              ? 'set it with the "audience" option'
              : 'set by Gatehouse for every authorization request',
        });
      }
    }
    const presetIssue = checkIssuerForPreset(config.preset, issuer, config.issuer);
    if (presetIssue !== undefined) ctx.addIssue({ code: 'custom', path: ['issuer'], message: presetIssue });
    if (
      config.preset === 'google' &&
      Array.isArray(config.scopes) &&
      config.scopes.includes('offline_access')
    ) {
      ctx.addIssue({
        code: 'custom',
        path: ['scopes'],
        message:
          'Google refuses "offline_access"; the preset asks for a refresh token with access_type=offline',
      });
    }
  })
  .transform((input): FederationConfig => {
    const preset = PRESET_DEFAULTS[input.preset];
    const claims = input.claims ?? {};
    const organization = toPaths(claims.organization) ?? preset.claims.organization;
    const roles = toPaths(claims.roles) ?? preset.claims.roles;
    return {
      name: input.name ?? (input.preset === 'generic' ? 'oidc' : input.preset),
      displayName: input.displayName ?? preset.displayName ?? new URL(input.issuer).host,
      preset: input.preset,
      issuer: input.issuer,
      clientId: input.clientId,
      ...(input.clientSecret === undefined ? {} : { clientSecret: input.clientSecret }),
      scopes: [...new Set(input.scopes ?? preset.scopes)],
      ...(input.audience === undefined ? {} : { audience: input.audience }),
      extraAuthorizationParams: { ...preset.authorizationParams, ...input.extraAuthorizationParams },
      claims: {
        subject: claims.subject ?? 'sub',
        email: toPaths(claims.email) ?? preset.claims.email,
        name: toPaths(claims.name) ?? preset.claims.name,
        ...(organization === undefined ? {} : { organization }),
        ...(roles === undefined ? {} : { roles }),
      },
      allowInsecureHttp: input.allowInsecureHttp,
      timeoutMs: input.timeoutMs,
    };
  });

function toPaths(value: string | readonly string[] | undefined): readonly string[] | undefined {
  if (value === undefined) return undefined;
  return typeof value === 'string' ? [value] : value;
}

function checkIssuerForPreset(preset: FederationPreset, issuer: URL, raw: string): string | undefined {
  switch (preset) {
    case 'auth0':
      return raw.endsWith('/')
        ? undefined
        : 'Auth0 issuers end with "/" (https://<tenant>.<region>.auth0.com/)';
    case 'supabase':
      return issuer.pathname === '/auth/v1' && !raw.endsWith('/')
        ? undefined
        : 'Supabase Auth issuers are https://<project-ref>.supabase.co/auth/v1 (no trailing "/")';
    case 'keycloak':
      return /^(\/[^/]+)*\/realms\/[^/]+$/.test(issuer.pathname) && !raw.endsWith('/')
        ? undefined
        : 'Keycloak issuers are https://<host>/realms/<realm> (no trailing "/")';
    case 'google':
      return raw === 'https://accounts.google.com'
        ? undefined
        : 'Google\'s issuer is "https://accounts.google.com"';
    default:
      return undefined;
  }
}

/** Which claims fill a federated principal; every entry is a list of claim paths tried in order. */
export interface FederationClaimMapping {
  readonly subject: string;
  readonly email: readonly string[];
  readonly name: readonly string[];
  readonly organization?: readonly string[];
  readonly roles?: readonly string[];
}

/** A parsed `auth.federation`: every default filled in, the preset applied. */
export interface FederationConfig {
  readonly name: string;
  readonly displayName: string;
  readonly preset: FederationPreset;
  readonly issuer: string;
  readonly clientId: string;
  readonly clientSecret?: string;
  readonly scopes: readonly string[];
  readonly audience?: string;
  readonly extraAuthorizationParams: Readonly<Record<string, string>>;
  readonly claims: FederationClaimMapping;
  readonly allowInsecureHttp: boolean;
  readonly timeoutMs: number;
}

/** What the user writes. */
export type FederationConfigInput = z.input<typeof federationConfigSchema>;
