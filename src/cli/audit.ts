import type { Command } from 'commander';
import type { AdminAuditEntry, AdminAuditFilter, AdminService } from '../admin/service.js';
import {
  exitWithUsage,
  formatTable,
  type JsonFlags,
  parseLimit,
  shortTime,
  UsageError,
  withAdmin,
  withConfigFlags,
} from './admin-command.js';

interface AuditFlags extends JsonFlags {
  user?: string;
  event?: string;
  since?: string;
  until?: string;
  limit?: string;
  follow?: boolean;
}

/** How often `--follow` asks the store for new entries, in milliseconds. */
const FOLLOW_POLL_MS = 1_000;
/**
 * How far back each `--follow` poll looks again, in milliseconds: writers stamp an entry when the event
 * happens and store it a moment later, so an entry may land behind one already printed. Ids seen within
 * the window are not printed twice.
 */
const FOLLOW_OVERLAP_MS = 30_000;
const PAGE = 1_000;
/** `--follow` forgets ids outside the overlap window once it remembers more than this many. */
const PRUNE_ABOVE = 4 * PAGE;
const DEFAULT_TABLE_LIMIT = 100;
const DURATION = /^(\d+)(s|m|h|d|w)$/;
const UNIT_MS: Readonly<Record<string, number>> = {
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

/**
 * `gatehouse audit`: the stored audit log. A table newest first by default; `--json` writes JSON lines
 * oldest first (the export format: every matching entry unless `--limit` says otherwise); `--follow` then
 * keeps printing new entries until interrupted. Exit codes: 0 done, 1 refused (unknown user), 2 usage or
 * configuration error.
 */
export function registerAudit(program: Command): void {
  withConfigFlags(
    program
      .command('audit')
      .description('read the audit log: sign-ins, tokens, sessions, tool calls, operator actions')
      .option('--user <username>', 'only entries about this local account')
      .option(
        '--event <type>',
        'only this event type, or every type under a prefix ending in "." (oauth.token.)',
      )
      .option('--since <time>', 'entries at or after an ISO 8601 time, or this long ago (30m, 1h, 7d)')
      .option('--until <time>', 'entries before an ISO 8601 time, or this long ago')
      .option('--limit <n>', 'the newest n entries (1-1000; default 100 for the table, all for --json)')
      .option('--json', 'print JSON lines, oldest first (for export and scripts)')
      .option('--follow', 'keep printing new entries as they are written, until interrupted (Ctrl-C)')
      .exitOverride(exitWithUsage),
  ).action((flags: AuditFlags) =>
    withAdmin(flags, async ({ service }) => {
      const now = Date.now();
      const limit = parseLimit(flags.limit);
      if (flags.follow === true && flags.until !== undefined) {
        throw new UsageError('--follow prints entries as they come; it cannot stop at --until');
      }
      const filter: AdminAuditFilter = {
        ...(flags.user !== undefined && { username: flags.user }),
        ...(flags.event !== undefined && { type: parseEventType(flags.event) }),
        ...(flags.since !== undefined && { since: parseTime('--since', flags.since, now) }),
        ...(flags.until !== undefined && { until: parseTime('--until', flags.until, now) }),
      };
      const printed = new Printed(flags.json === true ? printJsonLine : printLine);
      if (flags.json === true && limit === undefined) {
        for await (const entry of everyEntry(service, filter)) printed.add(entry);
        if (flags.follow === true) await follow(service, filter, printed);
        return;
      }
      const newest = await service.audit.query({
        ...filter,
        order: 'desc',
        limit: limit ?? DEFAULT_TABLE_LIMIT,
      });
      if (flags.follow === true || flags.json === true) {
        for (const entry of [...newest].reverse()) printed.add(entry);
        const floor = newest.length === (limit ?? DEFAULT_TABLE_LIMIT) ? newest.at(-1)?.at : undefined;
        if (flags.follow === true) await follow(service, filter, printed, floor);
        return;
      }
      process.stdout.write(
        newest.length === 0 ? 'no audit entries\n' : formatTable(HEADER, newest.map(cells)),
      );
    }),
  );
}

/** Every matching entry, oldest first, a page at a time. */
async function* everyEntry(service: AdminService, filter: AdminAuditFilter): AsyncGenerator<AdminAuditEntry> {
  let after: AdminAuditFilter['after'];
  for (;;) {
    const page = await service.audit.query({ ...filter, order: 'asc', limit: PAGE, ...(after && { after }) });
    yield* page;
    const last = page.at(-1);
    if (last === undefined || page.length < PAGE) return;
    after = { at: last.at, id: last.id };
  }
}

/**
 * What `--follow` has printed lately: ids within the overlap window of the newest entry, so a poll that
 * looks back again prints nothing twice.
 */
class Printed {
  readonly #seen = new Map<string, number>();
  /** Doubles with what a prune had to keep, so a burst inside the window costs linear time, not quadratic. */
  #pruneAbove = PRUNE_ABOVE;
  newestAt: number | undefined;

  constructor(readonly print: (entry: AdminAuditEntry) => void) {}

  add(entry: AdminAuditEntry): void {
    if (this.#seen.has(entry.id)) return;
    this.#seen.set(entry.id, entry.at);
    this.print(entry);
    this.newestAt = Math.max(this.newestAt ?? entry.at, entry.at);
    if (this.#seen.size > this.#pruneAbove) this.prune();
  }

  prune(): void {
    if (this.newestAt === undefined) return;
    for (const [id, at] of this.#seen) if (at < this.newestAt - FOLLOW_OVERLAP_MS) this.#seen.delete(id);
    this.#pruneAbove = Math.max(PRUNE_ABOVE, 2 * this.#seen.size);
  }
}

/**
 * Polls for entries newer than those printed until SIGINT or SIGTERM. `floor`: entries before it were
 * left out on purpose (`--limit`), so looking back never reaches them.
 */
async function follow(
  service: AdminService,
  filter: AdminAuditFilter,
  printed: Printed,
  floor = 0,
): Promise<void> {
  let stopped = false;
  let wake: (() => void) | undefined;
  const stop = () => {
    stopped = true;
    wake?.();
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    while (!stopped) {
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, FOLLOW_POLL_MS);
      });
      if (stopped) break;
      const newestAt = printed.newestAt;
      const window =
        newestAt === undefined
          ? filter
          : { ...filter, since: Math.max(filter.since ?? 0, floor, newestAt - FOLLOW_OVERLAP_MS) };
      for await (const entry of everyEntry(service, window)) printed.add(entry);
      printed.prune();
    }
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
}

const HEADER = ['TIME', 'EVENT', 'OUTCOME', 'USER', 'CLIENT', 'DETAIL'];
/** Widths of every column but the last in `--follow`'s table, whose rows cannot be measured in advance. */
const FOLLOW_WIDTHS = [20, 30, 8, 16, 24];

function printLine(entry: AdminAuditEntry): void {
  const row = cells(entry);
  process.stdout.write(
    `${row
      .map((cell, column) => (column < FOLLOW_WIDTHS.length ? cell.padEnd(FOLLOW_WIDTHS[column] ?? 0) : cell))
      .join('  ')
      .trimEnd()}\n`,
  );
}

function printJsonLine(entry: AdminAuditEntry): void {
  process.stdout.write(`${JSON.stringify(entry)}\n`);
}

/** Fields already in their own columns (or too long for a table) are left out of DETAIL. */
const SHOWN = new Set(['type', 'outcome', 'principal', 'subject', 'clientId', 'detail']);

function cells(entry: AdminAuditEntry): string[] {
  const detail = Object.entries(entry.event)
    .filter(([name, value]) => !SHOWN.has(name) && value !== undefined && typeof value !== 'object')
    .map(([name, value]) => `${name}=${String(value)}`)
    .join(' ');
  return [
    shortTime(entry.time),
    entry.type,
    entry.outcome ?? '-',
    entry.username ?? entry.subject ?? '-',
    entry.clientId ?? '-',
    detail.length > 120 ? `${detail.slice(0, 119)}…` : detail,
  ];
}

function parseEventType(value: string): string {
  if (!/^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*\.?$/.test(value)) {
    throw new UsageError(
      '--event takes an event type (login, session.ended) or a prefix ending in "." (oauth.)',
    );
  }
  return value;
}

/** An ISO 8601 time, or a duration ago (`30m`, `1h`, `7d`). */
export function parseTime(flag: string, value: string, now: number): number {
  const duration = DURATION.exec(value);
  if (duration !== null) return now - Number(duration[1]) * (UNIT_MS[duration[2] as string] ?? 0);
  const at = /^\d{4}-\d\d-\d\d/.test(value) ? Date.parse(value) : Number.NaN;
  if (Number.isNaN(at)) {
    throw new UsageError(
      `${flag} takes an ISO 8601 time (2026-12-01T09:00:00Z) or a duration ago (30m, 1h, 7d)`,
    );
  }
  return at;
}
