import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createMemoryStores } from '../../src/stores/memory/index.js';
import type { Stores } from '../../src/stores/ports.js';
import { createSqliteStores } from '../../src/stores/sqlite/index.js';
import { describeSessionStoreContract, type SessionStoreHarness } from './sessions.contract.js';

async function memoryHarness(): Promise<SessionStoreHarness> {
  const stores = createMemoryStores();
  return { stores, cleanup: () => stores.close() };
}

/** A fresh database file per test; `second` and `reopen` open further connections to that same file. */
async function sqliteHarness(): Promise<SessionStoreHarness> {
  const dir = await mkdtemp(join(tmpdir(), 'gatehouse-sessions-'));
  const path = join(dir, 'gatehouse.db');
  const opened: Stores[] = [];
  const open = (): Stores => {
    const stores = createSqliteStores({ path });
    opened.push(stores);
    return stores;
  };
  let current = open();
  return {
    stores: current,
    second: async () => open(),
    reopen: async () => {
      await current.close();
      current = open();
      return current;
    },
    async cleanup() {
      for (const stores of opened) await stores.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

describeSessionStoreContract('memory', memoryHarness);
describeSessionStoreContract('sqlite', sqliteHarness, { durable: true });
describeSessionStoreContract('sqlite, races across two connections', sqliteHarness, {
  durable: true,
  twoConnections: true,
});
