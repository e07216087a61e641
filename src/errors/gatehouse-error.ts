/**
 * Stable error codes for everything that is not an OAuth protocol error. Tests assert on `code`,
 * never on message text. The status each code maps to lives in {@link GATEHOUSE_ERROR_STATUS}.
 */
export const GATEHOUSE_ERROR_STATUS = {
  ERR_CONFIG_INVALID: 500,
  ERR_ORIGIN_FORBIDDEN: 403,
  ERR_BODY_TOO_LARGE: 413,
  ERR_UNSUPPORTED_MEDIA_TYPE: 415,
  ERR_NOT_ACCEPTABLE: 406,
  ERR_BAD_REQUEST: 400,
  ERR_METHOD_NOT_ALLOWED: 405,
  ERR_SESSION_NOT_FOUND: 404,
  ERR_SESSION_REQUIRED: 400,
  ERR_SESSION_LIMIT: 429,
  ERR_SESSION_CONFLICT: 409,
  ERR_RATE_LIMITED: 429,
  ERR_STORE_UNAVAILABLE: 503,
  ERR_UPSTREAM_UNAVAILABLE: 502,
  ERR_JWKS_UNAVAILABLE: 503,
  ERR_KEY_INVALID: 500,
  ERR_NOT_FOUND: 404,
} as const;

export type GatehouseErrorCode = keyof typeof GATEHOUSE_ERROR_STATUS;

export interface GatehouseErrorOptions {
  cause?: unknown;
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

  constructor(code: GatehouseErrorCode, message: string, options: GatehouseErrorOptions = {}) {
    super(message, { cause: options.cause });
    this.code = code;
    this.status = GATEHOUSE_ERROR_STATUS[code];
    this.retryAfterSeconds = options.retryAfterSeconds;
    this.details = options.details;
  }
}

export function isGatehouseError(error: unknown, code?: GatehouseErrorCode): error is GatehouseError {
  return error instanceof GatehouseError && (code === undefined || error.code === code);
}
