import { readableText } from '../untrusted-text.js';
import { hiddenInputs, html, type SafeHtml } from './html.js';
import { renderPage } from './layout.js';

/** Errors the login page knows how to word; any other string is shown as given (escaped). */
export type LoginErrorCode = 'invalid_credentials' | 'throttled' | 'expired';

export interface LoginPageOptions {
  /** Where the username/password form posts. */
  readonly action: string;
  /** Hidden fields posted with every form on the page (interaction id, CSRF token). */
  readonly hidden: Readonly<Record<string, string>>;
  /**
   * The client's name as registered; shown next to its host, never alone, without characters that hide or
   * reorder text, and isolated from the text around it.
   */
  readonly clientName?: string;
  /** Where the client's redirect URI leads (`redirectTarget(…).label`): a host, or a private-use scheme. */
  readonly clientHost?: string;
  /** Pre-fills the username field (after a failed attempt). */
  readonly username?: string;
  readonly error?: LoginErrorCode | (string & {});
  /** With `error: 'throttled'`: how long until the next attempt is allowed. */
  readonly retryAfterSeconds?: number;
  /**
   * The "Continue with …" button: a plain link (a GET navigation), not a form, because the identity
   * provider's own redirects may cross origins that `form-action` would block after a form submission.
   * `href` carries what the server needs to check (interaction, CSRF token).
   */
  readonly federated?: { readonly label: string; readonly href: string };
  /** Whether the username/password form is shown. */
  readonly localEnabled: boolean;
}

function duration(seconds: number): string {
  const s = Math.max(1, Math.ceil(seconds));
  if (s < 60) return s === 1 ? '1 second' : `${s} seconds`;
  const m = Math.ceil(s / 60);
  return m === 1 ? '1 minute' : `${m} minutes`;
}

function errorText(error: string, retryAfterSeconds: number | undefined): string {
  switch (error) {
    case 'invalid_credentials':
      return 'That username and password did not match. Check them and try again.';
    case 'throttled':
      return retryAfterSeconds === undefined
        ? 'Too many sign-in attempts. Wait a little, then try again.'
        : `Too many sign-in attempts. Try again in ${duration(retryAfterSeconds)}.`;
    case 'expired':
      return 'This sign-in request has expired. Go back to the app and start again.';
    default:
      return error;
  }
}

function subtitle(rawName: string | undefined, clientHost: string | undefined): SafeHtml {
  const clientName = rawName === undefined ? '' : readableText(rawName);
  if (clientName !== '') {
    return html`<p class="lead" data-testid="login-client">to continue to <strong><bdi>${clientName}</bdi></strong>${
      clientHost !== undefined && clientHost !== '' && html` <span class="mono">(${clientHost})</span>`
    }</p>`;
  }
  if (clientHost !== undefined && clientHost !== '') {
    return html`<p class="lead" data-testid="login-client">to continue to <strong>${clientHost}</strong></p>`;
  }
  return html`<p class="lead">to continue to your MCP client</p>`;
}

/**
 * The sign-in page: optional error, a "Continue with …" button for the federated identity provider, and the
 * username/password form (`username`, `password` plus `hidden`). Pure; serve with `pageHeaders()`, adding the
 * client's redirect origin and the identity provider's origin to `formActionOrigins` when the POST may
 * redirect there.
 *
 * @example
 * renderLoginPage({ action: '/oauth/login', hidden: { interaction, csrf }, clientName: 'Claude', localEnabled: true });
 */
export function renderLoginPage(options: LoginPageOptions): string {
  const { action, hidden, username, error, federated, localEnabled } = options;
  const prefilled = username !== undefined && username !== '';
  const alert =
    error !== undefined &&
    error !== '' &&
    html`<div class="alert alert-error" role="alert" data-testid="login-error">${errorText(
      error,
      options.retryAfterSeconds,
    )}</div>`;

  const federatedForm =
    federated !== undefined &&
    html`<div data-testid="federated-form"><a href="${federated.href}" class="btn btn-secondary" role="button" data-testid="federated-submit">Continue with ${federated.label}</a></div>`;

  const localForm =
    localEnabled &&
    html`<form method="post" action="${action}" class="stack" data-testid="login-form">${hiddenInputs(hidden)}
<div class="field"><label for="username">Username</label><input id="username" name="username" type="text" autocomplete="username" autocapitalize="none" autocorrect="off" spellcheck="false" required${
      prefilled ? html` value="${username}"` : html` autofocus`
    }></div>
<div class="field"><label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required${
      prefilled && html` autofocus`
    }></div>
<button type="submit" class="btn btn-primary" data-testid="login-submit">Sign in</button>
</form>`;

  const none =
    !localEnabled &&
    federated === undefined &&
    html`<div class="alert alert-warn" role="alert" data-testid="login-unavailable">No sign-in method is enabled on this server. Contact its administrator.</div>`;

  return renderPage({
    title: 'Sign in',
    testId: 'login-page',
    body: html`<h1>Sign in</h1>
${subtitle(options.clientName, options.clientHost)}
${alert}
${federatedForm}
${federatedForm && localForm && html`<div class="divider" role="separator">or</div>`}
${localForm}
${none}`,
  });
}
