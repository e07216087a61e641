import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/client';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchBrowser, type TestBrowser } from '../helpers/browser.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { connectClient, text } from '../helpers/mcp.js';
import { postMcp } from '../helpers/mcp-http.js';
import { gatewayAt, registerAndSignIn } from '../helpers/signed-in-client.js';

const PASSWORD = 'correct horse battery staple';
const SHOTS = join(process.cwd(), 'test-results', 'console');

/**
 * The admin console in headless Chromium: an administrator signs in through Gatehouse's own login page,
 * finds alice's live MCP session (opened by a real SDK client with an OAuth token), ends it, then signs
 * alice out everywhere — and alice's next requests fail as the MCP spec says (404 for the ended session,
 * 401 once her grants are revoked). A non-administrator gets the 403 page; a forged form post is refused.
 */
describe('admin console in headless Chromium', () => {
  let gw: TestGateway;
  let browser: TestBrowser;
  let base: string;
  const clients: Client[] = [];

  beforeAll(async () => {
    mkdirSync(SHOTS, { recursive: true });
    [gw, browser] = await Promise.all([
      startTestGateway({ admin: { requestsPerMinute: 600 } }),
      launchBrowser(),
    ]);
    base = gw.gateway.urls.publicUrl;
    const accounts = gw.gateway.authorizationServer?.accounts;
    await accounts?.add({ username: 'root', password: PASSWORD, name: 'Root Operator' });
    await accounts?.add({ username: 'alice', password: PASSWORD, email: 'alice@example.com' });
    await accounts?.add({ username: 'mallory', password: PASSWORD });
    await gw.gateway.admin?.users.setAdmin('root', true);
  });
  afterAll(async () => {
    for (const client of clients) await client.close().catch(() => undefined);
    await browser?.close();
    await gw?.close();
  });

  /** A page in a fresh browser context, recording console errors (CSP violations among them). */
  async function openPage() {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.setDefaultTimeout(15_000);
    const errors: string[] = [];
    page.on('console', (message) => {
      // A 403 page is a refusal the test asks for; anything else (a CSP violation, say) is a defect.
      if (message.type() === 'error' && !message.text().includes('status of 403'))
        errors.push(`${page.url()}: ${message.text()}`);
    });
    page.on('pageerror', (error) => errors.push(`${page.url()}: ${String(error)}`));
    return { page, errors };
  }

  /** Visits the console, which sends the browser to Gatehouse's login page and back. */
  async function signInToConsole(page: Page, username: string) {
    await page.goto(`${base}/admin`);
    expect(new URL(page.url()).pathname).toMatch(/^\/oauth\/interaction\//);
    await page.getByLabel('Username').fill(username);
    await page.getByLabel('Password').fill(PASSWORD);
    // Password hashing is deliberately slow, and the machine may be busy: a wide margin.
    await page.getByTestId('login-submit').click();
    await page.waitForURL((url) => url.pathname.startsWith('/admin'), { timeout: 30_000 });
    await page.waitForLoadState('load');
  }

  /** alice connects a real MCP client with an OAuth access token (a grant she can be signed out of). */
  async function aliceConnects(): Promise<{ token: string; sessionId: string }> {
    const { tokens } = await registerAndSignIn(
      gatewayAt(gw),
      { username: 'alice', password: PASSWORD },
      'Alice notes app',
    );
    const { client, transport } = await connectClient(gw.mcpUrl, tokens.access_token);
    clients.push(client);
    expect(text(await client.callTool({ name: 'whoami', arguments: {} }))).toContain('alice');
    return { token: tokens.access_token, sessionId: transport.sessionId as string };
  }

  const ping = (token: string, sessionId?: string) =>
    postMcp(gw.mcpUrl, token, { jsonrpc: '2.0', id: 9, method: 'ping' }, sessionId);

  it('lets an administrator end a session and sign a user out everywhere', { timeout: 180_000 }, async () => {
    const first = await aliceConnects();
    const { page, errors } = await openPage();
    await signInToConsole(page, 'root');
    expect(new URL(page.url()).pathname).toBe('/admin');
    await expect(page.getByTestId('console-user').textContent()).resolves.toBe('root');
    await expect(page.getByTestId('chart-tool-calls').count()).resolves.toBe(1);
    await page.screenshot({ path: join(SHOTS, 'overview.png'), fullPage: true });

    await page.getByTestId('nav-users').click();
    await expect(page.getByTestId('user-row-alice').count()).resolves.toBe(1);
    await page.screenshot({ path: join(SHOTS, 'users.png'), fullPage: true });

    await page.getByTestId('user-link-alice').click();
    const row = page.locator(`[data-testid="session-row"][data-session-id="${first.sessionId}"]`);
    await expect(row.count()).resolves.toBe(1);
    await page.screenshot({ path: join(SHOTS, 'user.png'), fullPage: true });

    // "End": the session is gone for alice (404 for its id), her token still works.
    await row.getByTestId('end-session').click();
    await page.waitForLoadState('load');
    await expect(page.getByTestId('flash').getAttribute('data-tone')).resolves.toBe('ok');
    await expect(row.count()).resolves.toBe(0);
    expect((await ping(first.token, first.sessionId)).status).toBe(404);
    expect((await ping(first.token)).status).not.toBe(401);

    // "Sign out everywhere": alice's token is refused (401) and her new session is gone.
    const second = await aliceConnects();
    await page.reload();
    await expect(
      page.locator(`[data-testid="session-row"][data-session-id="${second.sessionId}"]`).count(),
    ).resolves.toBe(1);
    await expect(page.getByTestId('grant-row').count()).resolves.toBeGreaterThan(0);
    await page.getByTestId('signout-alice').click();
    await page.waitForLoadState('load');
    await expect(page.getByTestId('flash').textContent()).resolves.toContain('out everywhere');
    expect((await ping(second.token, second.sessionId)).status).toBe(401);
    expect((await ping(first.token)).status).toBe(401);
    await expect(page.getByTestId('session-row').count()).resolves.toBe(0);
    await page.screenshot({ path: join(SHOTS, 'user-signed-out.png'), fullPage: true });

    for (const [section, shot] of [
      ['clients', 'clients.png'],
      ['keys', 'keys.png'],
      ['audit', 'audit.png'],
    ] as const) {
      await page.getByTestId(`nav-${section}`).click();
      await page.waitForLoadState('load');
      await expect(page.getByTestId(`console-${section}`).count()).resolves.toBe(1);
      await page.screenshot({ path: join(SHOTS, shot), fullPage: true });
    }
    await page.getByTestId('nav-keys').click();
    const kids = await page.getByTestId('key-row').count();
    await page.getByTestId('rotate-keys').click();
    await page.waitForLoadState('load');
    await expect(page.getByTestId('flash').getAttribute('data-tone')).resolves.toBe('ok');
    await expect(page.getByTestId('key-row').count()).resolves.toBe(kids + 1);

    // The audit log records who did what, filterable by event type.
    await gw.gateway.audit?.flush();
    await page.goto(`${base}/admin/audit?event=admin.action`);
    const actions = await page.getByTestId('audit-row').allTextContents();
    expect(actions.join('\n')).toContain('session.end');
    expect(actions.join('\n')).toContain('user.signout');
    await page.screenshot({ path: join(SHOTS, 'audit-filtered.png'), fullPage: true });
    expect(errors).toEqual([]);
  });

  it('sends every page with no framing, no caching and a strict CSP', { timeout: 90_000 }, async () => {
    const { page } = await openPage();
    await signInToConsole(page, 'root');
    for (const path of [
      '/admin',
      '/admin/users',
      '/admin/users/alice',
      '/admin/clients',
      '/admin/keys',
      '/admin/audit',
    ]) {
      const response = await page.goto(`${base}${path}`);
      const headers = response?.headers() ?? {};
      expect(response?.status(), path).toBe(200);
      expect(headers['x-frame-options'], path).toBe('DENY');
      expect(headers['content-security-policy'], path).toContain("frame-ancestors 'none'");
      expect(headers['content-security-policy'], path).not.toContain('unsafe-inline');
      expect(headers['cache-control'], path).toBe('no-store');
      expect(await page.locator('script').count(), path).toBe(0);
    }
  });

  it('refuses a form post without the CSRF token, or from another origin', { timeout: 90_000 }, async () => {
    const { page } = await openPage();
    await signInToConsole(page, 'root');
    await page.goto(`${base}/admin/users`);
    const csrf = await page.locator('input[name="csrf"]').first().getAttribute('value');
    expect(csrf).toBeTruthy();

    // The browser's own cookies, but no token: refused, and mallory stays enabled.
    const forged = await page.request.post(`${base}/admin/users/mallory/disable`, {
      form: { back: '/admin/users' },
      headers: { origin: base },
      maxRedirects: 0,
    });
    expect(forged.status()).toBe(403);
    expect(await forged.text()).toContain('ERR_CSRF_INVALID');
    // A token, but posted from another site.
    const crossSite = await page.request.post(`${base}/admin/users/mallory/disable`, {
      form: { csrf: csrf as string, back: '/admin/users' },
      headers: { origin: 'https://evil.example' },
      maxRedirects: 0,
    });
    expect(crossSite.status()).toBe(403);
    expect((await gw.gateway.admin?.users.get('mallory'))?.disabled).toBe(false);
    // The same form with the token from this origin works.
    const genuine = await page.request.post(`${base}/admin/users/mallory/disable`, {
      form: { csrf: csrf as string, back: '/admin/users' },
      headers: { origin: base },
      maxRedirects: 0,
    });
    expect(genuine.status()).toBe(303);
    expect((await gw.gateway.admin?.users.get('mallory'))?.disabled).toBe(true);
    await gw.gateway.admin?.users.enable('mallory');
  });

  it('shows a non-administrator the 403 page', { timeout: 90_000 }, async () => {
    const { page, errors } = await openPage();
    await signInToConsole(page, 'mallory');
    await expect(page.getByTestId('console-forbidden').count()).resolves.toBe(1);
    await expect(page.getByTestId('message-title').textContent()).resolves.toBe('Administrators only');
    await page.screenshot({ path: join(SHOTS, 'forbidden.png'), fullPage: true });
    // Signed in now, a direct visit is refused as well, and no action goes through.
    const direct = await page.goto(`${base}/admin/users`);
    expect(direct?.status()).toBe(403);
    const csrf = await page.locator('input[name="csrf"]').first().getAttribute('value');
    const attempt = await page.request.post(`${base}/admin/users/alice/grant-admin`, {
      form: { csrf: csrf as string },
      headers: { origin: base },
      maxRedirects: 0,
    });
    expect(attempt.status()).toBe(403);
    expect((await gw.gateway.admin?.users.get('mallory'))?.admin).toBe(false);
    expect((await gw.gateway.admin?.users.get('alice'))?.admin).toBe(false);
    expect(errors).toEqual([]);
  });
});
