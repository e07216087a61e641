import { describe, expect, it } from 'vitest';
import { createMemoryStores } from '../../../src/stores/memory/index.js';

const T0 = Date.UTC(2026, 0, 1);

describe('createMemoryStores', () => {
  it("is kind 'memory' and forgets every session on close", async () => {
    const stores = createMemoryStores();
    expect(stores.kind).toBe('memory');
    await stores.sessions.create(
      {
        id: 'sess-a',
        principalKey: 'https://idp.example.test/#alice',
        kind: 'streamable-http',
        createdAt: T0,
        lastSeenAt: T0,
        idleTimeoutMs: 1_800_000,
        idleExpiresAt: T0 + 1_800_000,
        absoluteExpiresAt: T0 + 28_800_000,
        version: 1,
        data: {},
      },
      { max: 5 },
      T0,
    );

    await stores.close();

    expect(await stores.sessions.get('sess-a', T0)).toBeUndefined();
    expect(await stores.sessions.listByPrincipal('https://idp.example.test/#alice', T0)).toEqual([]);
  });

  it('keeps separate instances separate', async () => {
    const first = createMemoryStores();
    const second = createMemoryStores();
    await first.sessions.create(
      {
        id: 'sess-a',
        principalKey: 'p',
        kind: 'websocket',
        createdAt: T0,
        lastSeenAt: T0,
        idleTimeoutMs: 1,
        idleExpiresAt: T0 + 1,
        absoluteExpiresAt: T0 + 2,
        version: 1,
        data: {},
      },
      { max: 5 },
      T0,
    );

    expect(await second.sessions.get('sess-a', T0)).toBeUndefined();
  });
});
