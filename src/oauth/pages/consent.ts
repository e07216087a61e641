import { redirectTarget } from '../redirect-target.js';
import { hostLookalikeReasons, lookalikeReasons, readableText } from '../untrusted-text.js';
import { hiddenInputs, html, type SafeHtml, webUrl } from './html.js';
import { renderPage } from './layout.js';
import { claimedProduct } from './product-claims.js';

/**
 * How Gatehouse knows the client: `configured` by the operator (trusted), `registered` through dynamic
 * client registration (RFC 7591; anyone may pick any name), or a `metadata-document` fetched from its
 * HTTPS client_id URL (the host is proven, the name is not).
 */
export type ConsentClientSource = 'registered' | 'configured' | 'metadata-document';

export interface ConsentPageOptions {
  /** Where the decision form posts; it carries `hidden` and `decision=approve|deny`. */
  readonly action: string;
  /** Hidden fields posted with every form on the page (interaction id, CSRF token). */
  readonly hidden: Readonly<Record<string, string>>;
  /** The signed-in user. */
  readonly user: { readonly name?: string; readonly email?: string; readonly username?: string };
  readonly client: {
    readonly name?: string;
    readonly clientId: string;
    /** Linked only when it is an `https:` URL, else shown as text. */
    readonly clientUri?: string;
    /** Shown only when it is an `https:` URL. */
    readonly logoUri?: string;
    readonly source: ConsentClientSource;
  };
  /**
   * The redirect URI this request will return to. Its host (a web or loopback URI) or its scheme alone
   * (a private-use scheme, whose authority the app chose) is the most prominent fact on the page.
   */
  readonly redirectUri: string;
  readonly scopes: readonly { readonly name: string; readonly description?: string }[];
  /** The protected resource (MCP server URL) the token will be for (RFC 8707). */
  readonly resource: string;
  /** Where "Sign out" posts `hidden`; without it the "not you?" line has no button. */
  readonly signOutAction?: string;
}

function hostOf(url: string): string | undefined {
  try {
    return new URL(url).host || undefined;
  } catch {
    return undefined;
  }
}

function present(value: string | undefined): value is string {
  return value !== undefined && value.trim() !== '';
}

/**
 * What makes an unverified client's name suspect: look-alike letters, or the name of a well-known product
 * that its metadata document's host does not prove. The operator vouches for configured clients.
 */
function nameWarnings(client: ConsentPageOptions['client'], name: string): SafeHtml {
  if (client.source === 'configured' || !present(client.name)) return html``;
  const lookalike = lookalikeReasons(name).length > 0;
  const product = claimedProduct(
    name,
    client.source === 'metadata-document' ? hostOf(client.clientId) : undefined,
  );
  return html`${
    product !== undefined &&
    html`<div class="alert alert-warn" data-testid="client-claim">This app calls itself by the name of <strong><bdi>${product}</bdi></strong>, but nothing confirms it comes from them: anyone can register an app under any name.</div>`
  }${
    lookalike &&
    html`<div class="alert alert-warn" data-testid="client-lookalike">The name mixes alphabets or uses look-alike letters, a common way to imitate another app's name.</div>`
  }`;
}

function clientPanel(client: ConsentPageOptions['client'], displayName: SafeHtml, name: string): SafeHtml {
  const verified = client.source === 'configured';
  const badge = verified
    ? html`<span class="badge badge-ok" data-testid="client-badge">Verified</span>`
    : html`<span class="badge badge-warn" data-testid="client-badge">Unverified</span>`;
  const provenance =
    client.source === 'configured'
      ? 'Added by the administrator of this server.'
      : client.source === 'registered'
        ? 'This app registered itself. Its name was chosen by the app and is not verified.'
        : 'Its details come from a document published at the address below. The name is not verified.';
  const website = webUrl(client.clientUri);
  const logo = webUrl(client.logoUri);
  return html`<div class="client-head">${
    logo !== undefined &&
    html`<img class="client-logo" src="${logo}" alt="" width="48" height="48" referrerpolicy="no-referrer" data-testid="client-logo">`
  }<div><div><strong data-testid="client-name">${displayName}</strong> ${badge}</div><p class="note">${provenance}</p></div></div>
${nameWarnings(client, name)}
<div class="panel" data-testid="client-details"><dl class="facts">
<dt>${client.source === 'metadata-document' ? 'Published at' : 'Client ID'}</dt><dd><code data-testid="client-id">${client.clientId}</code></dd>
${
  present(client.clientUri) &&
  html`<dt>Website</dt><dd>${
    website === undefined
      ? html`<span class="mono">${client.clientUri}</span>`
      : html`<a href="${website}" rel="noopener noreferrer">${hostOf(website) ?? website}</a>`
  }</dd>`
}
</dl></div>`;
}

function signedIn(
  user: ConsentPageOptions['user'],
  hidden: ConsentPageOptions['hidden'],
  signOut?: string,
): SafeHtml {
  const primary = [user.name, user.username, user.email].find(present);
  const secondary = [user.email, user.username].find((value) => present(value) && value !== primary);
  return html`<div class="signed-in" data-testid="consent-user"><span>Signed in as <strong>${primary ?? 'an unnamed user'}</strong>${
    secondary !== undefined && html` (${secondary})`
  }</span>${
    signOut !== undefined &&
    html`<form method="post" action="${signOut}" data-testid="sign-out-form">${hiddenInputs(hidden)}<button type="submit" class="link-button" data-testid="sign-out">Not you? Sign out</button></form>`
  }</div>`;
}

/**
 * The consent page. It names the client without trusting its self-declared name: a badge says whether the
 * client is verified, the client_id (a URL for metadata-document clients) is always shown, and where the
 * browser will be sent is the most prominent fact (the MCP confused-deputy defence) — for a private-use
 * scheme the scheme alone, since the rest of such a URI is the app's to choose. Names are shown without
 * characters that hide or reorder text, isolated from the text around them (`<bdi>`), and an unverified
 * name with look-alike letters or a well-known product's name is marked. The decision
 * form has two submit buttons, `decision=deny` and `decision=approve`; neither is autofocused, so a
 * keypress landing on a freshly opened window cannot approve. Serve with
 * `pageHeaders({ formActionOrigins: [formActionSource(redirectUri)] })`, since the POST answers 303 there.
 *
 * @example
 * renderConsentPage({
 *   action: '/oauth/consent', hidden: { interaction, csrf }, user: { email: 'ada@example.com' },
 *   client: { name: 'Claude', clientId, source: 'registered' }, redirectUri: 'https://claude.ai/api/mcp/auth_callback',
 *   scopes: [{ name: 'notes:read', description: 'Read your notes' }], resource: 'https://mcp.example/mcp',
 * });
 */
export function renderConsentPage(options: ConsentPageOptions): string {
  const { client, scopes, resource } = options;
  const verified = client.source === 'configured';
  const fallbackName =
    client.source === 'metadata-document' ? (hostOf(client.clientId) ?? client.clientId) : 'An unnamed app';
  const claimed = present(client.name) ? readableText(client.name) : '';
  const name = claimed === '' ? fallbackName : claimed;
  // An unverified name is quoted: it is a claim, not an identity.
  const displayName = verified || claimed === '' ? html`<bdi>${name}</bdi>` : html`“<bdi>${name}</bdi>”`;
  const target = redirectTarget(options.redirectUri);
  const targetLabel = html`<strong class="redirect-host" data-testid="redirect-host">${target.label}</strong>`;
  const redirectLookalike = target.kind === 'web' && hostLookalikeReasons(target.label).length > 0;

  const scopeItems =
    scopes.length === 0
      ? html`<li><span class="scope-name">Use this server as you</span><span class="scope-desc">Call its tools and read its resources with your identity.</span></li>`
      : scopes.map(
          (scope) =>
            html`<li><code class="scope-name">${scope.name}</code>${
              present(scope.description) && html`<span class="scope-desc">${scope.description}</span>`
            }</li>`,
        );

  return renderPage({
    title: 'Authorize access',
    width: 'wide',
    testId: 'consent-page',
    body: html`<h1 data-testid="consent-title">${displayName} wants to access your account</h1>
<p class="lead">Review the request before you continue.</p>
${clientPanel(client, displayName, claimed)}
<div class="redirect" data-testid="consent-redirect">${
      target.kind === 'app'
        ? html`After you choose, you will be sent to the app on this computer that opens${targetLabel}<span class="note" data-testid="redirect-app-note">links. Any installed app can claim this kind of link; the rest of the address is the app's choice and proves nothing.</span>`
        : html`After you choose, you will be sent to${targetLabel}`
    }${target.kind === 'loopback' && html`<span class="note">An app running on this computer.</span>`}${
      redirectLookalike &&
      html`<span class="note" data-testid="redirect-lookalike">This address uses international letters that look like other letters; it may imitate another address.</span>`
    }</div>
${
  !verified &&
  html`<div class="alert alert-warn" data-testid="consent-warning">Only approve if you started this sign-in and recognise <strong>${target.label}</strong>.</div>`
}
<h2>It will be able to</h2>
<ul class="scopes" data-testid="consent-scopes">${scopeItems}</ul>
<p class="resource">on <strong data-testid="consent-resource">${resource}</strong></p>
<form method="post" action="${options.action}" data-testid="consent-form">${hiddenInputs(options.hidden)}
<div class="actions"><button type="submit" name="decision" value="deny" class="btn btn-secondary" data-testid="consent-deny">Deny</button><button type="submit" name="decision" value="approve" class="btn btn-primary" data-testid="consent-approve">Approve</button></div>
</form>
${signedIn(options.user, options.hidden, options.signOutAction)}`,
  });
}
