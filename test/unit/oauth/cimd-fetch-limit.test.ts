import { describe, expect, it } from 'vitest';
import { GatehouseError } from '../../../src/errors/gatehouse-error.js';
import { createCimdFetchLimiter } from '../../../src/oauth/cimd-fetch-limit.js';
import { createManualClock } from '../../../src/ops/clock.js';
import { createMemoryStores } from '../../../src/stores/memory/index.js';

async function refusal(promise: Promise<unknown>): Promise<GatehouseError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(GatehouseError);
  expect((error as GatehouseError).code).toBe('ERR_RATE_LIMITED');
  return error as GatehouseError;
}

function setup(limits = { perAddressPerMinute: 3, perHostPerMinute: 5 }) {
  const clock = createManualClock();
  const stores = createMemoryStores();
  const limit = createCimdFetchLimiter({ counters: stores.counters, clock, limits });
  return { clock, limit };
}

const url = (host: string, n = 0) => new URL(`https://${host}/client-${n}.json`);

describe('createCimdFetchLimiter', () => {
  it('limits fetches per client address, with Retry-After until the window ends', async () => {
    const { clock, limit } = setup();
    for (let i = 0; i < 3; i++) await limit(url(`h${i}.example`), { clientAddress: '203.0.113.7' });
    clock.advance(15_000);
    const error = await refusal(limit(url('h9.example'), { clientAddress: '203.0.113.7' }));
    expect(error.details).toMatchObject({ limit: 'cimd-fetch-address' });
    expect(error.retryAfterSeconds).toBe(45);
    await limit(url('h9.example'), { clientAddress: '198.51.100.1' });
    clock.advance(45_000);
    await limit(url('h9.example'), { clientAddress: '203.0.113.7' });
  });

  it('limits fetches per target host whatever the address; a refusal by address spends nothing of the host', async () => {
    const { limit } = setup();
    // Refused by its own address limit: does not count against victim.example.
    for (let i = 0; i < 3; i++) await limit(url('victim.example', i), { clientAddress: 'a' });
    await refusal(limit(url('victim.example', 3), { clientAddress: 'a' }));
    await limit(url('victim.example', 4), { clientAddress: 'b' });
    await limit(url('VICTIM.example', 5), { clientAddress: 'c' });
    const error = await refusal(limit(url('victim.example', 6), { clientAddress: 'd' }));
    expect(error.details).toMatchObject({ limit: 'cimd-fetch-host' });
    await limit(url('other.example'), { clientAddress: 'd' });
  });

  it('without an address (a lookup nobody attributed) only the host limit applies', async () => {
    const { limit } = setup();
    for (let i = 0; i < 5; i++) await limit(url('victim.example', i), {});
    await refusal(limit(url('victim.example', 9), {}));
  });

  it('refuses limits that are not positive integers at construction', () => {
    const { counters } = createMemoryStores();
    const clock = createManualClock();
    for (const limits of [
      { perAddressPerMinute: 0, perHostPerMinute: 5 },
      { perAddressPerMinute: 3, perHostPerMinute: 1.5 },
    ]) {
      expect(() => createCimdFetchLimiter({ counters, clock, limits })).toThrow(GatehouseError);
    }
  });
});
