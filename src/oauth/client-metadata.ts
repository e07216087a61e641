import { z } from 'zod';
import { tokenHash } from '../crypto/fingerprint.js';
import { OAuthError } from '../errors/oauth-error.js';
import type { ClientRecord, TokenEndpointAuthMethod } from '../stores/ports.js';
import { readableText } from './untrusted-text.js';

/** Where client metadata came from; the rules differ only where a public document cannot hold a secret. */
export type ClientMetadataMode = 'registration' | 'metadata-document';

export type ClientGrantType = 'authorization_code' | 'refresh_token';

/** Validated, normalised client metadata (RFC 7591 §2), in camelCase. */
export interface ClientMetadata {
  readonly redirectUris: readonly string[];
  readonly tokenEndpointAuthMethod: TokenEndpointAuthMethod;
  readonly grantTypes: readonly ClientGrantType[];
  readonly responseTypes: readonly 'code'[];
  readonly applicationType: 'web' | 'native';
  readonly clientName?: string;
  readonly clientUri?: string;
  readonly logoUri?: string;
  /** Space-separated, de-duplicated scope tokens. */
  readonly scope?: string;
  readonly contacts?: readonly string[];
  readonly tosUri?: string;
  readonly policyUri?: string;
  readonly softwareId?: string;
  readonly softwareVersion?: string;
}

/** Length limits, so a registration or a fetched document cannot make Gatehouse store or render megabytes. */
export const CLIENT_METADATA_LIMITS = {
  /** Most redirect URIs one client may register. */
  redirectUris: 20,
  /** Longest URI (redirect, client, logo, terms, policy), in characters. */
  uriLength: 2000,
  clientNameLength: 200,
  scopeLength: 1000,
  contacts: 10,
  contactLength: 320,
  softwareFieldLength: 200,
  /** Most entries in `grant_types` or `response_types`. */
  typeEntries: 10,
} as const;

const L = CLIENT_METADATA_LIMITS;
const GRANT_TYPES: readonly string[] = ['authorization_code', 'refresh_token'];
const REGISTRATION_AUTH_METHODS: readonly string[] = ['none', 'client_secret_basic', 'client_secret_post'];
const SECRET_AUTH_METHODS: readonly string[] = [
  'client_secret_basic',
  'client_secret_post',
  'client_secret_jwt',
];
/** RFC 6749 §3.3 scope-token, space-separated. */
const SCOPE = /^[\x21\x23-\x5b\x5d-\x7e]+( +[\x21\x23-\x5b\x5d-\x7e]+)*$/;
/** Printable ASCII only: no spaces, controls or characters a URL parser would silently drop or rewrite. */
const URI_CHARS = /^[\x21-\x7e]+$/;
/** `http:` redirect hosts allowed by RFC 8252 §7.3 (loopback), checked on the raw string so `127.1` can't slip in. */
const LOOPBACK_HTTP = /^http:\/\/(localhost|127\.0\.0\.1|\[::1\])(:\d{1,5})?([/?]|$)/i;
/** A URI scheme (RFC 3986 §3.1); RFC 8252 §7.1's reverse-domain form is recommended, not required. */
const PRIVATE_USE_SCHEME = /^[a-z][a-z0-9+.-]*$/i;
/**
 * Schemes the browser or the operating system handles itself, which can never be an app's redirect, and
 * which an error redirect or a click on "Approve" would hand a URL of the registrant's choosing: script
 * and document schemes, browser internals and extensions, Windows protocol handlers that run diagnostics
 * or open files and searches (`ms-msdt:` is CVE-2022-30190, `search-ms:`, `ms-officecmd:`), archive and
 * file-share schemes that make the OS connect out (`file:`, `smb:` leak NTLM credentials), store and
 * installer links, and network protocols that are no app's callback.
 *
 * Other private-use schemes are accepted even without the reverse-domain form RFC 8252 §7.1 recommends,
 * because real MCP clients register `cursor://…` and `vscode://…`; PKCE S256, mandatory here, is the
 * RFC 8252 §8.1 defence against another app claiming the scheme.
 */
const FORBIDDEN_SCHEMES = new Set([
  // Script and documents made from the URL itself.
  'javascript',
  'vbscript',
  'data',
  'blob',
  'filesystem',
  'about',
  'view-source',
  'jar',
  'wyciwyg',
  'mhtml',
  // Browser internals and extensions.
  'resource',
  'devtools',
  'opera',
  'vivaldi',
  'brave',
  'read',
  // Operating-system handlers.
  'file',
  'shell',
  'search',
  'search-ms',
  'hcp',
  'help',
  'its',
  'mk',
  'res',
  'intent',
  'android-app',
  'content',
  'market',
  'facetime',
  'facetime-audio',
  'callto',
  'mailto',
  'tel',
  'sms',
  'mms',
  'webcal',
  'webcals',
  // Network protocols and file shares.
  'ftp',
  'ftps',
  'sftp',
  'smb',
  'cifs',
  'nfs',
  'afp',
  'dav',
  'webdav',
  'ssh',
  'telnet',
  'rlogin',
  'tn3270',
  'ldap',
  'ldaps',
  'gopher',
  'news',
  'nntp',
  'snews',
  'irc',
  'ircs',
  'ws',
  'wss',
]);
/**
 * Families of handler schemes, refused by prefix: Windows (`ms-msdt`, `ms-officecmd`, `ms-settings`,
 * `ms-appinstaller`, `microsoft-edge`, `microsoft.windows.camera`, `windowsdefender`), Apple
 * (`x-apple.systempreferences`, `itms-services`), browsers (`chrome-extension`, `chrome-untrusted`,
 * `moz-extension`, `edge`), and handlers a web page registered in the browser (`web+…`).
 */
const FORBIDDEN_SCHEME_PREFIXES = [
  'ms-',
  'microsoft',
  'windows',
  'x-apple',
  'itms',
  'chrome',
  'moz-',
  'edge',
  'web+',
] as const;
/** Human-readable text: no control characters (they would corrupt logs and consent pages). */
// biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

const text = (max: number) => z.string().max(max).optional();

/** The shape of RFC 7591 metadata; semantic rules (URI kinds, consistency) are checked after. */
const metadataShape = z.object({
  redirect_uris: z.array(z.string().min(1).max(L.uriLength)).min(1).max(L.redirectUris),
  token_endpoint_auth_method: z.string().max(100).optional(),
  grant_types: z.array(z.string().max(200)).min(1).max(L.typeEntries).optional(),
  response_types: z.array(z.string().max(200)).min(1).max(L.typeEntries).optional(),
  application_type: z.enum(['web', 'native']).optional(),
  client_name: text(L.clientNameLength),
  client_uri: text(L.uriLength),
  logo_uri: text(L.uriLength),
  scope: text(L.scopeLength),
  contacts: z.array(z.string().min(1).max(L.contactLength)).max(L.contacts).optional(),
  tos_uri: text(L.uriLength),
  policy_uri: text(L.uriLength),
  software_id: text(L.softwareFieldLength),
  software_version: text(L.softwareFieldLength),
});

type RedirectKind = 'https' | 'loopback' | 'private-use';

/**
 * Validates client metadata from a registration request (RFC 7591 §2, §3.1) or a Client ID Metadata
 * Document, and returns it normalised. Unknown fields are ignored.
 *
 * Redirect URIs must be absolute, without fragment or `*`, and either `https:`, `http:` on a loopback host
 * (`localhost`, `127.0.0.1`, `[::1]`, any port; RFC 8252 §7.3), or a
 * private-use scheme in reverse-domain form (`com.example.app:/cb`; RFC 8252 §7.1).
 *
 * In `metadata-document` mode the document is public, so it cannot carry a shared secret: secret-based
 * authentication methods and `client_secret` are refused and the default method is `none`; the MCP
 * specification also requires `client_name`.
 *
 * @throws OAuthError `invalid_redirect_uri` for anything wrong with `redirect_uris`, else
 *   `invalid_client_metadata`; `reason` names the rule.
 * @example
 * ```ts
 * const metadata = parseClientMetadata(await request.json(), { mode: 'registration' });
 * ```
 */
export function parseClientMetadata(input: unknown, options: { mode: ClientMetadataMode }): ClientMetadata {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw metadataError('not_an_object', 'client metadata must be a JSON object');
  }
  // Some client libraries serialise unset optional fields as null; treat them as absent.
  const record = Object.fromEntries(Object.entries(input).filter(([, value]) => value !== null));
  if (record.redirect_uris === undefined) {
    throw redirectError('redirect_uris_missing', 'redirect_uris is required');
  }
  const parsed = metadataShape.safeParse(record);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = issue === undefined ? '' : issue.path.map(String).join('.');
    const description = `${field === '' ? 'metadata' : field}: ${issue?.message ?? 'invalid'}`;
    if (issue?.path[0] === 'redirect_uris') throw redirectError('redirect_uris_invalid', description);
    throw metadataError(`${String(issue?.path[0] ?? 'metadata')}_invalid`, description);
  }
  const raw = parsed.data;
  const documentMode = options.mode === 'metadata-document';

  const redirectUris = unique(raw.redirect_uris);
  const kinds = redirectUris.map(redirectUriKind);
  const applicationType =
    raw.application_type ?? (kinds.every((kind) => kind !== 'https') ? 'native' : 'web');

  if (documentMode && ('client_secret' in record || 'client_secret_expires_at' in record)) {
    throw metadataError('secret_in_document', 'a client metadata document must not contain client_secret');
  }
  const tokenEndpointAuthMethod = authMethod(raw.token_endpoint_auth_method, documentMode);

  const grantTypes = unique(raw.grant_types ?? ['authorization_code']);
  for (const grant of grantTypes) {
    if (!GRANT_TYPES.includes(grant)) {
      throw metadataError('unsupported_grant_type', `grant type "${grant}" is not supported`);
    }
  }
  if (!grantTypes.includes('authorization_code')) {
    throw metadataError('authorization_code_required', 'grant_types must include authorization_code');
  }
  const responseTypes = unique(raw.response_types ?? ['code']);
  if (responseTypes.length !== 1 || responseTypes[0] !== 'code') {
    throw metadataError('unsupported_response_type', 'response_types must be ["code"]');
  }

  if (documentMode && raw.client_name === undefined) {
    throw metadataError('client_name_required', 'a client metadata document must contain client_name');
  }

  return {
    redirectUris,
    tokenEndpointAuthMethod,
    grantTypes: grantTypes as ClientGrantType[],
    responseTypes: ['code'],
    applicationType,
    ...optional('clientName', displayText('client_name', raw.client_name)),
    ...optional('clientUri', webUri('client_uri', raw.client_uri)),
    ...optional('logoUri', webUri('logo_uri', raw.logo_uri)),
    ...optional('scope', scope(raw.scope)),
    ...optional('contacts', raw.contacts === undefined ? undefined : unique(raw.contacts.map(contact))),
    ...optional('tosUri', webUri('tos_uri', raw.tos_uri)),
    ...optional('policyUri', webUri('policy_uri', raw.policy_uri)),
    ...optional('softwareId', displayText('software_id', raw.software_id)),
    ...optional('softwareVersion', displayText('software_version', raw.software_version)),
  };
}

/** The metadata in RFC 7591 wire form (snake_case), as stored in `ClientRecord.metadata` and returned. */
export function toWireMetadata(metadata: ClientMetadata): Record<string, unknown> {
  const wire: Record<string, unknown> = {
    redirect_uris: [...metadata.redirectUris],
    token_endpoint_auth_method: metadata.tokenEndpointAuthMethod,
    grant_types: [...metadata.grantTypes],
    response_types: [...metadata.responseTypes],
    application_type: metadata.applicationType,
  };
  const put = (name: string, value: string | readonly string[] | undefined): void => {
    if (value !== undefined) wire[name] = typeof value === 'string' ? value : [...value];
  };
  put('client_name', metadata.clientName);
  put('client_uri', metadata.clientUri);
  put('logo_uri', metadata.logoUri);
  put('scope', metadata.scope);
  put('contacts', metadata.contacts);
  put('tos_uri', metadata.tosUri);
  put('policy_uri', metadata.policyUri);
  put('software_id', metadata.softwareId);
  put('software_version', metadata.softwareVersion);
  return wire;
}

/**
 * Builds the `ClientRecord` of a dynamically registered or metadata-document client. `secretHash` is
 * `tokenHash(secret)`; the secret itself is never stored.
 */
export function toClientRecord(
  metadata: ClientMetadata,
  identity: { clientId: string; createdAt: number; secretHash?: string; expiresAt?: number },
): ClientRecord {
  return {
    clientId: identity.clientId,
    ...optional('secretHash', identity.secretHash),
    tokenEndpointAuthMethod: metadata.tokenEndpointAuthMethod,
    redirectUris: [...metadata.redirectUris],
    grantTypes: [...metadata.grantTypes],
    responseTypes: [...metadata.responseTypes],
    applicationType: metadata.applicationType,
    ...optional('clientName', metadata.clientName),
    ...optional('clientUri', metadata.clientUri),
    ...optional('logoUri', metadata.logoUri),
    ...optional('scope', metadata.scope),
    metadata: toWireMetadata(metadata),
    createdAt: identity.createdAt,
    ...optional('expiresAt', identity.expiresAt),
  };
}

/* ----------------------------------------------------------------------------------------------
 * Clients declared in the configuration file.
 * -------------------------------------------------------------------------------------------- */

/** RFC 6749 Appendix A `client-id`: visible ASCII and space; we also refuse leading/trailing space. */
const CLIENT_ID = /^[\x21-\x7e]([\x20-\x7e]*[\x21-\x7e])?$/;

/**
 * A client declared in the configuration file. Redirect URIs follow the same rules as registration;
 * `clientSecret` (at least 32 characters) makes it confidential, and is kept only as its hash.
 */
export const preRegisteredClientSchema = z
  .object({
    /** The `client_id`, 1–200 visible ASCII characters. */
    clientId: z.string().min(1).max(200).regex(CLIENT_ID, 'must be visible ASCII'),
    /** Shared secret for `client_secret_basic`/`client_secret_post`; at least 32 characters. */
    clientSecret: z.string().min(32).max(512).optional(),
    /** Exact redirect URIs (same rules as RFC 7591 registration). */
    redirectUris: z.array(z.string().min(1).max(L.uriLength)).min(1).max(L.redirectUris),
    /** Shown on the consent screen. */
    clientName: z.string().min(1).max(L.clientNameLength).optional(),
    /** Default `["authorization_code", "refresh_token"]`. */
    grantTypes: z
      .array(z.enum(['authorization_code', 'refresh_token']))
      .min(1)
      .optional(),
    /** Default `client_secret_basic` when a secret is set, else `none`. */
    tokenEndpointAuthMethod: z.enum(['none', 'client_secret_basic', 'client_secret_post']).optional(),
    /** Space-separated scopes the client may request; default: any supported scope. */
    scope: z.string().max(L.scopeLength).regex(SCOPE, 'must be space-separated scope tokens').optional(),
  })
  .superRefine((client, ctx) => {
    const method = client.tokenEndpointAuthMethod;
    if (client.clientSecret === undefined && method !== undefined && method !== 'none') {
      ctx.addIssue({ code: 'custom', path: ['clientSecret'], message: `required for ${method}` });
    }
    if (client.clientSecret !== undefined && method === 'none') {
      ctx.addIssue({ code: 'custom', path: ['clientSecret'], message: 'must not be set for method "none"' });
    }
    client.redirectUris.forEach((uri, index) => {
      try {
        redirectUriKind(uri);
      } catch (error) {
        const message = error instanceof OAuthError ? (error.description ?? error.code) : 'invalid';
        ctx.addIssue({ code: 'custom', path: ['redirectUris', index], message });
      }
    });
  });

export type PreRegisteredClient = z.infer<typeof preRegisteredClientSchema>;

/**
 * The `ClientRecord` of a configured client, validated like a registration. Throws `OAuthError`
 * (`invalid_redirect_uri`/`invalid_client_metadata`) for a client the schema let through but the
 * registration rules refuse (for example a private-use scheme mixed with https redirects).
 */
export function preRegisteredToClientRecord(client: PreRegisteredClient, createdAt = 0): ClientRecord {
  const method =
    client.tokenEndpointAuthMethod ?? (client.clientSecret === undefined ? 'none' : 'client_secret_basic');
  const metadata = parseClientMetadata(
    {
      redirect_uris: client.redirectUris,
      token_endpoint_auth_method: method,
      grant_types: client.grantTypes ?? ['authorization_code', 'refresh_token'],
      client_name: client.clientName,
      scope: client.scope,
    },
    { mode: 'registration' },
  );
  return toClientRecord(metadata, {
    clientId: client.clientId,
    createdAt,
    ...optional('secretHash', client.clientSecret === undefined ? undefined : tokenHash(client.clientSecret)),
  });
}

/* ----------------------------------------------------------------------------------------------
 * Rules.
 * -------------------------------------------------------------------------------------------- */

function redirectUriKind(uri: string): RedirectKind {
  if (!URI_CHARS.test(uri))
    throw redirectError('redirect_uri_invalid', 'redirect URIs must be printable ASCII');
  if (uri.includes('#'))
    throw redirectError('redirect_uri_fragment', 'redirect URIs must not contain a fragment');
  // RFC 9700 §4.1.3: exact matching only; a `*` would read as a wildcard to people and some servers.
  if (uri.includes('*'))
    throw redirectError('redirect_uri_wildcard', 'redirect URIs must not contain wildcards');
  if (!URL.canParse(uri)) throw redirectError('redirect_uri_invalid', 'redirect URIs must be absolute URIs');
  const url = new URL(uri);
  if (url.username !== '' || url.password !== '') {
    throw redirectError('redirect_uri_userinfo', 'redirect URIs must not contain a user name or password');
  }
  const scheme = url.protocol.slice(0, -1).toLowerCase();
  if (scheme === 'https') {
    if (url.hostname === '') throw redirectError('redirect_uri_invalid', 'https redirect URIs need a host');
    return 'https';
  }
  if (scheme === 'http') {
    if (LOOPBACK_HTTP.test(uri)) return 'loopback';
    throw redirectError('redirect_uri_insecure', 'http redirect URIs are allowed only on loopback hosts');
  }
  if (PRIVATE_USE_SCHEME.test(scheme) && !isHandlerScheme(scheme)) return 'private-use';
  throw redirectError('redirect_uri_scheme', 'redirect URIs must be https, loopback http, or an app scheme');
}

function isHandlerScheme(scheme: string): boolean {
  return (
    FORBIDDEN_SCHEMES.has(scheme) || FORBIDDEN_SCHEME_PREFIXES.some((prefix) => scheme.startsWith(prefix))
  );
}

/**
 * Whether `uri` passes today's redirect-URI rules. A client registered before a rule tightened keeps its
 * stored redirect URIs; the authorization endpoint checks them again so none of them is ever redirected to.
 */
export function isAllowedRedirectUri(uri: string): boolean {
  try {
    redirectUriKind(uri);
    return true;
  } catch (error) {
    if (error instanceof OAuthError) return false;
    throw error;
  }
}

function authMethod(value: string | undefined, documentMode: boolean): TokenEndpointAuthMethod {
  if (documentMode) {
    if (value === undefined || value === 'none') return 'none';
    if (SECRET_AUTH_METHODS.includes(value)) {
      throw metadataError(
        'secret_auth_in_document',
        'a public metadata document cannot carry a shared secret; use token_endpoint_auth_method "none"',
      );
    }
    // private_key_jwt is meaningful for documents, but treating it as "none" would turn a confidential
    // client public; refuse it until the token endpoint can verify client assertions.
    throw metadataError('unsupported_auth_method', `token_endpoint_auth_method "${value}" is not supported`);
  }
  // RFC 7591 §2: the default is client_secret_basic.
  if (value === undefined) return 'client_secret_basic';
  if (REGISTRATION_AUTH_METHODS.includes(value)) return value as TokenEndpointAuthMethod;
  throw metadataError('unsupported_auth_method', `token_endpoint_auth_method "${value}" is not supported`);
}

function webUri(field: string, value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const url = URI_CHARS.test(value) && URL.canParse(value) ? new URL(value) : undefined;
  const secure =
    url !== undefined &&
    ((url.protocol === 'https:' && url.hostname !== '') || LOOPBACK_HTTP.test(value)) &&
    url.username === '' &&
    url.password === '';
  if (!secure) throw metadataError(`${field}_invalid`, `${field} must be an https (or loopback http) URL`);
  return value;
}

/**
 * Text for people (names, contacts, software ids): control characters are refused; characters that hide or
 * reorder text (bidi controls, zero-width and other invisible characters) are removed, and spacing
 * collapsed — RFC 7591 §3.2.1 lets the server replace a value, and the response shows what was kept.
 */
function displayText(field: string, value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const readable = readableText(value);
  if (readable === '' || CONTROL.test(value.trim())) {
    throw metadataError(`${field}_invalid`, `${field} must be non-empty text without control characters`);
  }
  return readable;
}

function contact(value: string): string {
  const trimmed = displayText('contacts', value);
  if (trimmed === undefined) throw metadataError('contacts_invalid', 'contacts must be non-empty');
  return trimmed;
}

function scope(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const trimmed = value.trim();
  if (trimmed === '') return undefined;
  if (!SCOPE.test(trimmed))
    throw metadataError('scope_invalid', 'scope must be space-separated scope tokens');
  return unique(trimmed.split(/ +/)).join(' ');
}

function unique<T>(values: readonly T[]): T[] {
  return [...new Set(values)];
}

function optional<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}

function metadataError(reason: string, description: string): OAuthError {
  return new OAuthError('invalid_client_metadata', { reason, description });
}

function redirectError(reason: string, description: string): OAuthError {
  return new OAuthError('invalid_redirect_uri', { reason, description });
}
