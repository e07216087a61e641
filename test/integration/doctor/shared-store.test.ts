import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { configSchema } from '../../../src/config/schema.js';
import { runDoctor } from '../../../src/doctor/doctor.js';
import { REDIS_URL } from '../../contract/engines.js';
import { deleteRedisPrefix } from '../../contract/redis-harness.js';
import { REDIS_SERVER_AVAILABLE, startPrivateRedis } from '../../helpers/private-redis.js';

/** `gatehouse doctor` on a Redis store: whether what it holds would survive a Redis restart. */
describe.skipIf(REDIS_URL === undefined || !REDIS_SERVER_AVAILABLE)('doctor on a Redis store', () => {
  const dirs: string[] = [];
  // Opening the stores writes the prefix's permanent `indexes:by-creation` marker: nothing may stay behind.
  const prefix = `gh-doctor:${randomBytes(4).toString('hex')}:`;
  afterAll(async () => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
    if (REDIS_URL !== undefined) await deleteRedisPrefix(REDIS_URL, prefix);
  });

  function deployment(url: string, mode: 'production' | 'development') {
    const dataDir = mkdtempSync(join(tmpdir(), 'gatehouse-doctor-redis-'));
    dirs.push(dataDir);
    return configSchema.parse({
      mode,
      dataDir,
      server: { publicUrl: 'https://mcp.example.com' },
      upstream: { kind: 'http', url: 'http://127.0.0.1:1/mcp' },
      store: { kind: 'redis', url, keyPrefix: prefix },
      authorizationServer: { secretKey: randomBytes(32).toString('base64url') },
    });
  }

  const storeCheckOf = async (url: string, mode: 'production' | 'development') =>
    (await runDoctor(deployment(url, mode))).checks.find((check) => check.id === 'store');

  it('warns in production when Redis persists nothing (the machine runs it without AOF or RDB)', async () => {
    const check = await storeCheckOf(REDIS_URL as string, 'production');

    expect(check).toMatchObject({ status: 'warn', details: { reason: 'not_persistent' } });
    expect(check?.summary).toMatch(/persists nothing/);
    expect(check?.summary).not.toMatch(/@/);
  });

  it('is satisfied once Redis writes an append-only file', async () => {
    const server = await startPrivateRedis();
    try {
      const admin = new Redis(server.url);
      await admin.config('SET', 'appendonly', 'yes');
      await admin.quit();

      const check = await storeCheckOf(server.url, 'production');
      expect(check).toMatchObject({ status: 'ok', details: { persistence: { aof: true } } });
    } finally {
      // Killed, not stopped: a Redis with AOF on may take long to shut down, and its data is not needed.
      await server.crash();
      await server.destroy();
    }
  });

  it('only notes it in development', async () => {
    expect((await storeCheckOf(REDIS_URL as string, 'development'))?.status).toBe('ok');
  });
});
