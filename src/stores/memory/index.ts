import type { Stores } from '../ports.js';
import { memoryRateLimiter } from '../rate-limiter.js';
import { createMemoryAuditStore } from './audit.js';
import { createMemoryClientStore } from './clients.js';
import { createMemoryAuthorizationCodeStore } from './codes.js';
import { createMemoryConsentStore } from './consents.js';
import { createMemoryCounterStore } from './counters.js';
import { createMemoryEphemeralStore } from './ephemeral.js';
import { createMemoryGrantStore } from './grants.js';
import { createMemoryRevocationStore } from './revocations.js';
import { createMemorySessionStore } from './sessions.js';
import { createMemorySigningKeyStore } from './signing-keys.js';
import { createMemoryUpstreamTokenStore } from './upstream-tokens.js';
import { createMemoryUserStore } from './users.js';

/**
 * Stores that live in this process only: every restart loses every session, user, client, grant and
 * signing key. For tests and single-process development; production deployments should use SQLite,
 * Postgres or Redis.
 *
 * Every `deleteExpired` scans its whole map (O(n)); fine for the sizes a single process holds in memory.
 *
 * @example
 * ```ts
 * const stores = createMemoryStores();
 * await stores.sessions.create(record, { max: 5 }, clock.now());
 * ```
 */
export function createMemoryStores(): Stores {
  const sessions = createMemorySessionStore();
  const users = createMemoryUserStore();
  const clients = createMemoryClientStore();
  const codes = createMemoryAuthorizationCodeStore();
  const revocations = createMemoryRevocationStore();
  const grants = createMemoryGrantStore(revocations);
  const consents = createMemoryConsentStore();
  const upstreamTokens = createMemoryUpstreamTokenStore();
  const signingKeys = createMemorySigningKeyStore();
  const ephemeral = createMemoryEphemeralStore();
  const counters = createMemoryCounterStore();
  const audit = createMemoryAuditStore();
  const ports = [
    sessions,
    users,
    clients,
    codes,
    grants,
    revocations,
    consents,
    upstreamTokens,
    signingKeys,
    ephemeral,
    counters,
    audit,
  ];
  return {
    kind: 'memory',
    rateLimiter: memoryRateLimiter,
    sessions: sessions.store,
    users: users.store,
    clients: clients.store,
    codes: codes.store,
    grants: grants.store,
    revocations: revocations.store,
    consents: consents.store,
    upstreamTokens: upstreamTokens.store,
    signingKeys: signingKeys.store,
    ephemeral: ephemeral.store,
    counters: counters.store,
    audit: audit.store,
    async close() {
      for (const port of ports) port.clear();
    },
  };
}
