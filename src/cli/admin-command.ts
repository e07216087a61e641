import { userInfo } from 'node:os';
import type { Command, CommanderError } from 'commander';
import { type AdminService, createAdminService } from '../admin/service.js';
import type { GatehouseConfig } from '../config/schema.js';
import { gatewayUrls } from '../config/urls.js';
import { GatehouseError, isGatehouseError } from '../errors/gatehouse-error.js';
import { type AuditWriter, createAuditWriter } from '../ops/audit.js';
import { systemClock } from '../ops/clock.js';
import { createEventBus } from '../ops/events.js';
import { createLogger } from '../ops/logger.js';
import { openStores } from '../stores/open.js';
import type { Stores } from '../stores/ports.js';
import { openDeploymentKeys } from '../tokens/open-keys.js';
import { addConfigFlags, type CliConfigFlags, loadCliConfig } from './config-flags.js';

/**
 * What the operator commands (`users`, `sessions`, `grants`, `clients`, `keys`, `audit`) share: the config
 * flags, opening the configured store around the admin service, and one way to report the outcome. Exit
 * codes: 0 done, 1 refused or not found, 2 usage or configuration error.
 */

/** A mistake in how the command was called; exits 2. */
export class UsageError extends Error {}

/** Flags of a command that prints something a script may read. */
export interface JsonFlags extends CliConfigFlags {
  json?: boolean;
}

/** A command group (`gatehouse sessions`, …) whose usage errors exit 2, as every operator command's do. */
export function commandGroup(program: Command, name: string, description: string): Command {
  return (
    program
      .command(name)
      .description(description)
      // commander's own usage errors (missing argument, unknown option) exit 1; these commands say 2.
      .exitOverride(exitWithUsage)
  );
}

/**
 * Exits 0 after `--help`, 2 after any usage error commander reported. Random ids (sessions, clients) may
 * begin with `-`, which commander reads as an option: the hint says how to pass one.
 */
export function exitWithUsage(error: CommanderError): never {
  if (error.code === 'commander.unknownOption') {
    process.stderr.write(
      '(an id that begins with "-" goes after "--", last: gatehouse sessions end -- <id>)\n',
    );
  }
  process.exit(error.exitCode === 0 ? 0 : 2);
}

/**
 * The flags that say which deployment a command acts on, as `serve` takes them: the same config, host, port
 * and public URL resolve the same issuer, and live sessions are bound to `issuer#subject`.
 */
export function withConfigFlags(command: Command): Command {
  return addConfigFlags(command, { upstream: false });
}

export interface AdminContext {
  readonly service: AdminService;
  readonly config: GatehouseConfig;
  readonly stores: Stores;
  /**
   * Reports a change the command made as an `admin.action` event (`via: 'cli'`), with the same action names
   * as the admin API (`user.signout`, `session.end`, …).
   */
  acted(action: string, target?: string): void;
}

/**
 * Opens the configured store, runs `action` with the admin service over it, and closes everything. What
 * the command does is reported on the event stream and written to the stored audit log, as the gateway's
 * own events are. Refusals (`GatehouseError`) exit 1, usage errors 2; a configuration error is rethrown
 * for `main` (exit 2). `keys` opens the deployment's signing keys too (only `keys rotate` needs them).
 */
export async function withAdmin(
  flags: CliConfigFlags,
  action: (context: AdminContext) => Promise<void>,
  options: { readonly keys?: boolean } = {},
): Promise<void> {
  const config = loadCliConfig(flags);
  if (config.store.kind === 'memory') {
    throw new GatehouseError(
      'ERR_CONFIG_INVALID',
      'the memory store keeps nothing after this command exits; configure store.kind "sqlite" (or a shared store) to manage this deployment',
    );
  }
  // Warnings only, and on stderr: stdout is for what the command prints (`--json` included).
  const logger = createLogger({ level: 'warn', format: 'json', destination: process.stderr });
  const events = createEventBus(logger);
  const actor = `cli:${operatingSystemUser()}`;
  const acted = (action: string, target?: string) =>
    events.emit({
      type: 'admin.action',
      outcome: 'success',
      actor,
      action,
      ...(target !== undefined && { target }),
      via: 'cli',
    });
  let stores: Stores | undefined;
  let audit: AuditWriter | undefined;
  let closeKeys: (() => void) | undefined;
  try {
    stores = await openStores(config);
    // Retention is the gateway's job; this process only adds what it did.
    const writer = config.audit.enabled
      ? createAuditWriter({ store: stores.audit, clock: systemClock, logger, retentionDays: 0 })
      : undefined;
    audit = writer;
    events.subscribe((event) => writer?.record(event));
    const deployment =
      options.keys === true ? await openDeploymentKeys(config, stores, systemClock) : undefined;
    closeKeys = deployment === undefined ? undefined : () => deployment.keys.close();
    const service = createAdminService({
      stores,
      issuer: gatewayUrls(config).issuer,
      accessTokenTtlSeconds: config.authorizationServer.accessTokenTtlSeconds,
      clock: systemClock,
      events,
      keys: deployment?.keys,
    });
    await action({ service, config, stores, acted });
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`gatehouse: ${error.message}\n`);
      process.exitCode = 2;
    } else if (isGatehouseError(error) && error.code !== 'ERR_CONFIG_INVALID') {
      process.stderr.write(`gatehouse: ${error.message} [${error.code}]\n`);
      process.exitCode = 1;
    } else {
      throw error;
    }
  } finally {
    await audit?.close({ timeoutMs: 5_000 });
    closeKeys?.();
    await stores?.close();
  }
}

/** Who runs the command, as the operating system knows them; `unknown` when it cannot say. */
function operatingSystemUser(): string {
  try {
    return userInfo().username;
  } catch {
    return 'unknown';
  }
}

/** Prints `value` as indented JSON: what `--json` gives scripts. */
export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** Columns padded to their widest cell, two spaces apart; the last column is not padded. */
export function formatTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const all = [header, ...rows];
  const widths = header.map((_, column) => Math.max(...all.map((row) => row[column]?.length ?? 0)));
  return all
    .map((row) =>
      row
        .map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd(widths[column] ?? 0)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n')
    .concat('\n');
}

/** What a `list` command asks the admin service for: `--user` when it offers one, `--limit` when given. */
export interface ListQuery {
  readonly username?: string;
  readonly limit?: number;
}

/**
 * Adds `<group> list`, as `sessions`, `grants` and `clients` share it: `--limit` and `--json`, and
 * `--user <username>` when `user` describes it. Prints a JSON array with `--json`, else `table`; a table
 * that fills the page (`--limit`, default 100) is followed, on stderr, by a hint to pass `--limit`.
 */
export function addListCommand<T>(
  group: Command,
  spec: {
    readonly description: string;
    readonly user?: string;
    readonly list: (service: AdminService, query: ListQuery) => Promise<readonly T[]>;
    readonly table: (list: readonly T[]) => string;
  },
): void {
  const command = group.command('list').description(spec.description);
  if (spec.user !== undefined) command.option('--user <username>', spec.user);
  withConfigFlags(
    command
      .option('--limit <n>', 'at most this many (1-1000, default 100)')
      .option('--json', 'print a JSON array instead of a table'),
  ).action((flags: JsonFlags & { user?: string; limit?: string }) =>
    withAdmin(flags, async ({ service }) => {
      const limit = parseLimit(flags.limit);
      const list = await spec.list(service, {
        ...(flags.user !== undefined && { username: flags.user }),
        ...(limit !== undefined && { limit }),
      });
      if (flags.json === true) {
        printJson(list);
        return;
      }
      process.stdout.write(spec.table(list));
      if (list.length === (limit ?? 100)) {
        process.stderr.write(`showing the first ${list.length}; pass --limit to see more\n`);
      }
    }),
  );
}

/** `--limit N`: a whole number from 1 to `max`. */
export function parseLimit(value: string | undefined, max = 1000): number | undefined {
  if (value === undefined) return undefined;
  const limit = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(limit) || limit < 1 || limit > max) {
    throw new UsageError(`--limit must be a whole number from 1 to ${max}`);
  }
  return limit;
}

/** "1 grant", "2 grants". */
export function count(n: number, one: string, many: string): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** ISO 8601 without milliseconds, for tables. */
export function shortTime(iso: string | undefined): string {
  return iso === undefined ? '-' : iso.replace(/\.\d{3}Z$/, 'Z');
}
