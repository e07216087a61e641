import { calculateJwkThumbprint, jwtVerify } from 'jose';
import { describe, expect, it } from 'vitest';
import { createSealer } from '../../../src/crypto/seal.js';
import { createManualClock } from '../../../src/ops/clock.js';
import { createMemorySigningKeyStore } from '../../../src/stores/memory/signing-keys.js';
import { createKeyStore } from '../../../src/tokens/keys.js';
import { createTokenSigner } from '../../../src/tokens/sign.js';
import { expectGatehouseError } from './helpers.js';

const PRIVATE_JWK_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k', 'oth', 'priv'];

describe('createKeyStore', () => {
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
    expect(Object.keys(keys.describe()).sort()).toEqual(['alg', 'createdAt', 'kid', 'retiresAt']);
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

  it('keeps private keys sealed in the store and reopens them with the same secret key', async () => {
    const clock = createManualClock();
    const { store } = createMemorySigningKeyStore();
    const sealer = createSealer([new Uint8Array(32).fill(7)]);
    const first = await createKeyStore({ store, sealer, clock });
    expect(first.notes).toEqual([{ code: 'generated', kid: first.describe().kid }]);
    const [record] = await store.list(clock.now());
    expect(JSON.stringify(record)).not.toMatch(/"d"/);
    const reopened = await createKeyStore({ store, sealer, clock });
    expect(reopened.describe().kid).toBe(first.describe().kid);
    expect(reopened.notes).toEqual([{ code: 'loaded', kids: [first.describe().kid] }]);
  });

  it('refuses keys sealed with another secret key (ERR_KEY_INVALID), rather than replacing them', async () => {
    const clock = createManualClock();
    const { store } = createMemorySigningKeyStore();
    await createKeyStore({ store, sealer: createSealer([new Uint8Array(32).fill(1)]), clock });
    await expectGatehouseError(
      createKeyStore({ store, sealer: createSealer([new Uint8Array(32).fill(2)]), clock }),
      'ERR_KEY_INVALID',
    );
  });

  it('rotates: the successor signs, the retired key stays published until its tokens have expired', async () => {
    const clock = createManualClock();
    const { store } = createMemorySigningKeyStore();
    const sealer = createSealer([new Uint8Array(32).fill(3)]);
    const options = { store, sealer, clock, rotationMs: 10_000, retainMs: 5_000 };
    const keys = await createKeyStore(options);
    const signer = createTokenSigner({ keys, issuer: 'https://gh', clock });
    const oldKid = keys.describe().kid;
    const oldToken = await signer.sign({ subject: 's', audience: 'a', expiresInSeconds: 4 });

    clock.advance(10_000);
    await keys.refresh();
    const newKid = keys.describe().kid;
    expect(newKid).not.toBe(oldKid);
    expect(keys.signingKey().kid).toBe(newKid);
    expect(keys.publicJwks().keys.map((jwk) => jwk.kid)).toEqual([oldKid, newKid]);
    // A token signed just before the rotation still verifies.
    await jwtVerify(oldToken, keys.verificationKeys(), { currentDate: new Date(clock.now() - 7_000) });

    clock.advance(5_000);
    await keys.refresh();
    expect(keys.publicJwks().keys.map((jwk) => jwk.kid)).toEqual([newKid]);
  });

  it('verifies tokens signed by a key another instance created after it loaded', async () => {
    const clock = createManualClock();
    const { store } = createMemorySigningKeyStore();
    const sealer = createSealer([new Uint8Array(32).fill(4)]);
    const options = { store, sealer, clock, rotationMs: 10_000, retainMs: 5_000 };
    const a = await createKeyStore(options);
    const b = await createKeyStore(options);
    clock.advance(10_000);
    await a.refresh(); // a creates the successor; b has not looked yet
    const token = await createTokenSigner({ keys: a, issuer: 'https://gh', clock }).sign({
      subject: 's',
      audience: 'a',
      expiresInSeconds: 60,
    });
    const { payload } = await jwtVerify(token, b.verificationKeys(), { currentDate: new Date(clock.now()) });
    expect(payload.sub).toBe('s');
  });
});
