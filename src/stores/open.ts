import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { GatehouseConfig } from '../config/schema.js';
import { createMemoryStores } from './memory/index.js';
import type { Stores } from './ports.js';
import { createSqliteStores } from './sqlite/index.js';

/** Opens the stores the configuration names (the caller closes them). */
export function openStores(config: GatehouseConfig): Stores {
  if (config.store.kind === 'memory') return createMemoryStores();
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  return createSqliteStores({ path: config.store.path ?? join(config.dataDir, 'gatehouse.db') });
}
