import { type LocalFile, localFiles, octalMode } from '../config/local-files.js';
import { localFileIssues } from '../config/production.js';
import type { GatehouseConfig } from '../config/schema.js';
import type { Clock } from '../ops/clock.js';
import { describeStores, openExistingStores } from '../stores/open.js';
import type { Stores } from '../stores/ports.js';
import type { DoctorCheck, DoctorStatus } from './check.js';

/**
 * `store`: opens the configured store as the gateway would, through `openStores` (so any adapter is
 * checked the same way), but creates nothing: a database not created yet is a warning. For a store on
 * this machine, also who besides the owner may open its data directory and database: writing is what
 * production refuses (a failure in production mode); reading only warns, since what the database holds
 * is hashed (codes, refresh tokens, passwords) or sealed with the secret key (signing keys, upstream
 * tokens). Returns the open stores for the checks that read them; the caller closes them.
 */
export async function storeCheck(
  config: GatehouseConfig,
  clock: Clock,
): Promise<{ check: DoctorCheck; stores?: Stores }> {
  const store = describeStores(config);
  const details: Record<string, unknown> = {
    kind: store.kind,
    ...(store.location !== undefined && { path: store.location }),
  };
  let stores: Stores | undefined;
  try {
    stores = await openExistingStores(config);
    if (stores === undefined) {
      return {
        check: {
          id: 'store',
          status: 'warn',
          summary: `no database at ${store.location ?? config.dataDir} yet (gatehouse serve creates it)`,
          details,
        },
      };
    }
    await stores.sessions.get('gatehouse-doctor-probe', clock.now());
  } catch (error) {
    await stores?.close().catch(() => undefined);
    return {
      check: {
        id: 'store',
        status: 'fail',
        summary: `cannot read the ${store.kind} store${store.location === undefined ? '' : ` at ${store.location}`}: ${error instanceof Error ? error.message : String(error)}`,
        details: { ...details, reason: 'store_unreadable' },
      },
    };
  }
  if (!store.durable) {
    return {
      check: {
        id: 'store',
        status: 'warn',
        summary: `${store.kind} store: nothing survives a restart`,
        details,
      },
      stores,
    };
  }

  if (config.store.kind === 'redis') return { check: await redisDurability(config, details), stores };

  const files = localFiles(config).filter((file) => file.role === 'dataDir' || file.role === 'database');
  const refused = localFileIssues(files);
  const exposures: string[] = [];
  const hints: string[] = [];
  for (const file of files) {
    describeFile(file, details);
    if (file.mode === undefined || file.openTo.length === 0) continue;
    const what = file.role === 'dataDir' ? `data directory ${file.path}` : `database ${file.path}`;
    exposures.push(`${what} is open to ${file.openTo.join(' and ')} (${octalMode(file.mode)})`);
    hints.push(`chmod ${file.role === 'dataDir' ? 700 : 600} ${file.path}`);
  }
  const where = `${store.kind} store${store.location === undefined ? '' : ` at ${store.location}`}`;
  // Whatever others may write, they may also open: a refusal always comes with an exposure.
  const status: DoctorStatus =
    refused.length > 0 && config.mode === 'production' ? 'fail' : exposures.length > 0 ? 'warn' : 'ok';
  return {
    check: {
      id: 'store',
      status,
      summary:
        exposures.length > 0
          ? `${where} answers, but ${exposures.join('; ')}: other accounts on this host can ${refused.length > 0 ? 'change' : 'read'} its accounts, grants and sessions`
          : `${where} answers`,
      details: {
        ...details,
        ...(refused.length > 0 && { reason: 'file_writable', refusals: refused.map((issue) => issue.code) }),
      },
      ...(hints.length > 0 && { hints }),
    },
    stores,
  };
}

/** Adds a file's mode and audience to the check's details, under the names the report has always used. */
function describeFile(file: LocalFile, details: Record<string, unknown>): void {
  if (file.mode === undefined) return;
  const prefix = file.role === 'dataDir' ? 'dataDir' : 'file';
  details[`${prefix}Mode`] = octalMode(file.mode);
  if (file.openTo.length > 0) details[`${prefix}ExposedTo`] = file.openTo;
}

/**
 * A Redis store answers, but keeps users, clients, grants and signing keys only if Redis itself persists
 * (AOF or RDB snapshots): without either, its restart signs everyone out and forgets every account. A
 * warning in production; a note otherwise. A server that refuses to say (managed Redis without `CONFIG`)
 * is reported as unknown.
 */
async function redisDurability(
  config: GatehouseConfig,
  details: Record<string, unknown>,
): Promise<DoctorCheck> {
  const where = `redis store at ${describeStores(config).location}`;
  const url = config.store.kind === 'redis' ? config.store.url : '';
  const { redisPersistence } = await import('../stores/redis/persistence.js');
  const persistence = await redisPersistence(url).catch(() => ({ aof: undefined, rdb: undefined }));
  const withPersistence = { ...details, persistence };
  if (persistence.aof === true || persistence.rdb === true) {
    const how = [persistence.aof === true && 'AOF', persistence.rdb === true && 'RDB'].filter(Boolean);
    return {
      id: 'store',
      status: 'ok',
      summary: `${where} answers and persists (${how.join(' and ')})`,
      details: withPersistence,
    };
  }
  const unknown = persistence.aof === undefined || persistence.rdb === undefined;
  return {
    id: 'store',
    status: config.mode === 'production' ? 'warn' : 'ok',
    summary: unknown
      ? `${where} answers; whether Redis persists its data could not be read`
      : `${where} answers, but Redis persists nothing (no AOF, no RDB): a Redis restart loses every user, client, grant and signing key`,
    details: { ...withPersistence, reason: unknown ? 'persistence_unknown' : 'not_persistent' },
    hints: ['turn on appendonly yes (AOF) or RDB snapshots (save) on the Redis server'],
  };
}
