import { TOKEN_EXCHANGE_GRANT } from './grants/token-exchange.js';

/** The URLs of the authorization server's endpoints, all under the public base URL. */
export interface AuthorizationServerUrls {
  readonly issuer: string;
  readonly authorization: string;
  readonly token: string;
  readonly registration: string;
  readonly revocation: string;
  readonly introspection: string;
  readonly jwks: string;
  /** The one fixed callback for federated login. */
  readonly federationCallback: string;
  /** Where the browser signs in and consents (`…/interaction/<id>`). */
  readonly interaction: string;
  readonly signOut: string;
}

/** Endpoint paths, relative to the public base URL. */
export const OAUTH_PATHS = {
  authorization: '/oauth/authorize',
  token: '/oauth/token',
  registration: '/oauth/register',
  revocation: '/oauth/revoke',
  introspection: '/oauth/introspect',
  federationCallback: '/oauth/callback',
  interaction: '/oauth/interaction',
  signOut: '/oauth/sign-out',
} as const;

export function authorizationServerUrls(
  publicUrl: string,
  issuer: string,
  jwksUrl: string,
): AuthorizationServerUrls {
  return {
    issuer,
    authorization: `${publicUrl}${OAUTH_PATHS.authorization}`,
    token: `${publicUrl}${OAUTH_PATHS.token}`,
    registration: `${publicUrl}${OAUTH_PATHS.registration}`,
    revocation: `${publicUrl}${OAUTH_PATHS.revocation}`,
    introspection: `${publicUrl}${OAUTH_PATHS.introspection}`,
    jwks: jwksUrl,
    federationCallback: `${publicUrl}${OAUTH_PATHS.federationCallback}`,
    interaction: `${publicUrl}${OAUTH_PATHS.interaction}`,
    signOut: `${publicUrl}${OAUTH_PATHS.signOut}`,
  };
}

export interface MetadataOptions {
  readonly urls: AuthorizationServerUrls;
  readonly resource: string;
  readonly scopesSupported: readonly string[];
  readonly dynamicRegistration: boolean;
  readonly clientIdMetadataDocuments: boolean;
  /** Advertise RFC 8693 token exchange (only when it is enabled). Default false. */
  readonly tokenExchange?: boolean | undefined;
}

/** RFC 8414 authorization server metadata (also served at the OpenID discovery paths MCP clients probe). */
export function authorizationServerMetadata(options: MetadataOptions): Record<string, unknown> {
  const { urls } = options;
  const clientAuth = ['none', 'client_secret_basic', 'client_secret_post'];
  return {
    issuer: urls.issuer,
    authorization_endpoint: urls.authorization,
    token_endpoint: urls.token,
    ...(options.dynamicRegistration && { registration_endpoint: urls.registration }),
    revocation_endpoint: urls.revocation,
    introspection_endpoint: urls.introspection,
    jwks_uri: urls.jwks,
    scopes_supported: [...options.scopesSupported],
    response_types_supported: ['code'],
    response_modes_supported: ['query'],
    grant_types_supported: [
      'authorization_code',
      'refresh_token',
      ...(options.tokenExchange === true ? [TOKEN_EXCHANGE_GRANT] : []),
    ],
    token_endpoint_auth_methods_supported: clientAuth,
    revocation_endpoint_auth_methods_supported: clientAuth,
    introspection_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
    code_challenge_methods_supported: ['S256'],
    prompt_values_supported: ['none', 'login', 'consent'],
    // RFC 9207: every authorization response, errors included, carries `iss`.
    authorization_response_iss_parameter_supported: true,
    client_id_metadata_document_supported: options.clientIdMetadataDocuments,
    // RFC 9728 §4: the resources this server issues tokens for.
    protected_resources: [options.resource],
  };
}

/**
 * Every path at which clients look for the metadata of `issuer` (RFC 8414 §3.1 inserts the well-known
 * segment before the issuer's path; OpenID Connect Discovery appends it; MCP clients try all three).
 */
export function metadataPaths(issuer: string): string[] {
  const path = new URL(issuer).pathname.replace(/\/+$/, '');
  return [
    ...new Set([
      `/.well-known/oauth-authorization-server${path}`,
      `/.well-known/openid-configuration${path}`,
      `${path}/.well-known/openid-configuration`,
    ]),
  ];
}
