import { describe, expect, it } from 'vitest';
import { tokenHash } from '../../../src/crypto/fingerprint.js';
import type { GrantContext } from '../../../src/oauth/grants/context.js';
import { refreshGrant } from '../../../src/oauth/grants/refresh-token.js';
import { newRefreshToken } from '../../../src/oauth/tokens.js';
import { createManualClock } from '../../../src/ops/clock.js';
import { forEachEngine } from '../../contract/engines.js';
import { racer, unique, useContractHarness } from '../../contract/harness.js';
import { aliceGrant, grantContext, PUBLIC_CLIENT } from '../../helpers/grant-context.js';

/**
 * The refresh grant itself (not only the store's compare-and-swap) racing on every engine, its calls
 * spread over two connections where the engine has them, as two instances would: one rotation happens,
 * and every concurrent presenter of the same token inside the grace window gets the identical answer.
 */
forEachEngine((engine) => {
  describe(`refresh races: ${engine.name}`, () => {
    const ctx = useContractHarness(engine.name, engine.harness, engine.options);

    it('rotates once for 12 concurrent refreshes of one token and answers all of them identically', async () => {
      const clock = createManualClock();
      const grantId = unique('grt');
      const first = newRefreshToken();
      const now = clock.now();
      await ctx.stores.grants.create(aliceGrant(grantId, now), tokenHash(first));
      const pool = await ctx.racers();
      const contexts = await Promise.all(pool.map((stores) => grantContext(stores, clock)));

      const answers = await Promise.all(
        Array.from({ length: 12 }, (_, i) =>
          refreshGrant(contexts[i % contexts.length] as GrantContext, PUBLIC_CLIENT, {
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
