import { describe, expect, it } from 'vitest';
import { consoleHeaders } from '../../../src/admin/console/layout.js';
import { renderClients, renderUsers } from '../../../src/admin/console/pages.js';
import { CONSOLE_CSS, CONSOLE_CSS_HASH } from '../../../src/admin/console/styles.js';
import type { AdminClient, AdminUser } from '../../../src/admin/service.js';

const frame = {
  username: 'root',
  csrf: 'csrf-token-value',
  flash: { tone: 'ok' as const, text: 'Done <b>' },
};

const evilClient: AdminClient = {
  clientId: 'c_1',
  clientName: '<script>alert(1)</script>',
  redirectUris: ['https://app.example/cb?x="><img src=x onerror=alert(1)>'],
  grantTypes: ['authorization_code'],
  tokenEndpointAuthMethod: 'none',
  applicationType: 'web',
  createdAt: '2026-12-03T16:00:00.000Z',
};

const user: AdminUser = {
  id: 'usr_1',
  username: 'alice',
  name: 'Alice "A" <Admin>',
  admin: false,
  disabled: false,
  createdAt: '2026-12-03T16:00:00.000Z',
};

describe('console pages', () => {
  it('escapes what clients and users chose to call themselves', () => {
    const page = renderClients(frame, [evilClient]);
    expect(page).not.toContain('<script>alert(1)</script>');
    expect(page).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(page).not.toContain('<img src=x');
    expect(renderUsers(frame, [user])).toContain('Alice &quot;A&quot; &lt;Admin&gt;');
    expect(page).toContain('Done &lt;b&gt;');
  });

  it('posts every change with the CSRF token, and has no script', () => {
    const page = renderUsers(frame, [user]);
    const forms = [...page.matchAll(/<form[^>]*>([\s\S]*?)<\/form>/g)];
    const posts = forms.filter((form) => form[0].includes('method="post"'));
    expect(posts.length).toBeGreaterThanOrEqual(4);
    for (const form of posts) expect(form[1]).toContain('name="csrf" value="csrf-token-value"');
    expect(page).not.toMatch(/<script/i);
    expect(page).not.toMatch(/\son[a-z]+=/i);
  });

  it('allows its stylesheet by hash, refuses framing and caching', () => {
    const headers = consoleHeaders();
    expect(headers['Content-Security-Policy']).toContain(CONSOLE_CSS_HASH);
    expect(headers['Content-Security-Policy']).toContain("frame-ancestors 'none'");
    expect(headers['Content-Security-Policy']).not.toContain('unsafe-inline');
    expect(headers['X-Frame-Options']).toBe('DENY');
    expect(headers['Cache-Control']).toBe('no-store');
    expect(renderUsers(frame, [])).toContain(`<style>${CONSOLE_CSS}</style>`);
  });
});
