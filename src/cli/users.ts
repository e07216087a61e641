import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';
import type { Command, CommanderError } from 'commander';
import {
  type AccountRevocation,
  type AccountRevocationReason,
  revokeAccountAccess,
} from '../admin/accounts.js';
import { gatewayUrls } from '../config/urls.js';
import { GatehouseError, isGatehouseError } from '../errors/gatehouse-error.js';
import {
  createLocalAccounts,
  type LocalAccount,
  type LocalAccounts,
  normalizeUsername,
} from '../identity/local-accounts.js';
import { checkPasswordPolicy } from '../identity/password.js';
import { systemClock } from '../ops/clock.js';
import { openStores } from '../stores/open.js';
import { type CliConfigFlags, loadCliConfig } from './config-flags.js';

interface PasswordFlags extends CliConfigFlags {
  passwordStdin?: boolean;
}

interface AddFlags extends PasswordFlags {
  email?: string;
  name?: string;
}

interface ListFlags extends CliConfigFlags {
  json?: boolean;
}

/** Longest stdin accepted by `--password-stdin`, in bytes; far above any password the policy allows. */
const MAX_STDIN_BYTES = 64 * 1024;

/** A mistake in how the command was called; exits 2. */
class UsageError extends Error {}

/**
 * `gatehouse users …`: manage the local accounts in the configured store. Exit codes: 0 done, 1 the
 * operation was refused (`ERR_USER_EXISTS`, `ERR_PASSWORD_POLICY`, …), 2 usage or configuration error.
 */
export function registerUsers(program: Command): void {
  const users = program
    .command('users')
    .description('manage local accounts (username and password sign-in)')
    // commander's own usage errors (missing argument, unknown option) exit 1; these commands say 2.
    .exitOverride((error: CommanderError) => {
      process.exit(error.exitCode === 0 ? 0 : 2);
    });

  withConfigFlags(
    users
      .command('add')
      .description('create an account')
      .argument('<username>', 'login name (case-insensitive)')
      .option('--email <email>', 'email address')
      .option('--name <name>', 'display name')
      .option('--password-stdin', 'read the password from standard input instead of prompting'),
  ).action((username: string, flags: AddFlags) =>
    withAccounts(flags, async ({ accounts }) => {
      const normalized = normalizeUsername(username);
      if ((await accounts.find(normalized)) !== undefined) {
        throw new GatehouseError('ERR_USER_EXISTS', `the username "${normalized}" is taken`);
      }
      const password = await readNewPassword(flags);
      const account = await accounts.add({
        username: normalized,
        password,
        ...(flags.email === undefined ? {} : { email: flags.email }),
        ...(flags.name === undefined ? {} : { name: flags.name }),
      });
      process.stdout.write(`added user ${account.username} (${account.id})\n`);
    }),
  );

  withConfigFlags(
    users
      .command('list')
      .description('list accounts (never their passwords)')
      .option('--json', 'print JSON instead of a table'),
  ).action((flags: ListFlags) =>
    withAccounts(flags, async ({ accounts }) => {
      const list = await accounts.list();
      process.stdout.write(
        flags.json === true ? `${JSON.stringify(list.map(toJson), null, 2)}\n` : table(list),
      );
    }),
  );

  withConfigFlags(
    users
      .command('remove')
      .description('delete an account and sign it out everywhere')
      .argument('<username>', 'login name'),
  ).action((username: string, flags: CliConfigFlags) =>
    withAccounts(flags, async ({ accounts, revoke }) => {
      const account = await accounts.remove(username);
      const revoked = await revoke(account, 'removed');
      process.stdout.write(`removed user ${account.username}; ${describeRevocation(revoked)}\n`);
    }),
  );

  withConfigFlags(
    users
      .command('passwd')
      .description('set a new password and sign the account out everywhere')
      .argument('<username>', 'login name')
      .option('--password-stdin', 'read the password from standard input instead of prompting'),
  ).action((username: string, flags: PasswordFlags) =>
    withAccounts(flags, async ({ accounts, revoke }) => {
      const existing = await accounts.find(username);
      if (existing === undefined) throw new GatehouseError('ERR_USER_NOT_FOUND', 'no such user');
      const password = await readNewPassword(flags);
      const account = await accounts.setPassword(existing.username, password);
      const revoked = await revoke(account, 'password_changed');
      process.stdout.write(`password changed for ${account.username}; ${describeRevocation(revoked)}\n`);
    }),
  );

  withConfigFlags(
    users
      .command('disable')
      .description('stop an account from signing in, and sign it out everywhere')
      .argument('<username>', 'login name'),
  ).action((username: string, flags: CliConfigFlags) =>
    withAccounts(flags, async ({ accounts, revoke }) => {
      const account = await accounts.setDisabled(username, true);
      const revoked = await revoke(account, 'disabled');
      process.stdout.write(`disabled user ${account.username}; ${describeRevocation(revoked)}\n`);
    }),
  );

  withConfigFlags(
    users
      .command('enable')
      .description('let a disabled account sign in again')
      .argument('<username>', 'login name'),
  ).action((username: string, flags: CliConfigFlags) =>
    withAccounts(flags, async ({ accounts }) => {
      const account = await accounts.setDisabled(username, false);
      process.stdout.write(`enabled user ${account.username}\n`);
    }),
  );
}

/** "signed out everywhere: 2 grants revoked, 1 live session ended, 1 consent forgotten" */
function describeRevocation(revoked: AccountRevocation): string {
  const count = (n: number, one: string, many: string) => `${n} ${n === 1 ? one : many}`;
  return `signed out everywhere: ${count(revoked.grants, 'grant', 'grants')} revoked, ${count(
    revoked.sessions,
    'live session',
    'live sessions',
  )} ended, ${count(revoked.consents, 'consent', 'consents')} forgotten`;
}

function withConfigFlags(command: Command): Command {
  return command
    .option('-c, --config <file>', 'JSON config file (default: $GATEHOUSE_CONFIG)')
    .option('--data-dir <dir>', 'where the database lives (default ./.gatehouse)');
}

/** The accounts of the configured store, and the way to take an account's access away. */
interface AccountsContext {
  readonly accounts: LocalAccounts;
  /** Revokes the account's grants, consents and live sessions (see `revokeAccountAccess`). */
  revoke(account: LocalAccount, why: AccountRevocationReason): Promise<AccountRevocation>;
}

/** Opens the configured stores around `action`; reports refusals as exit 1 and usage errors as exit 2. */
async function withAccounts(
  flags: CliConfigFlags,
  action: (context: AccountsContext) => Promise<void>,
): Promise<void> {
  const config = loadCliConfig(flags);
  if (config.store.kind === 'memory') {
    throw new GatehouseError(
      'ERR_CONFIG_INVALID',
      'the memory store keeps nothing after this command exits; configure store.kind "sqlite" to manage users',
    );
  }
  const stores = await openStores(config);
  const accounts = createLocalAccounts({
    users: stores.users,
    counters: stores.counters,
    clock: systemClock,
  });
  const revocation = {
    stores,
    issuer: gatewayUrls(config).issuer,
    accessTokenTtlSeconds: config.authorizationServer.accessTokenTtlSeconds,
    clock: systemClock,
  };
  try {
    await action({ accounts, revoke: (account, why) => revokeAccountAccess(revocation, account.id, why) });
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
    await stores.close();
  }
}

async function readNewPassword(flags: PasswordFlags): Promise<string> {
  if (flags.passwordStdin === true) {
    const password = await readStdin();
    checkPasswordPolicy(password);
    return password;
  }
  if (process.stdin.isTTY !== true) {
    throw new UsageError('standard input is not a terminal; pass the password with --password-stdin');
  }
  const prompt = hiddenPrompt();
  try {
    const password = await prompt.ask('Password: ');
    checkPasswordPolicy(password);
    const repeated = await prompt.ask('Repeat password: ');
    if (repeated !== password) throw new UsageError('the passwords do not match');
    return password;
  } finally {
    prompt.close();
  }
}

/** All of stdin, less one trailing newline (`echo secret |` adds one). */
async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of process.stdin) {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
    length += bytes.length;
    if (length > MAX_STDIN_BYTES) throw new UsageError('standard input is too long for a password');
    chunks.push(bytes);
  }
  return Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '');
}

interface HiddenPrompt {
  ask(question: string): Promise<string>;
  close(): void;
}

/**
 * Reads lines from the terminal without echo, asking on stderr so stdout stays clean for scripts. One
 * readline interface serves every question and exists before the first is shown: the terminal is in raw
 * mode (no echo) before anyone can type, and a pasted `secret⏎secret⏎` answers both questions.
 */
function hiddenPrompt(): HiddenPrompt {
  const muted = new Writable({
    write(_chunk, _encoding, callback) {
      callback();
    },
  });
  const rl = createInterface({ input: process.stdin, output: muted, terminal: true });
  const lines: string[] = [];
  let waiting: { resolve(line: string): void; reject(error: Error): void } | undefined;
  let closed = false;
  rl.on('line', (line) => {
    if (waiting === undefined) lines.push(line);
    else waiting.resolve(line);
    waiting = undefined;
  });
  rl.on('SIGINT', () => rl.close());
  rl.on('close', () => {
    closed = true;
    waiting?.reject(new UsageError('cancelled'));
    waiting = undefined;
  });
  const next = (): Promise<string> => {
    const line = lines.shift();
    if (line !== undefined) return Promise.resolve(line);
    if (closed) return Promise.reject(new UsageError('cancelled'));
    return new Promise((resolve, reject) => {
      waiting = { resolve, reject };
    });
  };
  return {
    async ask(question) {
      process.stderr.write(question);
      try {
        return await next();
      } finally {
        process.stderr.write('\n');
      }
    },
    close: () => rl.close(),
  };
}

function toJson(account: LocalAccount): Record<string, unknown> {
  return {
    id: account.id,
    username: account.username,
    email: account.email ?? null,
    name: account.name ?? null,
    createdAt: new Date(account.createdAt).toISOString(),
    updatedAt: new Date(account.updatedAt).toISOString(),
    disabledAt: account.disabledAt === undefined ? null : new Date(account.disabledAt).toISOString(),
  };
}

function table(accounts: readonly LocalAccount[]): string {
  if (accounts.length === 0) return 'no users\n';
  const rows = [
    ['USERNAME', 'ID', 'EMAIL', 'NAME', 'STATE', 'CREATED'],
    ...accounts.map((a) => [
      a.username,
      a.id,
      a.email ?? '-',
      a.name ?? '-',
      a.disabledAt === undefined ? 'enabled' : 'disabled',
      new Date(a.createdAt).toISOString().slice(0, 10),
    ]),
  ];
  const widths = rows[0]?.map((_, column) => Math.max(...rows.map((row) => row[column]?.length ?? 0))) ?? [];
  return rows
    .map((row) =>
      row
        .map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd(widths[column] ?? 0)))
        .join('  '),
    )
    .join('\n')
    .concat('\n');
}
