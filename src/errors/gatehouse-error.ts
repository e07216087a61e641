/**
 * Stable error codes for everything that is not an OAuth protocol error. Tests assert on `code`,
 * never on message text. The status each code maps to lives in {@link GATEHOUSE_ERROR_STATUS}.
 */
export const GATEHOUSE_ERROR_STATUS = {
  ERR_CONFIG_INVALID: 500,
  ERR_ORIGIN_FORBIDDEN: 403,
  /** The request's `Host` is not a name this gateway is published under (DNS rebinding; `server.allowedHosts`). */
  ERR_HOST_FORBIDDEN: 403,
  ERR_BODY_TOO_LARGE: 413,
  ERR_UNSUPPORTED_MEDIA_TYPE: 415,
  ERR_NOT_ACCEPTABLE: 406,
  ERR_BAD_REQUEST: 400,
  /** The client disconnected (or was cut off by the request timeout) before its request body arrived. */
  ERR_REQUEST_ABORTED: 400,
  ERR_METHOD_NOT_ALLOWED: 405,
  ERR_SESSION_NOT_FOUND: 404,
  ERR_SESSION_REQUIRED: 400,
  ERR_SESSION_LIMIT: 429,
  ERR_SESSION_CONFLICT: 409,
  ERR_RATE_LIMITED: 429,
  ERR_STORE_UNAVAILABLE: 503,
  /** The upstream MCP server could not be started, reached or used; `details.reason` says how (see {@link UpstreamFailureReason}). */
  ERR_UPSTREAM_UNAVAILABLE: 502,
  /** The upstream MCP server did not answer in time (`details.reason` `upstream_timeout`). */
  ERR_UPSTREAM_TIMEOUT: 504,
  ERR_JWKS_UNAVAILABLE: 503,
  ERR_KEY_INVALID: 500,
  ERR_NOT_FOUND: 404,
  /** Federated login: the callback's `state` is unknown, expired or already used. */
  ERR_FEDERATION_STATE_INVALID: 400,
  /** Federated login: the IdP answered the authorization request with an error (`details.idpError`, e.g. `access_denied`). */
  ERR_IDP_LOGIN_FAILED: 403,
  /** The upstream IdP refused a token request or its answer failed validation (`details.idpError` / `details.check`). */
  ERR_IDP_RESPONSE_INVALID: 502,
  /** The upstream IdP could not be reached, timed out or answered 5xx. */
  ERR_IDP_UNAVAILABLE: 503,
  /** Local accounts: the (normalised) username is taken. */
  ERR_USER_EXISTS: 409,
  /** Local accounts: no account has this username. */
  ERR_USER_NOT_FOUND: 404,
  /** Admin: no grant has this id (or it expired). */
  ERR_GRANT_NOT_FOUND: 404,
  /** Admin: no dynamically registered client has this id (or its registration lapsed). */
  ERR_CLIENT_NOT_FOUND: 404,
  /** Local accounts: not 1–64 characters of `a-z 0-9 . _ @ + -` after normalisation. */
  ERR_USERNAME_INVALID: 400,
  /** Local accounts: the new password breaks the policy (`details.reason`: `too_short`, `too_long`, `malformed`). */
  ERR_PASSWORD_POLICY: 400,
  /** A stored password hash cannot be read (unknown algorithm, malformed, parameters out of bounds). */
  ERR_PASSWORD_HASH_INVALID: 500,
  /** Library mode: `currentPrincipal()` was called outside a request Gatehouse authenticated (a bug, never a default user). */
  ERR_NO_REQUEST_CONTEXT: 500,
  /** Admin API and console: the caller is authenticated but is not (or no longer) an administrator. */
  ERR_ADMIN_REQUIRED: 403,
  /** Admin console: a form post without this browser sign-in's CSRF token, or from another site. */
  ERR_CSRF_INVALID: 403,
  /** The instance is draining before it stops (SIGTERM): new requests go to another instance (`Retry-After`). */
  ERR_SHUTTING_DOWN: 503,
} as const;

export type GatehouseErrorCode = keyof typeof GATEHOUSE_ERROR_STATUS;

/**
 * Why an upstream MCP server could not serve a request, as clients see it in `error.data.reason`:
 * - `upstream_spawn_failed`: the stdio command could not be started, or exited before answering;
 * - `upstream_unreachable`: the HTTP upstream refused the connection or could not be resolved;
 * - `upstream_rejected`: the HTTP upstream refused Gatehouse's request (401, 403 or another 4xx);
 * - `upstream_timeout`: no answer in time;
 * - `upstream_invalid_response`: the HTTP upstream answered with something that is not MCP (5xx, garbage);
 * - `upstream_exited`: the upstream went away while requests were waiting for it.
 */
export type UpstreamFailureReason =
  | 'upstream_spawn_failed'
  | 'upstream_unreachable'
  | 'upstream_rejected'
  | 'upstream_timeout'
  | 'upstream_invalid_response'
  | 'upstream_exited';

export interface GatehouseErrorOptions {
  cause?: unknown;
  /**
   * Whether the code, message and `details` may be shown to the caller. Default: true below 500. A
   * server error that is not exposed is answered as a generic `server_error` with the request id; its
   * message, details and cause go to the log only.
   */
  expose?: boolean;
  /** Seconds the client should wait; rendered as `Retry-After` for 429 and 503. */
  retryAfterSeconds?: number;
  /** Extra, non-secret detail safe to send to the caller. */
  details?: Record<string, unknown>;
}

/** An operational error with a stable code; rendered with the status from {@link GATEHOUSE_ERROR_STATUS}. */
export class GatehouseError extends Error {
  override readonly name = 'GatehouseError';
  readonly code: GatehouseErrorCode;
  readonly status: number;
  readonly retryAfterSeconds: number | undefined;
  readonly details: Record<string, unknown> | undefined;
  readonly expose: boolean;

  constructor(code: GatehouseErrorCode, message: string, options: GatehouseErrorOptions = {}) {
    super(message, { cause: options.cause });
    this.code = code;
    this.status = GATEHOUSE_ERROR_STATUS[code];
    this.expose = options.expose ?? this.status < 500;
    this.retryAfterSeconds = options.retryAfterSeconds;
    this.details = options.details;
  }
}

export function isGatehouseError(error: unknown, code?: GatehouseErrorCode): error is GatehouseError {
  return error instanceof GatehouseError && (code === undefined || error.code === code);
}
