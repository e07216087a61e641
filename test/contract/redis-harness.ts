import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import type { Stores } from '../../src/stores/ports.js';
import { createRedisStores } from '../../src/stores/redis/index.js';
import type { StoresHarness } from './harness.js';

/** `pattern` with Redis glob characters escaped, for `SCAN MATCH`. */
function globEscape(pattern: string): string {
  return pattern.replace(/[*?[\]\\]/g, '\\$&');
}

/**
 * Deletes every key under `prefix` in the database of `url`, with `SCAN` and `UNLINK` (never `KEYS`), through
 * a connection of its own.
 */
export async function deleteRedisPrefix(url: string, prefix: string): Promise<void> {
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  client.on('error', () => {});
  try {
    await client.connect();
    let cursor = '0';
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', `${globEscape(prefix)}*`, 'COUNT', 500);
      cursor = next;
      if (keys.length > 0) await client.unlink(...keys);
    } while (cursor !== '0');
  } finally {
    client.disconnect();
  }
}

/** A key prefix no other harness, test file or process uses. */
export function uniqueRedisPrefix(): string {
  return `gh-test:${process.pid}:${randomBytes(6).toString('hex')}:`;
}

/**
 * The Redis adapter on the database `url` names, under a fresh key prefix per harness (so the sweeper tests
 * see only their own records); `second` and `reopen` open further clients on that same prefix, and
 * `cleanup` closes them all and deletes the prefix's keys.
 */
export function redisHarness(url: string): () => Promise<StoresHarness> {
  return async () => {
    const keyPrefix = uniqueRedisPrefix();
    const opened: Stores[] = [];
    const open = async (): Promise<Stores> => {
      const stores = await createRedisStores({ url, keyPrefix });
      opened.push(stores);
      return stores;
    };
    let current = await open();
    return {
      stores: current,
      second: open,
      reopen: async () => {
        await current.close();
        current = await open();
        return current;
      },
      async cleanup() {
        for (const stores of opened) await stores.close();
        await deleteRedisPrefix(url, keyPrefix);
      },
    };
  };
}
