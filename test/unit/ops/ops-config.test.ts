import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config/load.js';
import { configSchema } from '../../../src/config/schema.js';

describe('audit, metrics and log configuration', () => {
  it('defaults: audit on for 90 days with a 10 000-entry queue; metrics on the main port; logs auto', () => {
    const config = configSchema.parse({});
    expect(config.audit).toEqual({ enabled: true, retentionDays: 90, queueMax: 10_000 });
    expect(config.metrics).toEqual({ enabled: true, path: '/metrics', host: '127.0.0.1' });
    expect(config.log).toEqual({ level: 'info', format: 'auto' });
  });

  it('reads metrics.bearerTokenFile once, from a file or an environment variable naming it', () => {
    const files: Record<string, string> = { '/run/secrets/scrape': 'scrape-token-0123456789abcdef\n' };
    const readFile = (path: string) => {
      const content = files[path];
      if (content === undefined) throw Object.assign(new Error('ENOENT'), { code: 'ENOENT' });
      return content;
    };
    const fromEnv = loadConfig({
      env: { GATEHOUSE_METRICS__BEARER_TOKEN_FILE: '/run/secrets/scrape' },
      readFile,
    });
    expect(fromEnv.metrics.bearerToken).toBe('scrape-token-0123456789abcdef');
    expect(fromEnv.metrics).not.toHaveProperty('bearerTokenFile');
    const fromFlags = loadConfig({
      env: {},
      readFile,
      overrides: { metrics: { port: 9464, bearerTokenFile: '/run/secrets/scrape' } },
    });
    expect(fromFlags.metrics).toMatchObject({ port: 9464, bearerToken: 'scrape-token-0123456789abcdef' });
  });

  it('refuses a short bearer token, both token fields, a bad port, a bad log file size', () => {
    const paths = (input: unknown) => {
      const result = configSchema.safeParse(input);
      return result.success ? [] : result.error.issues.map((issue) => issue.path.join('.'));
    };
    expect(paths({ metrics: { bearerToken: 'short' } })).toEqual(['metrics.bearerToken']);
    expect(paths({ metrics: { bearerToken: 'x'.repeat(32), bearerTokenFile: '/f' } })).toContain(
      'metrics.bearerToken',
    );
    expect(paths({ metrics: { port: 70_000 } })).toEqual(['metrics.port']);
    expect(paths({ metrics: { path: 'metrics' } })).toEqual(['metrics.path']);
    expect(paths({ audit: { queueMax: 0 } })).toEqual(['audit.queueMax']);
    expect(paths({ audit: { retentionDays: -1 } })).toEqual(['audit.retentionDays']);
    expect(paths({ log: { file: { path: '/var/log/g.log', size: 'ten megabytes' } } })).toEqual([
      'log.file.size',
    ]);
    expect(paths({ log: { format: 'xml' } })).toEqual(['log.format']);
    expect(
      paths({ log: { file: { path: '/var/log/g.log', size: '10m', frequency: 'daily', limit: 7 } } }),
    ).toEqual([]);
  });
});
