import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  Client,
  OAuthError,
  StreamableHTTPClientTransport,
  UnauthorizedError,
} from '@modelcontextprotocol/client';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchBrowser, type TestBrowser } from '../helpers/browser.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { text } from '../helpers/mcp.js';
import { RecordingOAuthProvider } from '../helpers/v2-oauth-provider.js';

const USERNAME = 'erin';
const PASSWORD = 'a long and perfectly fine passphrase';
const CLIENT_NAME = 'Gatehouse browser test';

/** The client's loopback redirect URI (RFC 8252 §7.3): records every request the browser makes to it. */
interface CallbackServer {
  readonly url: string;
  readonly host: string;
  readonly hits: readonly URL[];
  /** The next request to the callback path; rejects when none arrives within 5 s. */
  next(): Promise<URL>;
  close(): Promise<void>;
}

async function startCallbackServer(): Promise<CallbackServer> {
  const hits: URL[] = [];
  let waiters: Array<(url: URL) => void> = [];
  const server: Server = createServer((request, response) => {
    const url = new URL(request.url ?? '/', `http://${request.headers.host}`);
    if (url.pathname === '/favicon.ico') {
      response.writeHead(204).end();
      return;
    }
    if (url.pathname !== '/callback') {
      response.writeHead(404).end();
      return;
    }
    hits.push(url);
    for (const resolve of waiters) resolve(url);
    waiters = [];
    response
      .writeHead(200, { 'content-type': 'text/html; charset=utf-8' })
      .end('<!doctype html><title>Done</title><p data-testid="callback">You can close this window.</p>');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url: `http://${host}/callback`,
    host,
    hits,
    next: () =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('the browser did not reach the callback')), 5000);
        waiters.push((url) => {
          clearTimeout(timer);
          resolve(url);
        });
      }),
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * The authorization flow as a person sees it: the v2 SDK client opens the authorization URL in headless
 * Chromium, the test types into the login form and clicks through consent, the browser lands on the
 * client's loopback callback server, and the client redeems the code and calls a tool.
 */
describe('OAuth sign-in in headless Chromium with the v2 SDK client', () => {
  let gw: TestGateway;
  let browser: TestBrowser;
  let callback: CallbackServer;
  let userId: string;

  beforeAll(async () => {
    [gw, browser, callback] = await Promise.all([startTestGateway(), launchBrowser(), startCallbackServer()]);
    const account = await gw.gateway.authorizationServer?.accounts?.add({
      username: USERNAME,
      password: PASSWORD,
      email: 'erin@example.com',
    });
    userId = account?.id ?? '';
    expect(userId).not.toBe('');
  });
  afterAll(async () => {
    await browser?.close();
    await callback?.close();
    await gw?.close();
  });

  /** A page in a fresh browser context, recording console errors (CSP violations among them) by page URL. */
  async function openPage() {
    const page = await browser.newPage();
    page.setDefaultTimeout(5000);
    const errors: string[] = [];
    page.on('console', (message) => {
      if (message.type() === 'error') errors.push(`${page.url()}: ${message.text()}`);
    });
    page.on('pageerror', (error) => errors.push(`${page.url()}: ${String(error)}`));
    return { page, errors };
  }

  /** An MCP client whose "open the browser" navigates `page`. */
  function browserProvider(page: Page): RecordingOAuthProvider {
    return new RecordingOAuthProvider({
      redirectUrl: callback.url,
      clientName: CLIENT_NAME,
      open: (url) => page.goto(url.href),
    });
  }

  /** Connects without tokens: the SDK registers if needed and opens the authorization URL in `page`. */
  async function startAuthorization(provider: RecordingOAuthProvider): Promise<void> {
    const client = new Client({ name: 'browser-oauth-test', version: '1.0.0' });
    await expect(
      client.connect(new StreamableHTTPClientTransport(gw.mcpUrl, { authProvider: provider })),
    ).rejects.toBeInstanceOf(UnauthorizedError);
  }

  async function typeCredentials(page: Page, password: string) {
    await page.getByLabel('Username').fill(USERNAME);
    await page.getByLabel('Password').fill(password);
    const [response] = await Promise.all([
      page.waitForResponse((r) => r.request().method() === 'POST' && r.url().endsWith('/login')),
      page.getByTestId('login-submit').click(),
    ]);
    return response;
  }

  /** Redeems the callback's code, connects and returns what `whoami` says. */
  async function finishAndCallWhoami(provider: RecordingOAuthProvider, params: URLSearchParams) {
    const transport = new StreamableHTTPClientTransport(gw.mcpUrl, { authProvider: provider });
    await transport.finishAuth(params);
    const client = new Client({ name: 'browser-oauth-test', version: '1.0.0' });
    await client.connect(transport);
    try {
      return text(await client.callTool({ name: 'whoami', arguments: {} }));
    } finally {
      await client.close();
    }
  }

  it('signs in, shows consent naming the unverified client and its redirect host, approves, calls whoami; a second authorization is remembered', async () => {
    const { page, errors } = await openPage();
    const provider = browserProvider(page);
    await startAuthorization(provider);
    const clientId = provider.clientInfo?.client_id as string;
    expect(clientId).toBeTruthy(); // dynamic client registration happened
    expect(provider.authorizationUrls[0]?.searchParams.get('client_id')).toBe(clientId);

    await page.getByTestId('login-page').waitFor();
    expect(new URL(page.url()).origin).toBe(gw.gateway.urls.publicUrl);
    const loginClient = await page.getByTestId('login-client').textContent();
    expect(loginClient).toContain(CLIENT_NAME);
    expect(loginClient).toContain(callback.host);

    const login = await typeCredentials(page, PASSWORD);
    expect(login.status()).toBe(303);
    await page.getByTestId('consent-page').waitFor();
    expect(await page.getByTestId('client-name').textContent()).toContain(CLIENT_NAME);
    expect(await page.getByTestId('client-badge').textContent()).toBe('Unverified');
    expect(await page.getByTestId('client-id').textContent()).toBe(clientId);
    expect(await page.getByTestId('redirect-host').textContent()).toBe(callback.host);
    expect(await page.getByTestId('consent-resource').textContent()).toBe(gw.gateway.urls.resource);

    const arrived = callback.next();
    await page.getByTestId('consent-approve').click();
    const params = (await arrived).searchParams;
    await page.getByTestId('callback').waitFor();
    expect(page.url().startsWith(callback.url)).toBe(true);
    expect(params.get('code')).toBeTruthy();
    expect(params.get('state')).toBe(provider.stateValue);
    expect(params.get('iss')).toBe(gw.gateway.urls.issuer);
    expect(errors).toEqual([]);

    expect(await finishAndCallWhoami(provider, params)).toContain(userId);

    // Same browser (its sign-in cookie), same client, no tokens: straight back to the callback.
    provider.savedTokens = undefined;
    const documents: string[] = [];
    page.on('response', (response) => {
      if (response.request().resourceType() === 'document') documents.push(new URL(response.url()).pathname);
    });
    const again = callback.next();
    await startAuthorization(provider);
    expect(documents).toEqual(['/oauth/authorize', '/callback']);
    const secondParams = (await again).searchParams;
    expect(secondParams.get('code')).toBeTruthy();
    expect(secondParams.get('code')).not.toBe(params.get('code'));
    expect(secondParams.get('state')).toBe(provider.stateValue);
    expect(await finishAndCallWhoami(provider, secondParams)).toContain(userId);
    expect(errors).toEqual([]);
  });

  it('a wrong password shows the error on the login page and goes nowhere', async () => {
    const { page, errors } = await openPage();
    const provider = browserProvider(page);
    await startAuthorization(provider);
    await page.getByTestId('login-page').waitFor();
    const hits = callback.hits.length;

    const login = await typeCredentials(page, 'not the passphrase');
    expect(login.status()).toBe(401);
    await page.getByTestId('login-error').waitFor();
    expect(await page.getByRole('alert').count()).toBe(1);
    expect(await page.getByLabel('Username').inputValue()).toBe(USERNAME);
    expect(new URL(page.url()).origin).toBe(gw.gateway.urls.publicUrl);
    expect(callback.hits.length).toBe(hits);
    // Chromium reports the 401 document itself; nothing else (no CSP violation) may appear.
    expect(errors).toEqual([
      expect.stringMatching(/\/login: Failed to load resource: .* 401 \(Unauthorized\)$/),
    ]);
  });

  // req: RFC9207-2-ISS, RFC6749-4.1.2-STATE
  it('Deny sends the browser to the callback with error=access_denied, state and iss, and no code', async () => {
    const { page, errors } = await openPage();
    const provider = browserProvider(page);
    await startAuthorization(provider);
    await typeCredentials(page, PASSWORD);
    await page.getByTestId('consent-page').waitFor();

    const arrived = callback.next();
    await page.getByTestId('consent-deny').click();
    const params = (await arrived).searchParams;
    await page.getByTestId('callback').waitFor();
    expect(params.get('error')).toBe('access_denied');
    expect(params.get('state')).toBe(provider.stateValue);
    expect(params.get('iss')).toBe(gw.gateway.urls.issuer);
    expect(params.has('code')).toBe(false);
    expect(errors).toEqual([]);

    // The SDK checks `iss`, then surfaces the RFC 6749 error.
    const transport = new StreamableHTTPClientTransport(gw.mcpUrl, { authProvider: provider });
    const refused = await transport.finishAuth(params).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(refused).toBeInstanceOf(OAuthError);
    expect((refused as OAuthError).code).toBe('access_denied');
    expect(provider.savedTokens).toBeUndefined();
  });
});
