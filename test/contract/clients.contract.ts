import { describe, expect, it } from 'vitest';
import type { ClientRecord } from '../../src/stores/ports.js';
import {
  compareIds,
  DAY,
  MINUTE,
  present,
  racer,
  readAllPages,
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

/** `client` registered without a lapse. */
function withoutExpiry(client: ClientRecord): ClientRecord {
  const { expiresAt: _expiresAt, ...rest } = client;
  return rest;
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

    describe('list', () => {
      /** Live and expired clients, with ties on createdAt that only the client id orders. */
      async function mixedClients(now: number): Promise<ClientRecord[]> {
        const live = Array.from({ length: 9 }, (_, i) =>
          clientRecord({
            clientId: `client-${String(20 - i).padStart(2, '0')}-${unique('c')}`,
            createdAt: T0 + Math.floor(i / 2) * MINUTE,
            ...(i % 3 === 0 ? { expiresAt: undefined } : {}),
          }),
        ).map((client) => (client.expiresAt === undefined ? withoutExpiry(client) : client));
        const expired = [clientRecord({ createdAt: T0 + MINUTE, expiresAt: now })];
        for (const client of [...live.slice(4), ...expired, ...live.slice(0, 4)]) {
          expect(await ctx.stores.clients.create(client)).toBe(true);
        }
        return live.sort((a, b) => a.createdAt - b.createdAt || compareIds(a.clientId, b.clientId));
      }

      it('returns clients not expired at now, oldest first by (createdAt, clientId), at most limit', async () => {
        const now = T0 + DAY;
        const live = await mixedClients(now);

        expect(await ctx.stores.clients.list(now, { limit: 100 })).toStrictEqual(live);
        expect(await ctx.stores.clients.list(now, { limit: 3 })).toStrictEqual(live.slice(0, 3));
      });

      it('pages through every live client without a duplicate or a gap', async () => {
        const now = T0 + DAY;
        const live = await mixedClients(now);

        for (const limit of [1, 2, 4]) {
          const { records } = await readAllPages(
            (page) => ctx.stores.clients.list(now, page),
            (client) => client.clientId,
            limit,
          );
          expect(records.map((client) => client.clientId)).toEqual(live.map((client) => client.clientId));
        }
      });

      it('returns an empty list when there are no clients', async () => {
        expect(await ctx.stores.clients.list(T0, { limit: 10 })).toEqual([]);
      });
    });

    describe('setApproved', () => {
      it('sets approvedAt once, keeps the first approval, and clears it', async () => {
        const client = clientRecord();
        await ctx.stores.clients.create(client);

        expect(await ctx.stores.clients.setApproved(client.clientId, true, T0 + 5)).toStrictEqual({
          ...client,
          approvedAt: T0 + 5,
        });
        expect((await ctx.stores.clients.setApproved(client.clientId, true, T0 + 9))?.approvedAt).toBe(
          T0 + 5,
        );
        expect((await ctx.stores.clients.get(client.clientId, T0 + 10))?.approvedAt).toBe(T0 + 5);
        expect((await ctx.stores.clients.list(T0, { limit: 10 }))[0]?.approvedAt).toBe(T0 + 5);

        const revoked = await ctx.stores.clients.setApproved(client.clientId, false, T0 + 11);

        expect(revoked).toStrictEqual(client);
        expect(revoked).not.toHaveProperty('approvedAt');
        expect(await ctx.stores.clients.get(client.clientId, T0 + 12)).toStrictEqual(client);
        expect((await ctx.stores.clients.setApproved(client.clientId, true, T0 + 13))?.approvedAt).toBe(
          T0 + 13,
        );
      });

      it('round-trips approvedAt given on create', async () => {
        const client = clientRecord({ approvedAt: T0 + 1 });
        await ctx.stores.clients.create(client);

        expect(await ctx.stores.clients.get(client.clientId, T0)).toStrictEqual(client);
      });

      it('returns undefined and changes nothing for an unknown or expired client', async () => {
        const client = clientRecord({ expiresAt: T0 + DAY });
        await ctx.stores.clients.create(client);

        expect(await ctx.stores.clients.setApproved('client-unknown', true, T0)).toBeUndefined();
        expect(await ctx.stores.clients.setApproved(client.clientId, true, T0 + DAY)).toBeUndefined();
        expect(await ctx.stores.clients.get(client.clientId, T0)).toStrictEqual(client);
        expect(await ctx.stores.clients.get('client-unknown', T0)).toBeUndefined();
      });
    });

    if (options.durable) {
      it('keeps approvals across close and reopen', async () => {
        const client = clientRecord();
        await ctx.stores.clients.create(client);
        await ctx.stores.clients.setApproved(client.clientId, true, T0 + 1);

        const reopened = await ctx.reopen();

        expect(await reopened.clients.get(client.clientId, T0)).toStrictEqual({
          ...client,
          approvedAt: T0 + 1,
        });
      });

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
