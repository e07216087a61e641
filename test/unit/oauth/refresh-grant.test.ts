import { beforeEach, describe, expect, it } from 'vitest';
import { tokenHash } from '../../../src/crypto/fingerprint.js';
import type { GrantContext } from '../../../src/oauth/grants/context.js';
import { refreshGrant } from '../../../src/oauth/grants/refresh-token.js';
import { newRefreshToken } from '../../../src/oauth/tokens.js';
import { createManualClock, type ManualClock } from '../../../src/ops/clock.js';
import { createMemoryStores } from '../../../src/stores/memory/index.js';
import type { Stores } from '../../../src/stores/ports.js';
import { aliceGrant, grantContext, PUBLIC_CLIENT } from '../../helpers/grant-context.js';
import { isOAuthErrorWithReason } from './oauth-error-helper.js';

/** Refresh rotation with the clock in hand: the grace window is a bound, not a formality. */
describe('refreshGrant', () => {
  let clock: ManualClock;
  let stores: Stores;
  let context: GrantContext;
  let first: string;

  beforeEach(async () => {
    clock = createManualClock();
    stores = createMemoryStores();
    context = await grantContext(stores, clock);
    first = newRefreshToken();
    const now = clock.now();
    await stores.grants.create(aliceGrant('grt_1', now), tokenHash(first));
  });

  const refresh = (refreshToken: string) =>
    refreshGrant(context, PUBLIC_CLIENT, { refreshToken, scope: undefined, resource: undefined });

  it('answers a retry of the replaced token within the grace window with the identical response', async () => {
    const rotated = await refresh(first);
    clock.advance(30_000);
    expect(await refresh(first)).toEqual(rotated);
  });

  // req: RFC9700-4.14.2-REFRESH-ROTATION
  it('treats the replaced token after the grace window as reuse: the family is revoked', async () => {
    const rotated = await refresh(first);
    clock.advance(30_001);
    await expect(refresh(first)).rejects.toSatisfy(
      isOAuthErrorWithReason('invalid_grant', 'refresh_token_reused'),
    );
    await expect(refresh(rotated.refresh_token as string)).rejects.toSatisfy(
      isOAuthErrorWithReason('invalid_grant', 'grant_revoked'),
    );
    expect((await stores.grants.get('grt_1', clock.now()))?.revokedAt).toBe(clock.now());
  });
});
