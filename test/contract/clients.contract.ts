import { describe, expect, it } from 'vitest';
import type { ClientRecord } from '../../src/stores/ports.js';
import {
  DAY,
  present,
  racer,
  type StoreContractOptions,
  type StoresHarness,
  T0,
  unique,
  useContractHarness,
} from './harness.js';

/** A confidential web client with every optional field set. */
function clientRecord(overrides: Partial<ClientRecord> = {}): ClientRecord {
  const clientId = overrides.clientId ?? unique('client');
  return {
    clientId,
    secretHash: 'sha256:3q2+7w',
    tokenEndpointAuthMethod: 'client_secret_basic',
    redirectUris: ['https://app.example.test/callback', 'https://app.example.test/cb?x=1&y=é'],
    grantTypes: ['authorization_code', 'refresh_token'],
    responseTypes: ['code'],
    applicationType: 'web',
    clientName: 'Example App',
    clientUri: 'https://app.example.test/',
    logoUri: 'https://app.example.test/logo.png',
    scope: 'mcp:tools mcp:resources',
    metadata: {
      client_name: 'Example App',
      redirect_uris: ['https://app.example.test/callback'],
      contacts: ['ops@example.test'],
      jwks: { keys: [{ kty: 'EC', crv: 'P-256', x: 'x', y: 'y' }] },
      software_version: 3,
      nothing: null,
    },
    createdAt: T0,
    expiresAt: T0 + 30 * DAY,
    ...overrides,
  };
}

/** A public native client with no optional field. */
function publicClient(): ClientRecord {
  return {
    clientId: unique('client'),
    tokenEndpointAuthMethod: 'none',
    redirectUris: ['http://127.0.0.1/callback'],
    grantTypes: ['authorization_code'],
    responseTypes: ['code'],
    applicationType: 'native',
    metadata: {},
    createdAt: T0,
  };
}

/**
 * Registers the `ClientStore` contract (see `src/stores/ports.ts`) for one adapter.
 *
 * @example
 * ```ts
 * describeClientStoreContract('memory', memoryHarness);
 * ```
 */
export function describeClientStoreContract(
  name: string,
  makeStores: () => Promise<StoresHarness>,
  options: StoreContractOptions = {},
): void {
  describe(`ClientStore contract: ${name}`, () => {
    const ctx = useContractHarness(name, makeStores, options);

    it('round-trips every field, arrays and metadata included', async () => {
      const client = clientRecord();

      expect(await ctx.stores.clients.create(client)).toBe(true);

      expect(await ctx.stores.clients.get(client.clientId, T0)).toStrictEqual(client);
    });

    it('keeps absent optional fields absent, not null', async () => {
      const client = publicClient();
      await ctx.stores.clients.create(client);

      const stored = await ctx.stores.clients.get(client.clientId, T0);

      expect(stored).toStrictEqual(client);
      for (const field of ['secretHash', 'clientName', 'clientUri', 'logoUri', 'scope', 'expiresAt']) {
        expect(stored).not.toHaveProperty(field);
      }
    });

    it('returns undefined for an unknown client id', async () => {
      await ctx.stores.clients.create(clientRecord());
      expect(await ctx.stores.clients.get('client-unknown', T0)).toBeUndefined();
    });

    it('refuses an existing client id and keeps the original', async () => {
      const original = clientRecord();
      await ctx.stores.clients.create(original);

      expect(
        await ctx.stores.clients.create(
          clientRecord({ clientId: original.clientId, clientName: 'Impostor' }),
        ),
      ).toBe(false);

      expect(await ctx.stores.clients.get(original.clientId, T0)).toStrictEqual(original);
    });

    it('is undefined from expiresAt on, live until then', async () => {
      const client = clientRecord({ expiresAt: T0 + DAY });
      await ctx.stores.clients.create(client);

      expect(await ctx.stores.clients.get(client.clientId, T0 + DAY - 1)).toStrictEqual(client);
      expect(await ctx.stores.clients.get(client.clientId, T0 + DAY)).toBeUndefined();
    });

    it('never expires a client registered without expiresAt', async () => {
      const client = publicClient();
      await ctx.stores.clients.create(client);

      expect(await ctx.stores.clients.get(client.clientId, T0 + 100_000 * DAY)).toStrictEqual(client);
    });

    it('deletes once, then reports false', async () => {
      const client = clientRecord();
      await ctx.stores.clients.create(client);

      expect(await ctx.stores.clients.delete(client.clientId)).toBe(true);
      expect(await ctx.stores.clients.delete(client.clientId)).toBe(false);
      expect(await ctx.stores.clients.get(client.clientId, T0)).toBeUndefined();
    });

    it('hands out copies: mutating input or output never changes the stored record', async () => {
      const redirectUris = ['https://app.example.test/callback'];
      const metadata = { contacts: ['ops@example.test'] };
      const client = clientRecord({ redirectUris, metadata });
      await ctx.stores.clients.create(client);
      redirectUris.push('https://evil.example.test/');
      metadata.contacts.push('evil@example.test');

      const first = await ctx.stores.clients.get(client.clientId, T0);
      (present(first).redirectUris as string[]).push('https://evil.example.test/');
      (present(first).metadata.contacts as string[]).push('evil@example.test');

      const second = await ctx.stores.clients.get(client.clientId, T0);
      expect(second?.redirectUris).toEqual(['https://app.example.test/callback']);
      expect(second?.metadata).toEqual({ contacts: ['ops@example.test'] });
    });

    it('admits exactly one of 10 concurrent creates of the same client id', async () => {
      const pool = await ctx.racers();
      const clientId = unique('client');
      const candidates = Array.from({ length: 10 }, (_, i) =>
        clientRecord({ clientId, clientName: `App ${i}` }),
      );

      const results = await Promise.all(candidates.map((client, i) => racer(pool, i).clients.create(client)));

      expect(results.filter((created) => created)).toHaveLength(1);
      expect(await ctx.stores.clients.get(clientId, T0)).toStrictEqual(candidates[results.indexOf(true)]);
    });

    if (options.durable) {
      it('keeps clients across close and reopen', async () => {
        const confidential = clientRecord();
        const open = publicClient();
        await ctx.stores.clients.create(confidential);
        await ctx.stores.clients.create(open);

        const reopened = await ctx.reopen();

        expect(await reopened.clients.get(confidential.clientId, T0)).toStrictEqual(confidential);
        expect(await reopened.clients.get(open.clientId, T0)).toStrictEqual(open);
      });
    }
  });
}
