import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSafeFetch } from '../../src/net/safe-fetch.js';
import type { TestGateway } from '../helpers/gateway.js';
import { type PageStop, signIn } from '../helpers/oauth.js';
import { type DocumentHost, startDocumentHost } from './helpers/document-host.js';
import { type EventLog, startRecorded } from './helpers/harness.js';
import {
  addAccount,
  authorizeUrl,
  oauthError,
  PASSWORD,
  pkce,
  REDIRECT,
  registerClient,
  registerRaw,
} from './helpers/oauth-client.js';

/**
 * Findings 3 and 4: the authorization endpoint must not be an open redirector for clients anyone can
 * create (RFC 9700 §4.11.2: DCR and Client ID Metadata Documents), registration must refuse redirect
 * schemes the browser or the OS would act on, and the consent page must not be spoofable by a
 * self-chosen redirect host or client name.
 */

/** Schemes that launch OS or browser machinery (ms-msdt: Follina, CVE-2022-30190). */
const INTERNAL_SCHEMES = [
  'ms-msdt:/id%20PCWDiagnostic',
  'javascript:alert(1)//',
  'data:text/html,hi',
  'file:///etc/passwd',
  'vbscript:msgbox',
  'ms-settings:privacy',
  'ms-officecmd:open',
  'search-ms:query=x',
  'shell:startup',
  'intent://x#Intent;end',
  'chrome://settings',
  'about:blank',
  'view-source:https://example.com',
  'jar:file:///x!/y',
];
const BIDI = ['\u202E', '\u202D', '\u2066', '\u2067', '\u2068', '\u2069', '\u200F', '\u061C'];

describe('authorization errors of self-registered clients (finding 3)', () => {
  let gw: TestGateway;
  let log: EventLog;
  let host: DocumentHost;
  beforeAll(async () => {
    host = await startDocumentHost();
    ({ gw, log } = await startRecorded(
      {
        store: { kind: 'memory' },
        authorizationServer: {
          clientIdMetadataDocuments: { allowPrivateNetworks: true },
          clients: [{ clientId: 'configured-app', redirectUris: [REDIRECT] }],
          dynamicRegistration: { perIpPerHour: 1000 },
        },
      },
      { cimdFetch: createSafeFetch({ allowPrivateNetworks: true, ca: host.ca }) },
    ));
    await addAccount(gw, 'alice');
  });
  afterAll(async () => {
    await gw?.close();
    await host?.close();
  });

  /** Requests that fail after the client and redirect URI were verified, before anyone interacted. */
  const failing: ReadonlyArray<[string, Record<string, string>, string]> = [
    ['unsupported response_type', { response_type: 'token' }, 'unsupported_response_type'],
    ['plain PKCE', { code_challenge_method: 'plain' }, 'invalid_request'],
    ['foreign resource', { resource: 'https://other.example/mcp' }, 'invalid_target'],
    ['prompt=none, nobody signed in', { prompt: 'none' }, 'login_required'],
  ];

  async function expectErrorPage(clientId: string, extra: Record<string, string>, error: string) {
    log.clear();
    const response = await fetch(authorizeUrl(gw, clientId, pkce().challenge, extra), { redirect: 'manual' });
    const location = response.headers.get('location');
    expect({ error, status: response.status, location }).toEqual({ error, status: 400, location: null });
    expect(response.headers.get('content-type')).toMatch(/^text\/html/);
    await response.text();
    expect(log.of('oauth.authorize').concat()).toMatchObject([{ outcome: 'failure' }]);
  }

  // req: MCP-AUTH-TRUSTED-REDIRECT-ONLY, RFC9700-4.11.2-NO-OPEN-REDIRECTOR
  it('a DCR client gets an error page, never a redirect to its own URI', async () => {
    const clientId = await registerClient(gw, { redirect_uris: ['https://phish.example/cb'] });
    for (const [, extra, error] of failing) {
      await expectErrorPage(clientId, { redirect_uri: 'https://phish.example/cb', ...extra }, error);
    }
  });

  // req: MCP-AUTH-TRUSTED-REDIRECT-ONLY, RFC9700-4.11.2-NO-OPEN-REDIRECTOR
  it('a Client ID Metadata Document client gets an error page, never a redirect', async () => {
    const clientId = host.serveClient('/phish.json', {
      client_name: 'Phish',
      redirect_uris: ['https://phish.example/cb'],
    });
    for (const [, extra, error] of failing) {
      await expectErrorPage(clientId, { redirect_uri: 'https://phish.example/cb', ...extra }, error);
    }
  });

  it('controls: a configured client is redirected; a DCR client is redirected once the person denied', async () => {
    const configured = await fetch(
      authorizeUrl(gw, 'configured-app', pkce().challenge, { response_type: 'token' }),
      {
        redirect: 'manual',
      },
    );
    expect(configured.status).toBe(302);
    expect(new URL(configured.headers.get('location') ?? '').searchParams.get('error')).toBe(
      'unsupported_response_type',
    );

    const clientId = await registerClient(gw);
    const denied = await signIn(authorizeUrl(gw, clientId, pkce().challenge), {
      username: 'alice',
      password: PASSWORD,
      decision: 'deny',
    });
    expect(`${denied.callback.origin}${denied.callback.pathname}`).toBe(REDIRECT);
    expect(denied.callback.searchParams.get('error')).toBe('access_denied');
    expect(denied.callback.searchParams.get('iss')).toBe(gw.gateway.urls.issuer);
  });

  it('registration refuses OS and browser-internal redirect schemes', async () => {
    for (const uri of INTERNAL_SCHEMES) {
      const response = await registerRaw(gw, {
        redirect_uris: [uri],
        token_endpoint_auth_method: 'none',
        client_name: 'Internal scheme',
      });
      expect({ uri, status: response.status, error: await oauthError(response) }).toEqual({
        uri,
        status: 400,
        error: 'invalid_redirect_uri',
      });
    }
  });

  it('a metadata document naming such a scheme is refused at authorize', async () => {
    const clientId = host.serveClient('/msdt.json', {
      client_name: 'Msdt',
      redirect_uris: ['ms-msdt:/id%20x'],
    });
    log.clear();
    const response = await fetch(
      authorizeUrl(gw, clientId, pkce().challenge, { redirect_uri: 'ms-msdt:/id%20x' }),
      {
        redirect: 'manual',
      },
    );
    expect(response.status).toBe(400);
    expect(response.headers.get('location')).toBeNull();
    await response.text();
    expect(log.of('oauth.authorize')).toMatchObject([{ outcome: 'failure', error: 'invalid_client' }]);
  });

  it('registrations are audited: oauth.register for each success and refusal', async () => {
    log.clear();
    await registerClient(gw);
    await registerRaw(gw, { redirect_uris: ['javascript:alert(1)//'], token_endpoint_auth_method: 'none' });
    expect(log.of('oauth.register')).toMatchObject([
      { outcome: 'success' },
      { outcome: 'failure', error: 'invalid_redirect_uri' },
    ]);
  });
});

describe('consent-page spoofing (finding 4)', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    ({ gw } = await startRecorded({
      store: { kind: 'memory' },
      authorizationServer: { dynamicRegistration: { perIpPerHour: 1000 } },
    }));
    await addAccount(gw, 'alice');
  });
  afterAll(async () => {
    await gw?.close();
  });

  async function consentPage(clientId: string, redirectUri: string): Promise<string> {
    const stop = (await signIn(authorizeUrl(gw, clientId, pkce().challenge, { redirect_uri: redirectUri }), {
      username: 'alice',
      password: PASSWORD,
      stopAt: 'consent',
    })) as PageStop;
    expect(stop.kind).toBe('consent');
    return stop.html;
  }

  const redirectHost = (html: string) => /data-testid="redirect-host">([^<]*)</.exec(html)?.[1];

  it('a private-use scheme redirect is shown as its scheme, not as the host it pretends to be', async () => {
    for (const uri of ['cursor://claude.ai/callback', 'com.example.app://accounts.google.com/cb']) {
      const clientId = await registerClient(gw, { redirect_uris: [uri], client_name: 'Scheme app' });
      const shown = redirectHost(await consentPage(clientId, uri));
      const scheme = `${uri.split(':')[0]}:`;
      expect({ uri, shown: shown?.startsWith(scheme) }).toEqual({ uri, shown: true });
    }
  });

  it('bidirectional-override characters in client_name never reach the page as such', async () => {
    for (const control of BIDI) {
      const name = `Safe Notes${control}exe.pdf`;
      const registered = await registerRaw(gw, {
        redirect_uris: [REDIRECT],
        token_endpoint_auth_method: 'none',
        client_name: name,
      });
      if (registered.status === 400) {
        expect(await oauthError(registered)).toBe('invalid_client_metadata');
        continue;
      }
      const { client_id } = (await registered.json()) as { client_id: string };
      const html = await consentPage(client_id, REDIRECT);
      const codePoint = control.codePointAt(0)?.toString(16) ?? '';
      expect({ codePoint, raw: html.includes(control) }).toEqual({ codePoint, raw: false });
      expect(html.toLowerCase()).not.toMatch(new RegExp(`&#x0*${codePoint};|&#${control.codePointAt(0)};`));
    }
  });
});
