import type { SessionRecord } from './ports.js';

/** A session as adapters write it: every field flat, `data` as JSON text. */
export interface SessionFields extends Omit<SessionRecord, 'data'> {
  readonly data: string;
}

/**
 * The fields of `record` to store — exactly the port's fields, `data` serialised — so what an adapter
 * writes (a SQLite row, a Redis hash, the memory adapter's copy) never carries anything else.
 */
export function sessionFields(record: SessionRecord): SessionFields {
  return {
    id: record.id,
    principalKey: record.principalKey,
    kind: record.kind,
    createdAt: record.createdAt,
    lastSeenAt: record.lastSeenAt,
    idleTimeoutMs: record.idleTimeoutMs,
    idleExpiresAt: record.idleExpiresAt,
    absoluteExpiresAt: record.absoluteExpiresAt,
    version: record.version,
    data: JSON.stringify(record.data),
  };
}
