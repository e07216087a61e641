/**
 * The rows of the SQL adapters (the SQLite and PostgreSQL schemas have the same columns) and their mapping
 * to the records of the ports: one definition per table, for both engines.
 *
 * The engines differ only in how they hand back a JSON column: better-sqlite3 returns the stored text,
 * which the SQLite adapter parses, while `pg` parses a `json` column itself. A row with JSON columns is
 * therefore generic in a {@link JsonMode}, and its mapper takes the engine's {@link JsonReader}. Integer
 * columns are JS numbers on both: the SQLite adapter prepares the statements whose rows it maps with safe
 * integers off (`sqlite/prepare.ts`), and `pg` reads `int8` as a number (`postgres/pool.ts`).
 */
import type {
  AuditEntry,
  AuthorizationCodeRecord,
  ClientRecord,
  ConsentRecord,
  CounterResult,
  GrantRecord,
  PrincipalSnapshot,
  RefreshTokenRef,
  RevocationRecord,
  SessionKind,
  SessionRecord,
  SigningKeyRecord,
  TokenEndpointAuthMethod,
  UpstreamTokenRecord,
  UserRecord,
} from './ports.js';

/**
 * How an engine returns a JSON column: `'text'` as the stored JSON text (better-sqlite3), `'parsed'` as its
 * value (`pg`).
 */
export type JsonMode = 'text' | 'parsed';

/** A JSON column holding a `T`, as an engine of mode `M` returns it. */
export type JsonColumn<T, M extends JsonMode> = M extends 'text' ? string : T;

/** Reads a JSON column of an engine of mode `M` as its value. */
export type JsonReader<M extends JsonMode> = <T>(column: JsonColumn<T, M>) => T;

/**
 * `{ [key]: value }` when the column holds a value, `{}` when it is NULL: optional fields absent on write
 * stay absent on read, never `null`.
 */
export function optionalField<K extends string, V>(key: K, value: V | null): { [P in K]?: V } {
  return (value === null ? {} : { [key]: value }) as { [P in K]?: V };
}

/** A row of `sessions`. */
export interface SessionRow<M extends JsonMode> {
  id: string;
  principal_key: string;
  kind: string;
  created_at: number;
  last_seen_at: number;
  idle_timeout_ms: number;
  idle_expires_at: number;
  absolute_expires_at: number;
  version: number;
  data: JsonColumn<Record<string, unknown>, M>;
}

/** The mapper of `sessions` rows of an engine that reads JSON columns with `readJson`. */
export function sessionRowMapper<M extends JsonMode>(
  readJson: JsonReader<M>,
): (row: SessionRow<M>) => SessionRecord {
  return (row) => ({
    id: row.id,
    principalKey: row.principal_key,
    kind: row.kind as SessionKind,
    createdAt: row.created_at,
    lastSeenAt: row.last_seen_at,
    idleTimeoutMs: row.idle_timeout_ms,
    idleExpiresAt: row.idle_expires_at,
    absoluteExpiresAt: row.absolute_expires_at,
    version: row.version,
    data: readJson<Record<string, unknown>>(row.data),
  });
}

/** A row of `users`. */
export interface UserRow<M extends JsonMode> {
  id: string;
  username: string;
  email: string | null;
  name: string | null;
  password_hash: string;
  created_at: number;
  updated_at: number;
  disabled_at: number | null;
  credentials_changed_at: number;
  /** A JSON array, sorted and distinct; `[]` (the column's default) for rows stored before roles existed. */
  roles: JsonColumn<string[], M>;
}

/** The mapper of `users` rows of an engine that reads JSON columns with `readJson`. */
export function userRowMapper<M extends JsonMode>(readJson: JsonReader<M>): (row: UserRow<M>) => UserRecord {
  return (row) => ({
    id: row.id,
    username: row.username,
    ...optionalField('email', row.email),
    ...optionalField('name', row.name),
    passwordHash: row.password_hash,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    ...optionalField('disabledAt', row.disabled_at),
    credentialsChangedAt: row.credentials_changed_at,
    roles: readJson<string[]>(row.roles),
  });
}

/** A row of `clients`. */
export interface ClientRow<M extends JsonMode> {
  client_id: string;
  secret_hash: string | null;
  token_endpoint_auth_method: string;
  redirect_uris: JsonColumn<string[], M>;
  grant_types: JsonColumn<string[], M>;
  response_types: JsonColumn<string[], M>;
  application_type: string;
  client_name: string | null;
  client_uri: string | null;
  logo_uri: string | null;
  scope: string | null;
  metadata: JsonColumn<Record<string, unknown>, M>;
  created_at: number;
  expires_at: number | null;
  approved_at: number | null;
}

/** The mapper of `clients` rows of an engine that reads JSON columns with `readJson`. */
export function clientRowMapper<M extends JsonMode>(
  readJson: JsonReader<M>,
): (row: ClientRow<M>) => ClientRecord {
  return (row) => ({
    clientId: row.client_id,
    ...optionalField('secretHash', row.secret_hash),
    tokenEndpointAuthMethod: row.token_endpoint_auth_method as TokenEndpointAuthMethod,
    redirectUris: readJson<string[]>(row.redirect_uris),
    grantTypes: readJson<string[]>(row.grant_types),
    responseTypes: readJson<string[]>(row.response_types),
    applicationType: row.application_type as ClientRecord['applicationType'],
    ...optionalField('clientName', row.client_name),
    ...optionalField('clientUri', row.client_uri),
    ...optionalField('logoUri', row.logo_uri),
    ...optionalField('scope', row.scope),
    metadata: readJson<Record<string, unknown>>(row.metadata),
    createdAt: row.created_at,
    ...optionalField('expiresAt', row.expires_at),
    ...optionalField('approvedAt', row.approved_at),
  });
}

/** A row of `authorization_codes`; `consumed_at` stays in the table, out of the record. */
export interface CodeRow<M extends JsonMode> {
  code_hash: string;
  grant_id: string;
  client_id: string;
  redirect_uri: string;
  code_challenge: string;
  resource: string;
  scopes: JsonColumn<string[], M>;
  principal: JsonColumn<PrincipalSnapshot, M>;
  auth_time: number;
  created_at: number;
  expires_at: number;
  consumed_at: number | null;
}

/** The mapper of `authorization_codes` rows of an engine that reads JSON columns with `readJson`. */
export function codeRowMapper<M extends JsonMode>(
  readJson: JsonReader<M>,
): (row: CodeRow<M>) => AuthorizationCodeRecord {
  return (row) => ({
    codeHash: row.code_hash,
    grantId: row.grant_id,
    clientId: row.client_id,
    redirectUri: row.redirect_uri,
    codeChallenge: row.code_challenge,
    resource: row.resource,
    scopes: readJson<string[]>(row.scopes),
    principal: readJson<PrincipalSnapshot>(row.principal),
    authTime: row.auth_time,
    createdAt: row.created_at,
    expiresAt: row.expires_at,
  });
}

/** A row of `grants`; `principal_key` is derived from `principal`, for listing by principal. */
export interface GrantRow<M extends JsonMode> {
  id: string;
  client_id: string;
  principal_key: string;
  principal: JsonColumn<PrincipalSnapshot, M>;
  scopes: JsonColumn<string[], M>;
  resource: string;
  auth_time: number;
  created_at: number;
  expires_at: number;
  revoked_at: number | null;
  generation: number;
  rotated_at: number;
  grace_response: string | null;
}

/** The mapper of `grants` rows of an engine that reads JSON columns with `readJson`. */
export function grantRowMapper<M extends JsonMode>(
  readJson: JsonReader<M>,
): (row: GrantRow<M>) => GrantRecord {
  return (row) => ({
    id: row.id,
    clientId: row.client_id,
    principal: readJson<PrincipalSnapshot>(row.principal),
    scopes: readJson<string[]>(row.scopes),
    resource: row.resource,
    authTime: row.auth_time,
    createdAt: row.created_at,
    expiresAt: row.expires_at,
    ...optionalField('revokedAt', row.revoked_at),
    generation: row.generation,
    rotatedAt: row.rotated_at,
    ...optionalField('graceResponse', row.grace_response),
  });
}

/** The columns of `refresh_tokens` a lookup by token hash reads. */
export interface RefreshTokenRow {
  grant_id: string;
  generation: number;
}

/** Where the refresh token of a `refresh_tokens` row sits in its family. */
export function toRefreshTokenRef(row: RefreshTokenRow): RefreshTokenRef {
  return { grantId: row.grant_id, generation: row.generation };
}

/** A row of `revocations`. */
export interface RevocationRow {
  kind: string;
  id: string;
  revoked_at: number;
  expires_at: number;
}

/** The record of a `revocations` row. */
export function toRevocationRecord(row: RevocationRow): RevocationRecord {
  return {
    kind: row.kind as RevocationRecord['kind'],
    id: row.id,
    revokedAt: row.revoked_at,
    expiresAt: row.expires_at,
  };
}

/** A row of `consents`. */
export interface ConsentRow<M extends JsonMode> {
  principal_key: string;
  client_id: string;
  scopes: JsonColumn<string[], M>;
  granted_at: number;
  expires_at: number;
}

/** The mapper of `consents` rows of an engine that reads JSON columns with `readJson`. */
export function consentRowMapper<M extends JsonMode>(
  readJson: JsonReader<M>,
): (row: ConsentRow<M>) => ConsentRecord {
  return (row) => ({
    principalKey: row.principal_key,
    clientId: row.client_id,
    scopes: readJson<string[]>(row.scopes),
    grantedAt: row.granted_at,
    expiresAt: row.expires_at,
  });
}

/** A row of `upstream_tokens`. */
export interface UpstreamTokenRow {
  principal_key: string;
  provider: string;
  ciphertext: string;
  access_expires_at: number | null;
  updated_at: number;
  version: number;
}

/** The record of an `upstream_tokens` row. */
export function toUpstreamTokenRecord(row: UpstreamTokenRow): UpstreamTokenRecord {
  return {
    principalKey: row.principal_key,
    provider: row.provider,
    ciphertext: row.ciphertext,
    ...optionalField('accessExpiresAt', row.access_expires_at),
    updatedAt: row.updated_at,
    version: row.version,
  };
}

/** A row of `signing_keys`. */
export interface SigningKeyRow<M extends JsonMode> {
  kid: string;
  alg: string;
  public_jwk: JsonColumn<Record<string, unknown>, M>;
  private_jwk_ciphertext: string;
  created_at: number;
  retires_at: number;
  expires_at: number;
}

/** The mapper of `signing_keys` rows of an engine that reads JSON columns with `readJson`. */
export function signingKeyRowMapper<M extends JsonMode>(
  readJson: JsonReader<M>,
): (row: SigningKeyRow<M>) => SigningKeyRecord {
  return (row) => ({
    kid: row.kid,
    alg: row.alg,
    publicJwk: readJson<Record<string, unknown>>(row.public_jwk),
    privateJwkCiphertext: row.private_jwk_ciphertext,
    createdAt: row.created_at,
    retiresAt: row.retires_at,
    expiresAt: row.expires_at,
  });
}

/** The columns of `counters` an increment or a peek reads. */
export interface CounterRow {
  count: number;
  reset_at: number;
}

/** The count and window end of a `counters` row. */
export function toCounterResult(row: CounterRow): CounterResult {
  return { count: row.count, resetAt: row.reset_at };
}

/** A row of `audit_log`. */
export interface AuditRow<M extends JsonMode> {
  id: string;
  at: number;
  type: string;
  outcome: string | null;
  subject: string | null;
  principal: string | null;
  client_id: string | null;
  request_id: string | null;
  ip: string | null;
  event: JsonColumn<Record<string, unknown>, M>;
}

/** The mapper of `audit_log` rows of an engine that reads JSON columns with `readJson`. */
export function auditRowMapper<M extends JsonMode>(
  readJson: JsonReader<M>,
): (row: AuditRow<M>) => AuditEntry {
  return (row) => ({
    id: row.id,
    at: row.at,
    type: row.type,
    ...optionalField('outcome', row.outcome),
    ...optionalField('subject', row.subject),
    ...optionalField('principal', row.principal),
    ...optionalField('clientId', row.client_id),
    ...optionalField('requestId', row.request_id),
    ...optionalField('ip', row.ip),
    event: readJson<Record<string, unknown>>(row.event),
  });
}

/** The columns of `audit_log` for `entry`, as named parameters, in the order of {@link AUDIT_COLUMNS}. */
export function auditColumns(entry: AuditEntry): {
  id: string;
  at: number;
  type: string;
  outcome: string | null;
  subject: string | null;
  principal: string | null;
  clientId: string | null;
  requestId: string | null;
  ip: string | null;
  event: string;
} {
  return {
    id: entry.id,
    at: entry.at,
    type: entry.type,
    outcome: entry.outcome ?? null,
    subject: entry.subject ?? null,
    principal: entry.principal ?? null,
    clientId: entry.clientId ?? null,
    requestId: entry.requestId ?? null,
    ip: entry.ip ?? null,
    event: JSON.stringify(entry.event),
  };
}

/** The columns of `audit_log`, in the order {@link auditColumns} returns their values. */
export const AUDIT_COLUMNS = [
  'id',
  'at',
  'type',
  'outcome',
  'subject',
  'principal',
  'client_id',
  'request_id',
  'ip',
  'event',
] as const;
