/**
 * Every key the Redis adapter writes, all under one prefix (default `gatehouse:`). A record's key is a
 * singular kind and its id (`session:<id>`); an index's key starts with a plural kind
 * (`sessions:by-deadline`), so no record key can ever equal an index key. Where a key holds two free-form
 * parts, the first is percent-encoded (`encodeURIComponent`) so that neither can spill into the other; a
 * last part is written as it is.
 *
 * | key                                    | type   | TTL                                            |
 * | -------------------------------------- | ------ | ---------------------------------------------- |
 * | `session:<id>`                         | hash   | effective deadline − now + margin, moved on touch |
 * | `sessions:by-principal:<principalKey>` | set    | at least its longest-lived member's            |
 * | `sessions:by-deadline`                 | zset   | at least its longest-lived member's            |
 * | `sessions:by-creation`                 | zset   | at least its longest-lived member's            |
 * | `user:<id>`                            | hash   | none                                           |
 * | `users:by-name`                        | hash   | none (username → id)                           |
 * | `client:<clientId>`                    | string | expiresAt − createdAt + margin; none without expiresAt |
 * | `clients:by-creation`, `…:by-expiry`   | zset   | none (pruned on registration, see `clients.ts`) |
 * | `code:<codeHash>`                      | hash   | expiresAt − createdAt + margin                 |
 * | `codes:by-expiry`                      | zset   | at least its longest-lived member's            |
 * | `grant:<id>`                           | hash   | expiresAt − createdAt + margin                 |
 * | `grant-tokens:<grantId>`               | set    | the grant's remaining TTL                      |
 * | `refresh-token:<tokenHash>`            | hash   | the grant's remaining TTL                      |
 * | `grants:by-principal:<principalKey>`   | set    | at least its longest-lived member's            |
 * | `grants:by-expiry`                     | zset   | at least its longest-lived member's            |
 * | `grants:by-creation`                   | zset   | at least its longest-lived member's            |
 * | `revocation:<kind>:<id>`               | hash   | expiresAt − revokedAt + margin                 |
 * | `revocations:by-time`, `…:by-expiry`   | zset   | at least its longest-lived member's            |
 * | `revocations:watermark`                | string | none                                           |
 * | `consent:<principalKey*>:<clientId>`   | string | expiresAt − grantedAt + margin                 |
 * | `consents:by-principal:<principalKey>` | set    | at least its longest-lived member's            |
 * | `upstream-token:<principalKey*>:<provider>` | hash | none                                        |
 * | `signing-key:<kid>`                    | string | expiresAt − createdAt + margin                 |
 * | `signing-keys:by-expiry`               | zset   | at least its longest-lived member's            |
 * | `ephemeral:<namespace*>:<key>`         | hash   | expiresAt − the server's time + margin (see `ephemeral.ts`) |
 * | `ephemerals:by-expiry`                 | zset   | at least its longest-lived member's            |
 * | `counter:<key>`                        | hash   | windowMs + margin                              |
 * | `rate-limit:<limiter prefix>:<key>`    | string | the window (`rate-limiter-flexible`)           |
 * | `audits:entries`                       | hash   | none (id → entry JSON; retention deletes)      |
 * | `audits:by-time`                       | zset   | none (see `audit.ts`)                          |
 * | `audits:by-subject:<subject>`          | zset   | none                                           |
 * | `audits:by-type:<type>`                | zset   | none                                           |
 * | `audits:types`                         | set    | none                                           |
 * | `indexes:by-creation`                  | string | none (set once the creation indexes hold every record) |
 * | `bus`                                  | pub/sub channel | —                                     |
 *
 * `*` marks a percent-encoded part; the margin is {@link TTL_MARGIN_MS}. Each value here is a key, or the
 * stem a record's id is appended to (in TypeScript and, passed as an argument, in the Lua scripts).
 */
export interface KeySpace {
  readonly prefix: string;
  readonly session: string;
  readonly sessionsByPrincipal: string;
  readonly sessionsByDeadline: string;
  readonly sessionsByCreation: string;
  readonly user: string;
  readonly usersByName: string;
  readonly client: string;
  readonly clientsByCreation: string;
  readonly clientsByExpiry: string;
  readonly code: string;
  readonly codesByExpiry: string;
  readonly grant: string;
  readonly grantTokens: string;
  readonly refreshToken: string;
  readonly grantsByPrincipal: string;
  readonly grantsByExpiry: string;
  readonly grantsByCreation: string;
  readonly revocation: string;
  readonly revocationsByTime: string;
  readonly revocationsByExpiry: string;
  readonly revocationWatermark: string;
  /** The stem of one principal's consents; append the client id. */
  consent(principalKey: string): string;
  readonly consentsByPrincipal: string;
  /** The stem of one principal's upstream tokens; append the provider. */
  upstreamToken(principalKey: string): string;
  readonly signingKey: string;
  readonly signingKeysByExpiry: string;
  readonly ephemeral: string;
  readonly ephemeralsByExpiry: string;
  readonly counter: string;
  readonly rateLimit: string;
  readonly auditEntries: string;
  readonly auditsByTime: string;
  /** The stem of one subject's audit index; append the subject. */
  readonly auditsBySubject: string;
  /** The stem of one type's audit index; append the type. */
  readonly auditsByType: string;
  readonly auditTypes: string;
  readonly bus: string;
}

/** The keys of the stores under `prefix`. */
export function keySpace(prefix: string): KeySpace {
  const stem = (kind: string): string => `${prefix}${kind}:`;
  return {
    prefix,
    session: stem('session'),
    sessionsByPrincipal: stem('sessions:by-principal'),
    sessionsByDeadline: `${prefix}sessions:by-deadline`,
    sessionsByCreation: `${prefix}sessions:by-creation`,
    user: stem('user'),
    usersByName: `${prefix}users:by-name`,
    client: stem('client'),
    clientsByCreation: `${prefix}clients:by-creation`,
    clientsByExpiry: `${prefix}clients:by-expiry`,
    code: stem('code'),
    codesByExpiry: `${prefix}codes:by-expiry`,
    grant: stem('grant'),
    grantTokens: stem('grant-tokens'),
    refreshToken: stem('refresh-token'),
    grantsByPrincipal: stem('grants:by-principal'),
    grantsByExpiry: `${prefix}grants:by-expiry`,
    grantsByCreation: `${prefix}grants:by-creation`,
    revocation: stem('revocation'),
    revocationsByTime: `${prefix}revocations:by-time`,
    revocationsByExpiry: `${prefix}revocations:by-expiry`,
    revocationWatermark: `${prefix}revocations:watermark`,
    consent: (principalKey) => `${stem('consent')}${encodeURIComponent(principalKey)}:`,
    consentsByPrincipal: stem('consents:by-principal'),
    upstreamToken: (principalKey) => `${stem('upstream-token')}${encodeURIComponent(principalKey)}:`,
    signingKey: stem('signing-key'),
    signingKeysByExpiry: `${prefix}signing-keys:by-expiry`,
    ephemeral: stem('ephemeral'),
    ephemeralsByExpiry: `${prefix}ephemerals:by-expiry`,
    counter: stem('counter'),
    rateLimit: stem('rate-limit'),
    auditEntries: `${prefix}audits:entries`,
    auditsByTime: `${prefix}audits:by-time`,
    auditsBySubject: stem('audits:by-subject'),
    auditsByType: stem('audits:by-type'),
    auditTypes: `${prefix}audits:types`,
    bus: `${prefix}bus`,
  };
}

/** The member naming an ephemeral record in `ephemerals:by-expiry`; its key is `ephemeral` + member. */
export function ephemeralMember(namespace: string, key: string): string {
  return `${encodeURIComponent(namespace)}:${key}`;
}
