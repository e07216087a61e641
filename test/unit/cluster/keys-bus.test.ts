import { randomBytes } from 'node:crypto';
import { jwtVerify } from 'jose';
import { describe, expect, it, vi } from 'vitest';
import { createSealer } from '../../../src/crypto/seal.js';
import { createManualClock } from '../../../src/ops/clock.js';
import { createMemorySigningKeyStore } from '../../../src/stores/memory/signing-keys.js';
import { createKeyStore } from '../../../src/tokens/keys.js';
import { createTokenSigner } from '../../../src/tokens/sign.js';
import { createLocalBusHub } from '../../helpers/local-bus.js';

describe('signing keys across instances on the cluster bus', () => {
  it('instances starting together on an empty store end up signing with one key that both verify', async () => {
    const clock = createManualClock();
    const { store } = createMemorySigningKeyStore();
    const sealer = createSealer([new Uint8Array(randomBytes(32))]);
    const hub = createLocalBusHub();
    const open = () => createKeyStore({ store, sealer, clock, bus: hub.bus() });

    // Each looks for a key before the other has stored one, so both generate.
    const [a, b] = await Promise.all([open(), open()]);
    // Each loads the other's key when it is announced (an import and a store read: a few turns or more).
    await vi.waitFor(() => {
      expect(a.publicJwks().keys).toHaveLength(2);
      expect(b.publicJwks().keys).toHaveLength(2);
    });
    expect(b.describe().kid).toBe(a.describe().kid);
    const token = await createTokenSigner({ keys: a, issuer: 'https://gh.example/', clock }).sign({
      subject: 'alice',
      audience: 'https://gh.example/mcp',
      expiresInSeconds: 60,
    });
    await expect(
      jwtVerify(token, b.verificationKeys(), { currentDate: new Date(clock.now()) }),
    ).resolves.toBeDefined();
    a.close();
    b.close();
  });

  it('loads a key another instance rotated in, without waiting for an unknown kid', async () => {
    const clock = createManualClock();
    const { store } = createMemorySigningKeyStore();
    const sealer = createSealer([new Uint8Array(randomBytes(32))]);
    const hub = createLocalBusHub();
    const a = await createKeyStore({ store, sealer, clock, bus: hub.bus(), rotationMs: 3_600_000 });
    const b = await createKeyStore({ store, sealer, clock, bus: hub.bus(), rotationMs: 3_600_000 });
    const before = b.describe().kid;

    clock.advance(3_600_001);
    await a.refresh();
    expect(a.describe().kid).not.toBe(before);
    await vi.waitFor(() => expect(b.publicJwks().keys.map((key) => key.kid)).toContain(a.describe().kid));
    a.close();
    b.close();
  });
});
