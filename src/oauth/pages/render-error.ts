import { GatehouseError } from '../../errors/gatehouse-error.js';
import { OAuthError } from '../../errors/oauth-error.js';
import { clientFacing, logHiddenError, type RenderContext } from '../../errors/render.js';
import { PAGE_HEADERS } from './layout.js';
import { renderMessagePage } from './message.js';

/**
 * The browser pages' error boundary: a person is reading, so the answer is a page, never JSON. A client
 * error names its stable code; a server error names only the request id, its cause logged.
 */
export function renderPageError(thrown: unknown, ctx: RenderContext): Response {
  const error = clientFacing(thrown);
  const known = error instanceof OAuthError || error instanceof GatehouseError;
  const status = known ? error.status : 500;
  const shown = known && error.expose;
  if (!shown) logHiddenError(error, ctx, 'sign-in page failed');
  const body = renderMessagePage({
    tone: 'error',
    title: status >= 500 ? 'Something went wrong' : 'This request is not valid',
    message:
      status >= 500
        ? 'Gatehouse could not complete the sign-in. Try again in a moment.'
        : 'Go back to your app and connect again.',
    ...pageDetail(shown ? error.code : undefined, status >= 500 ? ctx.requestId : undefined),
  });
  const headers = new Headers(PAGE_HEADERS);
  if (known && error instanceof GatehouseError && error.retryAfterSeconds !== undefined) {
    headers.set('retry-after', String(error.retryAfterSeconds));
  }
  return new Response(body, { status, headers });
}

/** The small print under a page error: the stable code when shown, and the request id of a server error. */
function pageDetail(code: string | undefined, requestId: string | undefined): { detail?: string } {
  const request = requestId === undefined ? undefined : `request ${requestId}`;
  const detail = [code, request].filter((part) => part !== undefined).join(' · ');
  return detail === '' ? {} : { detail };
}
