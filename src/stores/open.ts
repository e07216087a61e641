import { existsSync, mkdirSync } from 'node:fs';
import { databasePath, sqliteDatabasePath } from '../config/local-files.js';
import type { GatehouseConfig } from '../config/schema.js';
import { createMemoryStores } from './memory/index.js';
import type { Stores } from './ports.js';
import { createSqliteStores } from './sqlite/index.js';

/** The configured store, described without opening it (for logs and `gatehouse doctor`). */
export interface StoreDescription {
  /** The adapter: `sqlite`, `memory`, `postgres`, `redis`. */
  readonly kind: string;
  /** Where its data lives: a file path, or a server without its credentials. */
  readonly location?: string;
  /** False when nothing survives a restart. */
  readonly durable: boolean;
  /** Several instances can share it (PostgreSQL, Redis). */
  readonly shared: boolean;
}

/** `host:port/database` of a server URL: never its user name or password. */
function serverLocation(text: string): string {
  const url = new URL(text);
  return `${url.protocol}//${url.host}${url.pathname === '/' ? '' : url.pathname}`;
}

export function describeStores(config: GatehouseConfig): StoreDescription {
  const store = config.store;
  switch (store.kind) {
    case 'memory':
      return { kind: 'memory', durable: false, shared: false };
    case 'sqlite':
      return {
        kind: 'sqlite',
        location: sqliteDatabasePath(config.dataDir, store),
        durable: true,
        shared: false,
      };
    case 'postgres':
      return {
        kind: 'postgres',
        location: `${serverLocation(store.url)} (schema ${store.schema})`,
        durable: true,
        shared: true,
      };
    case 'redis':
      return {
        kind: 'redis',
        location: `${serverLocation(store.url)} (prefix ${store.keyPrefix})`,
        durable: true,
        shared: true,
      };
  }
}

export interface OpenStoresOptions {
  /**
   * Bring the schema up to date (PostgreSQL migrations, run under an advisory lock so instances starting
   * together do not race). Default true; `gatehouse doctor` opens without it, changing nothing.
   */
  readonly migrate?: boolean;
}

/**
 * Opens the stores the configuration names — creating the SQLite data directory and file, or migrating the
 * PostgreSQL schema, when missing — and resolves once they answer. The caller closes them.
 */
export async function openStores(config: GatehouseConfig, options: OpenStoresOptions = {}): Promise<Stores> {
  const store = config.store;
  switch (store.kind) {
    case 'memory':
      return createMemoryStores();
    case 'sqlite':
      mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
      return createSqliteStores({ path: sqliteDatabasePath(config.dataDir, store) });
    // The engines' clients load only when configured: most deployments never need them.
    case 'postgres': {
      const { createPostgresStores } = await import('./postgres/index.js');
      return createPostgresStores({
        url: store.url,
        schema: store.schema,
        max: store.poolSize,
        migrate: options.migrate !== false,
      });
    }
    case 'redis': {
      const { createRedisStores } = await import('./redis/index.js');
      return createRedisStores({ url: store.url, keyPrefix: store.keyPrefix });
    }
  }
}

/**
 * Opens the stores only when their data already exists, creating no directory, file or table: `undefined`
 * for a SQLite database not created yet. An existing SQLite file is migrated to the current schema, as
 * `serve` would; a PostgreSQL schema is left as it is.
 */
export async function openExistingStores(config: GatehouseConfig): Promise<Stores | undefined> {
  const path = databasePath(config);
  if (path !== undefined && !existsSync(path)) return undefined;
  return openStores(config, { migrate: false });
}
