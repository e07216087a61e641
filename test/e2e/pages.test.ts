import { mkdirSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import type { ConsoleMessage, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderConsentPage } from '../../src/oauth/pages/consent.js';
import { html, rawHtml } from '../../src/oauth/pages/html.js';
import { formActionSource, PAGE_HEADERS, pageHeaders, renderPage } from '../../src/oauth/pages/layout.js';
import { renderLoginPage } from '../../src/oauth/pages/login.js';
import { renderMessagePage } from '../../src/oauth/pages/message.js';
import { launchBrowser, type TestBrowser } from '../helpers/browser.js';

const HIDDEN = { interaction: 'int-123', csrf: 'csrf-abc' };
const PAYLOAD = `<script>window.__pwned = 1; alert(1)</script><img src=x onerror="window.__pwned = 2; alert(2)">"'&`;
const SCREENSHOT_DIR = join(tmpdir(), 'gatehouse-page-screenshots');

interface Received {
  readonly path: string;
  readonly fields: Array<[string, string]>;
}

type Server = ReturnType<typeof serve>;

async function listen(app: Hono): Promise<{ server: Server; origin: string }> {
  const server = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 });
  const port = await new Promise<number>((resolve, reject) => {
    server.once('listening', () => resolve((server.address() as AddressInfo).port));
    server.once('error', reject);
  });
  return { server, origin: `http://127.0.0.1:${port}` };
}

function close(server: Server | undefined): Promise<void> {
  return new Promise((resolve) => (server === undefined ? resolve() : server.close(() => resolve())));
}

function consentOptions(overrides: Partial<Parameters<typeof renderConsentPage>[0]> = {}) {
  return {
    action: '/consent',
    hidden: HIDDEN,
    user: { name: 'Ada Lovelace', email: 'ada@example.com' },
    client: { name: 'Claude', clientId: 'c_7f3a9e21b4', source: 'registered' as const },
    redirectUri: 'https://claude.ai/api/mcp/auth_callback',
    scopes: [
      { name: 'notes:read', description: 'Read your notes' },
      { name: 'notes:write', description: 'Create and change your notes' },
    ],
    resource: 'https://mcp.example.com/mcp',
    signOutAction: '/sign-out',
    ...overrides,
  };
}

describe('OAuth pages in headless Chromium', () => {
  let browser: TestBrowser;
  let app: { server: Server; origin: string };
  let other: { server: Server; origin: string };
  const received: Received[] = [];
  let callbackHits = 0;

  beforeAll(async () => {
    const a = new Hono();
    const page = (body: string, headers: Record<string, string> = PAGE_HEADERS) =>
      new Response(body, { headers });
    const record = async (path: string, body: string) => {
      received.push({ path, fields: [...new URLSearchParams(body)] });
    };

    a.get('/login', () =>
      page(
        renderLoginPage({
          action: '/login',
          hidden: HIDDEN,
          clientName: 'Claude',
          clientHost: 'claude.ai',
          localEnabled: true,
          federated: { label: 'Acme', href: '/federated?csrf=csrf-token-123' },
        }),
      ),
    );
    a.get('/login-error', () =>
      page(
        renderLoginPage({
          action: '/login',
          hidden: HIDDEN,
          clientName: 'Visual Studio Code',
          clientHost: '127.0.0.1:33418',
          username: 'ada',
          error: 'invalid_credentials',
          localEnabled: true,
        }),
      ),
    );
    a.get('/consent', () => page(renderConsentPage(consentOptions())));
    a.get('/consent-metadata', () =>
      page(
        renderConsentPage(
          consentOptions({
            client: {
              name: 'Cursor',
              clientId: 'https://cursor.com/oauth/client-metadata.json',
              clientUri: 'https://cursor.com',
              source: 'metadata-document',
            },
            redirectUri: 'http://127.0.0.1:61234/callback',
          }),
        ),
      ),
    );
    a.get('/consent-app-scheme', () =>
      page(renderConsentPage(consentOptions({ redirectUri: 'com.attacker.app://claude.ai/oauth/callback' }))),
    );
    a.get('/message', () =>
      page(
        renderMessagePage({
          tone: 'error',
          title: 'This app is not registered',
          message: 'The sign-in link names an app this server does not know.',
          detail: 'client_id: c_unknown',
        }),
      ),
    );
    a.get('/xss-consent', () =>
      page(
        renderConsentPage(
          consentOptions({
            hidden: { interaction: PAYLOAD, csrf: 'csrf-abc' },
            user: { name: PAYLOAD, email: PAYLOAD },
            client: {
              name: PAYLOAD,
              clientId: PAYLOAD,
              clientUri: PAYLOAD,
              logoUri: PAYLOAD,
              source: 'registered',
            },
            redirectUri: PAYLOAD,
            scopes: [{ name: PAYLOAD, description: PAYLOAD }],
            resource: PAYLOAD,
          }),
        ),
      ),
    );
    a.get('/xss-login', () =>
      page(
        renderLoginPage({
          action: '/login',
          hidden: { interaction: PAYLOAD },
          clientName: PAYLOAD,
          clientHost: PAYLOAD,
          username: PAYLOAD,
          error: PAYLOAD,
          federated: { label: PAYLOAD, href: '/federated?csrf=x' },
          localEnabled: true,
        }),
      ),
    );
    // Simulates an escaping bug: raw script in the body. Only the CSP stands between it and execution.
    const rawScript = renderPage({
      title: 'raw',
      body: html`<p data-testid="raw">raw</p>${rawHtml('<script>window.__ran = true;</script>')}`,
    });
    a.get('/raw-script', () => page(rawScript));
    a.get('/raw-script-no-csp', () => page(rawScript, { 'Content-Type': 'text/html; charset=utf-8' }));
    a.get('/frameable', () =>
      page(renderPage({ title: 'frameable', body: html`<p data-testid="frameable">in a frame</p>` }), {
        'Content-Type': 'text/html; charset=utf-8',
      }),
    );
    a.get('/consent-redirect', (c) => {
      const allow = c.req.query('allow') === '1';
      const callback = `${other.origin}/callback`;
      return page(
        renderConsentPage(consentOptions({ action: `/consent-redirect?hop=${c.req.query('hop') ?? '0'}` })),
        pageHeaders({ formActionOrigins: allow ? [formActionSource(callback)] : [] }),
      );
    });
    a.post('/consent-redirect', async (c) => {
      await record('/consent-redirect', await c.req.text());
      const callback = `${other.origin}/callback?code=the-code`;
      return c.redirect(
        c.req.query('hop') === '1' ? `/hop?to=${encodeURIComponent(callback)}` : callback,
        303,
      );
    });
    a.get('/hop', (c) => c.redirect(c.req.query('to') ?? '/', 302));
    a.get('/federated', (c) =>
      page(renderMessagePage({ tone: 'info', title: 'Received', message: c.req.query('csrf') ?? '' })),
    );
    for (const path of ['/login', '/consent', '/sign-out']) {
      a.post(path, async (c) => {
        await record(path, await c.req.text());
        return page(renderMessagePage({ tone: 'info', title: 'Received', message: path }));
      });
    }

    const b = new Hono();
    b.get('/frame', (c) => {
      const frames = (c.req.query('paths') ?? '')
        .split(',')
        .map((path) => `<iframe name="${path}" src="${app.origin}${path}"></iframe>`);
      return c.html(`<!doctype html><title>parent</title>${frames.join('')}`);
    });
    b.get('/callback', (c) => {
      callbackHits++;
      return c.text(`callback reached code=${c.req.query('code')}`);
    });

    app = await listen(a);
    other = await listen(b);
    browser = await launchBrowser();
    mkdirSync(SCREENSHOT_DIR, { recursive: true });
  });

  afterAll(async () => {
    await browser?.close();
    await close(app?.server);
    await close(other?.server);
  });

  /** A fresh page that records console errors, uncaught exceptions and dialogs (auto-dismissed). */
  async function openPage(options: Parameters<TestBrowser['newPage']>[0] = {}) {
    const page = await browser.newPage(options);
    const errors: string[] = [];
    const dialogs: string[] = [];
    page.on('console', (message: ConsoleMessage) => {
      if (message.type() === 'error') errors.push(message.text());
    });
    page.on('pageerror', (error) => errors.push(String(error)));
    page.on('dialog', (dialog) => {
      dialogs.push(dialog.message());
      void dialog.dismiss();
    });
    return { page, errors, dialogs };
  }

  async function submit(page: Page, testId: string, path: string): Promise<Record<string, string>> {
    const before = received.length;
    await Promise.all([
      page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === path),
      page.getByTestId(testId).click(),
    ]);
    const posts = received.slice(before);
    expect(posts.map((p) => p.path)).toEqual([path]);
    const fields = posts[0]!.fields;
    // No field posted twice (a hidden field colliding with a visible one would be).
    expect(new Set(fields.map(([name]) => name)).size).toBe(fields.length);
    return Object.fromEntries(fields);
  }

  it('login form posts username, password and the hidden fields', async () => {
    const { page, errors } = await openPage();
    await page.goto(`${app.origin}/login`);
    await expect(page.evaluate(() => document.activeElement?.id)).resolves.toBe('username');
    await page.getByLabel('Username').fill('ada');
    await page.getByLabel('Password').fill('s3cret & "quoted"');
    const fields = await submit(page, 'login-submit', '/login');
    expect(fields).toEqual({ ...HIDDEN, username: 'ada', password: 's3cret & "quoted"' });
    expect(errors).toEqual([]);
  });

  it('federated button is a plain link (a GET navigation, so form-action never applies to the IdP redirects)', async () => {
    const { page } = await openPage();
    await page.goto(`${app.origin}/login`);
    expect(await page.getByTestId('federated-submit').textContent()).toBe('Continue with Acme');
    await page.getByTestId('federated-submit').click();
    await page.waitForURL(`${app.origin}/federated?csrf=csrf-token-123`);
    expect(await page.getByTestId('message').textContent()).toContain('csrf-token-123');
  });

  it('consent Approve and Deny post the matching decision with the hidden fields', async () => {
    const { page } = await openPage();
    for (const decision of ['approve', 'deny'] as const) {
      await page.goto(`${app.origin}/consent`);
      const fields = await submit(page, `consent-${decision}`, '/consent');
      expect(fields).toEqual({ ...HIDDEN, decision });
    }
  });

  it('sign out posts the hidden fields to signOutAction', async () => {
    const { page } = await openPage();
    await page.goto(`${app.origin}/consent`);
    expect(await page.getByTestId('consent-user').textContent()).toContain(
      'Signed in as Ada Lovelace (ada@example.com)',
    );
    expect(await submit(page, 'sign-out', '/sign-out')).toEqual(HIDDEN);
  });

  it('shows hostile client input as text and executes none of it', async () => {
    for (const path of ['/xss-consent', '/xss-login']) {
      const { page, dialogs } = await openPage();
      await page.goto(`${app.origin}${path}`);
      const state = await page.evaluate(() => ({
        scripts: document.querySelectorAll('script').length,
        imgs: document.querySelectorAll('img').length,
        pwned: (window as unknown as { __pwned?: number }).__pwned,
        text: document.body.textContent ?? '',
        hidden: (document.querySelector('input[name="interaction"]') as HTMLInputElement).value,
      }));
      expect(state).toMatchObject({ scripts: 0, imgs: 0, pwned: undefined, hidden: PAYLOAD });
      expect(state.text).toContain(PAYLOAD);
      expect(dialogs).toEqual([]);
      if (path === '/xss-login') {
        expect(await page.locator('#username').inputValue()).toBe(PAYLOAD);
      }
    }
  });

  it('CSP blocks an inline script that slipped into the markup (and the control without CSP runs it)', async () => {
    const { page, errors } = await openPage();
    const ran = () => page.evaluate(() => (window as unknown as { __ran?: boolean }).__ran);
    await page.goto(`${app.origin}/raw-script`);
    expect(await page.getByTestId('raw').isVisible()).toBe(true);
    expect(await ran()).toBeUndefined();
    expect(errors.join('\n')).toMatch(/Content Security Policy/);

    await page.goto(`${app.origin}/raw-script-no-csp`);
    expect(await ran()).toBe(true);
  });

  // req: RFC9700-4.16-CLICKJACKING
  it('cannot be framed by another origin (and the control page can)', async () => {
    const { page } = await openPage();
    const paths = ['/frameable', '/login', '/consent', '/message'];
    await page.goto(`${other.origin}/frame?paths=${encodeURIComponent(paths.join(','))}`, {
      waitUntil: 'load',
    });
    const frame = async (path: string) => {
      const found = await (
        await page.locator(`iframe[name="${path}"]`).elementHandle({ timeout: 2000 })
      )?.contentFrame();
      expect(found, path).toBeTruthy();
      return found!;
    };
    expect(await (await frame('/frameable')).getByTestId('frameable').count()).toBe(1);
    for (const path of paths.slice(1)) {
      const framed = await frame(path);
      expect(await framed.locator('[data-testid="wordmark"]').count(), path).toBe(0);
      expect(framed.url(), path).not.toContain(app.origin);
    }
  });

  it('for a private-use redirect scheme, shows the scheme as where the browser goes, never the authority after it', async () => {
    const { page, errors } = await openPage();
    await page.goto(`${app.origin}/consent-app-scheme`);
    expect(await page.getByTestId('redirect-host').innerText()).toBe('com.attacker.app:');
    expect(await page.getByTestId('redirect-app-note').isVisible()).toBe(true);
    expect(await page.getByTestId('consent-redirect').innerText()).not.toContain('claude.ai');
    expect(await page.getByTestId('consent-warning').innerText()).toContain('com.attacker.app:');
    // The name "Claude" on an unverified client is marked as a claim nothing confirms.
    expect(await page.getByTestId('client-claim').isVisible()).toBe(true);
    expect(errors).toEqual([]);
  });

  it('renders with no console errors and the hashed stylesheet applied', async () => {
    const { page, errors } = await openPage();
    for (const path of [
      '/login',
      '/login-error',
      '/consent',
      '/consent-metadata',
      '/consent-app-scheme',
      '/message',
    ]) {
      await page.goto(`${app.origin}${path}`);
      // The card's rounded corners come from the inlined stylesheet: a hash mismatch would leave 0px.
      const radius = await page.locator('main').evaluate((el) => getComputedStyle(el).borderTopLeftRadius);
      expect(radius, path).toBe('14px');
    }
    expect(errors).toEqual([]);
  });

  // req: RFC9700-4.12-NO-307
  it('a consent POST may 303 to the client only when its origin is in form-action', async () => {
    const { page, errors } = await openPage();
    await page.goto(`${app.origin}/consent-redirect?allow=1`);
    await Promise.all([
      page.waitForURL(`${other.origin}/callback**`),
      page.getByTestId('consent-approve').click(),
    ]);
    expect(await page.locator('body').textContent()).toBe('callback reached code=the-code');
    expect(errors).toEqual([]);

    // Without it Chromium refuses the redirect, also when it comes after a same-origin hop.
    for (const query of ['allow=0', 'allow=0&hop=1'] as const) {
      await page.goto(`${app.origin}/consent-redirect?${query}`);
      const [hits, posts] = [callbackHits, received.length];
      const violation = page.waitForEvent('console', {
        predicate: (m) => m.type() === 'error' && m.text().includes('form-action'),
        timeout: 5000,
      });
      await page.getByTestId('consent-approve').click();
      await violation;
      expect(received.slice(posts).map((r) => r.path)).toEqual(['/consent-redirect']);
      expect(callbackHits, query).toBe(hits);
      expect(page.url()).not.toContain('/callback');
    }
  });

  it('looks finished at 1280 and 360 px wide, light and dark (screenshots in the temp dir)', async () => {
    const shots: Array<[string, number, 'light' | 'dark']> = [
      ['/login', 1280, 'light'],
      ['/login', 360, 'light'],
      ['/login-error', 360, 'dark'],
      ['/consent', 1280, 'light'],
      ['/consent', 360, 'light'],
      ['/consent-metadata', 1280, 'dark'],
      ['/consent-app-scheme', 360, 'light'],
      ['/message', 360, 'light'],
    ];
    const { page } = await openPage();
    for (const [path, width, colorScheme] of shots) {
      await page.setViewportSize({ width, height: 800 });
      await page.emulateMedia({ colorScheme });
      await page.goto(`${app.origin}${path}`);
      // Nothing wider than the viewport: no sideways scrolling on a phone.
      const scrollWidth = await page.evaluate(() => document.documentElement.scrollWidth);
      expect(scrollWidth, `${path} at ${width}px`).toBeLessThanOrEqual(width);
      await page.screenshot({
        path: join(SCREENSHOT_DIR, `${path.slice(1)}-${width}-${colorScheme}.png`),
        fullPage: true,
      });
    }
  });
});
