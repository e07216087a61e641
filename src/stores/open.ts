import { existsSync, mkdirSync } from 'node:fs';
import { databasePath, sqliteDatabasePath } from '../config/local-files.js';
import type { GatehouseConfig } from '../config/schema.js';
import { createMemoryStores } from './memory/index.js';
import type { Stores } from './ports.js';
import { createSqliteStores } from './sqlite/index.js';

/** The configured store, described without opening it (for logs and `gatehouse doctor`). */
export interface StoreDescription {
  /** The adapter: `sqlite`, `memory`, … */
  readonly kind: string;
  /** Where its data lives (a file path) when it is on this machine. */
  readonly location?: string;
  /** False when nothing survives a restart. */
  readonly durable: boolean;
}

export function describeStores(config: GatehouseConfig): StoreDescription {
  const location = databasePath(config);
  return {
    kind: config.store.kind,
    ...(location !== undefined && { location }),
    durable: config.store.kind !== 'memory',
  };
}

/** Opens the stores the configuration names, creating the data directory and database when missing (the caller closes them). */
export function openStores(config: GatehouseConfig): Stores {
  const store = config.store;
  switch (store.kind) {
    case 'memory':
      return createMemoryStores();
    case 'sqlite':
      mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
      return createSqliteStores({ path: sqliteDatabasePath(config.dataDir, store) });
  }
}

/**
 * Opens the stores only when their data already exists, creating no directory or file: `undefined` for a
 * database not created yet. An existing SQLite file is migrated to the current schema, as `serve` would.
 */
export function openExistingStores(config: GatehouseConfig): Stores | undefined {
  const path = databasePath(config);
  if (path !== undefined && !existsSync(path)) return undefined;
  return openStores(config);
}
