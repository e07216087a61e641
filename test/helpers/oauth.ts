import { createHash, randomBytes } from 'node:crypto';
/**
 * A form-filling user agent for the sign-in pages: follows redirects by hand, keeps cookies, and
 * submits the login and consent forms the way a browser would (same fields, same order). It stops at
 * the first redirect that leaves Gatehouse and returns it: the client's callback URL. With `federated`,
 * it presses "Continue with …" instead, lets `federated` play the user at the identity provider, and
 * carries on at the Gatehouse callback the IdP sends the browser back to.
 */

/**
 * Completes the sign-in at the upstream identity provider: from the IdP's authorization URL (where
 * Gatehouse sent the browser) to the Gatehouse callback URL the IdP redirects back to. `jar` is the
 * browser's cookie jar.
 */
export type FederatedSignIn = (idpUrl: URL, jar: CookieJar) => Promise<URL>;

/** Who signs in: a local account by password, or a user of the federated identity provider. */
export type SignInAs =
  | { readonly username: string; readonly password: string; readonly federated?: undefined }
  | { readonly federated: FederatedSignIn; readonly username?: undefined; readonly password?: undefined };

/** What the user does: who signs in, what they answer on the consent page, in which browser. */
export type SignInUser = SignInAs & {
  /** Default `approve`. */
  readonly decision?: 'approve' | 'deny';
  /** Cookies carried over from an earlier sign-in (a browser that is already signed in). */
  readonly jar?: CookieJar;
};

export type SignInOptions = SignInUser & {
  /** Stop and return the page instead of submitting it when the page is of this kind. */
  readonly stopAt?: 'login' | 'consent';
  /** The browser's network: another source address, say (`fetchFrom`). Default the global `fetch`. */
  readonly fetch?: typeof fetch;
};

/** A page the user agent could not act on (an error page, say), with its status and body. */
export class UnexpectedPageError extends Error {
  constructor(
    readonly status: number,
    readonly url: string,
    readonly html: string,
  ) {
    super(`unexpected page (${status}): ${html.slice(0, 300)}`);
    this.name = 'UnexpectedPageError';
  }
}

export class CookieJar {
  readonly cookies = new Map<string, string>();
  header(): string {
    return [...this.cookies].map(([name, value]) => `${name}=${value}`).join('; ');
  }
  store(response: Response): void {
    for (const line of response.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const index = pair?.indexOf('=') ?? -1;
      if (pair === undefined || index < 0) continue;
      const name = pair.slice(0, index).trim();
      const value = pair.slice(index + 1).trim();
      if (/max-age=0/i.test(line) || value === '') this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }
}

export interface SignInResult {
  /** Where Gatehouse finally sent the browser (the client's redirect URI with `code` or `error`). */
  readonly callback: URL;
  readonly jar: CookieJar;
  /** Pages seen on the way, by kind. */
  readonly pages: ('login' | 'consent')[];
}

export interface PageStop {
  readonly kind: 'login' | 'consent';
  readonly url: string;
  readonly html: string;
  readonly jar: CookieJar;
}

const MAX_STEPS = 12;

export function formOf(html: string, testId: string): { action: string; fields: Record<string, string> } {
  const form = new RegExp(
    `<form[^>]*action="([^"]+)"[^>]*data-testid="${testId}"[^>]*>([\\s\\S]*?)</form>`,
  ).exec(html);
  if (form === null) throw new Error(`no ${testId} on the page`);
  const fields: Record<string, string> = {};
  for (const input of (form[2] ?? '').matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)) {
    fields[input[1] as string] = decodeEntities(input[2] as string);
  }
  return { action: decodeEntities(form[1] as string), fields };
}

function decodeEntities(text: string): string {
  return text
    .replaceAll('&quot;', '"')
    .replaceAll('&#39;', "'")
    .replaceAll('&lt;', '<')
    .replaceAll('&gt;', '>')
    .replaceAll('&amp;', '&');
}

/** Drives an authorization URL through sign-in and consent; returns the callback or the page it stopped at. */
export async function signIn(
  authorizeUrl: string | URL,
  options: SignInOptions & { stopAt: 'login' | 'consent' },
): Promise<SignInResult | PageStop>;
export async function signIn(authorizeUrl: string | URL, options: SignInOptions): Promise<SignInResult>;
export async function signIn(
  authorizeUrl: string | URL,
  options: SignInOptions,
): Promise<SignInResult | PageStop> {
  const jar = options.jar ?? new CookieJar();
  const origin = new URL(authorizeUrl).origin;
  const pages: ('login' | 'consent')[] = [];
  let request: { url: string; method: 'GET' | 'POST'; body?: string; federate?: boolean } = {
    url: String(authorizeUrl),
    method: 'GET',
  };
  for (let step = 0; step < MAX_STEPS; step += 1) {
    const response = await (options.fetch ?? fetch)(request.url, {
      method: request.method,
      redirect: 'manual',
      headers: {
        cookie: jar.header(),
        ...(request.body !== undefined && { 'content-type': 'application/x-www-form-urlencoded' }),
      },
      ...(request.body !== undefined && { body: request.body }),
    });
    jar.store(response);
    const location = response.headers.get('location');
    if (response.status >= 300 && response.status < 400 && location !== null) {
      const next = new URL(location, request.url);
      if (next.origin !== origin && request.federate === true && options.federated !== undefined) {
        // The "Continue with …" form sent the browser to the IdP; it comes back to Gatehouse's callback.
        const callback = await options.federated(next, jar);
        if (callback.origin !== origin) return { callback, jar, pages };
        request = { url: callback.href, method: 'GET' };
        continue;
      }
      if (next.origin !== origin) return { callback: next, jar, pages };
      request = { url: next.href, method: 'GET' };
      continue;
    }
    const html = await response.text();
    const loginPage =
      html.includes('data-testid="login-form"') || html.includes('data-testid="federated-form"');
    if (loginPage) {
      pages.push('login');
      if (options.stopAt === 'login') return { kind: 'login', url: request.url, html, jar };
      if (pages.filter((kind) => kind === 'login').length > 1) {
        throw new Error(`sign-in refused (${response.status})`);
      }
      if (options.federated !== undefined) {
        const link = /<a href="([^"]+)"[^>]*data-testid="federated-submit"/.exec(html);
        if (link?.[1] === undefined) throw new Error('no "Continue with …" link on the page');
        request = { url: new URL(decodeEntities(link[1]), request.url).href, method: 'GET', federate: true };
        continue;
      }
      const form = formOf(html, 'login-form');
      const body = new URLSearchParams({
        ...form.fields,
        username: options.username,
        password: options.password,
      });
      request = { url: new URL(form.action, request.url).href, method: 'POST', body: body.toString() };
      continue;
    }
    if (html.includes('data-testid="consent-form"')) {
      pages.push('consent');
      if (options.stopAt === 'consent') return { kind: 'consent', url: request.url, html, jar };
      const form = formOf(html, 'consent-form');
      const body = new URLSearchParams({ ...form.fields, decision: options.decision ?? 'approve' });
      request = { url: new URL(form.action, request.url).href, method: 'POST', body: body.toString() };
      continue;
    }
    throw new UnexpectedPageError(response.status, request.url, html);
  }
  throw new Error('too many steps');
}

/** A PKCE S256 pair (RFC 7636): the verifier the client keeps and the challenge it sends. */
export function pkce(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

/** `/oauth/authorize` of the gateway at `base` for a code flow with PKCE, plus `extra` parameters. */
export function authorizeUrl(
  base: string,
  request: { clientId: string; redirectUri: string; challenge: string; resource: string },
  extra: Record<string, string> = {},
): URL {
  const url = new URL(`${base}/oauth/authorize`);
  url.search = new URLSearchParams({
    response_type: 'code',
    client_id: request.clientId,
    redirect_uri: request.redirectUri,
    code_challenge: request.challenge,
    code_challenge_method: 'S256',
    resource: request.resource,
    ...extra,
  }).toString();
  return url;
}
