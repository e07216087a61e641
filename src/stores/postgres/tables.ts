import pg from 'pg';

/** The table names of the adapter, as they are spelled inside the schema. */
const TABLE_NAMES = {
  schemaMigrations: 'schema_migrations',
  sessions: 'sessions',
  users: 'users',
  clients: 'clients',
  authorizationCodes: 'authorization_codes',
  grants: 'grants',
  refreshTokens: 'refresh_tokens',
  revocations: 'revocations',
  revocationWatermark: 'revocation_watermark',
  consents: 'consents',
  upstreamTokens: 'upstream_tokens',
  signingKeys: 'signing_keys',
  ephemeralRecords: 'ephemeral_records',
  counters: 'counters',
  rateLimits: 'rate_limits',
  auditLog: 'audit_log',
} as const;

/** Each table as `"schema"."table"`, quoted and qualified, ready to go into SQL text. */
export type Tables = { readonly [K in keyof typeof TABLE_NAMES]: string };

/** The unqualified name of the rate limiter's table (`rate-limiter-flexible` qualifies it itself). */
export const RATE_LIMITS_TABLE = TABLE_NAMES.rateLimits;

/**
 * Every table of the adapter qualified with `schema`. Names are quoted with `pg.escapeIdentifier`, so any
 * schema name is safe in SQL text, and the adapter never depends on the connection's `search_path` (a
 * caller's pool may be shared with code that sets its own).
 */
export function qualifiedTables(schema: string): Tables {
  const quotedSchema = pg.escapeIdentifier(schema);
  const entries = Object.entries(TABLE_NAMES).map(([key, name]) => [
    key,
    `${quotedSchema}.${pg.escapeIdentifier(name)}`,
  ]);
  return Object.fromEntries(entries) as Tables;
}
