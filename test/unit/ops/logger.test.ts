import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, expect, it, vi } from 'vitest';
import { createLogger } from '../../../src/ops/logger.js';
import { runInRequestScope } from '../../../src/ops/request-scope.js';

function captured(level = 'debug') {
  const text: string[] = [];
  const destination = new Writable({
    write(chunk, _encoding, done) {
      text.push(String(chunk));
      done();
    },
  });
  const lines = () =>
    text
      .join('')
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
  return { logger: createLogger({ level, destination }), text: () => text.join(''), lines };
}

/** Every credential-bearing field Gatehouse handles (headers, OAuth parameters, configuration secrets). */
const CREDENTIAL_FIELDS = [
  'authorization',
  'proxy-authorization',
  'cookie',
  'set-cookie',
  'token',
  'accessToken',
  'access_token',
  'refreshToken',
  'refresh_token',
  'idToken',
  'id_token',
  'code',
  'codeVerifier',
  'code_verifier',
  'clientSecret',
  'client_secret',
  'clientAssertion',
  'client_assertion',
  'assertion',
  'subjectToken',
  'subject_token',
  'actorToken',
  'actor_token',
  'password',
  'secret',
  'secretKey',
  'privateKey',
  'apiToken',
  'apiKey',
  'api_key',
  'bearerToken',
  'dpop',
];

describe('createLogger', () => {
  it('redacts every credential field at the top level and one and two levels down', () => {
    const { logger, text, lines } = captured();
    for (const [index, field] of CREDENTIAL_FIELDS.entries()) {
      const secret = `SeCrEt-${index}-abcdefghijklmnopqrstuvwxyz0123456789`;
      logger.info({ [field]: secret }, 'top');
      logger.info({ headers: { [field]: secret } }, 'one');
      logger.info({ req: { headers: { [field]: secret } } }, 'two');
      logger.info({ err: { config: { [field]: [secret] } } }, 'array');
    }
    expect(text()).not.toMatch(/SeCrEt-/);
    expect(lines()).toHaveLength(CREDENTIAL_FIELDS.length * 4);
    expect(lines()[0]).toMatchObject({ authorization: '[redacted]' });
  });

  it('keeps stable error codes under `code` and redacts anything that could be an authorization code', () => {
    const { logger, lines } = captured();
    logger.info({ code: 'ERR_STORE_UNAVAILABLE' }, 'a');
    logger.info({ err: { code: 'ECONNREFUSED' } }, 'b');
    logger.info({ error: { code: 'invalid_grant' } }, 'c');
    logger.info({ code: -32603 }, 'd');
    logger.info({ code: 'dXJfq7-Ab0c_Zy3x5wQv1mNkLpRs2tUvWxYz0A1B2C3' }, 'e');
    logger.info({ query: { code: 'abc123' } }, 'f');
    expect(lines().map((line) => line.code ?? (line.err as { code?: unknown })?.code)).toEqual([
      'ERR_STORE_UNAVAILABLE',
      'ECONNREFUSED',
      undefined,
      -32603,
      '[redacted]',
      undefined,
    ]);
    expect(lines()[2]).toMatchObject({ error: { code: 'invalid_grant' } });
    expect(lines()[5]).toMatchObject({ query: { code: '[redacted]' } });
  });

  it('adds the request id of the request being served to every line, across awaits and timers', async () => {
    const { logger, lines } = captured();
    logger.info('before');
    await runInRequestScope({ requestId: 'req-1', clientAddress: '192.0.2.1' }, async () => {
      logger.info('start');
      await new Promise((resolve) => setTimeout(resolve, 1));
      logger.child({ component: 'x' }).debug('after a timer');
    });
    await runInRequestScope({ requestId: 'req-2', clientAddress: '192.0.2.2' }, async () => {
      logger.warn({ requestId: 'explicit' }, 'given explicitly');
    });
    logger.info('after');
    expect(lines().map((line) => [line.msg, line.requestId])).toEqual([
      ['before', undefined],
      ['start', 'req-1'],
      ['after a timer', 'req-1'],
      ['given explicitly', 'explicit'],
      ['after', undefined],
    ]);
  });

  it('writes human-readable lines with format pretty, JSON with auto when the stream is not a terminal', () => {
    const chunks: string[] = [];
    const destination = new Writable({
      write(chunk, _encoding, done) {
        chunks.push(String(chunk));
        done();
      },
    });
    createLogger({ level: 'info', format: 'pretty', destination }).info({ password: 'hunter2-x' }, 'hello');
    const pretty = chunks.join('');
    expect(pretty).toMatch(/INFO.*hello/);
    expect(pretty).toContain('[redacted]');
    expect(pretty).not.toContain('hunter2');
    expect(() => JSON.parse(pretty)).toThrow();

    chunks.length = 0;
    createLogger({ level: 'info', format: 'auto', destination }).info('plain');
    expect(JSON.parse(chunks.join(''))).toMatchObject({ msg: 'plain', level: 30 });
  });

  it('writes JSON lines to a rolling file as well when log.file is set', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-log-'));
    try {
      const logger = createLogger({
        level: 'info',
        destination: new Writable({ write: (_chunk, _encoding, done) => done() }),
        file: { path: join(dir, 'logs', 'gatehouse.log'), size: '1m', limit: 2 },
      });
      logger.info({ password: 'hunter2-hunter2' }, 'to the file');
      logger.debug('below the level');
      await vi.waitFor(
        () => {
          const files = readdirSync(join(dir, 'logs'));
          expect(files.length).toBeGreaterThan(0);
          const content = files.map((file) => readFileSync(join(dir, 'logs', file), 'utf8')).join('');
          expect(content).toContain('"msg":"to the file"');
          expect(content).toContain('"password":"[redacted]"');
          expect(content).not.toContain('hunter2');
          expect(content).not.toContain('below the level');
        },
        { timeout: 15_000, interval: 50 },
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
