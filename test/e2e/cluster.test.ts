import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { POSTGRES_URL, REDIS_URL } from '../contract/engines.js';
import { type Balancer, startBalancer } from '../helpers/balancer.js';
import { cleanEnv, runCli } from '../helpers/cli.js';
import { freePort } from '../helpers/late-server.js';
import { text } from '../helpers/mcp.js';
import { postMcp } from '../helpers/mcp-http.js';
import { TestOAuthProvider } from '../helpers/oauth-provider.js';
import { type ConfiguredServe, startConfiguredServe } from '../helpers/serve-process.js';
import { eventually, isAlive } from '../helpers/wait.js';

const PASSWORD = 'a long and perfectly fine passphrase';

interface EngineUnderTest {
  readonly name: 'redis' | 'postgres';
  readonly url: string | undefined;
  /** The store block of both instances' config: the same data, private to this run. */
  store(run: string): Record<string, unknown>;
  /** Removes what the run stored. */
  drop(run: string): Promise<void>;
}

const ENGINES: readonly EngineUnderTest[] = [
  {
    name: 'redis',
    url: REDIS_URL,
    store: (run) => ({ kind: 'redis', url: REDIS_URL, keyPrefix: `gh-cluster:${run}:` }),
    async drop(run) {
      const { Redis } = await import('ioredis');
      const client = new Redis(REDIS_URL as string);
      let cursor = '0';
      do {
        const [next, keys] = await client.scan(cursor, 'MATCH', `gh-cluster:${run}:*`, 'COUNT', 500);
        cursor = next;
        if (keys.length > 0) await client.unlink(...keys);
      } while (cursor !== '0');
      await client.quit();
    },
  },
  {
    name: 'postgres',
    url: POSTGRES_URL,
    store: (run) => ({ kind: 'postgres', url: POSTGRES_URL, schema: `gh_cluster_${run}` }),
    async drop(run) {
      const client = new pg.Client({ connectionString: POSTGRES_URL });
      await client.connect();
      await client.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(`gh_cluster_${run}`)} CASCADE`);
      await client.end();
    },
  },
];

/** The pid and user id the demo server's `whoami` reports: which upstream process answered, as whom. */
async function whoami(client: Client): Promise<{ pid: number; userId: string }> {
  return JSON.parse(text(await client.callTool({ name: 'whoami', arguments: {} }))) as {
    pid: number;
    userId: string;
  };
}

const tokenRequest = (balancer: Balancer, fields: Record<string, string>) =>
  fetch(`${balancer.url}/oauth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(fields).toString(),
  });

const listTools = { jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} };

/** Opens a WebSocket to one instance with a bearer token on the upgrade: the HTTP status it got. */
function webSocketStatus(instance: ConfiguredServe, token: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(`ws://127.0.0.1:${instance.port}/ws`, {
      headers: { authorization: `Bearer ${token}` },
    });
    socket.once('open', () => {
      socket.close();
      resolve(101);
    });
    socket.once('unexpected-response', (_request, response) => {
      response.resume();
      resolve(response.statusCode ?? 0);
    });
    socket.once('error', reject);
  });
}

for (const engine of ENGINES) {
  const describeEngine = engine.url === undefined ? describe.skip : describe;

  /**
   * Two `gatehouse serve` processes on one shared store behind a load balancer with no affinity, with the
   * same secret key and public URL, driven by a real MCP SDK client: what a team running more than one
   * instance relies on.
   */
  describeEngine(`two instances sharing ${engine.name}`, () => {
    const run = `${process.pid}_${randomBytes(4).toString('hex')}`;
    let dir: string;
    let balancer: Balancer;
    const instances: ConfiguredServe[] = [];
    let config: Record<string, unknown>;
    let ports: number[];

    const start = async (index: number) => {
      instances[index] = await startConfiguredServe({
        dir,
        name: `instance-${index}`,
        port: ports[index] as number,
        config: { ...config, dataDir: join(dir, `data-${index}`) },
      });
    };

    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), 'gatehouse-cluster-'));
      ports = [await freePort(), await freePort()];
      balancer = await startBalancer(ports);
      config = {
        store: engine.store(run),
        server: { publicUrl: balancer.url },
        authorizationServer: { secretKey: randomBytes(32).toString('base64url') },
        websocket: { connectPerUserPerMinute: 4 },
      };
      // Both start at once: the PostgreSQL migration runs under an advisory lock, so they do not race.
      await Promise.all([start(0), start(1)]);
      const added = await runCli(
        ['users', 'add', 'alice', '--password-stdin', '--config', join(dir, 'instance-0.json')],
        dir,
        cleanEnv(),
        `${PASSWORD}\n`,
      );
      expect(added.code, added.stderr).toBe(0);
    }, 120_000);

    afterAll(async () => {
      await Promise.all(instances.map((instance) => instance?.stop('SIGKILL')));
      await balancer?.close();
      await engine.drop(run).catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    });

    /** Signs alice in through instance `index` with a real SDK client's OAuth flow. */
    async function signInThrough(index: number): Promise<TestOAuthProvider> {
      balancer.route = index;
      const provider = new TestOAuthProvider({ username: 'alice', password: PASSWORD });
      const mcpUrl = new URL(`${balancer.url}/mcp`);
      await expect(
        new Client({ name: 'cluster', version: '1' }).connect(
          new StreamableHTTPClientTransport(mcpUrl, { authProvider: provider as never }),
        ),
      ).rejects.toBeInstanceOf(UnauthorizedError);
      const { callback } = await (provider.pending as NonNullable<typeof provider.pending>);
      await new StreamableHTTPClientTransport(mcpUrl, { authProvider: provider as never }).finishAuth(
        callback.searchParams.get('code') as string,
      );
      return provider;
    }

    /** A real SDK client in a 2025-era session; `end` sends the session's DELETE, then closes. */
    async function connect(provider: TestOAuthProvider): Promise<Client & { end(): Promise<void> }> {
      const client = new Client({ name: 'cluster', version: '1' });
      const transport = new StreamableHTTPClientTransport(new URL(`${balancer.url}/mcp`), {
        authProvider: provider as never,
      });
      await client.connect(transport);
      return Object.assign(client, {
        async end() {
          await transport.terminateSession();
          await client.close();
        },
      });
    }

    it('signs in on one instance and calls tools on the other', async () => {
      const provider = await signInThrough(0);
      balancer.route = 1;
      const client = await connect(provider);
      const me = await whoami(client);
      await client.end();

      expect(me.userId).toMatch(/\S/);
      expect(balancer.log.slice(-3).every((index) => index === 1)).toBe(true);
    });

    it('answers a refresh replayed on the other instance inside the grace window identically', async () => {
      const provider = await signInThrough(0);
      const refreshToken = provider.savedTokens?.refresh_token as string;
      const clientId = provider.clientInfo?.client_id as string;
      const fields = { grant_type: 'refresh_token', refresh_token: refreshToken, client_id: clientId };

      balancer.route = 0;
      const first = await tokenRequest(balancer, fields);
      balancer.route = 1;
      const replay = await tokenRequest(balancer, fields);

      expect(first.status).toBe(200);
      expect(replay.status).toBe(200);
      expect(await replay.json()).toEqual(await first.json());
    });

    it('refuses a token revoked on one instance on the other within a second of the revocation returning', async () => {
      const provider = await signInThrough(0);
      const accessToken = provider.savedTokens?.access_token as string;
      balancer.route = 1;
      expect((await postMcp(`${balancer.url}/mcp`, accessToken, listTools)).status).not.toBe(401);

      balancer.route = 0;
      const revoked = await fetch(`${balancer.url}/oauth/revoke`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
          token: provider.savedTokens?.refresh_token as string,
          client_id: provider.clientInfo?.client_id as string,
        }).toString(),
      });
      expect(revoked.status).toBe(200);
      const returnedAt = performance.now();
      balancer.route = 1;
      let refusedAfterMs = Number.POSITIVE_INFINITY;
      await eventually(async () => {
        const status = (await postMcp(`${balancer.url}/mcp`, accessToken, listTools)).status;
        if (status === 401) refusedAfterMs = performance.now() - returnedAt;
        return status === 401;
      }, 5_000);

      expect(refusedAfterMs).toBeLessThan(1_000);
    });

    it('continues a 2025-era session whose requests alternate between the instances, and ends it on both', async () => {
      const provider = await signInThrough(0);
      balancer.route = 'alternate';
      const client = await connect(provider);
      const answers = [];
      for (let i = 0; i < 6; i++) answers.push(await whoami(client));
      const pids = [...new Set(answers.map((answer) => answer.pid))];

      // Each instance started the session's upstream from the stored session: two processes, one user.
      expect(pids).toHaveLength(2);
      expect(new Set(answers.map((answer) => answer.userId)).size).toBe(1);

      // DELETE reaches one instance; the other releases its upstream when told on the cluster bus.
      await client.end();
      await eventually(() => pids.every((pid) => !isAlive(pid)), 10_000);
    });

    it("counts a user's WebSocket connects across both instances against one limit", async () => {
      const provider = await signInThrough(0);
      const token = provider.savedTokens?.access_token as string;
      const statuses = [];
      for (let i = 0; i < 5; i++)
        statuses.push(await webSocketStatus(instances[i % 2] as ConfiguredServe, token));

      expect(statuses).toEqual([101, 101, 101, 101, 429]);
    });

    it('loses nothing when an instance is killed with SIGKILL and restarted', async () => {
      const provider = await signInThrough(0);
      balancer.route = 0;
      const client = await connect(provider);
      const before = await whoami(client);

      await instances[0]?.stop('SIGKILL');
      // Meanwhile the other instance serves the same session, token and account.
      balancer.route = 1;
      expect((await whoami(client)).userId).toBe(before.userId);

      await start(0);
      balancer.route = 0;
      expect((await whoami(client)).userId).toBe(before.userId);
      await client.end();

      // The grant survived too: the refresh token still rotates, on the restarted instance.
      const refreshed = await tokenRequest(balancer, {
        grant_type: 'refresh_token',
        refresh_token: provider.savedTokens?.refresh_token as string,
        client_id: provider.clientInfo?.client_id as string,
      });
      expect(refreshed.status).toBe(200);
    }, 120_000);
  });
}
