/**
 * Where a redirect URI sends the browser, as a person should read it:
 * - `web`: an `https:` (or other web) URL — its host and port;
 * - `loopback`: an app on this computer listening on `localhost`, `127.0.0.1` or `[::1]` — host and port;
 * - `app`: a private-use scheme (RFC 8252 §7.1) — only the scheme, `com.example.app:`. Whatever follows
 *   it is chosen by the app and proves nothing: `com.attacker.app://claude.ai/cb` goes to whichever app
 *   claimed `com.attacker.app:`, not to claude.ai;
 * - `unknown`: not a URI at all (never a registered redirect), shown as given.
 */
export interface RedirectTarget {
  readonly kind: 'web' | 'loopback' | 'app' | 'unknown';
  readonly label: string;
}

const LOOPBACK_HOST = /^(localhost|127(\.\d{1,3}){3}|\[::1\])$/i;

/**
 * @example
 * redirectTarget('https://claude.ai/api/mcp/auth_callback'); // { kind: 'web', label: 'claude.ai' }
 * redirectTarget('http://127.0.0.1:33418/cb');               // { kind: 'loopback', label: '127.0.0.1:33418' }
 * redirectTarget('cursor://anysphere.cursor-mcp/cb');        // { kind: 'app', label: 'cursor:' }
 */
export function redirectTarget(redirectUri: string): RedirectTarget {
  if (!URL.canParse(redirectUri)) return { kind: 'unknown', label: redirectUri };
  const url = new URL(redirectUri);
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return { kind: 'app', label: url.protocol };
  return { kind: LOOPBACK_HOST.test(url.hostname) ? 'loopback' : 'web', label: url.host };
}
