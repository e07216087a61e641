import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';
import type { Command } from 'commander';
import type { AccountRevocation } from '../admin/accounts.js';
import type { AdminUser } from '../admin/service.js';
import { GatehouseError, isGatehouseError } from '../errors/gatehouse-error.js';
import { normalizeUsername } from '../identity/local-accounts.js';
import { checkPasswordPolicy } from '../identity/password.js';
import {
  commandGroup,
  count,
  formatTable,
  type JsonFlags,
  printJson,
  UsageError,
  withAdmin,
  withConfigFlags,
} from './admin-command.js';
import type { CliConfigFlags } from './config-flags.js';

interface PasswordFlags extends CliConfigFlags {
  passwordStdin?: boolean;
}

interface AddFlags extends PasswordFlags {
  email?: string;
  name?: string;
  admin?: boolean;
}

/** Longest stdin accepted by `--password-stdin`, in bytes; far above any password the policy allows. */
const MAX_STDIN_BYTES = 64 * 1024;

/**
 * `gatehouse users …`: manage the local accounts in the configured store. Exit codes: 0 done, 1 the
 * operation was refused (`ERR_USER_EXISTS`, `ERR_PASSWORD_POLICY`, …), 2 usage or configuration error.
 */
export function registerUsers(program: Command): void {
  const users = commandGroup(program, 'users', 'manage local accounts (username and password sign-in)');

  withConfigFlags(
    users
      .command('add')
      .description('create an account')
      .argument('<username>', 'login name (case-insensitive)')
      .option('--email <email>', 'email address')
      .option('--name <name>', 'display name')
      .option('--admin', 'let the account use the admin API and console')
      .option('--password-stdin', 'read the password from standard input instead of prompting'),
  ).action((username: string, flags: AddFlags) =>
    withAdmin(flags, async ({ service, acted }) => {
      // Refused before the password is asked for: nobody types a password for nothing.
      normalizeUsername(username);
      const existing = await service.users.get(username).catch((error: unknown) => {
        if (isGatehouseError(error, 'ERR_USER_NOT_FOUND')) return undefined;
        throw error;
      });
      if (existing !== undefined) {
        throw new GatehouseError('ERR_USER_EXISTS', `the username "${existing.username}" is taken`);
      }
      const password = await readNewPassword(flags);
      const user = await service.users.add({
        username,
        password,
        ...(flags.email !== undefined && { email: flags.email }),
        ...(flags.name !== undefined && { name: flags.name }),
        ...(flags.admin === true && { admin: true }),
      });
      acted('user.add', user.username);
      process.stdout.write(`added ${user.admin ? 'admin' : 'user'} ${user.username} (${user.id})\n`);
    }),
  );

  withConfigFlags(
    users
      .command('list')
      .description('list accounts (never their passwords)')
      .option('--json', 'print a JSON array instead of a table'),
  ).action((flags: JsonFlags) =>
    withAdmin(flags, async ({ service }) => {
      const list = await service.users.list();
      if (flags.json === true) printJson(list);
      else process.stdout.write(table(list));
    }),
  );

  withConfigFlags(
    users
      .command('remove')
      .description('delete an account and sign it out everywhere')
      .argument('<username>', 'login name'),
  ).action((username: string, flags: CliConfigFlags) =>
    withAdmin(flags, async ({ service, acted }) => {
      const user = await service.users.get(username);
      const revoked = await service.users.remove(user.username);
      acted('user.remove', user.username);
      process.stdout.write(`removed user ${user.username}; ${describeRevocation(revoked)}\n`);
    }),
  );

  withConfigFlags(
    users
      .command('passwd')
      .description('set a new password and sign the account out everywhere')
      .argument('<username>', 'login name')
      .option('--password-stdin', 'read the password from standard input instead of prompting'),
  ).action((username: string, flags: PasswordFlags) =>
    withAdmin(flags, async ({ service, acted }) => {
      const user = await service.users.get(username);
      const password = await readNewPassword(flags);
      const revoked = await service.users.setPassword(user.username, password);
      acted('user.password', user.username);
      process.stdout.write(`password changed for ${user.username}; ${describeRevocation(revoked)}\n`);
    }),
  );

  withConfigFlags(
    users
      .command('disable')
      .description('stop an account from signing in, and sign it out everywhere')
      .argument('<username>', 'login name'),
  ).action((username: string, flags: CliConfigFlags) =>
    withAdmin(flags, async ({ service, acted }) => {
      const user = await service.users.get(username);
      const revoked = await service.users.disable(user.username);
      acted('user.disable', user.username);
      process.stdout.write(`disabled user ${user.username}; ${describeRevocation(revoked)}\n`);
    }),
  );

  withConfigFlags(
    users
      .command('enable')
      .description('let a disabled account sign in again')
      .argument('<username>', 'login name'),
  ).action((username: string, flags: CliConfigFlags) =>
    withAdmin(flags, async ({ service, acted }) => {
      const user = await service.users.enable(username);
      acted('user.enable', user.username);
      process.stdout.write(`enabled user ${user.username}\n`);
    }),
  );

  withConfigFlags(
    users
      .command('revoke')
      .description(
        'sign an account out everywhere: grants, refresh tokens, access tokens, live sessions and browser sign-ins end; the account stays usable',
      )
      .argument('<username>', 'login name'),
  ).action((username: string, flags: CliConfigFlags) =>
    withAdmin(flags, async ({ service, acted }) => {
      const user = await service.users.get(username);
      const revoked = await service.users.revoke(user.username);
      acted('user.signout', user.username);
      process.stdout.write(
        `revoked the access of ${user.username}; ${describeRevocation(revoked)}; browser sign-ins ended\n`,
      );
    }),
  );

  withConfigFlags(
    users
      .command('grant-admin')
      .description('let an account use the admin API and console')
      .argument('<username>', 'login name'),
  ).action((username: string, flags: CliConfigFlags) =>
    withAdmin(flags, async ({ service, acted }) => {
      const user = await service.users.setAdmin(username, true);
      acted('user.admin.grant', user.username);
      process.stdout.write(`${user.username} is an admin\n`);
    }),
  );

  withConfigFlags(
    users
      .command('revoke-admin')
      .description('take the admin role away from an account (its admin access stops at once)')
      .argument('<username>', 'login name'),
  ).action((username: string, flags: CliConfigFlags) =>
    withAdmin(flags, async ({ service, acted }) => {
      const user = await service.users.setAdmin(username, false);
      acted('user.admin.revoke', user.username);
      process.stdout.write(`${user.username} is no longer an admin\n`);
    }),
  );
}

/** "signed out everywhere: 2 grants revoked, 1 live session ended, 1 consent forgotten" */
export function describeRevocation(revoked: AccountRevocation): string {
  return `signed out everywhere: ${count(revoked.grants, 'grant', 'grants')} revoked, ${count(
    revoked.sessions,
    'live session',
    'live sessions',
  )} ended, ${count(revoked.consents, 'consent', 'consents')} forgotten`;
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

function table(users: readonly AdminUser[]): string {
  if (users.length === 0) return 'no users\n';
  return formatTable(
    ['USERNAME', 'ID', 'EMAIL', 'NAME', 'ADMIN', 'STATE', 'CREATED'],
    users.map((user) => [
      user.username,
      user.id,
      user.email ?? '-',
      user.name ?? '-',
      user.admin ? 'yes' : 'no',
      user.disabled ? 'disabled' : 'enabled',
      user.createdAt.slice(0, 10),
    ]),
  );
}
