import type { AuthEvent, EventBus, GatehouseEvent } from './events.js';
import type { Logger } from './logger.js';

/** Where the authorization server reports what happened: onto the event stream. */
export interface Audit {
  record(event: AuthEvent): void;
}

/** The authorization server's view of the event stream. */
export function auditTo(events: EventBus): Audit {
  return { record: (event) => events.emit(event) };
}

/** Events that mean something was refused or went wrong: logged at `warn`. */
function isFailure(event: GatehouseEvent): boolean {
  switch (event.type) {
    case 'ratelimit.rejected':
    case 'upstream.failed':
      return true;
    case 'tool.called':
      return event.outcome === 'failed';
    case 'session.opened':
    case 'session.ended':
    case 'guard.refused':
    case 'upstream.started':
    case 'account.revoked':
      return false;
    default:
      return event.outcome === 'failure';
  }
}

/**
 * The audit trail as structured log lines (`audit: true`, the event's fields, `msg` = its type), ready
 * for a log pipeline to keep apart. Returns the unsubscribe function.
 */
export function subscribeAuditLog(events: EventBus, logger: Logger): () => void {
  const audit = logger.child({ audit: true });
  return events.subscribe((event) => {
    if (isFailure(event)) audit.warn(event, event.type);
    else audit.info(event, event.type);
  });
}
