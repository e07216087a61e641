import { OAuthError } from '../errors/oauth-error.js';
import type { BearerVerifier } from '../guard/bearer.js';
import type { Principal } from '../identity/principal.js';
import type { Clock } from '../ops/clock.js';
import type { Logger } from '../ops/logger.js';
import type { RevocationRecord, RevocationStore } from '../stores/ports.js';

/** The claim that names the grant (the user's authorization of one client) an access token belongs to. */
export const GRANT_CLAIM = 'sid';

/**
 * Revoked access tokens, consulted on every request to the MCP endpoint. The set lives in memory
 * (a lookup is two map reads) and in the store; other instances pick up entries by polling the store, so
 * a revocation holds everywhere within one poll interval and on this instance at once.
 */
export interface RevocationList {
  /** Records the revocation in the store and in memory; returns once both hold it. */
  revoke(record: RevocationRecord): Promise<void>;
  /** Whether a token with these claims is revoked (by its grant or its own `jti`). */
  isRevoked(claims: Readonly<Record<string, unknown>>): boolean;
  /** Loads entries other instances added since the last load. */
  refresh(): Promise<void>;
  /** Starts polling the store every `intervalMs`. */
  start(intervalMs: number): void;
  stop(): void;
}

export function createRevocationList(options: {
  store: RevocationStore;
  clock: Clock;
  logger: Logger;
}): RevocationList {
  const { store, clock, logger } = options;
  const entries = new Map<string, number>();
  // Entries are polled from a little before the last poll: a slow writer's row must not be skipped.
  const OVERLAP_MS = 60_000;
  let loadedUntil = 0;
  let timer: NodeJS.Timeout | undefined;

  const keyOf = (kind: RevocationRecord['kind'], id: string) => `${kind}:${id}`;
  const remember = (record: RevocationRecord) => {
    const key = keyOf(record.kind, record.id);
    entries.set(key, Math.max(entries.get(key) ?? 0, record.expiresAt));
  };
  const active = (key: string): boolean => {
    const expiresAt = entries.get(key);
    if (expiresAt === undefined) return false;
    if (expiresAt <= clock.now()) {
      entries.delete(key);
      return false;
    }
    return true;
  };

  const list: RevocationList = {
    async revoke(record) {
      remember(record);
      await store.add(record);
    },
    isRevoked(claims) {
      const grant = claims[GRANT_CLAIM];
      const jti = claims.jti;
      return (
        (typeof grant === 'string' && active(keyOf('grant', grant))) ||
        (typeof jti === 'string' && active(keyOf('jti', jti)))
      );
    },
    async refresh() {
      const now = clock.now();
      const since = Math.max(0, loadedUntil - OVERLAP_MS);
      for (const record of await store.listSince(since, now)) remember(record);
      loadedUntil = now;
    },
    start(intervalMs) {
      if (timer !== undefined) return;
      timer = setInterval(() => {
        list.refresh().catch((error: unknown) => logger.warn({ err: error }, 'revocation poll failed'));
      }, intervalMs);
      timer.unref();
    },
    stop() {
      if (timer !== undefined) clearInterval(timer);
      timer = undefined;
    },
  };
  return list;
}

/** Wraps the guard's verifier so tokens Gatehouse issued are refused once revoked, cache or not. */
export function withRevocation(
  verifier: BearerVerifier,
  revocations: RevocationList,
  isOwnToken: (principal: Principal) => boolean,
): BearerVerifier {
  return {
    async verify(token) {
      const result = await verifier.verify(token);
      if (isOwnToken(result.principal) && revocations.isRevoked(result.principal.claims)) {
        throw new OAuthError('invalid_token', { reason: 'token_revoked', description: 'token revoked' });
      }
      return result;
    },
  };
}
