/**
 * RFC 6749 §5.2, RFC 6750 §3.1, RFC 7009 §2.2.1, RFC 7591 §3.2.2 and RFC 8707 §2 error codes.
 * The HTTP status each one carries is fixed here, so a handler only says what went wrong.
 */
export const OAUTH_ERROR_STATUS = {
  invalid_request: 400,
  invalid_client: 401,
  invalid_grant: 400,
  unauthorized_client: 400,
  unsupported_grant_type: 400,
  invalid_scope: 400,
  invalid_target: 400,
  unsupported_token_type: 400,
  unsupported_response_type: 400,
  // OpenID Connect Core §3.1.2.6, for `prompt=none` requests that would need the user.
  login_required: 400,
  consent_required: 400,
  invalid_token: 401,
  invalid_redirect_uri: 400,
  invalid_client_metadata: 400,
  insufficient_scope: 403,
  access_denied: 403,
  server_error: 500,
  temporarily_unavailable: 503,
} as const;

export type OAuthErrorCode = keyof typeof OAUTH_ERROR_STATUS;

export interface OAuthErrorOptions {
  /** Human-readable detail for the client developer (`error_description`). Never include secrets. */
  description?: string;
  /** Scopes the resource needs; rendered into the `WWW-Authenticate` challenge for `insufficient_scope`. */
  scope?: readonly string[];
  /**
   * A stable, machine-readable sub-code (`token_expired`, `wrong_audience`, …) for logs and tests.
   * Safe to send: it names the check that failed, never the token.
   */
  reason?: string;
  cause?: unknown;
}

/** An error defined by the OAuth RFCs; rendered as JSON (or a `WWW-Authenticate` challenge) by the one boundary. */
export class OAuthError extends Error {
  override readonly name = 'OAuthError';
  readonly code: OAuthErrorCode;
  readonly status: number;
  readonly description: string | undefined;
  readonly scope: readonly string[] | undefined;
  readonly reason: string | undefined;
  /** Whether the description may be shown; false for `server_error` (its cause goes to the log only). */
  readonly expose: boolean;

  constructor(code: OAuthErrorCode, options: OAuthErrorOptions = {}) {
    super(options.description ?? code, { cause: options.cause });
    this.code = code;
    this.status = OAUTH_ERROR_STATUS[code];
    // RFC 6749's codes are the protocol's own words; only a server error's description could carry internals.
    this.expose = code !== 'server_error';
    this.description = options.description;
    this.scope = options.scope;
    this.reason = options.reason;
  }

  toJSON(): { error: OAuthErrorCode; error_description?: string } {
    return this.description === undefined
      ? { error: this.code }
      : { error: this.code, error_description: this.description };
  }
}
