import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { GatehouseError } from '../errors/gatehouse-error.js';

/** File under the data directory that holds the generated key when none is configured. */
export const SECRET_KEY_FILE = 'secret.key';

export interface SecretKey {
  readonly key: Uint8Array;
  /** Where it came from, for the start-up log (never the key itself). */
  readonly source: 'configured' | 'file' | 'generated' | 'ephemeral';
}

function decode(text: string, where: string): Uint8Array {
  const bytes = Buffer.from(text.trim(), 'base64url');
  if (bytes.byteLength !== 32) {
    throw new GatehouseError(
      'ERR_CONFIG_INVALID',
      `${where}: the secret key must be 32 bytes, base64url-encoded`,
    );
  }
  return new Uint8Array(bytes);
}

/**
 * The key that encrypts secrets at rest. A configured key wins; otherwise one is generated once into
 * `<dataDir>/secret.key` (mode 0600, created exclusively so two processes starting together agree);
 * without a data directory (memory store) a fresh key lives only as long as the process.
 */
export function loadSecretKey(options: {
  configured?: string | undefined;
  dataDir?: string | undefined;
}): SecretKey {
  if (options.configured !== undefined) {
    return { key: decode(options.configured, 'authorizationServer.secretKey'), source: 'configured' };
  }
  if (options.dataDir === undefined) return { key: new Uint8Array(randomBytes(32)), source: 'ephemeral' };
  const path = join(options.dataDir, SECRET_KEY_FILE);
  try {
    return { key: decode(readFileSync(path, 'utf8'), path), source: 'file' };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  try {
    // The data directory exists already beside a SQLite database; beside a server store it may not.
    mkdirSync(options.dataDir, { recursive: true, mode: 0o700 });
    writeFileSync(path, `${randomBytes(32).toString('base64url')}\n`, { mode: 0o600, flag: 'wx' });
    return { key: decode(readFileSync(path, 'utf8'), path), source: 'generated' };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    return { key: decode(readFileSync(path, 'utf8'), path), source: 'file' };
  }
}
