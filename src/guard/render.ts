import { OAuthError } from '../errors/oauth-error.js';
import { type RenderContext, renderJsonRpcError } from '../errors/render.js';
import { bearerChallenge } from './challenge.js';

export interface GuardRenderContext extends RenderContext {
  readonly resourceMetadataUrl: string;
  /** Scopes every request needs, named in the challenge. */
  readonly scope: readonly string[];
}

/**
 * The MCP endpoint's error boundary (and the WebSocket upgrade's, and library mode's): the guard's OAuth
 * errors per RFC 6750 §3 with the `WWW-Authenticate` challenge — 401, 403 `insufficient_scope` and a
 * malformed request's 400 `invalid_request` alike, each a request without a usable token — carrying RFC
 * 9728 `resource_metadata`, so a client can discover the authorization server from the challenge alone;
 * everything else as a JSON-RPC error envelope, its cause hidden unless exposed.
 */
export function renderGuardedError(error: unknown, ctx: GuardRenderContext): Response {
  if (!(error instanceof OAuthError) || !error.expose) return renderJsonRpcError(error, ctx);
  const headers = new Headers({ 'content-type': 'application/json', 'cache-control': 'no-store' });
  if (error.status === 401 || error.code === 'insufficient_scope' || error.code === 'invalid_request') {
    headers.set('www-authenticate', bearerChallenge(error, ctx));
  }
  return new Response(JSON.stringify(error.toJSON()), { status: error.status, headers });
}
