import { timingSafeEqual } from 'node:crypto';
import { tokenHash } from '../crypto/fingerprint.js';
import { GatehouseError } from '../errors/gatehouse-error.js';
import { OAuthError } from '../errors/oauth-error.js';
import type { Clock } from '../ops/clock.js';
import type { ClientRecord, ClientStore, TokenEndpointAuthMethod } from '../stores/ports.js';
import type { CimdResolver, ClientLookup } from './cimd.js';

/** A client, whichever way it became known. */
export type ResolvedClient = ClientRecord & {
  /** `registered` (RFC 7591), `configured` (config file) or `metadata-document` (CIMD URL). */
  readonly source: 'registered' | 'configured' | 'metadata-document';
};

export interface ClientRegistry {
  /**
   * The client with this id, or `undefined` when unknown (or its registration lapsed).
   * @throws OAuthError `invalid_client` when `clientId` is a metadata document URL that failed to resolve.
   * @throws GatehouseError `ERR_RATE_LIMITED` when fetching its metadata document is refused by a limit.
   */
  get(clientId: string, lookup?: ClientLookup): Promise<ResolvedClient | undefined>;
}

/** Longest client id looked up at all; anything longer is unknown without touching a store or the network. */
const MAX_CLIENT_ID_LENGTH = 2048;

/**
 * One place to look clients up. Configured clients win (they may even be CIMD URLs the operator
 * pre-registered); then metadata-document URLs go to the resolver; everything else is looked up in the
 * store of dynamically registered clients.
 *
 * @throws GatehouseError `ERR_CONFIG_INVALID` at construction when two configured clients share an id.
 * @example
 * ```ts
 * const registry = createClientRegistry({ clients: stores.clients, preRegistered, cimd, clock });
 * const client = await registry.get(clientId);
 * ```
 */
export function createClientRegistry(options: {
  clients: ClientStore;
  preRegistered: readonly ClientRecord[];
  cimd?: CimdResolver;
  clock: Clock;
}): ClientRegistry {
  const { clients, cimd, clock } = options;
  const configured = new Map<string, ResolvedClient>();
  for (const client of options.preRegistered) {
    if (configured.has(client.clientId)) {
      throw new GatehouseError('ERR_CONFIG_INVALID', `Client "${client.clientId}" is configured twice.`);
    }
    configured.set(client.clientId, Object.freeze({ ...client, source: 'configured' }));
  }

  return {
    async get(clientId, lookup) {
      if (clientId === '' || clientId.length > MAX_CLIENT_ID_LENGTH) return undefined;
      const fromConfig = configured.get(clientId);
      if (fromConfig !== undefined) return fromConfig;
      if (cimd?.isMetadataDocumentUrl(clientId) === true) {
        return { ...(await cimd.resolve(clientId, lookup)), source: 'metadata-document' };
      }
      const registered = await clients.get(clientId, clock.now());
      return registered === undefined ? undefined : { ...registered, source: 'registered' };
    },
  };
}

/** What a token-endpoint request carries for client authentication (RFC 6749 §2.3). */
export interface ClientAuthenticationRequest {
  /** The raw `Authorization` header, if any. */
  readonly authorizationHeader?: string | undefined;
  /** `client_id` from the form body, if any. */
  readonly clientId?: string | undefined;
  /** `client_secret` from the form body, if any. */
  readonly clientSecret?: string | undefined;
}

/** The credentials a request presents, and how. */
export interface ClientCredentials {
  readonly clientId: string;
  readonly method: TokenEndpointAuthMethod;
  /** The presented secret; absent for `none`. Never log it. */
  readonly secret?: string;
}

/**
 * Reads the client's credentials without checking them, so the caller knows which client to look up:
 * HTTP Basic (RFC 6749 §2.3.1, id and secret form-urlencoded before base64), or `client_id` and
 * `client_secret` in the body, or a bare `client_id` (public client). Exactly one method may be used.
 *
 * @throws OAuthError `invalid_request` for a malformed Basic header, two methods at once, a body
 *   `client_id` that contradicts the Basic one, or no `client_id` at all.
 */
export function readClientCredentials(request: ClientAuthenticationRequest): ClientCredentials {
  const header = request.authorizationHeader?.trim();
  const basic = header !== undefined && header !== '' ? parseBasic(header) : undefined;
  if (basic !== undefined) {
    if (request.clientSecret !== undefined) {
      throw invalidRequest(
        'multiple_auth_methods',
        'use either HTTP Basic or client_secret in the body, not both',
      );
    }
    if (request.clientId !== undefined && request.clientId !== basic.clientId) {
      throw invalidRequest('client_id_mismatch', 'client_id in the body differs from the Basic credentials');
    }
    return { clientId: basic.clientId, method: 'client_secret_basic', secret: basic.secret };
  }
  if (request.clientId === undefined || request.clientId === '') {
    throw invalidRequest('missing_client_id', 'client_id is required');
  }
  if (request.clientSecret !== undefined) {
    return { clientId: request.clientId, method: 'client_secret_post', secret: request.clientSecret };
  }
  return { clientId: request.clientId, method: 'none' };
}

/** The outcome of a successful client authentication. */
export interface ClientAuthentication {
  readonly clientId: string;
  readonly method: TokenEndpointAuthMethod;
}

/**
 * Authenticates `client` at the token endpoint (RFC 6749 §2.3.1): the request must use exactly the method
 * the client registered, with a secret whose hash matches (compared in constant time).
 *
 * On `invalid_client`, a caller whose request used HTTP Basic must answer 401 with
 * `WWW-Authenticate: Basic` (RFC 6749 §5.2); {@link usedBasicAuthentication} tells.
 *
 * @throws OAuthError `invalid_request` (see {@link readClientCredentials}) or `invalid_client`
 *   (`client_id_mismatch`, `auth_method_mismatch`, `invalid_secret`).
 * @example
 * ```ts
 * const { clientId } = readClientCredentials(request);
 * const client = await registry.get(clientId);
 * if (client === undefined) throw new OAuthError('invalid_client');
 * authenticateClient(client, request);
 * ```
 */
export function authenticateClient(
  client: ResolvedClient,
  request: ClientAuthenticationRequest,
): ClientAuthentication {
  const credentials = readClientCredentials(request);
  if (credentials.clientId !== client.clientId) {
    throw invalidClient('client_id_mismatch', 'the credentials belong to another client');
  }
  if (credentials.method !== client.tokenEndpointAuthMethod) {
    throw invalidClient(
      'auth_method_mismatch',
      `this client authenticates with ${client.tokenEndpointAuthMethod}, not ${credentials.method}`,
    );
  }
  if (credentials.method !== 'none') {
    if (
      client.secretHash === undefined ||
      !sameHash(tokenHash(credentials.secret ?? ''), client.secretHash)
    ) {
      throw invalidClient('invalid_secret', 'client authentication failed');
    }
  }
  return { clientId: client.clientId, method: credentials.method };
}

/** Whether the request tried HTTP Basic, so a 401 `invalid_client` must carry `WWW-Authenticate: Basic`. */
export function usedBasicAuthentication(request: ClientAuthenticationRequest): boolean {
  return /^basic(\s|$)/i.test(request.authorizationHeader?.trim() ?? '');
}

function parseBasic(header: string): { clientId: string; secret: string } {
  const match = /^basic +([A-Za-z0-9+/]+={0,2})$/i.exec(header);
  if (match?.[1] === undefined || match[1].length % 4 !== 0) {
    throw invalidRequest('malformed_basic_header', 'the Authorization header is not valid HTTP Basic');
  }
  let decoded: string;
  try {
    decoded = new TextDecoder('utf-8', { fatal: true }).decode(Buffer.from(match[1], 'base64'));
  } catch {
    throw invalidRequest('malformed_basic_header', 'the Basic credentials are not UTF-8');
  }
  const colon = decoded.indexOf(':');
  if (colon < 0) throw invalidRequest('malformed_basic_header', 'the Basic credentials have no ":"');
  const clientId = formDecode(decoded.slice(0, colon));
  const secret = formDecode(decoded.slice(colon + 1));
  if (clientId === '')
    throw invalidRequest('malformed_basic_header', 'the Basic credentials have no client id');
  return { clientId, secret };
}

/** RFC 6749 §2.3.1: id and secret are `application/x-www-form-urlencoded` before Basic encoding. */
function formDecode(value: string): string {
  try {
    return decodeURIComponent(value.replace(/\+/g, ' '));
  } catch {
    throw invalidRequest('malformed_basic_header', 'the Basic credentials are not form-urlencoded');
  }
}

function sameHash(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.byteLength === right.byteLength && timingSafeEqual(left, right);
}

function invalidRequest(reason: string, description: string): OAuthError {
  return new OAuthError('invalid_request', { reason, description });
}

function invalidClient(reason: string, description: string): OAuthError {
  return new OAuthError('invalid_client', { reason, description });
}
