import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { type ConsentPageOptions, renderConsentPage } from '../../../src/oauth/pages/consent.js';
import { escapeHtml, html, rawHtml, SafeHtml } from '../../../src/oauth/pages/html.js';
import { formActionSource, PAGE_HEADERS, pageHeaders, renderPage } from '../../../src/oauth/pages/layout.js';
import { type LoginPageOptions, renderLoginPage } from '../../../src/oauth/pages/login.js';
import { renderMessagePage } from '../../../src/oauth/pages/message.js';

const HIDDEN = { interaction: 'int-1', csrf: 'tok' };
const EVIL = `<script>alert(1)</script><img src=x onerror="alert(2)">'&`;
const EVIL_ESCAPED =
  '&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=&quot;alert(2)&quot;&gt;&#39;&amp;';

function login(overrides: Partial<LoginPageOptions> = {}): string {
  return renderLoginPage({ action: '/oauth/login', hidden: HIDDEN, localEnabled: true, ...overrides });
}

function consent(overrides: Partial<ConsentPageOptions> = {}): string {
  return renderConsentPage({
    action: '/oauth/consent',
    hidden: HIDDEN,
    user: { name: 'Ada', email: 'ada@example.com' },
    client: { name: 'Claude', clientId: 'c_123', source: 'registered' },
    redirectUri: 'https://claude.ai/oauth/callback',
    scopes: [{ name: 'notes:read', description: 'Read your notes' }],
    resource: 'https://mcp.example.com/mcp',
    ...overrides,
  });
}

function directives(csp: string): Map<string, string[]> {
  return new Map(
    csp.split(';').map((part) => {
      const [name = '', ...values] = part.trim().split(/\s+/);
      return [name, values];
    }),
  );
}

describe('escapeHtml', () => {
  it('escapes the five HTML-significant characters', () => {
    expect(escapeHtml(`&<>"'`)).toBe('&amp;&lt;&gt;&quot;&#39;');
    expect(escapeHtml(EVIL)).toBe(EVIL_ESCAPED);
  });

  it('leaves other text (including non-ASCII) alone and escapes an existing entity again', () => {
    expect(escapeHtml('Zoë → café 日本 `x` =')).toBe('Zoë → café 日本 `x` =');
    expect(escapeHtml('&amp;')).toBe('&amp;amp;');
  });
});

describe('html template', () => {
  it('escapes interpolated strings and numbers but not SafeHtml', () => {
    const inner = html`<b>${'<i>'}</b>`;
    expect(html`<p title="${`"x"`}">${inner}${42}</p>`.value).toBe(
      '<p title="&quot;x&quot;"><b>&lt;i&gt;</b>42</p>',
    );
  });

  it('renders false, null, undefined and empty string as nothing, and arrays item by item', () => {
    expect(html`[${false}${null}${undefined}${''}]`.value).toBe('[]');
    expect(html`${['<a>', html`<b>`, ['<c>']]}`.value).toBe('&lt;a&gt;<b>&lt;c&gt;');
  });

  it('rawHtml is the only way to skip escaping', () => {
    expect(html`${rawHtml('<hr>')}`.value).toBe('<hr>');
    expect(rawHtml('<hr>')).toBeInstanceOf(SafeHtml);
  });
});

describe('pageHeaders', () => {
  // req: RFC9700-4.16-CLICKJACKING
  it('sends the full security header set', () => {
    const headers = pageHeaders();
    expect(Object.keys(headers).sort()).toEqual([
      'Cache-Control',
      'Content-Security-Policy',
      'Content-Type',
      'Referrer-Policy',
      'X-Content-Type-Options',
      'X-Frame-Options',
    ]);
    expect(headers).toMatchObject({
      'Content-Type': 'text/html; charset=utf-8',
      'Cache-Control': 'no-store',
      'X-Frame-Options': 'DENY',
      'Referrer-Policy': 'no-referrer',
      'X-Content-Type-Options': 'nosniff',
    });
  });

  it('CSP allows nothing by default, no script, no inline except the stylesheet hash', () => {
    const csp = pageHeaders()['Content-Security-Policy']!;
    const d = directives(csp);
    expect(d.get('default-src')).toEqual(["'none'"]);
    expect(d.get('img-src')).toEqual(["'self'", 'https:', 'data:']);
    expect(d.get('form-action')).toEqual(["'self'"]);
    expect(d.get('frame-ancestors')).toEqual(["'none'"]);
    expect(d.get('base-uri')).toEqual(["'none'"]);
    expect(d.has('script-src')).toBe(false);
    expect(csp).not.toContain('unsafe');
    expect(d.get('style-src')).toHaveLength(1);
  });

  it('style-src hash matches the <style> element of every rendered page byte for byte', () => {
    const hash = directives(pageHeaders()['Content-Security-Policy']!).get('style-src')![0];
    for (const page of [login(), consent(), renderMessagePage({ title: 't', message: 'm', tone: 'info' })]) {
      const styles = [...page.matchAll(/<style>([\s\S]*?)<\/style>/g)].map((m) => m[1]!);
      expect(styles).toHaveLength(1);
      expect(hash).toBe(`'sha256-${createHash('sha256').update(styles[0]!).digest('base64')}'`);
    }
  });

  it('adds form-action origins and schemes once each', () => {
    const d = directives(
      pageHeaders({
        formActionOrigins: [
          'http://127.0.0.1:33418',
          'cursor:',
          'https://claude.ai',
          'cursor:',
          'http://[::1]:8080',
        ],
      })['Content-Security-Policy']!,
    );
    expect(d.get('form-action')).toEqual([
      "'self'",
      'http://127.0.0.1:33418',
      'cursor:',
      'https://claude.ai',
      'http://[::1]:8080',
    ]);
  });

  it.each([
    'https://a.example; script-src *',
    'https://a.example/callback',
    '*',
    "'unsafe-inline'",
    'https://a.example,https://b.example',
    'https://a.example 127.0.0.1',
    'javascript',
    '',
  ])('rejects %j as a form-action source (no CSP injection)', (source) => {
    expect(() => pageHeaders({ formActionOrigins: [source] })).toThrow(TypeError);
  });

  it('PAGE_HEADERS is the frozen default and pageHeaders returns fresh objects', () => {
    expect(PAGE_HEADERS).toEqual(pageHeaders());
    expect(Object.isFrozen(PAGE_HEADERS)).toBe(true);
    expect(pageHeaders()).not.toBe(pageHeaders());
  });
});

describe('formActionSource', () => {
  it.each([
    ['https://claude.ai/api/mcp/auth_callback', 'https://claude.ai'],
    ['https://app.example:443/cb?x=1', 'https://app.example'],
    ['http://127.0.0.1:33418/callback', 'http://127.0.0.1:33418'],
    ['http://localhost:6274/oauth/callback', 'http://localhost:6274'],
    ['http://[::1]:8080/cb', 'http://[::1]:8080'],
    ['cursor://anysphere.cursor-mcp/oauth/callback', 'cursor:'],
    ['com.example.app:/oauth2redirect', 'com.example.app:'],
    ['https://bücher.example/cb', 'https://xn--bcher-kva.example'],
  ])('%s → %s', (uri, source) => {
    expect(formActionSource(uri)).toBe(source);
    expect(() => pageHeaders({ formActionOrigins: [source] })).not.toThrow();
  });

  it('rejects a relative URI', () => {
    expect(() => formActionSource('/callback')).toThrow(TypeError);
  });
});

describe('every page', () => {
  const pages = {
    login: login({
      clientName: 'Claude',
      error: 'invalid_credentials',
      federated: { label: 'Acme', href: '/f' },
    }),
    consent: consent({
      signOutAction: '/out',
      client: { clientId: 'c', logoUri: 'https://x.example/l.png', source: 'configured' },
    }),
    message: renderMessagePage({ title: 'Oops', message: 'm', detail: 'd', tone: 'error' }),
    page: renderPage({ title: 'T', body: html`<p>b</p>` }),
  };

  it.each(Object.entries(pages))(
    '%s is a complete document with no script and nothing CSP would block',
    (_, page) => {
      expect(page.startsWith('<!doctype html>\n<html lang="en">')).toBe(true);
      expect(page.trimEnd().endsWith('</html>')).toBe(true);
      expect(page).toContain('<meta name="viewport" content="width=device-width, initial-scale=1">');
      expect(page).toContain('data-testid="wordmark"');
      expect(page).not.toMatch(/<script/i);
      expect(page).not.toMatch(/\son[a-z]+\s*=/i);
      // Inline style attributes would need 'unsafe-inline' (or 'unsafe-hashes').
      expect(page).not.toMatch(/\sstyle\s*=/i);
      expect(page).not.toMatch(/javascript:/i);
      expect(page.match(/<link[^>]*>/g)).toEqual([
        expect.stringMatching(/^<link rel="icon" href="data:image\/svg\+xml,/),
      ]);
    },
  );

  it('escapes the title', () => {
    expect(renderPage({ title: EVIL, body: html`` })).toContain(`<title>${EVIL_ESCAPED} · Gatehouse</title>`);
  });
});

describe('renderLoginPage', () => {
  it('has labelled username and password fields with autocomplete, hidden fields, and focus on username', () => {
    const page = login();
    expect(page).toContain('<label for="username">Username</label>');
    expect(page).toContain('<label for="password">Password</label>');
    expect(page).toMatch(
      /<input id="username" name="username" type="text" autocomplete="username"[^>]* autofocus>/,
    );
    expect(page).toMatch(
      /<input id="password" name="password" type="password" autocomplete="current-password" required>/,
    );
    expect(page).toContain('<form method="post" action="/oauth/login"');
    expect(page).toContain('<input type="hidden" name="interaction" value="int-1">');
    expect(page).toContain('<input type="hidden" name="csrf" value="tok">');
  });

  it('prefills the username (escaped) and moves autofocus to the password', () => {
    const page = login({ username: `a"b` });
    expect(page).toMatch(/name="username"[^>]* value="a&quot;b">/);
    expect(page).toMatch(/name="password"[^>]* autofocus>/);
    expect(page.match(/autofocus/g)).toHaveLength(1);
  });

  it.each([
    ['invalid_credentials', undefined, 'did not match'],
    ['throttled', 30, 'Try again in 30 seconds.'],
    ['throttled', 61, 'Try again in 2 minutes.'],
    ['throttled', undefined, 'Wait a little'],
    ['expired', undefined, 'has expired'],
  ])('words error %s (retry %s)', (error, retryAfterSeconds, text) => {
    const page = login({ error, retryAfterSeconds });
    expect(page).toMatch(/<div class="alert alert-error" role="alert" data-testid="login-error">/);
    expect(page).toContain(text);
  });

  it('shows any other error string escaped, and no alert without an error', () => {
    expect(login({ error: EVIL })).toContain(EVIL_ESCAPED);
    expect(login()).not.toContain('login-error');
  });

  it('strips bidi controls and invisible characters from the client name', () => {
    const page = login({ clientName: 'Claude\u202Egnp.exe\uFEFF', clientHost: 'cursor:' });
    expect(page).toContain(
      'to continue to <strong><bdi>Claudegnp.exe</bdi></strong> <span class="mono">(cursor:)</span>',
    );
  });

  it('names the client with its host, escaped', () => {
    expect(login({ clientName: EVIL, clientHost: 'claude.ai' })).toContain(
      `to continue to <strong><bdi>${EVIL_ESCAPED}</bdi></strong> <span class="mono">(claude.ai)</span>`,
    );
    expect(login({ clientHost: 'claude.ai' })).toContain('to continue to <strong>claude.ai</strong>');
  });

  it('federated button is a link with its own href; local form can be turned off', () => {
    const page = login({
      federated: { label: 'A&B', href: '/oauth/federated?csrf=a&b' },
      localEnabled: false,
    });
    expect(page).toContain('<a href="/oauth/federated?csrf=a&amp;b" class="btn btn-secondary" role="button"');
    expect(page).toContain('Continue with A&amp;B');
    expect(page).not.toContain('name="csrf"');
    expect(page).not.toContain('name="password"');
    expect(page).not.toContain('class="divider"');
    expect(login({ federated: { label: 'A', href: '/f' } })).toContain('class="divider"');
  });

  it('says so when no sign-in method is enabled', () => {
    const page = login({ localEnabled: false });
    expect(page).toContain('data-testid="login-unavailable"');
    expect(page).not.toContain('<form');
  });
});

describe('renderConsentPage', () => {
  it('marks self-registered clients unverified, quotes their name and shows the client_id', () => {
    const page = consent();
    expect(page).toContain('data-testid="client-badge">Unverified<');
    expect(page).toContain(
      '<h1 data-testid="consent-title">“<bdi>Claude</bdi>” wants to access your account</h1>',
    );
    expect(page).toContain('<code data-testid="client-id">c_123</code>');
    expect(page).toContain('data-testid="consent-warning"');
  });

  it('marks configured clients verified, without quotes or warning', () => {
    const page = consent({ client: { name: 'Claude', clientId: 'c_1', source: 'configured' } });
    expect(page).toContain('data-testid="client-badge">Verified<');
    expect(page).toContain('><bdi>Claude</bdi> wants to access your account</h1>');
    expect(page).not.toContain('consent-warning');
  });

  it('shows the metadata document URL and falls back to its host for a nameless client', () => {
    const page = consent({
      client: { clientId: 'https://app.example/oauth/client.json', source: 'metadata-document' },
    });
    expect(page).toContain('<dt>Published at</dt>');
    expect(page).toContain('https://app.example/oauth/client.json');
    expect(page).toContain('><bdi>app.example</bdi> wants to access your account</h1>');
    expect(page).toContain('Unverified');
  });

  it('shows the redirect host prominently, noting loopback hosts', () => {
    expect(consent()).toContain(
      '<strong class="redirect-host" data-testid="redirect-host">claude.ai</strong>',
    );
    expect(consent()).not.toContain('this computer');
    const loopback = consent({ redirectUri: 'http://127.0.0.1:33418/callback' });
    expect(loopback).toContain('data-testid="redirect-host">127.0.0.1:33418</strong>');
    expect(loopback).toContain('An app running on this computer.');
    expect(consent({ redirectUri: 'http://localhost:6274/cb' })).toContain(
      'An app running on this computer.',
    );
  });

  it('for a private-use scheme shows the scheme, never the authority it dresses up as (RFC 8252 §7.1)', () => {
    const page = consent({ redirectUri: 'com.attacker.app://claude.ai/oauth/callback' });
    expect(page).toContain('data-testid="redirect-host">com.attacker.app:</strong>');
    expect(page).not.toContain('claude.ai');
    expect(page).toContain('data-testid="redirect-app-note"');
    expect(consent({ redirectUri: 'cursor://anysphere.cursor-mcp/oauth/callback' })).toContain(
      'data-testid="redirect-host">cursor:</strong>',
    );
  });

  it('strips bidi controls and invisible characters from the client name and isolates it', () => {
    const page = consent({
      client: { name: 'Notes\u202Egnp.exe\u200B\u2066', clientId: 'c', source: 'registered' },
    });
    expect(page).not.toMatch(/[\u202A-\u202E\u2066-\u2069\u200B]/u);
    expect(page).toContain('data-testid="client-name">“<bdi>Notesgnp.exe</bdi>”</strong>');
  });

  it('marks a look-alike name (mixed scripts, whole-script confusable, styled letters) of an unverified client', () => {
    for (const name of ['\u0421laude Notes', '\u0430\u0440\u0440\u04CF\u0435', '𝐍𝐨𝐭𝐞𝐬']) {
      expect(consent({ client: { name, clientId: 'c', source: 'registered' } }), name).toContain(
        'data-testid="client-lookalike"',
      );
    }
    expect(consent({ client: { name: 'Notes helper', clientId: 'c', source: 'registered' } })).not.toContain(
      'client-lookalike',
    );
  });

  it('marks an unverified client whose name claims a well-known product, unless its document host proves it', () => {
    for (const name of [
      'Claude',
      'claude desktop',
      'My ChatGPT helper',
      'VS Code',
      'GitHub Copilot',
      '\u0421laude',
    ]) {
      expect(consent({ client: { name, clientId: 'c', source: 'registered' } }), name).toContain(
        'data-testid="client-claim"',
      );
    }
    for (const name of ['Precursor notes', 'Notes helper']) {
      expect(consent({ client: { name, clientId: 'c', source: 'registered' } }), name).not.toContain(
        'client-claim',
      );
    }
    const claimed = (clientId: string) =>
      consent({ client: { name: 'Claude', clientId, source: 'metadata-document' } });
    expect(claimed('https://evil.example/claude.json')).toContain('data-testid="client-claim"');
    expect(claimed('https://claude.ai/oauth/mcp-client.json')).not.toContain('client-claim');
    expect(claimed('https://api.anthropic.com/oauth/mcp-client.json')).not.toContain('client-claim');
    expect(claimed('https://claude.ai.evil.example/c.json')).toContain('data-testid="client-claim"');
    // The operator vouches for configured clients.
    expect(consent({ client: { name: 'Claude', clientId: 'c', source: 'configured' } })).not.toContain(
      'client-claim',
    );
  });

  it('marks a redirect host whose international form imitates another', () => {
    const page = consent({ redirectUri: 'https://xn--80ak6aa92e.com/cb' });
    expect(page).toContain('data-testid="redirect-host">xn--80ak6aa92e.com</strong>');
    expect(page).toContain('data-testid="redirect-lookalike"');
    expect(consent()).not.toContain('redirect-lookalike');
  });

  it('lists the scopes and the resource; a request without scopes still says what it grants', () => {
    const page = consent({
      scopes: [{ name: 'a:read', description: 'Read A' }, { name: 'b' }],
    });
    expect(page).toContain(
      '<li><code class="scope-name">a:read</code><span class="scope-desc">Read A</span></li>',
    );
    expect(page).toContain('<li><code class="scope-name">b</code></li>');
    expect(page).toContain('<strong data-testid="consent-resource">https://mcp.example.com/mcp</strong>');
    expect(consent({ scopes: [] })).toContain('Use this server as you');
  });

  it('has Deny and Approve submit buttons named decision, neither autofocused', () => {
    const page = consent();
    expect(page).toContain('<button type="submit" name="decision" value="deny"');
    expect(page).toContain('<button type="submit" name="decision" value="approve"');
    expect(page).not.toContain('autofocus');
    expect(page).toContain('<form method="post" action="/oauth/consent" data-testid="consent-form">');
  });

  it('signed-in line names the user; sign-out form only with signOutAction', () => {
    expect(consent()).toContain('Signed in as <strong>Ada</strong> (ada@example.com)');
    expect(consent()).not.toContain('sign-out-form');
    const page = consent({ user: { username: 'ada' }, signOutAction: '/oauth/logout' });
    expect(page).toContain('Signed in as <strong>ada</strong></span>');
    expect(page).toContain('<form method="post" action="/oauth/logout" data-testid="sign-out-form">');
    expect(page.match(/name="csrf"/g)).toHaveLength(2);
  });

  it('links only http(s) client URIs and shows only https logos', () => {
    const safe = consent({
      client: {
        clientId: 'c',
        clientUri: 'https://app.example/about',
        logoUri: 'https://app.example/logo.png',
        source: 'registered',
      },
    });
    expect(safe).toContain('<a href="https://app.example/about" rel="noopener noreferrer">app.example</a>');
    expect(safe).toContain('src="https://app.example/logo.png"');
    for (const bad of ['javascript:alert(1)', 'data:text/html,x', 'http://app.example/logo.png']) {
      const page = consent({ client: { clientId: 'c', clientUri: bad, logoUri: bad, source: 'registered' } });
      expect(page).not.toContain('<img');
      expect(page).not.toContain(`href="${bad}"`);
    }
  });

  it('escapes every client- and user-supplied value', () => {
    const page = consent({
      hidden: { [EVIL]: EVIL },
      user: { name: EVIL, email: EVIL },
      client: { name: EVIL, clientId: EVIL, clientUri: EVIL, source: 'registered' },
      redirectUri: EVIL,
      scopes: [{ name: EVIL, description: EVIL }],
      resource: EVIL,
    });
    expect(page).not.toContain('<script>');
    expect(page).not.toContain('<img');
    expect(page.split(EVIL_ESCAPED).length - 1).toBeGreaterThanOrEqual(11);
  });
});

describe('renderMessagePage', () => {
  it('renders an error with role=alert and the detail in a monospace block', () => {
    const page = renderMessagePage({ title: 'Unknown app', message: EVIL, detail: EVIL, tone: 'error' });
    expect(page).toContain('data-tone="error" role="alert"');
    expect(page).toContain('<h1 data-testid="message-title">Unknown app</h1>');
    expect(page).toContain(`<p class="message-text" data-testid="message-text">${EVIL_ESCAPED}</p>`);
    expect(page).toContain(`<pre class="detail" data-testid="message-detail">${EVIL_ESCAPED}</pre>`);
  });

  it('renders info without alert role or detail block', () => {
    const page = renderMessagePage({ title: 'Done', message: 'You can close this window.', tone: 'info' });
    expect(page).toContain('data-tone="info">');
    expect(page).not.toContain('role="alert"');
    expect(page).not.toContain('message-detail');
  });
});
