import type { ResolvedClient } from '../../src/oauth/clients.js';
import type { GrantContext } from '../../src/oauth/grants/context.js';
import { createAccessTokenIssuer } from '../../src/oauth/tokens.js';
import { auditTo } from '../../src/ops/audit.js';
import type { ManualClock } from '../../src/ops/clock.js';
import { silentEvents } from '../../src/ops/events.js';
import { silentLogger } from '../../src/ops/logger.js';
import type { GrantRecord, Stores } from '../../src/stores/ports.js';
import { createKeyStore } from '../../src/tokens/keys.js';
import { createRevocationList } from '../../src/tokens/revocation.js';
import { createTokenSigner } from '../../src/tokens/sign.js';

/** A registered public client allowed both grants, as the grant functions receive it. */
export const PUBLIC_CLIENT = {
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
 * What the token endpoint's grants run with, on `stores` and the manual `clock`: an in-memory signing
 * key, 5-minute access tokens, a day-long refresh family and a 30 s grace window; every account active.
 */
export async function grantContext(stores: Stores, clock: ManualClock): Promise<GrantContext> {
  const keys = await createKeyStore({ clock });
  return {
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
}

/** Alice's day-long grant to {@link PUBLIC_CLIENT}, created at `now`, at the generation of its first refresh token. */
export function aliceGrant(id: string, now: number): GrantRecord {
  return {
    id,
    clientId: PUBLIC_CLIENT.clientId,
    principal: { subject: 'alice', idp: 'local' },
    scopes: [],
    resource: 'https://gh.example/mcp',
    authTime: now,
    createdAt: now,
    expiresAt: now + 86_400_000,
    generation: 1,
    rotatedAt: now,
  };
}
