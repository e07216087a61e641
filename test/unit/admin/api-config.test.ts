import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config/load.js';
import { productionIssues } from '../../../src/config/production.js';
import { configSchema } from '../../../src/config/schema.js';
import { gatewayUrls } from '../../../src/config/urls.js';

const STRONG = 'k3V9qLx2Zr8TfW1mNb7YcD4sHj6PaE0uGo5Q';

describe('admin configuration', () => {
  it('defaults: enabled, no credential, 120 requests a minute', () => {
    const config = configSchema.parse({});
    expect(config.admin).toEqual({ enabled: true, requestsPerMinute: 120 });
  });

  it('refuses an apiToken shorter than 32 characters, and both apiToken and apiTokenFile', () => {
    expect(configSchema.safeParse({ admin: { apiToken: 'short' } }).success).toBe(false);
    const both = configSchema.safeParse({ admin: { apiToken: STRONG, apiTokenFile: '/run/secrets/admin' } });
    expect(both.success).toBe(false);
  });

  it('reads apiTokenFile once, at load', () => {
    const config = loadConfig({
      env: { GATEHOUSE_ADMIN__API_TOKEN_FILE: '/run/secrets/admin' },
      readFile: (path) => {
        expect(path).toBe('/run/secrets/admin');
        return `${STRONG}\n`;
      },
    });
    expect(config.admin.apiToken).toBe(STRONG);
  });

  it('production refuses a published or guessable admin API token, never quoting it', () => {
    const weak = configSchema.parse({ admin: { apiToken: 'changeme'.repeat(4) } });
    const issue = productionIssues(weak).find((found) => found.path === 'admin.apiToken');
    expect(issue?.code).toBe('dev_secret');
    expect(JSON.stringify(issue)).not.toContain('changeme');
    const guessable = configSchema.parse({ admin: { apiToken: 'abcdefghijklmnopqrstuvwxyz0123456789' } });
    expect(productionIssues(guessable).find((found) => found.path === 'admin.apiToken')?.code).toBe(
      'weak_secret',
    );
    const strong = configSchema.parse({ admin: { apiToken: STRONG } });
    expect(productionIssues(strong).some((found) => found.path === 'admin.apiToken')).toBe(false);
  });

  it('names the admin resource beside, never as, the MCP resource', () => {
    const urls = gatewayUrls(configSchema.parse({ server: { publicUrl: 'https://gh.example/' } }));
    expect(urls.adminResource).toBe('https://gh.example/admin');
    expect(urls.adminResource).not.toBe(urls.resource);
    expect(urls.adminResourceMetadataUrl).toBe(
      'https://gh.example/.well-known/oauth-protected-resource/admin',
    );
  });
});
