import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { createLocalAccounts, type LocalAccounts } from '../../src/identity/local-accounts.js';
import { systemClock } from '../../src/ops/clock.js';
import { openStores } from '../../src/stores/open.js';
import { CLI_ARGS, type CliResult, cleanEnv, runCli } from '../helpers/cli.js';

const PASSWORD = 'correct horse battery staple';

/** Runs the real CLI with `stdin` piped in (and closed), never a terminal. */
const run = (args: string[], cwd: string, stdin = '', env = cleanEnv()) => runCli(args, cwd, env, stdin);

/**
 * util-linux `script` gives the CLI a pseudo-terminal, so the no-echo prompt can be driven from a test.
 * `typed[n]` is written when the n-th prompt appears (end lines with `\r`, the Enter key).
 */
const hasScript = spawnSync('script', ['--version'], { encoding: 'utf8' }).stdout?.includes('util-linux');

function runInTerminal(args: string[], cwd: string, typed: string[]): Promise<CliResult> {
  const command = [process.execPath, ...CLI_ARGS, ...args].map((word) => `'${word}'`).join(' ');
  return new Promise((resolve) => {
    const child = spawn('script', ['-qec', command, '/dev/null'], { cwd, env: cleanEnv() });
    let output = '';
    let answered = 0;
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      const prompts = output.match(/Password: /gi)?.length ?? 0;
      if (prompts > answered && answered < typed.length) {
        child.stdin.write(typed[answered] ?? '');
        answered += 1;
      }
    });
    child.on('close', (code) => resolve({ code: code ?? -1, stdout: output, stderr: '' }));
  });
}

describe('gatehouse users', () => {
  const cleanup: Array<() => void> = [];
  afterEach(() => {
    for (const fn of cleanup.splice(0)) fn();
  });

  function tempDir(): string {
    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-users-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    return dir;
  }

  /** The library over the same config the CLI used: what the gateway would see. */
  async function withAccounts<T>(dataDir: string, use: (accounts: LocalAccounts) => Promise<T>): Promise<T> {
    const stores = await openStores(loadConfig({ env: {}, overrides: { dataDir } }));
    try {
      expect(stores.kind).toBe('sqlite');
      return await use(
        createLocalAccounts({ users: stores.users, counters: stores.counters, clock: systemClock }),
      );
    } finally {
      await stores.close();
    }
  }

  it('adds, lists, changes the password of and removes a user in the SQLite store', {
    timeout: 120_000,
  }, async () => {
    const cwd = tempDir();
    const dataDir = join(cwd, 'data');
    const flags = ['--data-dir', dataDir];

    const added = await run(
      [
        'users',
        'add',
        'Alice',
        '--email',
        'alice@example.com',
        '--name',
        'Alice Liddell',
        '--password-stdin',
        ...flags,
      ],
      cwd,
      `${PASSWORD}\n`,
    );
    expect(added.stderr).toBe('');
    expect(added.code).toBe(0);
    expect(added.stdout).toMatch(/^added user alice \(usr_[A-Za-z0-9_-]{22}\)\n$/);
    // Persisted, and with the trailing newline of stdin trimmed: the library signs her in.
    const signedIn = await withAccounts(dataDir, (accounts) =>
      accounts.authenticate('alice', PASSWORD, { ip: '127.0.0.1' }),
    );
    expect(signedIn.ok && signedIn.user.email).toBe('alice@example.com');

    const [listed, json] = await Promise.all([
      run(['users', 'list', ...flags], cwd),
      run(['users', 'list', '--json', ...flags], cwd),
    ]);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toMatch(
      /^USERNAME +ID +EMAIL +NAME +ADMIN +STATE +CREATED\nalice +usr_\S+ +alice@example\.com +Alice Liddell +no +enabled +\d{4}-\d\d-\d\d\n$/,
    );
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual([
      {
        id: signedIn.ok ? signedIn.user.id : 'signed in',
        username: 'alice',
        email: 'alice@example.com',
        name: 'Alice Liddell',
        admin: false,
        disabled: false,
        createdAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      },
    ]);
    for (const output of [added, listed, json]) {
      expect(`${output.stdout}${output.stderr}`).not.toMatch(/scrypt|passwordHash|password_hash/i);
      expect(`${output.stdout}${output.stderr}`).not.toContain(PASSWORD);
    }

    const changed = await run(
      ['users', 'passwd', 'ALICE', '--password-stdin', ...flags],
      cwd,
      'a new passphrase',
    );
    expect(changed.code).toBe(0);
    expect(changed.stdout).toBe(
      'password changed for alice; signed out everywhere: 0 grants revoked, 0 live sessions ended, 0 consents forgotten\n',
    );
    const [oldPassword, newPassword] = await withAccounts(dataDir, (accounts) =>
      Promise.all([
        accounts.authenticate('alice', PASSWORD, { ip: '127.0.0.1' }),
        accounts.authenticate('alice', 'a new passphrase', { ip: '127.0.0.1' }),
      ]),
    );
    expect(oldPassword.ok).toBe(false);
    expect(newPassword.ok).toBe(true);

    const removed = await run(['users', 'remove', 'alice', ...flags], cwd);
    expect(removed.code).toBe(0);
    expect(removed.stdout).toBe(
      'removed user alice; signed out everywhere: 0 grants revoked, 0 live sessions ended, 0 consents forgotten\n',
    );
    expect(await withAccounts(dataDir, (accounts) => accounts.list())).toEqual([]);
  });

  it('exits 1 when the operation is refused, and 2 on a usage or configuration error', {
    timeout: 120_000,
  }, async () => {
    const cwd = tempDir();
    const dataDir = join(cwd, 'data');
    const flags = ['--data-dir', dataDir];
    await withAccounts(dataDir, (accounts) => accounts.add({ username: 'bob', password: PASSWORD }));

    const [duplicate, weak, unknown, noInput, noArgument, memory] = await Promise.all([
      run(['users', 'add', 'BOB', '--password-stdin', ...flags], cwd, PASSWORD),
      run(['users', 'add', 'carol', '--password-stdin', ...flags], cwd, 'short\n'),
      run(['users', 'remove', 'nobody', ...flags], cwd),
      run(['users', 'add', 'dave', ...flags], cwd),
      run(['users', 'add', ...flags], cwd),
      run(['users', 'list'], cwd, '', cleanEnv({ GATEHOUSE_STORE__KIND: 'memory' })),
    ]);
    expect(duplicate.code).toBe(1);
    expect(duplicate.stderr).toContain('ERR_USER_EXISTS');
    expect(weak.code).toBe(1);
    expect(weak.stderr).toContain('ERR_PASSWORD_POLICY');
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('ERR_USER_NOT_FOUND');
    expect(noInput.code).toBe(2);
    expect(noInput.stderr).toContain('--password-stdin');
    expect(noArgument.code).toBe(2);
    expect(noArgument.stderr).toContain("missing required argument 'username'");
    expect(memory.code).toBe(2);
    expect(memory.stderr).toContain('memory store');

    const usernames = await withAccounts(dataDir, async (accounts) =>
      (await accounts.list()).map((account) => account.username),
    );
    expect(usernames).toEqual(['bob']);
  });

  it.runIf(hasScript)('prompts twice on a terminal without echoing the password', async () => {
    const cwd = tempDir();
    const flags = ['--data-dir', join(cwd, 'data')];
    const added = await runInTerminal(['users', 'add', 'erin', ...flags], cwd, [
      `${PASSWORD}\r`,
      `${PASSWORD}\r`,
    ]);
    expect(added.stdout).toMatch(/^Password: \r?\nRepeat password: \r?\nadded user erin /);
    expect(added.code).toBe(0);
    expect(added.stdout).not.toContain(PASSWORD);

    // A paste of both lines at the first prompt answers both; a mismatch changes nothing.
    const [pasted, mismatch] = await Promise.all([
      runInTerminal(['users', 'passwd', 'erin', ...flags], cwd, ['pasted passphrase\rpasted passphrase\r']),
      runInTerminal(['users', 'passwd', 'erin', ...flags], cwd, [`${PASSWORD}\r`, 'something else\r']),
    ]);
    expect(pasted.stdout).toContain('password changed for erin');
    expect(pasted.code).toBe(0);
    expect(pasted.stdout).not.toContain('pasted passphrase');
    expect(mismatch.stdout).toContain('the passwords do not match');
    expect(mismatch.code).toBe(2);
    const result = await withAccounts(join(cwd, 'data'), (accounts) =>
      accounts.authenticate('erin', 'pasted passphrase', { ip: '127.0.0.1' }),
    );
    expect(result.ok).toBe(true);
  });
});
