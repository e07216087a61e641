import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import type { GatehouseConfigInput } from '../../src/config/schema.js';
import { tokenHash } from '../../src/crypto/fingerprint.js';
import { newRefreshToken } from '../../src/oauth/tokens.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { INIT, postMcp } from '../helpers/mcp-http.js';
import { POSTGRES_SERVER_AVAILABLE, startPrivatePostgres } from '../helpers/private-postgres.js';
import { REDIS_SERVER_AVAILABLE, startPrivateRedis } from '../helpers/private-redis.js';
import { eventually } from '../helpers/wait.js';

/** A store server of this test's own, stopped and started for real. */
interface PrivateServer {
  readonly url: string;
  stop(): Promise<void>;
  start(): Promise<void>;
  destroy(): Promise<void>;
}

interface Engine {
  readonly name: 'postgres' | 'redis';
  readonly available: boolean;
  start(): Promise<PrivateServer>;
  /** The server keeps its data across a stop (PostgreSQL); the private Redis runs without persistence. */
  readonly keepsData: boolean;
  store(url: string): GatehouseConfigInput['store'];
}

const ENGINES: readonly Engine[] = [
  {
    name: 'postgres',
    available: POSTGRES_SERVER_AVAILABLE,
    start: startPrivatePostgres,
    keepsData: true,
    store: (url) => ({ kind: 'postgres', url }),
  },
  {
    name: 'redis',
    available: REDIS_SERVER_AVAILABLE,
    start: startPrivateRedis,
    keepsData: false,
    store: (url) => ({ kind: 'redis', url }),
  },
];

const LIST = { jsonrpc: '2.0', id: 2, method: 'tools/list', params: {} };
const FORM = { 'content-type': 'application/x-www-form-urlencoded' };

for (const engine of ENGINES) {
  /**
   * The store's server really stops under a running gateway: requests that need it fail closed with 503
   * and a stable code, readiness says so, nothing is half-written, and service comes back by itself.
   */
  (engine.available ? describe : describe.skip)(`a ${engine.name} outage under a running gateway`, () => {
    let server: PrivateServer | undefined;
    let gw: TestGateway | undefined;
    afterEach(async () => {
      await gw?.close();
      await server?.destroy();
      gw = undefined;
      server = undefined;
    });

    it('fails closed with 503 while the server is down and recovers on its own', async () => {
      server = await engine.start();
      gw = await startTestGateway({
        store: engine.store(server.url),
        authorizationServer: { secretKey: randomBytes(32).toString('base64url') },
      });
      const base = gw.gateway.urls.publicUrl;
      const token = await gw.token('alice');

      // A session and a grant with a refresh token, stored before the outage.
      const opened = await postMcp(gw.mcpUrl, token, INIT);
      expect(opened.status).toBe(200);
      await opened.text();
      const sessionId = opened.headers.get('mcp-session-id') as string;
      const registered = (await (
        await fetch(`${base}/oauth/register`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({
            redirect_uris: ['http://127.0.0.1:1/cb'],
            grant_types: ['authorization_code', 'refresh_token'],
            token_endpoint_auth_method: 'none',
          }),
        })
      ).json()) as { client_id: string };
      const account = await gw.gateway.authorizationServer?.accounts?.add({
        username: 'alice',
        password: 'a long and perfectly fine passphrase',
      });
      const refreshToken = newRefreshToken();
      const now = Date.now();
      await gw.gateway.stores.grants.create(
        {
          id: `grt_${randomBytes(6).toString('hex')}`,
          clientId: registered.client_id,
          principal: { subject: account?.id as string, idp: 'local' },
          scopes: [],
          resource: gw.gateway.urls.resource,
          authTime: now,
          createdAt: now,
          expiresAt: now + 86_400_000,
          generation: 1,
          rotatedAt: now,
        },
        tokenHash(refreshToken),
      );
      const refresh = () =>
        fetch(`${base}/oauth/token`, {
          method: 'POST',
          headers: FORM,
          body: new URLSearchParams({
            grant_type: 'refresh_token',
            refresh_token: refreshToken,
            client_id: registered.client_id,
          }).toString(),
        });

      await server.stop();

      const duringMcp = await postMcp(gw.mcpUrl, token, LIST, sessionId);
      expect(duringMcp.status).toBe(503);
      expect(duringMcp.headers.get('retry-after')).toBe('5');
      expect(((await duringMcp.json()) as { error: { data: { code: string } } }).error.data.code).toBe(
        'ERR_STORE_UNAVAILABLE',
      );
      const duringToken = await refresh();
      expect(duringToken.status).toBe(503);
      expect(await duringToken.json()).toMatchObject({
        error: 'temporarily_unavailable',
        code: 'ERR_STORE_UNAVAILABLE',
      });
      const ready = await fetch(`${base}/readyz`);
      expect(ready.status).toBe(503);
      expect(((await ready.json()) as { store: { status: string } }).store.status).toBe('unavailable');

      await server.start();
      await eventually(async () => (await fetch(`${base}/readyz`)).status === 200, 30_000);

      if (engine.keepsData) {
        // Nothing was half-written: the session goes on, and the refresh token refused during the
        // outage was never consumed, so it rotates now.
        expect((await postMcp(gw.mcpUrl, token, LIST, sessionId)).status).toBe(200);
        expect((await refresh()).status).toBe(200);
      } else {
        // The private Redis kept nothing; the gateway serves again all the same.
        expect((await postMcp(gw.mcpUrl, token, LIST, sessionId)).status).toBe(404);
        const again = await postMcp(gw.mcpUrl, token, INIT);
        expect(again.status).toBe(200);
        await again.text();
      }
    }, 120_000);
  });
}
