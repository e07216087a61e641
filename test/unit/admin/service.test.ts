import { describe, expect, it, vi } from 'vitest';
import { type AdminServiceDeps, createAdminService } from '../../../src/admin/service.js';
import { createLiveRegistry, type LiveEntry } from '../../../src/bridge/registry.js';
import { sessionsSchema } from '../../../src/config/schema.js';
import { createSealer } from '../../../src/crypto/seal.js';
import { isGatehouseError } from '../../../src/errors/gatehouse-error.js';
import { createLocalAccounts } from '../../../src/identity/local-accounts.js';
import type { Principal } from '../../../src/identity/principal.js';
import { createManualClock } from '../../../src/ops/clock.js';
import { createEventBus, type GatehouseEvent, type SessionEndReason } from '../../../src/ops/events.js';
import { silentLogger } from '../../../src/ops/logger.js';
import { createSessionManager } from '../../../src/sessions/manager.js';
import { createMemoryStores } from '../../../src/stores/memory/index.js';
import type { ClientRecord, GrantRecord, SessionRecord, Stores } from '../../../src/stores/ports.js';
import { createKeyStore } from '../../../src/tokens/keys.js';
import { createLocalBusHub, type LocalBus } from '../../helpers/local-bus.js';

const ISSUER = 'https://gh.example';
const PASSWORD = 'correct horse battery staple';
const CHEAP = { params: { ln: 10, r: 8, p: 1 } };
const TTL_SECONDS = 300;

/** One deployment: a memory store standing for a shared engine with its bus, and the service over it. */
function setup(extra: Partial<AdminServiceDeps> = {}) {
  const hub = createLocalBusHub();
  const bus = hub.bus();
  const stores: Stores = { ...createMemoryStores(), bus };
  const clock = createManualClock();
  const emitted: GatehouseEvent[] = [];
  const events = createEventBus(silentLogger);
  events.subscribe((event) => emitted.push(event));
  const admin = createAdminService({
    stores,
    issuer: ISSUER,
    accessTokenTtlSeconds: TTL_SECONDS,
    clock,
    events,
    hashOptions: CHEAP,
    ...extra,
  });
  return { hub, bus: bus as LocalBus, stores, clock, emitted, admin };
}

async function codeOf(action: () => Promise<unknown>): Promise<string | undefined> {
  try {
    await action();
  } catch (error) {
    return isGatehouseError(error) ? error.code : String(error);
  }
  return undefined;
}

function grant(id: string, subject: string, clientId: string, createdAt: number): GrantRecord {
  return {
    id,
    clientId,
    principal: { subject, idp: 'local', claims: { username: 'alice' } },
    scopes: ['mcp'],
    resource: `${ISSUER}/mcp`,
    authTime: createdAt,
    createdAt,
    expiresAt: createdAt + 30 * 86_400_000,
    generation: 1,
    rotatedAt: createdAt,
  };
}

function session(
  id: string,
  subject: string,
  now: number,
  data: Record<string, unknown> = {},
): SessionRecord {
  return {
    id,
    principalKey: `${ISSUER}#${subject}`,
    kind: 'streamable-http',
    createdAt: now,
    lastSeenAt: now,
    idleTimeoutMs: 60_000,
    idleExpiresAt: now + 60_000,
    absoluteExpiresAt: now + 3_600_000,
    version: 1,
    data,
  };
}

function client(clientId: string, now: number, name?: string): ClientRecord {
  return {
    clientId,
    tokenEndpointAuthMethod: 'none',
    redirectUris: ['http://127.0.0.1:5000/cb'],
    grantTypes: ['authorization_code', 'refresh_token'],
    responseTypes: ['code'],
    applicationType: 'native',
    ...(name !== undefined && { clientName: name }),
    metadata: {},
    createdAt: now,
  };
}

const LIMIT = { max: 10 };

describe('the admin service: users', () => {
  it('adds, lists and finds accounts, and grants and removes the admin role', async () => {
    const { admin } = setup();
    const alice = await admin.users.add({
      username: 'Alice',
      password: PASSWORD,
      admin: true,
      email: 'a@x.io',
    });
    expect(alice).toMatchObject({ username: 'alice', admin: true, disabled: false, email: 'a@x.io' });
    await admin.users.add({ username: 'bob', password: PASSWORD });
    expect((await admin.users.list()).map((user) => [user.username, user.admin])).toEqual([
      ['alice', true],
      ['bob', false],
    ]);
    expect((await admin.users.setAdmin('bob', true)).admin).toBe(true);
    expect((await admin.users.setAdmin('ALICE', false)).admin).toBe(false);
    expect((await admin.users.get('alice')).admin).toBe(false);
    expect(await codeOf(() => admin.users.add({ username: 'bob', password: PASSWORD }))).toBe(
      'ERR_USER_EXISTS',
    );
    expect(await codeOf(() => admin.users.add({ username: 'carol', password: 'short' }))).toBe(
      'ERR_PASSWORD_POLICY',
    );
    for (const missing of [
      () => admin.users.get('nobody'),
      () => admin.users.get('not a valid name!'),
      () => admin.users.setAdmin('nobody', true),
      () => admin.users.revoke('nobody'),
      () => admin.users.disable('nobody'),
      () => admin.sessions.list({ username: 'nobody' }),
      () => admin.audit.query({ username: 'nobody' }),
    ]) {
      expect(await codeOf(missing)).toBe('ERR_USER_NOT_FOUND');
    }
  });

  it('"sign out everywhere" revokes grants, consents, live sessions and browser sign-ins, and keeps the account', async () => {
    const { admin, stores, clock, bus, emitted } = setup();
    const alice = await admin.users.add({ username: 'alice', password: PASSWORD });
    const bob = await admin.users.add({ username: 'bob', password: PASSWORD });
    const signedInAt = clock.now();
    await stores.grants.create(grant('grt_a', alice.id, 'cli_1', clock.now()), 'refresh-hash-a');
    await stores.grants.create(grant('grt_b', bob.id, 'cli_1', clock.now()), 'refresh-hash-b');
    await stores.consents.put({
      principalKey: `local#${alice.id}`,
      clientId: 'cli_1',
      scopes: ['mcp'],
      grantedAt: clock.now(),
      expiresAt: clock.now() + 86_400_000,
    });
    await stores.sessions.create(session('ses_a', alice.id, clock.now()), LIMIT, clock.now());
    await stores.sessions.create(session('ses_b', bob.id, clock.now()), LIMIT, clock.now());
    clock.advance(1_000);

    const revoked = await admin.users.revoke('alice');
    expect(revoked).toEqual({ grants: 1, sessions: 1, consents: 1 });
    expect((await stores.grants.get('grt_a', clock.now()))?.revokedAt).toBe(clock.now());
    expect((await stores.grants.get('grt_b', clock.now()))?.revokedAt).toBeUndefined();
    expect((await stores.revocations.listSince(0, clock.now())).map((entry) => entry.id)).toEqual(['grt_a']);
    expect(await stores.sessions.get('ses_a', clock.now())).toBeUndefined();
    expect(await stores.sessions.get('ses_b', clock.now())).toBeDefined();
    expect(bus.published).toEqual([
      { type: 'revocations.changed' },
      { type: 'session.ended', sessionId: 'ses_a', reason: 'revoked' },
    ]);
    expect(emitted).toContainEqual(
      expect.objectContaining({ type: 'account.revoked', why: 'signed_out_everywhere', grants: 1 }),
    );
    // A browser sign-in made before it no longer counts; the account still signs in.
    const accounts = createLocalAccounts({
      users: stores.users,
      counters: stores.counters,
      clock,
      hashOptions: CHEAP,
    });
    expect(await accounts.isActive(alice.id, signedInAt)).toBe(false);
    expect(await accounts.isActive(alice.id, clock.now())).toBe(true);
    expect(await accounts.isActive(bob.id, signedInAt)).toBe(true);
    expect((await admin.users.get('alice')).disabled).toBe(false);
  });

  it('disable, enable, passwd and remove keep their meaning', async () => {
    const { admin, stores, clock } = setup();
    const alice = await admin.users.add({ username: 'alice', password: PASSWORD });
    await stores.grants.create(grant('grt_1', alice.id, 'cli_1', clock.now()), 'h1');
    expect((await admin.users.disable('alice')).grants).toBe(1);
    expect((await admin.users.get('alice')).disabled).toBe(true);
    expect((await admin.users.enable('alice')).disabled).toBe(false);
    await stores.grants.create(grant('grt_2', alice.id, 'cli_1', clock.now()), 'h2');
    expect((await admin.users.setPassword('alice', 'another fine passphrase')).grants).toBe(1);
    await stores.grants.create(grant('grt_3', alice.id, 'cli_1', clock.now()), 'h3');
    expect((await admin.users.remove('alice')).grants).toBe(1);
    expect(await codeOf(() => admin.users.get('alice'))).toBe('ERR_USER_NOT_FOUND');
  });
});

describe('the admin service: sessions', () => {
  it('lists live sessions with their user and client, and ends one wherever its upstream runs', async () => {
    const { admin, stores, clock, hub, emitted } = setup();
    const alice = await admin.users.add({ username: 'alice', password: PASSWORD });
    const now = clock.now();
    await stores.sessions.create(
      session('ses_1', alice.id, now, {
        initialize: { protocolVersion: '2025-11-25', clientInfo: { name: 'Claude', version: '1.2' } },
      }),
      LIMIT,
      now,
    );
    await stores.sessions.create(
      { ...session('ses_2', 'someone-else', now + 1), principalKey: 'https://idp.example#carol' },
      LIMIT,
      now,
    );

    const all = await admin.sessions.list();
    expect(all.map((s) => s.id)).toEqual(['ses_1', 'ses_2']);
    expect(all[0]).toMatchObject({
      username: 'alice',
      principal: `${ISSUER}#${alice.id}`,
      transport: 'streamable-http',
      client: 'Claude 1.2',
      protocolVersion: '2025-11-25',
    });
    expect(all[1]?.username).toBeUndefined();
    expect((await admin.sessions.list({ username: 'alice' })).map((s) => s.id)).toEqual(['ses_1']);
    expect(await admin.sessions.list({ limit: 1 })).toHaveLength(1);
    expect(await codeOf(() => admin.sessions.list({ limit: 0 }))).toBe('ERR_BAD_REQUEST');

    // Another instance holds ses_1's upstream: the bus tells it to let go.
    const instance = createSessionManager({
      store: stores.sessions,
      config: sessionsSchema.parse({}),
      clock,
      logger: silentLogger,
      events: createEventBus(silentLogger),
      bus: hub.bus(),
    });
    const registry = createLiveRegistry(instance);
    const ended: SessionEndReason[] = [];
    const held: LiveEntry = {
      sessionId: 'ses_1',
      principal: { issuer: ISSUER, subject: alice.id } as Principal,
      sessionEnded: (reason) => ended.push(reason),
    };
    registry.add(held);

    expect((await admin.sessions.end('ses_1')).username).toBe('alice');
    expect(await stores.sessions.get('ses_1', clock.now())).toBeUndefined();
    expect(emitted).toContainEqual({
      type: 'session.ended',
      sessionId: 'ses_1',
      reason: 'ended_by_operator',
      principal: `${ISSUER}#${alice.id}`,
    });
    await vi.waitFor(() => expect(ended).toEqual(['ended_by_operator']));
    expect(await codeOf(() => admin.sessions.end('ses_1'))).toBe('ERR_SESSION_NOT_FOUND');
    expect(await codeOf(() => admin.sessions.end(''))).toBe('ERR_SESSION_NOT_FOUND');
    instance.close();
  });

  it('tells the process it runs in which sessions it ended, so an upstream held there stops without a bus', async () => {
    const released: string[] = [];
    const { admin, stores, clock } = setup({ sessionEnded: (id) => released.push(id) });
    const alice = await admin.users.add({ username: 'alice', password: PASSWORD });
    for (const id of ['s1', 's2', 's3']) {
      await stores.sessions.create(session(id, alice.id, clock.now()), LIMIT, clock.now());
    }
    await admin.sessions.end('s1');
    expect(released).toEqual(['s1']);
    expect(await admin.sessions.endForUser('alice')).toBe(2);
    expect(released.sort()).toEqual(['s1', 's2', 's3']);
  });

  it('ends every session of one user and leaves their grants alone', async () => {
    const { admin, stores, clock, bus } = setup();
    const alice = await admin.users.add({ username: 'alice', password: PASSWORD });
    await stores.grants.create(grant('grt_1', alice.id, 'cli_1', clock.now()), 'h1');
    for (const id of ['s1', 's2'])
      await stores.sessions.create(session(id, alice.id, clock.now()), LIMIT, clock.now());
    expect(await admin.sessions.endForUser('alice')).toBe(2);
    expect(await admin.sessions.list()).toEqual([]);
    expect((await stores.grants.get('grt_1', clock.now()))?.revokedAt).toBeUndefined();
    expect(bus.published.filter((m) => m.type === 'session.ended')).toHaveLength(2);
    expect(await admin.sessions.endForUser('alice')).toBe(0);
  });
});

describe('the admin service: grants and clients', () => {
  it('revokes one grant: its revocation entry is stored and announced', async () => {
    const { admin, stores, clock, bus } = setup();
    const alice = await admin.users.add({ username: 'alice', password: PASSWORD });
    await stores.clients.create(client('cli_1', clock.now(), 'Inspector'));
    await stores.grants.create(grant('grt_1', alice.id, 'cli_1', clock.now()), 'h1');
    await stores.grants.create(grant('grt_2', alice.id, 'cli_1', clock.now() + 1), 'h2');

    const listed = await admin.grants.list();
    expect(listed.map((g) => g.id)).toEqual(['grt_1', 'grt_2']);
    expect(listed[0]).toMatchObject({
      clientId: 'cli_1',
      clientName: 'Inspector',
      username: 'alice',
      principal: `local#${alice.id}`,
      scopes: ['mcp'],
    });
    clock.advance(1_000);
    const revoked = await admin.grants.revoke('grt_1');
    expect(revoked.revokedAt).toBe(new Date(clock.now()).toISOString());
    const [entry] = await stores.revocations.listSince(0, clock.now());
    expect(entry).toMatchObject({ kind: 'grant', id: 'grt_1', revokedAt: clock.now() });
    expect(entry?.expiresAt).toBeGreaterThanOrEqual(clock.now() + TTL_SECONDS * 1000);
    expect(bus.published).toContainEqual({ type: 'revocations.changed' });
    // Listing all keeps the revoked one (marked); one user's list shows only live grants.
    expect((await admin.grants.list()).find((g) => g.id === 'grt_1')?.revokedAt).toBeDefined();
    expect((await admin.grants.list({ username: 'alice' })).map((g) => g.id)).toEqual(['grt_2']);
    // Revoking again changes nothing and is no error.
    expect((await admin.grants.revoke('grt_1')).revokedAt).toBe(revoked.revokedAt);
    expect(await codeOf(() => admin.grants.revoke('grt_nope'))).toBe('ERR_GRANT_NOT_FOUND');
  });

  it('lists, shows and approves clients, and removing one revokes its grants only', async () => {
    const { admin, stores, clock } = setup();
    const alice = await admin.users.add({ username: 'alice', password: PASSWORD });
    await stores.clients.create(client('cli_1', clock.now(), 'One'));
    await stores.clients.create(client('cli_2', clock.now() + 1));
    await stores.grants.create(grant('grt_1', alice.id, 'cli_1', clock.now()), 'h1');
    await stores.grants.create(grant('grt_2', alice.id, 'cli_2', clock.now()), 'h2');

    expect((await admin.clients.list()).map((c) => c.clientId)).toEqual(['cli_1', 'cli_2']);
    expect(await admin.clients.show('cli_1')).toMatchObject({
      clientName: 'One',
      tokenEndpointAuthMethod: 'none',
    });
    expect((await admin.clients.show('cli_1')).approvedAt).toBeUndefined();
    expect((await admin.clients.approve('cli_1')).approvedAt).toBe(new Date(clock.now()).toISOString());

    const removed = await admin.clients.remove('cli_1');
    expect(removed).toMatchObject({ client: { clientId: 'cli_1' }, grantsRevoked: 1 });
    expect((await stores.grants.get('grt_1', clock.now()))?.revokedAt).toBeDefined();
    expect((await stores.grants.get('grt_2', clock.now()))?.revokedAt).toBeUndefined();
    for (const action of [
      () => admin.clients.show('cli_1'),
      () => admin.clients.remove('cli_1'),
      () => admin.clients.approve('cli_1'),
    ]) {
      expect(await codeOf(action)).toBe('ERR_CLIENT_NOT_FOUND');
    }
  });
});

describe('the admin service: keys and audit', () => {
  it('rotates the signing key now: the successor signs, the previous one keeps verifying', async () => {
    const hub = createLocalBusHub();
    const stores: Stores = { ...createMemoryStores(), bus: hub.bus() };
    const clock = createManualClock();
    const keys = await createKeyStore({
      store: stores.signingKeys,
      sealer: createSealer([new Uint8Array(32).fill(7)]),
      clock,
      bus: stores.bus,
    });
    const admin = createAdminService({ stores, issuer: ISSUER, accessTokenTtlSeconds: 300, clock, keys });
    const [first] = await admin.keys.list();
    expect(first?.state).toBe('signing');

    const rotated = await admin.keys.rotate();
    expect(rotated.kid).not.toBe(first?.kid);
    expect(keys.signingKey().kid).toBe(rotated.kid);
    expect((await admin.keys.list()).map((key) => [key.kid, key.state])).toEqual([
      [rotated.kid, 'signing'],
      [first?.kid, 'verifying'],
    ]);
    expect(keys.publicJwks().keys.map((key) => key.kid)).toContain(first?.kid);
    expect((stores.bus as LocalBus).published).toContainEqual({ type: 'signing-keys.changed' });

    const withoutKeys = createAdminService({ stores, issuer: ISSUER, accessTokenTtlSeconds: 300, clock });
    expect(await codeOf(() => withoutKeys.keys.rotate())).toBe('ERR_BAD_REQUEST');
    keys.close();
  });

  it('reads the audit log by user, type and time, newest first by default', async () => {
    const { admin, stores, clock } = setup();
    const alice = await admin.users.add({ username: 'alice', password: PASSWORD });
    const at = clock.now();
    const id = (offset: number) => `${String(at + offset).padStart(13, '0')}-x${offset}`;
    await stores.audit.append([
      {
        id: id(1),
        at: at + 1,
        type: 'login',
        outcome: 'success',
        subject: alice.id,
        event: { type: 'login' },
      },
      {
        id: id(2),
        at: at + 2,
        type: 'oauth.token.issued',
        outcome: 'success',
        subject: alice.id,
        clientId: 'cli_1',
        event: { type: 'oauth.token.issued' },
      },
      {
        id: id(3),
        at: at + 3,
        type: 'login',
        outcome: 'failure',
        subject: 'someone',
        event: { type: 'login' },
      },
    ]);
    const newest = await admin.audit.query({});
    expect(newest.map((entry) => entry.at)).toEqual([at + 3, at + 2, at + 1]);
    expect(newest[1]).toMatchObject({
      username: 'alice',
      clientId: 'cli_1',
      time: new Date(at + 2).toISOString(),
    });
    expect((await admin.audit.query({ username: 'alice', order: 'asc' })).map((e) => e.type)).toEqual([
      'login',
      'oauth.token.issued',
    ]);
    expect((await admin.audit.query({ type: 'oauth.' })).map((e) => e.type)).toEqual(['oauth.token.issued']);
    expect((await admin.audit.query({ since: at + 2, until: at + 3 })).map((e) => e.at)).toEqual([at + 2]);
    expect(
      (await admin.audit.query({ order: 'asc', after: { at: at + 1, id: id(1) } })).map((e) => e.at),
    ).toEqual([at + 2, at + 3]);
    expect(await admin.audit.query({ limit: 2 })).toHaveLength(2);
  });
});
