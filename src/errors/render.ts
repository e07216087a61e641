import { bearerChallenge } from '../guard/challenge.js';
import type { Logger } from '../ops/logger.js';
import { GatehouseError } from './gatehouse-error.js';
import { OAuthError } from './oauth-error.js';

export interface RenderContext {
  readonly resourceMetadataUrl: string;
  readonly scope: readonly string[];
  readonly logger: Logger;
}

/** JSON-RPC error codes for transport-level failures on the MCP endpoint (the SDK's conventions). */
const JSONRPC_CODE: Partial<Record<GatehouseError['code'], number>> = {
  ERR_SESSION_NOT_FOUND: -32001,
  ERR_BAD_REQUEST: -32600,
  ERR_SESSION_REQUIRED: -32000,
};

/**
 * The one error boundary. OAuth errors render per RFC 6750 (with the `WWW-Authenticate` challenge on 401
 * and 403); Gatehouse errors render as a JSON-RPC error envelope with the stable code in `data.code`;
 * anything else is logged with its cause and answered with a bare 500.
 */
export function renderError(error: unknown, ctx: RenderContext): Response {
  if (error instanceof OAuthError) {
    const headers = new Headers({ 'content-type': 'application/json', 'cache-control': 'no-store' });
    if (error.status === 401 || error.code === 'insufficient_scope') {
      headers.set('www-authenticate', bearerChallenge(error, ctx));
    }
    ctx.logger.info({ error: error.code, reason: error.reason }, 'request refused');
    return new Response(JSON.stringify(error.toJSON()), { status: error.status, headers });
  }
  if (error instanceof GatehouseError) {
    const headers = new Headers({ 'content-type': 'application/json' });
    if (error.retryAfterSeconds !== undefined) headers.set('retry-after', String(error.retryAfterSeconds));
    const level = error.status >= 500 ? 'error' : 'info';
    ctx.logger[level]({ code: error.code, err: error.status >= 500 ? error : undefined }, error.message);
    return jsonRpcError(
      error.status,
      JSONRPC_CODE[error.code] ?? -32000,
      error.message,
      {
        code: error.code,
        ...error.details,
      },
      headers,
    );
  }
  ctx.logger.error({ err: error }, 'unhandled error');
  return jsonRpcError(500, -32603, 'Internal error', { code: 'ERR_INTERNAL' });
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
 * `Retry-After`, with their stable code beside the OAuth one.
 */
export function renderOAuthEndpointError(error: unknown, request: Request, logger: Logger): Response {
  const headers = new Headers({
    'content-type': 'application/json',
    'cache-control': 'no-store',
    pragma: 'no-cache',
  });
  if (error instanceof OAuthError) {
    if (error.code === 'invalid_client' && request.headers.get('authorization')?.match(/^Basic /i)) {
      headers.set('www-authenticate', 'Basic realm="gatehouse", charset="UTF-8"');
    }
    logger.info(
      { error: error.code, reason: error.reason, path: new URL(request.url).pathname },
      'oauth request refused',
    );
    return new Response(JSON.stringify(error.toJSON()), { status: error.status, headers });
  }
  if (error instanceof GatehouseError) {
    if (error.retryAfterSeconds !== undefined) headers.set('retry-after', String(error.retryAfterSeconds));
    const level = error.status >= 500 ? 'error' : 'info';
    logger[level]({ code: error.code, err: error.status >= 500 ? error : undefined }, error.message);
    const body = { error: oauthCodeFor(error), error_description: error.message, code: error.code };
    return new Response(JSON.stringify(body), { status: error.status, headers });
  }
  logger.error({ err: error }, 'unhandled error');
  return new Response(JSON.stringify({ error: 'server_error' }), { status: 500, headers });
}
