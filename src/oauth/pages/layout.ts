import { escapeHtml, html, rawHtml, type SafeHtml } from './html.js';
import { PAGE_CSS, PAGE_CSS_HASH } from './styles.js';

export { escapeHtml };

export interface RenderPageOptions {
  /** Document title (text, escaped); " · Gatehouse" is appended. */
  readonly title: string;
  /** The card's content, built with `html`. */
  readonly body: SafeHtml;
  /**
   * `wide` gives the card room for the consent page's client details; `full` the width of the window
   * (the admin console's tables). Default `normal`.
   */
  readonly width?: 'normal' | 'wide' | 'full';
  /** A second stylesheet, inlined after the shared one; allow it with `pageHeaders({ styleHashes })`. */
  readonly extraStyle?: string;
  /** `data-testid` of the card. Default `card`. */
  readonly testId?: string;
}

const MARK_PATH = 'M3 21V4h3v2h2V4h3v2h2V4h3v2h2V4h3v17h-6v-5a3 3 0 0 0-6 0v5z';

// A data: favicon (allowed by img-src) so browsers do not request /favicon.ico from the server.
const FAVICON = `data:image/svg+xml,${encodeURIComponent(
  `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24"><path fill="#2f5bd3" d="${MARK_PATH}"/></svg>`,
)}`;

const WORDMARK = html`<div class="brand" data-testid="wordmark"><svg width="20" height="20" viewBox="0 0 24 24" aria-hidden="true" focusable="false"><path fill="currentColor" d="${MARK_PATH}"/></svg><span>Gatehouse</span></div>`;

/**
 * A complete HTML document: the shared stylesheet, the Gatehouse wordmark and a centred card holding
 * `body`. No script, no external resource. Serve it with {@link pageHeaders}.
 *
 * @example
 * new Response(renderPage({ title: 'Signed in', body: html`<h1>You can close this window</h1>` }), {
 *   headers: pageHeaders(),
 * });
 */
export function renderPage({
  title,
  body,
  width = 'normal',
  testId = 'card',
  extraStyle,
}: RenderPageOptions): string {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<meta name="referrer" content="no-referrer">
<meta name="robots" content="noindex, nofollow">
<link rel="icon" href="${FAVICON}">
<title>${title} · Gatehouse</title>
<style>${rawHtml(PAGE_CSS)}</style>
${extraStyle !== undefined && html`<style>${rawHtml(extraStyle)}</style>`}
</head>
<body>
<div class="page">
${WORDMARK}
<main class="${width === 'normal' ? 'card' : `card card-${width}`}" data-testid="${testId}">
${body}
</main>
</div>
</body>
</html>
`.value;
}

export interface PageHeadersOptions {
  /**
   * Extra `form-action` sources besides `'self'`: an origin (`https://app.example`, `http://127.0.0.1:33418`)
   * or a scheme (`cursor:`). Chromium applies `form-action` to every redirect that follows a form submission,
   * so a page whose POST may answer 303 to a client's `redirect_uri` (consent, and login when consent is
   * already granted) or to an upstream identity provider (the federated button) must list that target here.
   * Build entries with {@link formActionSource}; anything else is rejected with a `TypeError`.
   */
  readonly formActionOrigins?: readonly string[];
  /** CSP sources (`'sha256-…'`) of the page's `extraStyle`, allowed beside the shared stylesheet's. */
  readonly styleHashes?: readonly string[];
}

const SCHEME_SOURCE = /^[a-z][a-z0-9+.-]*:$/i;
const ORIGIN_SOURCE = /^https?:\/\/(\[[0-9a-f:.]+\]|[a-z0-9-]+(\.[a-z0-9-]+)*)(:\d{1,5})?$/i;

/**
 * Security headers for every page: HTML content type, `no-store`, no framing, no referrer, no sniffing, and a
 * CSP that allows only the inlined stylesheet (by hash), images, and form posts to this origin plus
 * `formActionOrigins`. Returns a fresh object each call.
 *
 * @example
 * pageHeaders({ formActionOrigins: [formActionSource(redirectUri)] });
 */
export function pageHeaders(options: PageHeadersOptions = {}): Record<string, string> {
  const formAction = ["'self'"];
  for (const source of options.formActionOrigins ?? []) {
    if (!SCHEME_SOURCE.test(source) && !ORIGIN_SOURCE.test(source)) {
      throw new TypeError(`form-action source must be an origin or a scheme followed by ':', got ${source}`);
    }
    if (!formAction.includes(source)) formAction.push(source);
  }
  return {
    'Content-Type': 'text/html; charset=utf-8',
    'Cache-Control': 'no-store',
    'X-Frame-Options': 'DENY',
    'Content-Security-Policy': [
      "default-src 'none'",
      `style-src ${[PAGE_CSS_HASH, ...(options.styleHashes ?? [])].join(' ')}`,
      "img-src 'self' https: data:",
      `form-action ${formAction.join(' ')}`,
      "frame-ancestors 'none'",
      "base-uri 'none'",
    ].join('; '),
    'Referrer-Policy': 'no-referrer',
    'X-Content-Type-Options': 'nosniff',
  };
}

/** {@link pageHeaders} with no extra `form-action` source, for pages whose forms only post to this origin. */
export const PAGE_HEADERS: Readonly<Record<string, string>> = Object.freeze(pageHeaders());

/**
 * The `form-action` source that lets a form submission end in a redirect to `redirectUri`: its origin for
 * `http:`/`https:` (a loopback redirect keeps its exact port), or its scheme for a private-use scheme
 * (RFC 8252 §7.1, e.g. `cursor:` for `cursor://anysphere.cursor-mcp/oauth/callback`).
 *
 * @example
 * formActionSource('http://127.0.0.1:33418/callback'); // 'http://127.0.0.1:33418'
 * formActionSource('com.example.app:/oauth2redirect'); // 'com.example.app:'
 */
export function formActionSource(redirectUri: string): string {
  let url: URL;
  try {
    url = new URL(redirectUri);
  } catch {
    throw new TypeError(`not an absolute URI: ${redirectUri}`);
  }
  const source = url.protocol === 'http:' || url.protocol === 'https:' ? url.origin : url.protocol;
  if (!SCHEME_SOURCE.test(source) && !ORIGIN_SOURCE.test(source)) {
    throw new TypeError(`no form-action source for ${redirectUri}`);
  }
  return source;
}
