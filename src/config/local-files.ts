import { statSync } from 'node:fs';
import { join } from 'node:path';
import { SECRET_KEY_FILE } from '../crypto/secret-key.js';
import type { GatehouseConfig } from './schema.js';

/** Reads a path's permission bits (`mode & 0o777`); `undefined` when it does not exist or cannot be read. */
export type FileModeReader = (path: string) => number | undefined;

/** Accounts besides the owner that a permission mode lets in. */
export type FileAudience = 'group' | 'others';

/** One file or directory the deployment keeps on this machine, and who besides its owner may use it. */
export interface LocalFile {
  /** `dataDir`, the generated `secretKey` file, or the SQLite `database`. */
  readonly role: 'dataDir' | 'secretKey' | 'database';
  readonly path: string;
  /** Permission bits; `undefined` when it does not exist (yet). */
  readonly mode: number | undefined;
  /** Who besides the owner may read, write or enter it. */
  readonly openTo: readonly FileAudience[];
  /** Who besides the owner may write it: replace the key, or the database, with their own. */
  readonly writableBy: readonly FileAudience[];
}

/** The system's view of permissions, following symbolic links as the gateway's own opens do. */
export const statFileMode: FileModeReader = (path) => {
  try {
    return statSync(path).mode & 0o777;
  } catch {
    return undefined;
  }
};

/** The SQLite database file: `store.path`, else `<dataDir>/gatehouse.db`. */
export function sqliteDatabasePath(dataDir: string, store: { readonly path?: string | undefined }): string {
  return store.path ?? join(dataDir, 'gatehouse.db');
}

/** The database file on this machine: the SQLite file; `undefined` for stores with no file. */
export function databasePath(config: GatehouseConfig): string | undefined {
  return config.store.kind === 'sqlite' ? sqliteDatabasePath(config.dataDir, config.store) : undefined;
}

/**
 * The file the secret key is generated into and read from (`<dataDir>/secret.key`); `undefined` when the
 * key is configured or the store keeps nothing on disk (memory).
 */
export function secretKeyPath(config: GatehouseConfig): string | undefined {
  if (config.authorizationServer.secretKey !== undefined || config.store.kind === 'memory') return undefined;
  return join(config.dataDir, SECRET_KEY_FILE);
}

/** `0644` for `0o644`. */
export function octalMode(mode: number): string {
  return `0${mode.toString(8).padStart(3, '0')}`;
}

function audience(mode: number | undefined, groupBits: number, otherBits: number): FileAudience[] {
  if (mode === undefined) return [];
  const who: FileAudience[] = [];
  if ((mode & groupBits) !== 0) who.push('group');
  if ((mode & otherBits) !== 0) who.push('others');
  return who;
}

/**
 * The data directory, the generated secret key and the SQLite database as they are on disk now: what
 * `gatehouse doctor` reports and what production start-up refuses (see `productionIssues`). Nothing for
 * the memory store, which keeps nothing on disk.
 */
export function localFiles(config: GatehouseConfig, fileMode: FileModeReader = statFileMode): LocalFile[] {
  if (config.store.kind === 'memory') return [];
  const files: Array<Pick<LocalFile, 'role' | 'path'>> = [{ role: 'dataDir', path: config.dataDir }];
  const keyFile = secretKeyPath(config);
  if (keyFile !== undefined) files.push({ role: 'secretKey', path: keyFile });
  const database = databasePath(config);
  if (database !== undefined) files.push({ role: 'database', path: database });
  return files.map((file) => {
    const mode = fileMode(file.path);
    return {
      ...file,
      mode,
      openTo: audience(mode, 0o070, 0o007),
      writableBy: audience(mode, 0o020, 0o002),
    };
  });
}
