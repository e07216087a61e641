import type { Logger } from './logger.js';

/** What happened, for the audit trail. Never carries a token, code, secret or password. */
export interface AuditEvent {
  /** Dotted event name: `oauth.token.issued`, `oauth.refresh.reuse`, `login.failed`, … */
  readonly type: string;
  readonly outcome: 'success' | 'failure';
  /** The RFC error or stable code on failure. */
  readonly error?: string;
  /** The sub-code naming the failed check (`pkce_mismatch`, `code_replayed`, …). */
  readonly reason?: string;
  readonly clientId?: string;
  /** `idp#subject` of the user concerned, when known. */
  readonly principal?: string;
  readonly grantId?: string;
  readonly ip?: string;
  readonly detail?: Readonly<Record<string, string | number | boolean>>;
}

export interface Audit {
  record(event: AuditEvent): void;
}

/** Audit events as structured log lines (`audit: true`), ready for a log pipeline to keep apart. */
export function createLogAudit(logger: Logger): Audit {
  const audit = logger.child({ audit: true });
  return {
    record(event) {
      if (event.outcome === 'failure') audit.warn(event, event.type);
      else audit.info(event, event.type);
    },
  };
}
