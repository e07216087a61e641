import type { Logger } from 'pino';
import { GatehouseError } from './gatehouse-error.js';
import { OAuthError } from './oauth-error.js';

/** What every renderer needs besides the error: where to log the cause, and the id to quote. */
export interface RenderContext {
  readonly logger: Logger;
  /** The request id the edge gave the request; quoted in every answer that hides its cause. */
  readonly requestId?: string | undefined;
}

/** How long a client is told to wait after a store outage, in seconds. */
export const STORE_RETRY_AFTER_SECONDS = 5;

/**
 * What a caller is told of an error. A store outage is an answer a client can act on — retry shortly —
 * so it is shown with its stable code `ERR_STORE_UNAVAILABLE`, a generic message and `Retry-After`;
 * never the engine's own words or details, which stay in the log through `cause`. Everything else is
 * returned as it is.
 */
export function clientFacing(error: unknown): unknown {
  if (!(error instanceof GatehouseError) || error.code !== 'ERR_STORE_UNAVAILABLE' || error.expose)
    return error;
  return new GatehouseError('ERR_STORE_UNAVAILABLE', 'The store is unavailable; retry shortly.', {
    cause: error,
    expose: true,
    retryAfterSeconds: error.retryAfterSeconds ?? STORE_RETRY_AFTER_SECONDS,
  });
}

/** JSON-RPC error codes for transport-level failures on the MCP endpoint (the SDK's conventions). */
const JSONRPC_CODE: Partial<Record<GatehouseError['code'], number>> = {
  ERR_SESSION_NOT_FOUND: -32001,
  ERR_BAD_REQUEST: -32600,
  ERR_SESSION_REQUIRED: -32000,
};

/** JSON-RPC "internal error": the code of every answer whose cause is hidden. */
export const JSONRPC_INTERNAL_ERROR = -32603;

const GENERIC_MESSAGE: Record<number, string> = {
  502: 'Bad gateway',
  503: 'Service unavailable',
  504: 'Gateway timeout',
};

/** The message shown for a server error whose own message is not exposed. */
export function genericMessage(status: number): string {
  return GENERIC_MESSAGE[status] ?? 'Internal error';
}

/**
 * Logs an error that is answered without its cause, with the request id the answer carries, so an
 * operator can find the one from the other.
 */
export function logHiddenError(error: unknown, ctx: RenderContext, message = 'request failed'): void {
  ctx.logger.error({ err: error, requestId: ctx.requestId }, message);
}

/**
 * Logs an error that is answered with its own message: `info` for a refusal, `warn` with the error (and so
 * its cause) for a server error marked safe to show.
 */
export function logExposedError(error: GatehouseError, ctx: RenderContext): void {
  ctx.logger[error.status >= 500 ? 'warn' : 'info'](
    { code: error.code, requestId: ctx.requestId, ...(error.status >= 500 && { err: error }) },
    error.message,
  );
}

/**
 * A Gatehouse error (or anything else) as a JSON-RPC error envelope: the stable code in `data.code`. An
 * error that is not exposed — every unknown error, and server errors unless marked safe — becomes a
 * generic `server_error` with the request id, its message, details and cause logged, never sent.
 */
export function renderJsonRpcError(thrown: unknown, ctx: RenderContext): Response {
  const error = clientFacing(thrown);
  const headers = new Headers({ 'content-type': 'application/json' });
  if (error instanceof GatehouseError) {
    if (error.retryAfterSeconds !== undefined) headers.set('retry-after', String(error.retryAfterSeconds));
    if (error.expose) {
      logExposedError(error, ctx);
      return jsonRpcError(
        error.status,
        JSONRPC_CODE[error.code] ?? -32000,
        error.message,
        { code: error.code, ...error.details, ...(error.status >= 500 && requestIdOf(ctx)) },
        headers,
      );
    }
    logHiddenError(error, ctx);
    return jsonRpcError(
      error.status,
      JSONRPC_INTERNAL_ERROR,
      genericMessage(error.status),
      hidden(ctx),
      headers,
    );
  }
  logHiddenError(error, ctx, 'unhandled error');
  return jsonRpcError(500, JSONRPC_INTERNAL_ERROR, genericMessage(500), hidden(ctx), headers);
}

function hidden(ctx: RenderContext): Record<string, unknown> {
  return { code: 'server_error', ...requestIdOf(ctx) };
}

/** `{ requestId }` when the request has one: quoted in every server error, so the log can be searched. */
function requestIdOf(ctx: RenderContext): { requestId?: string } {
  return ctx.requestId === undefined ? {} : { requestId: ctx.requestId };
}

export function jsonRpcError(
  status: number,
  code: number,
  message: string,
  data?: Record<string, unknown>,
  headers: Headers = new Headers({ 'content-type': 'application/json' }),
): Response {
  const body = {
    jsonrpc: '2.0',
    id: null,
    error: { code, message, ...(data === undefined ? {} : { data }) },
  };
  return new Response(JSON.stringify(body), { status, headers });
}

/**
 * The OAuth code beside an operational error's stable code: RFC 6749 has no rate-limit code, so a 429
 * (like a 503) is `temporarily_unavailable`, with `Retry-After` saying when to come back.
 */
function oauthCodeFor(error: GatehouseError): string {
  return error.status === 429 || error.status >= 500 ? 'temporarily_unavailable' : 'invalid_request';
}

/**
 * The error boundary of the OAuth endpoints (token, registration, revocation, introspection): every
 * answer is RFC 6749 §5.2 JSON with `Cache-Control: no-store`. A failed client authentication that used
 * HTTP Basic also carries the `Basic` challenge (§5.2); operational errors keep their status and
 * `Retry-After`, with their stable code beside the OAuth one. Unexposed errors are `server_error` with
 * the request id.
 */
export function renderOAuthEndpointError(thrown: unknown, request: Request, ctx: RenderContext): Response {
  const error = clientFacing(thrown);
  const headers = new Headers({
    'content-type': 'application/json',
    'cache-control': 'no-store',
    pragma: 'no-cache',
  });
  const json = (body: Record<string, unknown>, status: number) =>
    new Response(JSON.stringify(body), { status, headers });
  if (error instanceof OAuthError && error.expose) {
    if (error.code === 'invalid_client' && request.headers.get('authorization')?.match(/^Basic /i)) {
      headers.set('www-authenticate', 'Basic realm="gatehouse", charset="UTF-8"');
    }
    ctx.logger.info(
      {
        error: error.code,
        reason: error.reason,
        path: new URL(request.url).pathname,
        requestId: ctx.requestId,
      },
      'oauth request refused',
    );
    return json(error.toJSON(), error.status);
  }
  if (error instanceof GatehouseError) {
    if (error.retryAfterSeconds !== undefined) headers.set('retry-after', String(error.retryAfterSeconds));
    if (error.expose) {
      logExposedError(error, ctx);
      return json(
        {
          error: oauthCodeFor(error),
          error_description: error.message,
          code: error.code,
          ...(error.status >= 500 && requestIdOf(ctx)),
        },
        error.status,
      );
    }
    logHiddenError(error, ctx);
    return json({ error: oauthCodeFor(error), ...hiddenOAuth(ctx) }, error.status);
  }
  logHiddenError(error, ctx, 'unhandled error');
  return json({ error: 'server_error', ...hiddenOAuth(ctx) }, 500);
}

function hiddenOAuth(ctx: RenderContext): Record<string, unknown> {
  return ctx.requestId === undefined ? {} : { request_id: ctx.requestId };
}
