import { fileURLToPath } from 'node:url';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TSX_LOADER } from '../helpers/cli.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { text } from '../helpers/mcp.js';
import {
  createRlsFixture,
  POSTGRES_SKIP_REASON,
  POSTGRES_URL,
  type RlsFixture,
} from '../helpers/postgres-rls.js';

const server = fileURLToPath(new URL('../fixtures/rls-notes-server.ts', import.meta.url));

if (POSTGRES_URL === undefined) console.warn(`[postgres-rls-gateway] ${POSTGRES_SKIP_REASON}`);

interface Row {
  id: string;
  user_id: string;
  body: string;
}

describe.skipIf(POSTGRES_URL === undefined)(
  'alice and bob query Postgres as themselves through the gateway',
  () => {
    let fx: RlsFixture;
    let gw: TestGateway;
    const clients: Client[] = [];

    beforeAll(async () => {
      fx = await createRlsFixture(POSTGRES_URL as string);
      gw = await startTestGateway({
        store: { kind: 'memory' },
        upstream: {
          kind: 'stdio',
          command: process.execPath,
          args: ['--import', TSX_LOADER, server],
          env: { RLS_NOTES_POSTGRES_URL: POSTGRES_URL as string, RLS_NOTES_SCHEMA: fx.schema },
          startTimeoutMs: 20_000,
        },
      });
    });
    afterAll(async () => {
      for (const client of clients.splice(0)) await client.close().catch(() => undefined);
      await gw?.close();
      await fx?.drop();
    });

    async function connect(user: string): Promise<Client> {
      const token = await gw.token(user, { email: `${user}@example.test` });
      const client = new Client({ name: `rls-${user}`, version: '1.0.0' });
      await client.connect(
        new StreamableHTTPClientTransport(gw.mcpUrl, { authProvider: { token: async () => token } }),
      );
      clients.push(client);
      return client;
    }
    const call = async (client: Client, name: string, args: Record<string, unknown> = {}) => {
      const result = await client.callTool({ name, arguments: args });
      return { isError: result.isError === true, text: text(result) };
    };
    const rows = async (client: Client): Promise<Row[]> =>
      JSON.parse((await call(client, 'row_list')).text) as Row[];

    it('each user inserts and lists rows and sees only their own; no user context sees nothing', async () => {
      const alice = await connect('alice');
      const bob = await connect('bob');
      const added = JSON.parse((await call(alice, 'row_add', { text: 'alice: first' })).text) as Row;
      expect(added.user_id).toBe('alice');
      await call(bob, 'row_add', { text: 'bob: first' });
      await call(alice, 'row_add', { text: 'alice: second' });
      await call(bob, 'row_add', { text: 'bob: second' });

      const aliceRows = await rows(alice);
      const bobRows = await rows(bob);
      expect(aliceRows.map((row) => [row.user_id, row.body])).toEqual([
        ['alice', 'alice: first'],
        ['alice', 'alice: second'],
      ]);
      expect(bobRows.map((row) => [row.user_id, row.body])).toEqual([
        ['bob', 'bob: first'],
        ['bob', 'bob: second'],
      ]);

      // Every row really is stored (the RLS-exempt superuser sees all four) …
      const stored = await fx.admin.query(`SELECT user_id FROM ${fx.table}`);
      expect(stored.rowCount).toBe(4);
      // … and a connection without a user context, as the role the tools use, sees none of them.
      const plain = new pg.Client({ connectionString: POSTGRES_URL });
      await plain.connect();
      try {
        await plain.query('SET ROLE authenticated');
        expect((await plain.query(`SELECT * FROM ${fx.table}`)).rowCount).toBe(0);
      } finally {
        await plain.end();
      }
    });

    it('bob cannot write a row as alice, and a second session of alice sees her rows but never bob’s', async () => {
      const bob = await connect('bob');
      const forged = await call(bob, 'row_add_for', { userId: 'alice', text: 'forged by bob' });
      expect(forged.isError).toBe(true);
      expect(forged.text).toMatch(/row-level security/);
      const aliceAgain = await connect('alice');
      const seen = await rows(aliceAgain);
      expect(seen.length).toBeGreaterThan(0);
      expect(seen.every((row) => row.user_id === 'alice')).toBe(true);
      expect(seen.some((row) => row.body.includes('bob'))).toBe(false);
    });
  },
);
