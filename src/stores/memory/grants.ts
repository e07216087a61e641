import { afterPage } from '../list-page.js';
import type { GrantRecord, GrantStore, RefreshTokenRef } from '../ports.js';
import { snapshotPrincipalKey } from '../principal-key.js';
import { sweepLimit } from '../sweep-limit.js';
import { compareBinary, copyJson, type MemoryPort } from './copy.js';
import type { MemoryRevocations } from './revocations.js';

function isLive(grant: GrantRecord, now: number): boolean {
  return grant.expiresAt > now;
}

function byCreatedAtThenId(a: GrantRecord, b: GrantRecord): number {
  if (a.createdAt !== b.createdAt) return a.createdAt - b.createdAt;
  return compareBinary(a.id, b.id);
}

/**
 * Grants and every refresh-token hash each one ever issued. A token hash stays findable until its grant
 * is swept, so a reused old generation is still recognised (and its family revoked) after rotation.
 * `revocations` receives each revoked grant's entry in the same synchronous step as the revocation.
 */
export function createMemoryGrantStore(revocations: Pick<MemoryRevocations, 'add'>): MemoryPort<GrantStore> {
  const grants = new Map<string, GrantRecord>();
  const refreshTokens = new Map<string, RefreshTokenRef>();
  const tokenHashesByGrant = new Map<string, Set<string>>();

  const addToken = (tokenHash: string, ref: RefreshTokenRef): void => {
    refreshTokens.set(tokenHash, ref);
    const hashes = tokenHashesByGrant.get(ref.grantId);
    if (hashes === undefined) tokenHashesByGrant.set(ref.grantId, new Set([tokenHash]));
    else hashes.add(tokenHash);
  };

  const assertNewToken = (tokenHash: string): void => {
    if (refreshTokens.has(tokenHash)) throw new Error('A refresh token with this hash already exists.');
  };

  const store: GrantStore = {
    async create(grant, refreshTokenHash) {
      if (grants.has(grant.id)) throw new Error('A grant with this id already exists.');
      if (refreshTokenHash !== undefined) assertNewToken(refreshTokenHash);
      grants.set(grant.id, copyJson(grant));
      if (refreshTokenHash !== undefined) addToken(refreshTokenHash, { grantId: grant.id, generation: 1 });
    },

    async get(id, now) {
      const grant = grants.get(id);
      return grant !== undefined && isLive(grant, now) ? copyJson(grant) : undefined;
    },

    async findRefreshToken(refreshTokenHash) {
      const ref = refreshTokens.get(refreshTokenHash);
      return ref === undefined ? undefined : { ...ref };
    },

    async rotate(id, expectedGeneration, newRefreshTokenHash, rotatedAt, graceResponse) {
      const grant = grants.get(id);
      if (
        grant === undefined ||
        grant.revokedAt !== undefined ||
        grant.generation !== expectedGeneration ||
        !isLive(grant, rotatedAt)
      ) {
        return undefined;
      }
      assertNewToken(newRefreshTokenHash);
      const { graceResponse: _previous, ...rest } = grant;
      const rotated: GrantRecord = {
        ...rest,
        generation: expectedGeneration + 1,
        rotatedAt,
        ...(graceResponse === undefined ? {} : { graceResponse }),
      };
      grants.set(id, rotated);
      addToken(newRefreshTokenHash, { grantId: id, generation: rotated.generation });
      return copyJson(rotated);
    },

    async revoke(id, now, revocationExpiresAt) {
      revocations.add({ kind: 'grant', id, revokedAt: now, expiresAt: revocationExpiresAt });
      const grant = grants.get(id);
      if (grant === undefined || grant.revokedAt !== undefined) return undefined;
      const revoked: GrantRecord = { ...grant, revokedAt: now };
      grants.set(id, revoked);
      return copyJson(revoked);
    },

    async revokeByPrincipal(principalKey, now, revocationExpiresAt) {
      const revoked: GrantRecord[] = [];
      for (const grant of grants.values()) {
        if (grant.revokedAt !== undefined || snapshotPrincipalKey(grant.principal) !== principalKey) continue;
        const next: GrantRecord = { ...grant, revokedAt: now };
        grants.set(grant.id, next);
        revocations.add({ kind: 'grant', id: grant.id, revokedAt: now, expiresAt: revocationExpiresAt });
        revoked.push(next);
      }
      return revoked.sort(byCreatedAtThenId).map(copyJson);
    },

    async listByPrincipal(principalKey, now) {
      const live: GrantRecord[] = [];
      for (const grant of grants.values()) {
        if (grant.revokedAt !== undefined || !isLive(grant, now)) continue;
        if (snapshotPrincipalKey(grant.principal) === principalKey) live.push(grant);
      }
      return live.sort(byCreatedAtThenId).map(copyJson);
    },

    async list(now, page) {
      return afterPage(
        [...grants.values()].filter((grant) => isLive(grant, now)),
        page,
        (grant) => grant.id,
      ).map(copyJson);
    },

    async deleteExpired(now, limit) {
      const max = sweepLimit(limit);
      let removed = 0;
      for (const [id, grant] of grants) {
        if (removed >= max) break;
        if (isLive(grant, now)) continue;
        grants.delete(id);
        for (const tokenHash of tokenHashesByGrant.get(id) ?? []) refreshTokens.delete(tokenHash);
        tokenHashesByGrant.delete(id);
        removed += 1;
      }
      return removed;
    },
  };

  return {
    store,
    clear() {
      grants.clear();
      refreshTokens.clear();
      tokenHashesByGrant.clear();
    },
  };
}
