import { html } from './html.js';
import { renderPage } from './layout.js';

export interface MessagePageOptions {
  /** Heading and document title. */
  readonly title: string;
  readonly message: string;
  /** Technical detail (an error code, the rejected redirect_uri), shown in a monospace block. */
  readonly detail?: string;
  /** `error` for failures that must not be redirected to the client; `info` for outcomes. */
  readonly tone: 'error' | 'info';
}

const ERROR_ICON = html`<svg width="26" height="26" viewBox="0 0 24 24" aria-hidden="true" focusable="false"><path fill="none" stroke="currentColor" stroke-width="2.6" stroke-linecap="round" d="M12 6v8M12 18.5v.01"/></svg>`;
const INFO_ICON = html`<svg width="26" height="26" viewBox="0 0 24 24" aria-hidden="true" focusable="false"><path fill="none" stroke="currentColor" stroke-width="2.4" stroke-linecap="round" stroke-linejoin="round" d="M6 12.5l4 4 8-9"/></svg>`;

/**
 * A page that only informs: errors that must be answered directly rather than redirected (unknown client,
 * unregistered redirect_uri, RFC 6749 §4.1.2.1) and "you can close this window" outcomes. Serve with
 * `PAGE_HEADERS` and the matching status.
 *
 * @example
 * renderMessagePage({ tone: 'error', title: 'Unknown app', message: 'This app is not registered.', detail: 'client_id: abc' });
 */
export function renderMessagePage({ title, message, detail, tone }: MessagePageOptions): string {
  return renderPage({
    title,
    testId: 'message-page',
    body: html`<div class="${tone === 'error' ? 'tone-error' : 'tone-info'}" data-testid="message" data-tone="${tone}"${
      tone === 'error' && html` role="alert"`
    }>
<div class="tone-icon">${tone === 'error' ? ERROR_ICON : INFO_ICON}</div>
<h1 data-testid="message-title">${title}</h1>
<p class="message-text" data-testid="message-text">${message}</p>
${detail !== undefined && detail !== '' && html`<pre class="detail" data-testid="message-detail">${detail}</pre>`}
</div>`,
  });
}
