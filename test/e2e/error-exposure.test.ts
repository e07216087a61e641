import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/ops/logger.js';
import type { Stores } from '../../src/stores/ports.js';
import { createSqliteStores } from '../../src/stores/sqlite/index.js';
import { guarded } from '../../src/stores/sqlite/store-error.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { INIT, postMcp } from '../helpers/mcp-http.js';

/** A real SQLite failure, as the adapter reports it (`ERR_STORE_UNAVAILABLE` with `details.sqliteCode`). */
function failingSqlite(): Promise<never> {
  const db = new Database(':memory:');
  return guarded(() => db.prepare('SELECT * FROM sessions_that_do_not_exist').all()) as Promise<never>;
}

describe('server errors are answered without their internals, with a request id that the log also carries', () => {
  let gw: TestGateway | undefined;
  let dir: string | undefined;
  let stores: Stores | undefined;
  afterEach(async () => {
    await gw?.close();
    await stores?.close();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
    gw = undefined;
  });

  async function start(): Promise<{ running: TestGateway; logs: () => Array<Record<string, unknown>> }> {
    dir = mkdtempSync(join(tmpdir(), 'gatehouse-errors-'));
    stores = createSqliteStores({ path: join(dir, 'gatehouse.db') });
    // The session and code stores fail the way a broken disk makes SQLite fail.
    const broken: Stores = {
      ...stores,
      sessions: { ...stores.sessions, create: failingSqlite },
      ephemeral: { ...stores.ephemeral, put: failingSqlite },
    };
    const lines: string[] = [];
    const logger = createLogger({
      level: 'info',
      destination: new Writable({
        write(chunk, _encoding, callback) {
          lines.push(chunk.toString());
          callback();
        },
      }),
    });
    gw = await startTestGateway({ store: { kind: 'memory' } }, { stores: broken, logger });
    return {
      running: gw,
      logs: () =>
        lines.flatMap((line) =>
          line
            .split('\n')
            .filter(Boolean)
            .map((l) => JSON.parse(l)),
        ),
    };
  }

  it('the MCP endpoint: 503 ERR_STORE_UNAVAILABLE with Retry-After and a request id; no SQLite code, no message from inside', async () => {
    const { running, logs } = await start();
    const response = await postMcp(running.mcpUrl, await running.token('alice'), INIT);
    expect(response.status).toBe(503);
    // An outage is something a client can act on: its stable code and when to retry, nothing more.
    expect(response.headers.get('retry-after')).toBe('5');
    const text = await response.text();
    expect(text).not.toMatch(/sqlite|SQLITE|no such table|store failed/i);
    const body = JSON.parse(text) as {
      error: { code: number; message: string; data: { code: string; requestId: string } };
    };
    expect(body.error.message).toBe('The store is unavailable; retry shortly.');
    expect(body.error.data).toEqual({ code: 'ERR_STORE_UNAVAILABLE', requestId: expect.any(String) });
    expect(body.error.data.requestId).toMatch(/^[A-Za-z0-9_-]{16}$/);
    // The log line with the same request id carries the SQLite cause.
    const logged = logs().find((line) => line.requestId === body.error.data.requestId);
    expect(logged?.err).toMatchObject({ code: 'ERR_STORE_UNAVAILABLE' });
    expect(JSON.stringify(logged)).toMatch(/SQLITE_ERROR|no such table/);
  });

  it('the sign-in pages: a page naming the outage and the request id, not the cause', async () => {
    const { running } = await start();
    const register = await fetch(`${running.gateway.urls.publicUrl}/oauth/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ redirect_uris: ['http://127.0.0.1:9/cb'], token_endpoint_auth_method: 'none' }),
    });
    const { client_id } = (await register.json()) as { client_id: string };
    const authorize = new URL(`${running.gateway.urls.publicUrl}/oauth/authorize`);
    authorize.search = new URLSearchParams({
      response_type: 'code',
      client_id,
      redirect_uri: 'http://127.0.0.1:9/cb',
      code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
      code_challenge_method: 'S256',
      resource: running.gateway.urls.resource,
    }).toString();
    const page = await fetch(authorize, { redirect: 'manual' });
    expect(page.status).toBe(503);
    const html = await page.text();
    expect(html).not.toMatch(/sqlite|no such table/i);
    expect(html).toContain('ERR_STORE_UNAVAILABLE');
    expect(html).toMatch(/request [A-Za-z0-9_-]{16}/);
    expect(page.headers.get('retry-after')).toBe('5');
  });
});
