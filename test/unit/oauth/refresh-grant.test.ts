import { beforeEach, describe, expect, it } from 'vitest';
import { tokenHash } from '../../../src/crypto/fingerprint.js';
import type { ResolvedClient } from '../../../src/oauth/clients.js';
import type { GrantContext } from '../../../src/oauth/grants/context.js';
import { refreshGrant } from '../../../src/oauth/grants/refresh-token.js';
import { createAccessTokenIssuer, newRefreshToken } from '../../../src/oauth/tokens.js';
import { auditTo } from '../../../src/ops/audit.js';
import { createManualClock, type ManualClock } from '../../../src/ops/clock.js';
import { silentEvents } from '../../../src/ops/events.js';
import { silentLogger } from '../../../src/ops/logger.js';
import { createMemoryStores } from '../../../src/stores/memory/index.js';
import type { Stores } from '../../../src/stores/ports.js';
import { createKeyStore } from '../../../src/tokens/keys.js';
import { createRevocationList } from '../../../src/tokens/revocation.js';
import { createTokenSigner } from '../../../src/tokens/sign.js';
import { isOAuthErrorWithReason } from './oauth-error-helper.js';

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

/** Refresh rotation with the clock in hand: the grace window is a bound, not a formality. */
describe('refreshGrant', () => {
  let clock: ManualClock;
  let stores: Stores;
  let context: GrantContext;
  let first: string;

  beforeEach(async () => {
    clock = createManualClock();
    stores = createMemoryStores();
    const keys = await createKeyStore({ clock });
    context = {
      stores,
      issuer: createAccessTokenIssuer({
        signer: createTokenSigner({ keys, issuer: 'https://gh.example/', clock }),
        ttlSeconds: 300,
      }),
      revocations: createRevocationList({ store: stores.revocations, clock, logger: silentLogger }),
      audit: auditTo(silentEvents),
      accountActive: async () => true,
      clock,
      accessTokenTtlSeconds: 300,
      refreshTokenTtlSeconds: 86_400,
      refreshGraceSeconds: 30,
    };
    first = newRefreshToken();
    const now = clock.now();
    await stores.grants.create(
      {
        id: 'grt_1',
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
  });

  const refresh = (refreshToken: string) =>
    refreshGrant(context, CLIENT, { refreshToken, scope: undefined, resource: undefined });

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
