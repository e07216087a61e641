import type { ClusterMessage } from './ports.js';

/**
 * The message in a bus payload (PostgreSQL `NOTIFY`, Redis `PUBLISH`), or `undefined` when the payload is
 * not JSON, not an object, of an unknown type (a newer instance's message, a stray publisher) or missing a
 * field its type needs: whoever can publish on the channel must not be able to make an instance act on
 * something malformed, or throw inside the client's event emitter. Only the fields of the type
 * are kept, in a new frozen object every listener may share.
 */
export function parseClusterMessage(payload: string | undefined): ClusterMessage | undefined {
  if (payload === undefined) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(payload);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const fields = value as Record<string, unknown>;
  switch (fields.type) {
    case 'revocations.changed':
    case 'signing-keys.changed':
      return Object.freeze({ type: fields.type });
    case 'session.ended': {
      const { sessionId, reason } = fields;
      if (typeof sessionId !== 'string' || typeof reason !== 'string') return undefined;
      return Object.freeze({ type: fields.type, sessionId, reason });
    }
    default:
      return undefined;
  }
}
