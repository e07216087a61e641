/**
 * A form-filling user agent for the sign-in pages: follows redirects by hand, keeps cookies, and
 * submits the login and consent forms the way a browser would (same fields, same order). It stops at
 * the first redirect that leaves Gatehouse and returns it: the client's callback URL.
 */
export interface SignInOptions {
  readonly username: string;
  readonly password: string;
  /** Default `approve`. */
  readonly decision?: 'approve' | 'deny';
  /** Cookies carried over from an earlier sign-in (a browser that is already signed in). */
  readonly jar?: CookieJar;
  /** Stop and return the page instead of submitting it when the page is of this kind. */
  readonly stopAt?: 'login' | 'consent';
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
  let request: { url: string; method: 'GET' | 'POST'; body?: string } = {
    url: String(authorizeUrl),
    method: 'GET',
  };
  for (let step = 0; step < MAX_STEPS; step += 1) {
    const response = await fetch(request.url, {
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
      if (next.origin !== origin) return { callback: next, jar, pages };
      request = { url: next.href, method: 'GET' };
      continue;
    }
    const html = await response.text();
    if (html.includes('data-testid="login-form"')) {
      pages.push('login');
      if (options.stopAt === 'login') return { kind: 'login', url: request.url, html, jar };
      if (pages.filter((kind) => kind === 'login').length > 1) {
        throw new Error(`sign-in refused (${response.status})`);
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
    throw new Error(`unexpected page (${response.status}): ${html.slice(0, 300)}`);
  }
  throw new Error('too many steps');
}
