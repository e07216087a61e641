import { describe, expect, it } from 'vitest';
import { tokenHash } from '../../../src/crypto/fingerprint.js';
import type { ResolvedClient } from '../../../src/oauth/clients.js';
import type { GrantContext } from '../../../src/oauth/grants/context.js';
import { refreshGrant } from '../../../src/oauth/grants/refresh-token.js';
import { createAccessTokenIssuer, newRefreshToken } from '../../../src/oauth/tokens.js';
import { auditTo } from '../../../src/ops/audit.js';
import { createManualClock } from '../../../src/ops/clock.js';
import { silentEvents } from '../../../src/ops/events.js';
import { silentLogger } from '../../../src/ops/logger.js';
import type { Stores } from '../../../src/stores/ports.js';
import { createKeyStore } from '../../../src/tokens/keys.js';
import { createRevocationList } from '../../../src/tokens/revocation.js';
import { createTokenSigner } from '../../../src/tokens/sign.js';
import { forEachEngine } from '../../contract/engines.js';
import { racer, unique, useContractHarness } from '../../contract/harness.js';

const CLIENT = {
  clientId: 'client-1',
  source: 'registered',
  tokenEndpointAuthMethod: 'none',
  redirectUris: ['http://127.0.0.1:1/cb'],
  grantTypes: ['authorization_code', 'refresh_token'],
  responseTypes: ['code'],
  applicationType: 'native',
  metadata: {},
  createdAt: 0,
} as const satisfies ResolvedClient;

/**
 * The refresh grant itself (not only the store's compare-and-swap) racing on every engine, its calls
 * spread over two connections where the engine has them, as two instances would: one rotation happens,
 * and every concurrent presenter of the same token inside the grace window gets the identical answer.
 */
forEachEngine((engine) => {
  describe(`refresh races: ${engine.name}`, () => {
    const ctx = useContractHarness(engine.name, engine.harness, engine.options);

    async function contextFor(stores: Stores, shared: { clock: ReturnType<typeof createManualClock> }) {
      const keys = await createKeyStore({ clock: shared.clock });
      return {
        stores,
        issuer: createAccessTokenIssuer({
          signer: createTokenSigner({ keys, issuer: 'https://gh.example/', clock: shared.clock }),
          ttlSeconds: 300,
        }),
        revocations: createRevocationList({
          store: stores.revocations,
          clock: shared.clock,
          logger: silentLogger,
        }),
        audit: auditTo(silentEvents),
        accountActive: async () => true,
        clock: shared.clock,
        accessTokenTtlSeconds: 300,
        refreshTokenTtlSeconds: 86_400,
        refreshGraceSeconds: 30,
      } satisfies GrantContext;
    }

    it('rotates once for 12 concurrent refreshes of one token and answers all of them identically', async () => {
      const clock = createManualClock();
      const grantId = unique('grt');
      const first = newRefreshToken();
      const now = clock.now();
      await ctx.stores.grants.create(
        {
          id: grantId,
          clientId: CLIENT.clientId,
          principal: { subject: 'alice', idp: 'local' },
          scopes: [],
          resource: 'https://gh.example/mcp',
          authTime: now,
          createdAt: now,
          expiresAt: now + 86_400_000,
          generation: 1,
          rotatedAt: now,
        },
        tokenHash(first),
      );
      const pool = await ctx.racers();
      const contexts = await Promise.all(pool.map((stores) => contextFor(stores, { clock })));

      const answers = await Promise.all(
        Array.from({ length: 12 }, (_, i) =>
          refreshGrant(contexts[i % contexts.length] as GrantContext, CLIENT, {
            refreshToken: first,
            scope: undefined,
            resource: undefined,
          }),
        ),
      );

      expect(new Set(answers.map((answer) => JSON.stringify(answer))).size).toBe(1);
      expect((await racer(pool, 0).grants.get(grantId, clock.now()))?.generation).toBe(2);
    });
  });
});
