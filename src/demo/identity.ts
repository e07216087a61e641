/** Who is calling the demo server, as Gatehouse vouched for it. */
export interface DemoIdentity {
  /** Stable user id (the verified `sub`); notes are keyed by it. */
  readonly userId: string;
  readonly email?: string;
  readonly scopes: readonly string[];
  /** The Gatehouse issuer that vouched for the user. */
  readonly issuer?: string;
  /** The Gatehouse session the call belongs to, when known. */
  readonly sessionId?: string;
}

/** The environment variables Gatehouse sets on a stdio child. */
export const IDENTITY_ENV = {
  userId: 'GATEHOUSE_USER_ID',
  email: 'GATEHOUSE_USER_EMAIL',
  scopes: 'GATEHOUSE_SCOPES',
  issuer: 'GATEHOUSE_ISSUER',
  sessionId: 'GATEHOUSE_SESSION_ID',
} as const;

/**
 * Reads the identity Gatehouse passed to a stdio child. Returns `undefined` when no user id is set
 * (or it is blank): the demo then treats every caller as anonymous rather than inventing a user.
 *
 * @example
 * ```ts
 * identityFromEnv({ GATEHOUSE_USER_ID: 'alice', GATEHOUSE_SCOPES: 'notes:read notes:write' });
 * // { userId: 'alice', scopes: ['notes:read', 'notes:write'] }
 * ```
 */
export function identityFromEnv(env: Readonly<Record<string, string | undefined>>): DemoIdentity | undefined {
  const userId = env[IDENTITY_ENV.userId]?.trim();
  if (!userId) return undefined;
  return {
    userId,
    ...optional('email', env[IDENTITY_ENV.email]),
    scopes: splitScopes(env[IDENTITY_ENV.scopes]),
    ...optional('issuer', env[IDENTITY_ENV.issuer]),
    ...optional('sessionId', env[IDENTITY_ENV.sessionId]),
  };
}

/** Splits an RFC 6749 §3.3 space-delimited scope string, dropping empty entries. */
export function splitScopes(scope: string | undefined): string[] {
  return (scope ?? '').split(' ').filter((entry) => entry !== '');
}

function optional<K extends string>(key: K, value: string | undefined): { [P in K]?: string } {
  const trimmed = value?.trim();
  return (trimmed ? { [key]: trimmed } : {}) as { [P in K]?: string };
}
