import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type {
  AdminAuditEntry,
  AdminClient,
  AdminGrant,
  AdminSession,
  AdminSigningKey,
  AdminUser,
} from '../../src/admin/service.js';
import { registerAudit } from '../../src/cli/audit.js';
import { registerClients } from '../../src/cli/clients.js';
import { registerGrants } from '../../src/cli/grants.js';
import { registerKeys } from '../../src/cli/keys.js';
import { registerSessions } from '../../src/cli/sessions.js';
import { registerUsers } from '../../src/cli/users.js';
import { loadConfig } from '../../src/config/load.js';
import { gatewayUrls } from '../../src/config/urls.js';
import { openStores } from '../../src/stores/open.js';
import type { AuditEntry, Stores } from '../../src/stores/ports.js';
import { CLI_ARGS, cleanEnv, runCli } from '../helpers/cli.js';

const PASSWORD = 'correct horse battery staple';

/**
 * Every operator command, run as the real `gatehouse` binary on a SQLite data directory: `--help`, what
 * `--json` prints, what the tables say, and the exit codes (0 done, 1 refused or not found, 2 usage or
 * configuration error). The store is seeded and checked through the library, as a running gateway sees it.
 */
describe('gatehouse sessions, grants, clients, keys, audit and the admin parts of users', () => {
  let cwd: string;
  let dataDir: string;
  let issuer: string;
  let alice: AdminUser;
  const run = (args: string[], stdin = '') =>
    runCli([...args, '--data-dir', dataDir], cwd, cleanEnv(), stdin);
  const json = async <T>(args: string[]): Promise<T> => {
    const result = await run([...args, '--json']);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    return JSON.parse(result.stdout) as T;
  };

  async function withStores<T>(use: (stores: Stores) => Promise<T>): Promise<T> {
    const stores = await openStores(loadConfig({ env: {}, overrides: { dataDir } }));
    try {
      return await use(stores);
    } finally {
      await stores.close();
    }
  }

  beforeAll(async () => {
    cwd = mkdtempSync(join(tmpdir(), 'gatehouse-admin-cli-'));
    dataDir = join(cwd, 'data');
    issuer = gatewayUrls(loadConfig({ env: {}, overrides: { dataDir } })).issuer;
    const added = await Promise.all([
      run(
        ['users', 'add', 'alice', '--admin', '--email', 'alice@example.com', '--password-stdin'],
        `${PASSWORD}\n`,
      ),
      run(['users', 'add', 'bob', '--password-stdin'], `${PASSWORD}\n`),
    ]);
    for (const result of added) expect(result.code, result.stderr).toBe(0);
    expect(added[0]?.stdout).toMatch(/^added admin alice \(usr_\S+\)\n$/);
    expect(added[1]?.stdout).toMatch(/^added user bob \(usr_\S+\)\n$/);
    alice = (await json<AdminUser[]>(['users', 'list'])).find(
      (user) => user.username === 'alice',
    ) as AdminUser;

    const now = Date.now();
    await withStores(async (stores) => {
      await stores.clients.create({
        clientId: 'cli_one',
        tokenEndpointAuthMethod: 'none',
        redirectUris: ['http://127.0.0.1:5000/cb'],
        grantTypes: ['authorization_code', 'refresh_token'],
        responseTypes: ['code'],
        applicationType: 'native',
        clientName: 'Client One',
        metadata: {},
        createdAt: now,
      });
      await stores.clients.create({
        clientId: 'cli_two',
        tokenEndpointAuthMethod: 'none',
        redirectUris: ['http://127.0.0.1:5000/cb'],
        grantTypes: ['authorization_code'],
        responseTypes: ['code'],
        applicationType: 'native',
        metadata: {},
        createdAt: now + 1,
      });
      for (const [id, clientId] of [
        ['grt_one', 'cli_one'],
        ['grt_two', 'cli_two'],
        ['grt_three', 'cli_one'],
      ] as const) {
        await stores.grants.create(
          {
            id,
            clientId,
            principal: { subject: alice.id, idp: 'local', claims: { username: 'alice' } },
            scopes: ['mcp'],
            resource: `${issuer}/mcp`,
            authTime: now,
            createdAt: now + id.length,
            expiresAt: now + 86_400_000,
            generation: 1,
            rotatedAt: now,
          },
          `hash-${id}`,
        );
      }
      for (const id of ['ses_one', 'ses_two', 'ses_three']) {
        await stores.sessions.create(
          {
            id,
            principalKey: `${issuer}#${alice.id}`,
            kind: 'streamable-http',
            createdAt: now + id.length,
            lastSeenAt: now,
            idleTimeoutMs: 3_600_000,
            idleExpiresAt: now + 3_600_000,
            absoluteExpiresAt: now + 7_200_000,
            version: 1,
            data: {
              initialize: {
                protocolVersion: '2025-11-25',
                clientInfo: { name: 'Inspector', version: '0.9' },
              },
            },
          },
          { max: 10 },
          now,
        );
      }
      const entry = (offset: number, type: string, extra: Partial<AuditEntry> = {}): AuditEntry => ({
        id: `${String(now - 7_200_000 + offset).padStart(13, '0')}-seed${offset}`,
        at: now - 7_200_000 + offset,
        type,
        event: { type, ...extra },
        ...extra,
      });
      await stores.audit.append([
        entry(1, 'login', { outcome: 'success', subject: alice.id, ip: '203.0.113.9' }),
        entry(2, 'oauth.token.issued', { outcome: 'success', subject: alice.id, clientId: 'cli_one' }),
        entry(3, 'login', { outcome: 'failure', subject: 'someone-else' }),
      ]);
    });
  }, 180_000);

  afterAll(() => {
    if (cwd !== undefined) rmSync(cwd, { recursive: true, force: true });
  });

  it('has --help on every command, and exits 2 on a usage or configuration error', {
    timeout: 180_000,
  }, async () => {
    // Every command of the real program, walked in-process (spawning forty binaries proves nothing more).
    const program = new Command('gatehouse');
    for (const register of [
      registerUsers,
      registerSessions,
      registerGrants,
      registerClients,
      registerKeys,
      registerAudit,
    ]) {
      register(program);
    }
    const leaves: Command[] = [];
    const walk = (command: Command) => {
      if (command.commands.length === 0) leaves.push(command);
      for (const sub of command.commands) {
        expect(sub.description(), sub.name()).not.toBe('');
        walk(sub);
      }
    };
    walk(program);
    const names = leaves.map(
      (leaf) => `${leaf.parent === program ? '' : `${leaf.parent?.name()} `}${leaf.name()}`,
    );
    expect(names).toEqual(
      expect.arrayContaining([
        'users add',
        'users grant-admin',
        'users revoke-admin',
        'users revoke',
        'sessions list',
        'sessions end',
        'grants list',
        'grants revoke',
        'clients list',
        'clients show',
        'clients approve',
        'clients remove',
        'keys list',
        'keys rotate',
        'audit',
      ]),
    );
    for (const leaf of leaves) {
      const flags = leaf.options.map((option) => option.long);
      expect(flags, leaf.name()).toEqual(expect.arrayContaining(['--config', '--data-dir']));
      if (['list', 'show', 'audit'].includes(leaf.name())) expect(flags, leaf.name()).toContain('--json');
    }

    // And the binary answers --help with exit 0 on a group, a leaf and the audit command.
    const helps = await Promise.all(
      [['sessions'], ['clients', 'show'], ['audit']].map((command) =>
        runCli([...command, '--help'], cwd, cleanEnv()),
      ),
    );
    expect(helps.map((help) => help.code)).toEqual([0, 0, 0]);
    expect(helps[0]?.stdout).toMatch(/Usage: gatehouse sessions[\s\S]*list[\s\S]*end/);
    expect(helps[1]?.stdout).toContain('Usage: gatehouse clients show [options] <client_id>');
    expect(helps[2]?.stdout).toMatch(/--follow/);

    const usage = await Promise.all([
      run(['sessions', 'end']),
      run(['sessions', 'list', '--limit', 'lots']),
      run(['grants', 'revoke']),
      run(['audit', '--since', 'yesterday']),
      run(['audit', '--follow', '--until', '1h']),
      runCli(['sessions', 'list'], cwd, cleanEnv({ GATEHOUSE_STORE__KIND: 'memory' })),
    ]);
    for (const result of usage) expect(result.code, result.stderr).toBe(2);
    expect(usage[0]?.stderr).toContain('give either a session id or --user');
    expect(usage[3]?.stderr).toContain('--since takes an ISO 8601 time');
    expect(usage[5]?.stderr).toContain('memory store');
  });

  it('users: --admin, grant-admin, revoke-admin, ADMIN in the list, revoke signs out everywhere', {
    timeout: 180_000,
  }, async () => {
    const table = await run(['users', 'list']);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/^USERNAME +ID +EMAIL +NAME +ADMIN +STATE +CREATED\n/);
    expect(table.stdout).toMatch(/\nalice +usr_\S+ +alice@example\.com +- +yes +enabled +\d{4}-/);
    expect(table.stdout).toMatch(/\nbob +usr_\S+ +- +- +no +enabled +\d{4}-/);
    expect(alice).toEqual({
      id: expect.stringMatching(/^usr_/),
      username: 'alice',
      email: 'alice@example.com',
      admin: true,
      disabled: false,
      createdAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
    });

    const granted = await run(['users', 'grant-admin', 'BOB']);
    expect(granted.stdout).toBe('bob is an admin\n');
    expect((await json<AdminUser[]>(['users', 'list'])).map((user) => [user.username, user.admin])).toEqual([
      ['alice', true],
      ['bob', true],
    ]);
    expect((await run(['users', 'revoke-admin', 'bob'])).stdout).toBe('bob is no longer an admin\n');
    expect((await withStores((stores) => stores.users.findByUsername('bob')))?.roles).toEqual([]);

    // bob holds nothing; alice's grants are revoked later by the grants and clients tests' own data.
    const revoked = await run(['users', 'revoke', 'bob']);
    expect(revoked.code, revoked.stderr).toBe(0);
    expect(revoked.stdout).toBe(
      'revoked the access of bob; signed out everywhere: 0 grants revoked, 0 live sessions ended, 0 consents forgotten; browser sign-ins ended\n',
    );
    const before = await withStores((stores) => stores.users.findByUsername('bob'));
    expect(before?.credentialsChangedAt).toBeGreaterThan(before?.createdAt ?? Number.POSITIVE_INFINITY);

    const refused = await Promise.all([
      run(['users', 'revoke', 'nobody']),
      run(['users', 'grant-admin', 'nobody']),
      run(['users', 'add', 'alice', '--password-stdin'], PASSWORD),
    ]);
    expect(refused.map((result) => result.code)).toEqual([1, 1, 1]);
    expect(refused[0]?.stderr).toContain('ERR_USER_NOT_FOUND');
    expect(refused[0]?.stderr).toContain('gatehouse users list');
    expect(refused[2]?.stderr).toContain('ERR_USER_EXISTS');
  });

  it('sessions: list (table and JSON, per user), end one, end every one of a user', {
    timeout: 180_000,
  }, async () => {
    const sessions = await json<AdminSession[]>(['sessions', 'list']);
    expect(sessions.map((session) => session.id)).toEqual(['ses_one', 'ses_two', 'ses_three']);
    expect(sessions[0]).toEqual({
      id: 'ses_one',
      username: 'alice',
      principal: `${issuer}#${alice.id}`,
      transport: 'streamable-http',
      client: 'Inspector 0.9',
      protocolVersion: '2025-11-25',
      createdAt: expect.stringMatching(/Z$/),
      lastSeenAt: expect.stringMatching(/Z$/),
      expiresAt: expect.stringMatching(/Z$/),
    });
    const [table, mine, bobs, limited] = await Promise.all([
      run(['sessions', 'list']),
      json<AdminSession[]>(['sessions', 'list', '--user', 'alice']),
      json<AdminSession[]>(['sessions', 'list', '--user', 'bob']),
      json<AdminSession[]>(['sessions', 'list', '--limit', '1']),
    ]);
    expect(table.stdout).toMatch(
      /^ID +USER +TRANSPORT +CLIENT +CREATED +LAST SEEN +EXPIRES\nses_one +alice +streamable-http +Inspector 0\.9 /,
    );
    expect(mine).toHaveLength(3);
    expect(bobs).toEqual([]);
    expect(limited).toHaveLength(1);

    const ended = await run(['sessions', 'end', 'ses_one']);
    expect(ended.code, ended.stderr).toBe(0);
    expect(ended.stdout).toBe('ended session ses_one of alice\n');
    expect(await withStores((stores) => stores.sessions.get('ses_one', Date.now()))).toBeUndefined();
    const again = await run(['sessions', 'end', 'ses_one']);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('ERR_SESSION_NOT_FOUND');

    const all = await run(['sessions', 'end', '--user', 'alice']);
    expect(all.stdout).toBe('ended 2 live sessions of alice\n');
    expect((await run(['sessions', 'list'])).stdout).toBe('no live sessions\n');
    expect((await run(['sessions', 'end', '--user', 'nobody'])).code).toBe(1);

    // A random id may begin with "-": after `--` it is an id, not an option (and the usage error says so).
    await withStores((stores) =>
      stores.sessions.create(
        {
          id: '-dash-first',
          principalKey: `${issuer}#${alice.id}`,
          kind: 'websocket',
          createdAt: Date.now(),
          lastSeenAt: Date.now(),
          idleTimeoutMs: 3_600_000,
          idleExpiresAt: Date.now() + 3_600_000,
          absoluteExpiresAt: Date.now() + 7_200_000,
          version: 1,
          data: {},
        },
        { max: 10 },
        Date.now(),
      ),
    );
    const [asOption, afterDashes] = await Promise.all([
      run(['sessions', 'end', '-dash-first']),
      runCli(['sessions', 'end', '--data-dir', dataDir, '--', '-dash-first'], cwd, cleanEnv()),
    ]);
    expect(asOption.code).toBe(2);
    expect(asOption.stderr).toContain('goes after "--"');
    expect(afterDashes.code, afterDashes.stderr).toBe(0);
    expect(afterDashes.stdout).toBe('ended session -dash-first of alice\n');
  });

  it('grants: list (table and JSON, per user) and revoke one', { timeout: 180_000 }, async () => {
    const grants = await json<AdminGrant[]>(['grants', 'list']);
    expect(grants.map((grant) => grant.id)).toEqual(['grt_one', 'grt_two', 'grt_three']);
    expect(grants[0]).toEqual({
      id: 'grt_one',
      clientId: 'cli_one',
      clientName: 'Client One',
      username: 'alice',
      principal: `local#${alice.id}`,
      scopes: ['mcp'],
      resource: `${issuer}/mcp`,
      createdAt: expect.stringMatching(/Z$/),
      expiresAt: expect.stringMatching(/Z$/),
    });
    const table = await run(['grants', 'list']);
    expect(table.stdout).toMatch(
      /^ID +USER +CLIENT +SCOPES +STATE +CREATED +EXPIRES\ngrt_one +alice +Client One \(cli_one\) +mcp +active /,
    );

    const revoked = await run(['grants', 'revoke', 'grt_one']);
    expect(revoked.code, revoked.stderr).toBe(0);
    expect(revoked.stdout).toBe('revoked grant grt_one (alice, client Client One)\n');
    const stored = await withStores(async (stores) => ({
      grant: await stores.grants.get('grt_one', Date.now()),
      entries: await stores.revocations.listSince(0, Date.now()),
    }));
    expect(stored.grant?.revokedAt).toBeDefined();
    expect(stored.entries.map((entry) => `${entry.kind}:${entry.id}`)).toContain('grant:grt_one');
    expect((await json<AdminGrant[]>(['grants', 'list', '--user', 'alice'])).map((g) => g.id)).not.toContain(
      'grt_one',
    );
    expect(
      (await json<AdminGrant[]>(['grants', 'list'])).find((g) => g.id === 'grt_one')?.revokedAt,
    ).toBeDefined();

    const unknown = await run(['grants', 'revoke', 'grt_nope']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('ERR_GRANT_NOT_FOUND');
  });

  it('clients: list, show, approve and remove (which revokes its grants)', { timeout: 180_000 }, async () => {
    const clients = await json<AdminClient[]>(['clients', 'list']);
    expect(clients.map((client) => client.clientId)).toEqual(['cli_one', 'cli_two']);
    expect(clients[0]).toEqual({
      clientId: 'cli_one',
      clientName: 'Client One',
      redirectUris: ['http://127.0.0.1:5000/cb'],
      grantTypes: ['authorization_code', 'refresh_token'],
      tokenEndpointAuthMethod: 'none',
      applicationType: 'native',
      createdAt: expect.stringMatching(/Z$/),
    });
    const [table, shown, shownJson] = await Promise.all([
      run(['clients', 'list']),
      run(['clients', 'show', 'cli_two']),
      json<AdminClient>(['clients', 'show', 'cli_two']),
    ]);
    expect(table.stdout).toMatch(
      /^CLIENT ID +NAME +AUTH +APPROVED +CREATED +REDIRECT URIS\ncli_one +Client One +none +no /,
    );
    expect(shown.stdout).toMatch(/^client id: +cli_two\n/m);
    expect(shown.stdout).toMatch(/^approved: +no$/m);
    expect(shownJson.clientId).toBe('cli_two');

    expect((await run(['clients', 'approve', 'cli_two'])).stdout).toBe('approved client cli_two\n');
    expect((await json<AdminClient>(['clients', 'show', 'cli_two'])).approvedAt).toMatch(/Z$/);

    const removed = await run(['clients', 'remove', 'cli_two']);
    expect(removed.code, removed.stderr).toBe(0);
    expect(removed.stdout).toBe('removed client cli_two; 1 grant revoked\n');
    expect((await withStores((stores) => stores.grants.get('grt_two', Date.now())))?.revokedAt).toBeDefined();
    expect(
      (await withStores((stores) => stores.grants.get('grt_three', Date.now())))?.revokedAt,
    ).toBeUndefined();

    const missing = await Promise.all([
      run(['clients', 'show', 'cli_two']),
      run(['clients', 'remove', 'cli_two']),
      run(['clients', 'approve', 'cli_nope']),
    ]);
    for (const result of missing) {
      expect(result.code).toBe(1);
      expect(result.stderr).toContain('ERR_CLIENT_NOT_FOUND');
    }
  });

  it('keys: list and rotate (the previous key stays published)', { timeout: 180_000 }, async () => {
    const rotated = await run(['keys', 'rotate']);
    expect(rotated.code, rotated.stderr).toBe(0);
    const kid = /^generated signing key (\S+);/.exec(rotated.stdout)?.[1];
    expect(kid).toBeTruthy();
    const keys = await json<AdminSigningKey[]>(['keys', 'list']);
    expect(keys[0]).toEqual({
      kid,
      alg: 'ES256',
      state: 'signing',
      createdAt: expect.stringMatching(/Z$/),
      retiresAt: expect.stringMatching(/Z$/),
      expiresAt: expect.stringMatching(/Z$/),
    });
    expect(keys.length).toBeGreaterThanOrEqual(2);
    expect(keys.slice(1).every((key) => key.state === 'verifying')).toBe(true);
    const table = await run(['keys', 'list']);
    expect(table.stdout).toMatch(
      new RegExp(`^KID +ALG +STATE +CREATED +RETIRES +EXPIRES\\n${kid} +ES256 +signing `),
    );
    expect(`${table.stdout}${rotated.stdout}`).not.toMatch(/"d"|privateJwk/);
  });

  it('audit: a table newest first, JSON lines oldest first, filters, and the operator commands themselves', {
    timeout: 180_000,
  }, async () => {
    const lines = async (args: string[]) => {
      const result = await run(['audit', ...args, '--json']);
      expect(result.code, result.stderr).toBe(0);
      return result.stdout
        .split('\n')
        .filter((line) => line !== '')
        .map((line) => JSON.parse(line) as AdminAuditEntry);
    };
    const everything = await lines([]);
    const seeded = everything.filter((entry) => entry.id.includes('-seed'));
    expect(seeded.map((entry) => entry.type)).toEqual(['login', 'oauth.token.issued', 'login']);
    expect(seeded[0]).toEqual({
      id: expect.stringMatching(/-seed1$/),
      time: expect.stringMatching(/Z$/),
      at: expect.any(Number),
      type: 'login',
      outcome: 'success',
      subject: alice.id,
      username: 'alice',
      ip: '203.0.113.9',
      event: expect.objectContaining({ type: 'login' }),
    });
    const ats = everything.map((entry) => entry.at);
    expect([...ats].sort((a, b) => a - b)).toEqual(ats);
    // What the commands above did is in the log too.
    expect(everything).toContainEqual(
      expect.objectContaining({
        type: 'session.ended',
        event: expect.objectContaining({ reason: 'ended_by_operator' }),
      }),
    );
    expect(everything).toContainEqual(
      expect.objectContaining({
        type: 'admin.action',
        event: expect.objectContaining({
          action: 'session.end',
          target: 'ses_one',
          via: 'cli',
          actor: expect.stringMatching(/^cli:/),
        }),
      }),
    );
    expect(everything).toContainEqual(
      expect.objectContaining({
        type: 'account.revoked',
        event: expect.objectContaining({ why: 'signed_out_everywhere' }),
      }),
    );

    const [mine, logins, tokenEvents, recent, lastTwo] = await Promise.all([
      lines(['--user', 'alice', '--event', 'login']),
      lines(['--event', 'login']),
      lines(['--event', 'oauth.']),
      lines(['--since', '1h']),
      lines(['--limit', '2']),
    ]);
    expect(mine.map((entry) => entry.outcome)).toEqual(['success']);
    expect(logins).toHaveLength(2);
    expect(tokenEvents.map((entry) => entry.type)).toEqual(['oauth.token.issued']);
    expect(recent.some((entry) => entry.id.includes('-seed'))).toBe(false);
    expect(lastTwo.map((entry) => entry.id)).toEqual(everything.slice(-2).map((entry) => entry.id));

    const table = await run(['audit', '--event', 'login']);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(
      /^TIME +EVENT +OUTCOME +USER +CLIENT +DETAIL\n\S+ +login +failure +someone-else +- *\n\S+ +login +success +alice +- +ip=203\.0\.113\.9\n$/,
    );
    const unknown = await run(['audit', '--user', 'nobody']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('ERR_USER_NOT_FOUND');
  });

  it('audit --follow prints what exists, then new entries as they are written, until interrupted', {
    timeout: 180_000,
  }, async () => {
    const child = spawn(
      process.execPath,
      [...CLI_ARGS, 'audit', '--follow', '--json', '--event', 'login', '--data-dir', dataDir],
      { cwd, env: cleanEnv() },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    const entries = () =>
      stdout
        .split('\n')
        .filter((line) => line !== '')
        .map((line) => JSON.parse(line) as AdminAuditEntry);
    try {
      await vi.waitFor(() => expect(entries()).toHaveLength(2), { timeout: 60_000, interval: 100 });
      const at = Date.now();
      await withStores((stores) =>
        stores.audit.append([
          {
            id: `${at}-followed`,
            at,
            type: 'login',
            outcome: 'success',
            subject: alice.id,
            event: { type: 'login' },
          },
          { id: `${at}-other`, at, type: 'consent', outcome: 'success', event: { type: 'consent' } },
        ]),
      );
      await vi.waitFor(() => expect(entries().map((entry) => entry.id)).toContain(`${at}-followed`), {
        timeout: 30_000,
        interval: 100,
      });
      expect(entries().map((entry) => entry.type)).toEqual(['login', 'login', 'login']);
      expect(entries().at(-1)?.username).toBe('alice');
    } finally {
      child.kill('SIGINT');
    }
    expect(await exited, stderr).toBe(0);
  });
});
