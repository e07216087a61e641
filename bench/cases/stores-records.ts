import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { AuthorizationCodeRecord, GrantRecord, SessionRecord } from '../../src/stores/ports.js';

/*
 * Records for case (e), shaped like the ones the gateway writes: what `SessionManager.open` stores for a
 * Streamable HTTP session (`{ initialize: params }`), a consent page's authorization code, a grant.
 */

/** Sessions per principal in the storage and sweep data sets (the default `sessions.maxPerUser`). */
export const SESSIONS_PER_PRINCIPAL = 10;

/** Idle and absolute lifetimes of the stored sessions: the `sessions` defaults. */
const IDLE_TIMEOUT_MS = 30 * 60_000;
const ABSOLUTE_LIFETIME_MS = 24 * 60 * 60_000;

/** The client's `initialize` params as Claude Code sends them; `{ initialize }` is about 300 bytes of JSON. */
export function sessionData(): Record<string, unknown> {
  return {
    initialize: {
      protocolVersion: '2025-06-18',
      capabilities: { roots: { listChanged: true }, sampling: {}, elicitation: {} },
      clientInfo: {
        name: 'claude-code',
        title: 'Claude Code',
        version: '2.0.14',
        websiteUrl: 'https://docs.anthropic.com/en/docs/claude-code',
      },
    },
  };
}

/** `principalKey()` of the `index`-th bench user: issuer `#` subject, built afresh as a request would. */
export function benchPrincipalKey(run: string, index: number): string {
  return `https://auth.example.test#usr_${run}_${index.toString(36).padStart(6, '0')}`;
}

/** A session id as `newSessionId()` makes them: 256 random bits, base64url. */
export function randomId(): string {
  return randomBytes(32).toString('base64url');
}

/** How many principals a data set of `count` sessions has. */
export function principalCount(count: number): number {
  return Math.max(1, Math.ceil(count / SESSIONS_PER_PRINCIPAL));
}

/**
 * The `index`-th of `count` sessions: established (full idle timeout), of principal `index % principals`,
 * so consecutive inserts (those in flight together) belong to different principals, as on a busy server,
 * and do not queue behind one principal's cap check. `expired` backdates it by two days, so both its
 * deadlines have passed at `now`.
 */
export function sessionRecord(
  run: string,
  index: number,
  count: number,
  now: number,
  expired: boolean,
): SessionRecord {
  const createdAt = expired ? now - 2 * ABSOLUTE_LIFETIME_MS : now;
  return {
    id: randomId(),
    principalKey: benchPrincipalKey(run, index % principalCount(count)),
    kind: 'streamable-http',
    createdAt,
    lastSeenAt: createdAt,
    idleTimeoutMs: IDLE_TIMEOUT_MS,
    idleExpiresAt: createdAt + IDLE_TIMEOUT_MS,
    absoluteExpiresAt: createdAt + ABSOLUTE_LIFETIME_MS,
    version: 1,
    data: sessionData(),
  };
}

/** Lets every bench insert through `create` without meeting the per-principal cap. */
export const NO_CAP = { max: 1_000_000 } as const;

const PRINCIPAL = {
  subject: 'usr_bench',
  idp: 'local',
  email: 'bench@example.test',
  claims: { username: 'bench' },
} as const;

/** A pending authorization code as the consent page stores it; `codeHash` stands in for `tokenHash(code)`. */
export function codeRecord(now: number): AuthorizationCodeRecord {
  return {
    codeHash: randomBytes(32).toString('base64url'),
    grantId: `grt_${randomBytes(16).toString('base64url')}`,
    clientId: 'bench-client',
    redirectUri: 'http://127.0.0.1:33418/callback',
    codeChallenge: randomBytes(32).toString('base64url'),
    resource: 'https://mcp.example.test/mcp',
    scopes: ['mcp:tools', 'offline_access'],
    principal: PRINCIPAL,
    authTime: now,
    createdAt: now,
    expiresAt: now + 10 * 60_000,
  };
}

/** A grant with its first refresh token (generation 1 is inserted with it by `grants.create`). */
export function grantRecord(now: number): GrantRecord {
  return {
    id: `grt_${randomBytes(16).toString('base64url')}`,
    clientId: 'bench-client',
    principal: PRINCIPAL,
    scopes: ['mcp:tools', 'offline_access'],
    resource: 'https://mcp.example.test/mcp',
    authTime: now,
    createdAt: now,
    expiresAt: now + 30 * 24 * 60 * 60_000,
    generation: 1,
    rotatedAt: now,
  };
}

/**
 * Stands in for the sealed grace response stored with every rotation: a token response (ES256 access
 * token, refresh token) encrypted and base64url-encoded, about 900 characters.
 */
export function graceResponse(): string {
  return randomBytes(660).toString('base64url');
}

/** A refresh token's hash, as `tokenHash()` gives it. */
export function tokenHashLike(): string {
  return randomBytes(32).toString('base64url');
}

/**
 * Runs `task(0 … count-1)` with at most `concurrency` in flight, starting none after `deadline` (a
 * `performance.now()` time); resolves to how many ran, rejects on the first failure.
 */
export async function inPool(
  count: number,
  concurrency: number,
  task: (index: number) => Promise<unknown>,
  deadline = Number.POSITIVE_INFINITY,
): Promise<number> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count && performance.now() < deadline) {
      const index = next++;
      await task(index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return next;
}
