import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { calculateJwkThumbprint, decodeProtectedHeader, exportJWK, generateKeyPair, jwtVerify } from 'jose';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createManualClock } from '../../../src/ops/clock.js';
import { createKeyStore, SIGNING_KEYS_FILE } from '../../../src/tokens/keys.js';
import { createTokenSigner } from '../../../src/tokens/sign.js';
import { expectGatehouseError } from './helpers.js';

const PRIVATE_JWK_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k', 'oth', 'priv'];
const posix = process.platform !== 'win32';

describe('createKeyStore', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gatehouse-keys-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('without dataDir keeps a fresh ES256 key in memory and says so', async () => {
    const clock = createManualClock();
    const keys = await createKeyStore({ clock });
    const description = keys.describe();
    expect(description.alg).toBe('ES256');
    expect(description.createdAt).toBe(new Date(clock.now()).toISOString());
    expect(keys.notes).toEqual([{ code: 'in_memory', kid: description.kid }]);
    const other = await createKeyStore({ clock });
    expect(other.describe().kid).not.toBe(description.kid);
  });

  it('uses the RFC 7638 thumbprint of the public key as kid', async () => {
    const keys = await createKeyStore({ clock: createManualClock() });
    const [jwk] = keys.publicJwks().keys;
    expect(jwk).toBeDefined();
    const { kid: _kid, alg: _alg, use: _use, ...bare } = jwk ?? {};
    expect(keys.describe().kid).toBe(await calculateJwkThumbprint(bare));
  });

  it('publishes only public members, with kid, alg and use', async () => {
    const keys = await createKeyStore({ clock: createManualClock() });
    const { keys: published } = keys.publicJwks();
    expect(published).toHaveLength(1);
    const jwk = published[0] ?? {};
    expect(Object.keys(jwk).sort()).toEqual(['alg', 'crv', 'kid', 'kty', 'use', 'x', 'y']);
    expect(jwk).toMatchObject({
      kty: 'EC',
      crv: 'P-256',
      alg: 'ES256',
      use: 'sig',
      kid: keys.describe().kid,
    });
    for (const member of PRIVATE_JWK_MEMBERS) expect(jwk).not.toHaveProperty(member);
  });

  it('returns copies from publicJwks so callers cannot alter the published set', async () => {
    const keys = await createKeyStore({ clock: createManualClock() });
    const first = keys.publicJwks();
    (first.keys[0] as Record<string, unknown>).x = 'tampered';
    first.keys.push({ kty: 'EC' });
    expect(keys.publicJwks().keys).toHaveLength(1);
    expect(keys.publicJwks().keys[0]?.x).not.toBe('tampered');
  });

  it('describe() carries no private material', async () => {
    const keys = await createKeyStore({ clock: createManualClock() });
    expect(Object.keys(keys.describe()).sort()).toEqual(['alg', 'createdAt', 'kid']);
  });

  it('hands out a non-extractable private key', async () => {
    const keys = await createKeyStore({ clock: createManualClock() });
    const signing = keys.signingKey();
    expect(signing.kid).toBe(keys.describe().kid);
    expect(signing.privateKey.extractable).toBe(false);
    expect(signing.privateKey.type).toBe('private');
  });

  it('signs tokens the verification keys accept', async () => {
    const clock = createManualClock();
    const keys = await createKeyStore({ clock });
    const token = await createTokenSigner({ keys, issuer: 'https://gh', clock }).sign({
      subject: 's',
      audience: 'a',
      expiresInSeconds: 60,
    });
    const { payload } = await jwtVerify(token, keys.verificationKeys(), {
      currentDate: new Date(clock.now()),
    });
    expect(payload.sub).toBe('s');
  });

  it.skipIf(!posix)('writes the key file with mode 0600 in a directory created with mode 0700', async () => {
    const dataDir = join(dir, 'nested', 'data');
    const keys = await createKeyStore({ dataDir, clock: createManualClock() });
    const path = join(dataDir, SIGNING_KEYS_FILE);
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect((await stat(dataDir)).mode & 0o777).toBe(0o700);
    expect(keys.notes).toEqual([{ code: 'generated', kid: keys.describe().kid, path }]);
  });

  it('reloads the same key on a second open, without generating', async () => {
    const clock = createManualClock();
    const first = await createKeyStore({ dataDir: dir, clock });
    const contents = await readFile(join(dir, SIGNING_KEYS_FILE), 'utf8');
    clock.advance(86_400_000);
    const second = await createKeyStore({ dataDir: dir, clock });
    expect(second.describe()).toEqual(first.describe());
    expect(second.publicJwks()).toEqual(first.publicJwks());
    expect(second.notes).toEqual([]);
    expect(await readFile(join(dir, SIGNING_KEYS_FILE), 'utf8')).toBe(contents);
  });

  it('a token signed before a restart verifies after it', async () => {
    const clock = createManualClock();
    const before = await createKeyStore({ dataDir: dir, clock });
    const token = await createTokenSigner({ keys: before, issuer: 'i', clock }).sign({
      subject: 's',
      audience: 'a',
      expiresInSeconds: 60,
    });
    const after = await createKeyStore({ dataDir: dir, clock });
    await expect(
      jwtVerify(token, after.verificationKeys(), { currentDate: new Date(clock.now()) }),
    ).resolves.toBeDefined();
    expect(decodeProtectedHeader(token).kid).toBe(after.describe().kid);
  });

  it('two stores opened at once on an empty directory end up with the same key', async () => {
    const clock = createManualClock();
    const [a, b] = await Promise.all([
      createKeyStore({ dataDir: dir, clock }),
      createKeyStore({ dataDir: dir, clock }),
    ]);
    expect(a.describe().kid).toBe(b.describe().kid);
    const reopened = await createKeyStore({ dataDir: dir, clock });
    expect(reopened.describe().kid).toBe(a.describe().kid);
  });

  it.skipIf(!posix)('tightens a key file readable by others to 0600 and notes it', async () => {
    const clock = createManualClock();
    const first = await createKeyStore({ dataDir: dir, clock });
    const path = join(dir, SIGNING_KEYS_FILE);
    await chmod(path, 0o644);
    const second = await createKeyStore({ dataDir: dir, clock });
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect(second.notes).toEqual([{ code: 'permissions_tightened', path, previousMode: '0644' }]);
    expect(second.describe().kid).toBe(first.describe().kid);
  });

  it('refuses a file that is not JSON, and leaves it in place', async () => {
    const path = join(dir, SIGNING_KEYS_FILE);
    await writeFile(path, 'not json', { mode: 0o600 });
    await expectGatehouseError(
      createKeyStore({ dataDir: dir, clock: createManualClock() }),
      'ERR_KEY_INVALID',
    );
    expect(await readFile(path, 'utf8')).toBe('not json');
  });

  it('refuses a file of the wrong shape', async () => {
    await writeFile(join(dir, SIGNING_KEYS_FILE), JSON.stringify({ version: 1, keys: [] }), { mode: 0o600 });
    await expectGatehouseError(
      createKeyStore({ dataDir: dir, clock: createManualClock() }),
      'ERR_KEY_INVALID',
    );
  });

  it('refuses a file whose kid is not the key thumbprint', async () => {
    await createKeyStore({ dataDir: dir, clock: createManualClock() });
    const path = join(dir, SIGNING_KEYS_FILE);
    const file = JSON.parse(await readFile(path, 'utf8')) as { keys: Array<{ kid: string }> };
    (file.keys[0] as { kid: string }).kid = 'attacker-chosen';
    await writeFile(path, JSON.stringify(file), { mode: 0o600 });
    await expectGatehouseError(
      createKeyStore({ dataDir: dir, clock: createManualClock() }),
      'ERR_KEY_INVALID',
    );
  });

  it('refuses a file whose private key does not match its public key', async () => {
    await createKeyStore({ dataDir: dir, clock: createManualClock() });
    const path = join(dir, SIGNING_KEYS_FILE);
    const file = JSON.parse(await readFile(path, 'utf8')) as { keys: Array<{ privateJwk: { d: string } }> };
    const { privateKey } = await generateKeyPair('ES256', { extractable: true });
    const foreign = await exportJWK(privateKey);
    (file.keys[0] as { privateJwk: { d: string } }).privateJwk.d = foreign.d ?? '';
    await writeFile(path, JSON.stringify(file), { mode: 0o600 });
    await expectGatehouseError(
      createKeyStore({ dataDir: dir, clock: createManualClock() }),
      'ERR_KEY_INVALID',
    );
  });

  it('signs with the newest key when the file holds several, and publishes all of them', async () => {
    const clock = createManualClock();
    await createKeyStore({ dataDir: dir, clock });
    const newerDir = join(dir, 'older');
    clock.advance(60_000);
    await createKeyStore({ dataDir: newerDir, clock });
    const path = join(dir, SIGNING_KEYS_FILE);
    const current = JSON.parse(await readFile(path, 'utf8')) as { keys: unknown[] };
    const newer = JSON.parse(await readFile(join(newerDir, SIGNING_KEYS_FILE), 'utf8')) as {
      keys: unknown[];
    };
    // Newest listed first on purpose: selection is by createdAt, not by position.
    await writeFile(path, JSON.stringify({ version: 1, keys: [...newer.keys, ...current.keys] }), {
      mode: 0o600,
    });

    const keys = await createKeyStore({ dataDir: dir, clock });
    const newestKid = (newer.keys[0] as { kid: string }).kid;
    expect(keys.describe().kid).toBe(newestKid);
    expect(keys.signingKey().kid).toBe(newestKid);
    expect(keys.publicJwks().keys.map((jwk) => jwk.kid)).toEqual([
      (current.keys[0] as { kid: string }).kid,
      newestKid,
    ]);
  });
});
