import { OAuthError } from '../errors/oauth-error.js';
import type { ClientLookup } from './cimd.js';
import { isAllowedRedirectUri } from './client-metadata.js';
import type { ResolvedClient } from './clients.js';
import { isWellFormedS256Challenge } from './pkce.js';

/** A validated authorization request (RFC 6749 §4.1.1 + RFC 7636 + RFC 8707). */
export interface AuthorizationRequest {
  readonly clientId: string;
  /**
   * How the client became known. Only a `configured` client is trusted with error redirects before the
   * person has interacted (RFC 9700 §4.11.2); anything else, including a record without this field, is not.
   */
  readonly clientSource: ResolvedClient['source'];
  readonly redirectUri: string;
  readonly state?: string;
  readonly codeChallenge: string;
  readonly resource: string;
  /** Scopes granted if the user approves: requested ∩ supported, or the defaults when none were asked. */
  readonly scopes: readonly string[];
  readonly prompt: readonly ('none' | 'login' | 'consent')[];
}

/**
 * An authorization request that failed. `redirect` is set only once the client and its exact redirect URI
 * are validated (RFC 6749 §4.1.2.1, RFC 9700 §4.2.4): before that, the error is shown to the user and
 * never sent to an unverified URI. Even then, whether to redirect is the caller's decision: a client that
 * registered itself (`clientSource` other than `configured`) must not be redirected to before the person
 * has interacted (RFC 9700 §4.11.2).
 */
export class AuthorizeError extends Error {
  override readonly name = 'AuthorizeError';
  constructor(
    readonly error: OAuthError,
    readonly redirect?: {
      readonly redirectUri: string;
      readonly state?: string | undefined;
      readonly clientSource: ResolvedClient['source'];
    },
  ) {
    super(error.message, { cause: error });
  }
}

export interface AuthorizeRequestContext {
  /**
   * Resolves `client_id`; throws `OAuthError('invalid_client')` for a metadata document that failed, and
   * `GatehouseError('ERR_RATE_LIMITED')` when fetching it is refused by a limit.
   */
  readonly resolveClient: (clientId: string, lookup?: ClientLookup) => Promise<ResolvedClient | undefined>;
  /** The resources Gatehouse issues tokens for (RFC 8707). */
  readonly resources: readonly string[];
  readonly scopesSupported: readonly string[];
  /** Granted when the request names no scope. */
  readonly defaultScopes: readonly string[];
}

const SINGLE = [
  'client_id',
  'redirect_uri',
  'response_type',
  'state',
  'code_challenge',
  'code_challenge_method',
  'scope',
  'prompt',
] as const;
const MAX_PARAM_LENGTH = 4096;
const PROMPTS = new Set(['none', 'login', 'consent']);

/** Canonical form used to compare resource indicators: parsed, without fragment and trailing slash. */
export function canonicalResource(value: string): string | undefined {
  if (!URL.canParse(value)) return undefined;
  const url = new URL(value);
  if (url.hash !== '') return undefined;
  return url.href.replace(/\/+$/, '');
}

/**
 * Validates an authorization request. `lookup` says whose request it is (their address), for the limits on
 * what resolving the client may cost (a metadata-document fetch).
 *
 * @throws AuthorizeError for an invalid request; see its `redirect`.
 * @throws OAuthError `invalid_client` for a metadata document that failed to resolve.
 * @throws GatehouseError `ERR_RATE_LIMITED` when resolving the client was refused by a limit.
 */
export async function parseAuthorizeRequest(
  params: URLSearchParams,
  context: AuthorizeRequestContext,
  lookup?: ClientLookup,
): Promise<AuthorizationRequest> {
  const direct = (description: string, code: 'invalid_request' | 'invalid_client' = 'invalid_request') =>
    new AuthorizeError(new OAuthError(code, { description }));

  // RFC 6749 §3.1: parameters MUST NOT be included more than once.
  for (const name of SINGLE) {
    if (params.getAll(name).length > 1) {
      if (name === 'client_id' || name === 'redirect_uri') throw direct(`${name} is repeated`);
    }
  }
  for (const [name, value] of params) {
    if (value.length > MAX_PARAM_LENGTH) throw direct(`${name} is too long`);
  }

  const clientId = params.get('client_id');
  if (clientId === null || clientId === '') throw direct('client_id is required');
  const client = await context.resolveClient(clientId, lookup);
  if (client === undefined) throw direct('unknown client_id', 'invalid_client');

  const requestedRedirect = params.get('redirect_uri');
  let redirectUri: string;
  if (requestedRedirect === null) {
    // OAuth 2.1 §4.1.1: may be omitted only when the client registered exactly one.
    const [only, ...others] = client.redirectUris;
    if (only === undefined || others.length > 0) throw direct('redirect_uri is required');
    redirectUri = only;
  } else {
    // Exact string match (RFC 9700 §4.1.3), no pattern, no normalisation.
    if (!client.redirectUris.includes(requestedRedirect)) {
      throw direct('redirect_uri does not match a registered redirect URI');
    }
    redirectUri = requestedRedirect;
  }
  // A client registered before a scheme was refused keeps the stored URI; it is never redirected to.
  if (!isAllowedRedirectUri(redirectUri)) {
    throw direct('redirect_uri uses a scheme this server no longer redirects to');
  }

  const state = params.get('state') ?? undefined;
  const redirectable = (code: ConstructorParameters<typeof OAuthError>[0], description: string) =>
    new AuthorizeError(new OAuthError(code, { description }), {
      redirectUri,
      state,
      clientSource: client.source,
    });

  for (const name of SINGLE) {
    if (params.getAll(name).length > 1) throw redirectable('invalid_request', `${name} is repeated`);
  }
  if (!client.grantTypes.includes('authorization_code')) {
    throw redirectable(
      'unauthorized_client',
      'the client is not registered for the authorization_code grant',
    );
  }
  const responseType = params.get('response_type');
  if (responseType === null) throw redirectable('invalid_request', 'response_type is required');
  if (responseType !== 'code') {
    throw redirectable('unsupported_response_type', 'only response_type=code is supported');
  }

  // PKCE is mandatory and S256 only (OAuth 2.1 §7.5.2; MCP authorization §"Authorization Code Protection").
  const codeChallenge = params.get('code_challenge');
  const method = params.get('code_challenge_method');
  if (codeChallenge === null) throw redirectable('invalid_request', 'code_challenge is required (PKCE)');
  if (method !== 'S256') {
    throw redirectable('invalid_request', 'code_challenge_method must be S256');
  }
  if (!isWellFormedS256Challenge(codeChallenge)) {
    throw redirectable('invalid_request', 'code_challenge is not a base64url SHA-256 value');
  }

  const resources = params.getAll('resource');
  if (resources.length === 0) throw redirectable('invalid_target', 'resource is required (RFC 8707)');
  if (resources.length > 1)
    throw redirectable('invalid_target', 'only one resource per request is supported');
  const resource = resolveResource(resources[0] ?? '', context.resources);
  if (resource === undefined) {
    throw redirectable('invalid_target', 'resource is not served by this authorization server');
  }

  const prompt = (params.get('prompt') ?? '').split(' ').filter((value) => value !== '');
  if (prompt.some((value) => !PROMPTS.has(value))) {
    throw redirectable('invalid_request', 'prompt must be none, login or consent');
  }
  if (prompt.includes('none') && prompt.length > 1) {
    throw redirectable('invalid_request', 'prompt=none cannot be combined with other values');
  }

  return {
    clientId: client.clientId,
    clientSource: client.source,
    redirectUri,
    ...(state !== undefined && { state }),
    codeChallenge,
    resource,
    scopes: grantedScopes(params.get('scope'), client, context),
    prompt: prompt as AuthorizationRequest['prompt'],
  };
}

function resolveResource(requested: string, served: readonly string[]): string | undefined {
  const canonical = canonicalResource(requested);
  if (canonical === undefined) return undefined;
  return served.find((resource) => canonicalResource(resource) === canonical);
}

/**
 * RFC 6749 §3.3: the server may grant fewer scopes than requested. Unknown scopes (such as `openid` or
 * `offline_access`, which some clients add by habit) are dropped rather than failing the sign-in; the
 * token response names what was granted.
 */
function grantedScopes(
  requested: string | null,
  client: ResolvedClient,
  context: AuthorizeRequestContext,
): string[] {
  const names = (requested ?? '').split(' ').filter((value) => value !== '');
  const allowedByClient = client.scope === undefined ? undefined : new Set(client.scope.split(' '));
  const supported = new Set(context.scopesSupported);
  const source = names.length === 0 ? context.defaultScopes : names;
  return [...new Set(source)].filter(
    (scope) => supported.has(scope) && (allowedByClient === undefined || allowedByClient.has(scope)),
  );
}
