import { createHash, randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { SafeFetch } from '../../src/net/safe-fetch.js';
import { createEventBus, type GatehouseEvent } from '../../src/ops/events.js';
import { silentLogger } from '../../src/ops/logger.js';
import { fetchFrom } from '../helpers/from-address.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { type PageStop, signIn } from '../helpers/oauth.js';

const PASSWORD = 'correct horse battery staple';
/** Anyone may register this: the host belongs to whoever registers it. */
const ATTACKER_CB = 'https://attacker.example/cb';
const OPERATOR_CB = 'https://operator-app.example/cb';
const OPERATOR_CLIENT = 'operator-app';
/** Two machines on one host: the gateway listens on 127.0.0.1, these connect from other loopback addresses. */
const MACHINE_A = '127.0.0.2';
const MACHINE_B = '127.0.0.3';

const challenge = () => createHash('sha256').update(randomBytes(32)).digest('base64url');

/**
 * The web as the metadata-document hosts publish it, without DNS or TLS: documents by URL, and every
 * URL the gateway actually fetched, in order.
 */
function fakeDocumentHosts(): { documents: Map<string, unknown>; fetched: string[]; fetch: SafeFetch } {
  const documents = new Map<string, unknown>();
  const fetched: string[] = [];
  const fetch: SafeFetch = async (url) => {
    fetched.push(url);
    const document = documents.get(url);
    if (document === undefined) return { status: 404, headers: new Headers(), url, text: '' };
    return {
      status: 200,
      headers: new Headers({ 'content-type': 'application/json' }),
      url,
      text: JSON.stringify(document),
    };
  };
  return { documents, fetched, fetch };
}

function authorizeUrl(
  gw: TestGateway,
  clientId: string,
  redirectUri: string,
  extra: Record<string, string> = {},
): URL {
  const url = new URL(`${gw.gateway.urls.publicUrl}/oauth/authorize`);
  url.search = new URLSearchParams({
    response_type: 'code',
    client_id: clientId,
    redirect_uri: redirectUri,
    code_challenge: challenge(),
    code_challenge_method: 'S256',
    state: 'st-1',
    resource: gw.gateway.urls.resource,
    ...extra,
  }).toString();
  return url;
}

async function register(gw: TestGateway, metadata: Record<string, unknown>): Promise<Response> {
  return fetch(`${gw.gateway.urls.publicUrl}/oauth/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ token_endpoint_auth_method: 'none', ...metadata }),
  });
}

async function registered(gw: TestGateway, metadata: Record<string, unknown>): Promise<string> {
  const response = await register(gw, metadata);
  expect(response.status).toBe(201);
  return ((await response.json()) as { client_id: string }).client_id;
}

/** The answer is a page for the person, never a redirect; `detail` is the OAuth error code shown on it. */
async function expectErrorPage(response: Response, status: number, detail?: string): Promise<string> {
  expect(response.status).toBe(status);
  expect(response.headers.get('location')).toBeNull();
  expect(response.headers.get('content-type')).toMatch(/^text\/html/);
  const html = await response.text();
  if (detail !== undefined) expect(html).toContain(`data-testid="message-detail">${detail}</pre>`);
  return html;
}

function expectErrorRedirect(response: Response, target: string, error: string): URL {
  expect(response.status).toBe(302);
  const location = new URL(response.headers.get('location') as string);
  expect(location.origin + location.pathname).toBe(target);
  expect(location.searchParams.get('error')).toBe(error);
  expect(location.searchParams.get('state')).toBe('st-1');
  return location;
}

describe('authorization errors never make the gateway an open redirector (RFC 9700 §4.11.2)', () => {
  let gw: TestGateway;
  const hosts = fakeDocumentHosts();
  const cimdId = 'https://client.example/oauth/client.json';

  beforeAll(async () => {
    gw = await startTestGateway(
      {
        authorizationServer: {
          clients: [{ clientId: OPERATOR_CLIENT, redirectUris: [OPERATOR_CB], clientName: 'Operator app' }],
          dynamicRegistration: { perIpPerHour: 1000 },
        },
      },
      { cimdFetch: hosts.fetch },
    );
    await gw.gateway.authorizationServer?.accounts?.add({ username: 'alice', password: PASSWORD });
    hosts.documents.set(cimdId, {
      client_id: cimdId,
      client_name: 'Attacker via CIMD',
      redirect_uris: [ATTACKER_CB],
      token_endpoint_auth_method: 'none',
    });
  });
  afterAll(async () => {
    await gw?.close();
  });

  const errorCases: [string, Record<string, string>, string][] = [
    ['an unsupported response_type', { response_type: 'token' }, 'unsupported_response_type'],
    ['prompt=none without a sign-in', { prompt: 'none' }, 'login_required'],
    ['PKCE plain', { code_challenge_method: 'plain' }, 'invalid_request'],
    [
      'a resource this server does not serve',
      { resource: 'https://elsewhere.example/mcp' },
      'invalid_target',
    ],
  ];

  // req: MCP-AUTH-TRUSTED-REDIRECT-ONLY, RFC9700-4.11.2-NO-OPEN-REDIRECTOR
  it('a client that registered itself (DCR) gets the error page, not a 302 to its redirect URI', async () => {
    const clientId = await registered(gw, { client_name: 'Attacker', redirect_uris: [ATTACKER_CB] });
    for (const [, extra, code] of errorCases) {
      const response = await fetch(authorizeUrl(gw, clientId, ATTACKER_CB, extra), { redirect: 'manual' });
      await expectErrorPage(response, 400, code);
    }
  });

  it('a metadata-document client (CIMD) gets the error page too', async () => {
    for (const [, extra, code] of errorCases) {
      const response = await fetch(authorizeUrl(gw, cimdId, ATTACKER_CB, extra), { redirect: 'manual' });
      await expectErrorPage(response, 400, code);
    }
  });

  // req: RFC6749-4.1.2-STATE, RFC9207-2-ISS
  it('a client the operator configured still gets its errors by redirect, with state and iss', async () => {
    for (const [, extra, code] of errorCases) {
      const response = await fetch(authorizeUrl(gw, OPERATOR_CLIENT, OPERATOR_CB, extra), {
        redirect: 'manual',
      });
      const location = expectErrorRedirect(response, OPERATOR_CB, code);
      expect(location.searchParams.get('iss')).toBe(gw.gateway.urls.issuer);
    }
  });

  it('a remembered sign-in is not interaction: prompt=none answers consent_required on the page', async () => {
    const clientId = await registered(gw, { client_name: 'Attacker', redirect_uris: [ATTACKER_CB] });
    // Alice signed in earlier in this browser, for another app.
    const other = await registered(gw, { client_name: 'Other', redirect_uris: ['http://127.0.0.1:9/cb'] });
    const earlier = (await signIn(authorizeUrl(gw, other, 'http://127.0.0.1:9/cb'), {
      username: 'alice',
      password: PASSWORD,
      stopAt: 'consent',
    })) as PageStop;
    expect(earlier.kind).toBe('consent');
    const silent = await fetch(authorizeUrl(gw, clientId, ATTACKER_CB, { prompt: 'none' }), {
      redirect: 'manual',
      headers: { cookie: earlier.jar.header() },
    });
    await expectErrorPage(silent, 400, 'consent_required');
  });

  it('once the person has seen the consent page, Deny goes back to the client (access_denied)', async () => {
    const clientId = await registered(gw, { client_name: 'Attacker', redirect_uris: [ATTACKER_CB] });
    const { callback, pages } = await signIn(authorizeUrl(gw, clientId, ATTACKER_CB), {
      username: 'alice',
      password: PASSWORD,
      decision: 'deny',
    });
    expect(pages).toEqual(['login', 'consent']);
    expect(callback.origin + callback.pathname).toBe(ATTACKER_CB);
    expect(callback.searchParams.get('error')).toBe('access_denied');
  });

  it('a remembered sign-in and consent still answer prompt=none with a code (the person approved this client)', async () => {
    const clientId = await registered(gw, { client_name: 'Approved', redirect_uris: [ATTACKER_CB] });
    const first = await signIn(authorizeUrl(gw, clientId, ATTACKER_CB), {
      username: 'alice',
      password: PASSWORD,
    });
    expect(first.callback.searchParams.get('code')).toBeTruthy();
    const silent = await fetch(authorizeUrl(gw, clientId, ATTACKER_CB, { prompt: 'none' }), {
      redirect: 'manual',
      headers: { cookie: first.jar.header() },
    });
    expect(silent.status).toBe(302);
    expect(new URL(silent.headers.get('location') as string).searchParams.get('code')).toBeTruthy();
  });

  it('registration refuses redirect schemes the OS or browser handles, and keeps app schemes working', async () => {
    const refused = [
      'ms-msdt:/id',
      'search-ms:query=x',
      'ms-officecmd:open',
      'jar:https://attacker.example/a.jar!/',
      'chrome-extension://abcdefghijklmnop/cb',
      'javascript:alert(1)',
      'data:text/html,x',
      'file:///etc/passwd',
      'vbscript:msgbox',
      'x-apple.systempreferences:com.apple.preference.security',
      'microsoft-edge:https://attacker.example/',
      'smb://attacker.example/share',
      'shell:startup',
    ];
    for (const uri of refused) {
      const response = await register(gw, { redirect_uris: [uri] });
      expect(response.status, uri).toBe(400);
      expect(((await response.json()) as { error: string }).error, uri).toBe('invalid_redirect_uri');
    }
    const accepted = [
      'cursor://anysphere.cursor-mcp/oauth/callback',
      'vscode://vscode.github-authentication/did-authenticate',
      'vscode-insiders://vscode.github-authentication/did-authenticate',
      'com.example.app:/oauth2redirect',
    ];
    for (const uri of accepted) expect((await register(gw, { redirect_uris: [uri] })).status, uri).toBe(201);
  });

  it('a metadata document naming such a redirect scheme is refused at authorize, on the page', async () => {
    const id = 'https://client.example/oauth/msdt.json';
    hosts.documents.set(id, { client_id: id, client_name: 'Msdt', redirect_uris: ['ms-msdt:/id'] });
    const response = await fetch(authorizeUrl(gw, id, 'ms-msdt:/id', { response_type: 'token' }), {
      redirect: 'manual',
    });
    await expectErrorPage(response, 400, 'invalid_client');
  });
});

describe('the consent page cannot be dressed up as another app (finding 2, over HTTP)', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startTestGateway();
    await gw.gateway.authorizationServer?.accounts?.add({ username: 'alice', password: PASSWORD });
  });
  afterAll(async () => {
    await gw?.close();
  });

  it('a private-use redirect shows its scheme, not the authority it dresses up as; bidi controls never reach the page', async () => {
    const redirect = 'com.attacker.app://claude.ai/oauth/callback';
    const response = await register(gw, { client_name: 'Claude \u202Egnp.exe', redirect_uris: [redirect] });
    expect(response.status).toBe(201);
    const { client_id, client_name } = (await response.json()) as { client_id: string; client_name: string };
    expect(client_name).toBe('Claude gnp.exe');
    const consent = (await signIn(authorizeUrl(gw, client_id, redirect), {
      username: 'alice',
      password: PASSWORD,
      stopAt: 'consent',
    })) as PageStop;
    expect(consent.kind).toBe('consent');
    expect(consent.html).toMatch(/data-testid="redirect-host">[^<]*com\.attacker\.app:/);
    expect(consent.html).not.toMatch(/data-testid="redirect-host">[^<]*claude\.ai/);
    expect(consent.html).not.toContain('\u202E');
    expect(consent.html).toContain('data-testid="client-claim"');
  });
});

describe('rate limits on /oauth/authorize and metadata-document fetches, per client address', () => {
  let gw: TestGateway | undefined;
  afterEach(async () => {
    await gw?.close();
    gw = undefined;
  });

  it('limits /oauth/authorize per address: 429 page with Retry-After, never a redirect; other addresses unaffected', async () => {
    const events = createEventBus(silentLogger);
    const rejected: GatehouseEvent[] = [];
    events.subscribe((event) => {
      if (event.type === 'ratelimit.rejected') rejected.push(event);
    });
    gw = await startTestGateway(
      { authorizationServer: { clients: [{ clientId: OPERATOR_CLIENT, redirectUris: [OPERATOR_CB] }] } },
      { events },
    );
    // A redirectable error (configured client) so a refusal that redirected would show.
    const url = () =>
      authorizeUrl(gw as TestGateway, OPERATOR_CLIENT, OPERATOR_CB, { response_type: 'token' });
    const a = fetchFrom(MACHINE_A);
    for (let i = 0; i < 60; i++) expect((await a(url())).status).toBe(302);
    const refused = await a(url());
    await expectErrorPage(refused, 429);
    const retryAfter = Number(refused.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(rejected).toMatchObject([{ limit: 'authorize', ip: MACHINE_A }]);
    // Another machine is not refused.
    expect((await fetchFrom(MACHINE_B)(url())).status).toBe(302);
  });

  it('limits metadata-document fetches per address; a refused fetch never leaves the gateway', async () => {
    const hosts = fakeDocumentHosts();
    gw = await startTestGateway({}, { cimdFetch: hosts.fetch });
    const at = (n: number) => `https://docs.example/clients/${n}.json`;
    const a = fetchFrom(MACHINE_A);
    for (let i = 0; i < 10; i++) {
      await expectErrorPage(await a(authorizeUrl(gw, at(i), ATTACKER_CB)), 400, 'invalid_client');
    }
    expect(hosts.fetched).toHaveLength(10);
    const refused = await a(authorizeUrl(gw, at(10), ATTACKER_CB));
    await expectErrorPage(refused, 429);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(hosts.fetched).toHaveLength(10);
    await expectErrorPage(await fetchFrom(MACHINE_B)(authorizeUrl(gw, at(11), ATTACKER_CB)), 400);
    expect(hosts.fetched).toHaveLength(11);
  });

  it('limits fetches per target host whatever the address, other hosts unaffected; cached documents cost nothing', async () => {
    const hosts = fakeDocumentHosts();
    gw = await startTestGateway({}, { cimdFetch: hosts.fetch });
    const victim = (n: number) => `https://victim.example/${n}.json`;
    const addresses = ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5'];
    let n = 0;
    for (const address of addresses.slice(0, 3)) {
      for (let i = 0; i < 10; i++) await fetchFrom(address)(authorizeUrl(gw, victim(n++), ATTACKER_CB));
    }
    expect(hosts.fetched).toHaveLength(30);
    const refused = await fetchFrom(addresses[3] as string)(authorizeUrl(gw, victim(n++), ATTACKER_CB));
    await expectErrorPage(refused, 429);
    expect(hosts.fetched).toHaveLength(30);

    const good = 'https://good.example/client.json';
    hosts.documents.set(good, { client_id: good, client_name: 'Good', redirect_uris: [ATTACKER_CB] });
    const d = fetchFrom(addresses[3] as string);
    // No sign-in yet: each request goes on to the sign-in page (302), from the one cached document.
    for (let i = 0; i < 12; i++) expect((await d(authorizeUrl(gw, good, ATTACKER_CB))).status).toBe(302);
    expect(hosts.fetched.filter((url) => url === good)).toHaveLength(1);
  });
});
