import { decodeJwt, decodeProtectedHeader, jwtVerify } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { createManualClock } from '../../../src/ops/clock.js';
import { createKeyStore, type KeyStore } from '../../../src/tokens/keys.js';
import { createTokenSigner } from '../../../src/tokens/sign.js';
import { seconds } from './helpers.js';

const ISSUER = 'https://gatehouse.example';

describe('createTokenSigner', () => {
  let keys: KeyStore;
  beforeAll(async () => {
    keys = await createKeyStore({ clock: createManualClock() });
  });

  // req: RFC9068-2.1-TYP
  it('signs with ES256, typ at+jwt and the signing key kid', async () => {
    const clock = createManualClock();
    const token = await createTokenSigner({ keys, issuer: ISSUER, clock }).sign({
      subject: 'user-1',
      audience: `${ISSUER}/mcp`,
      expiresInSeconds: 3600,
    });
    expect(decodeProtectedHeader(token)).toEqual({ alg: 'ES256', typ: 'at+jwt', kid: keys.describe().kid });
  });

  // req: RFC9068-2.2-REQUIRED-CLAIMS
  it('sets iss, sub, aud, iat and exp from the clock, plus the extra claims', async () => {
    const clock = createManualClock(Date.UTC(2026, 4, 1, 12, 0, 0, 750));
    const token = await createTokenSigner({ keys, issuer: ISSUER, clock }).sign({
      subject: 'user-1',
      audience: [`${ISSUER}/mcp`, 'https://other.example'],
      expiresInSeconds: 900,
      claims: { scope: 'notes:read', client_id: 'client-1' },
    });
    const now = seconds(clock.now());
    expect(decodeJwt(token)).toEqual({
      iss: ISSUER,
      sub: 'user-1',
      aud: [`${ISSUER}/mcp`, 'https://other.example'],
      iat: now,
      exp: now + 900,
      jti: expect.any(String),
      scope: 'notes:read',
      client_id: 'client-1',
    });
    await expect(
      jwtVerify(token, keys.verificationKeys(), { issuer: ISSUER, currentDate: new Date(clock.now()) }),
    ).resolves.toBeDefined();
  });

  // req: RFC9068-2.2-REQUIRED-CLAIMS
  it('uses a random jti by default and the given one when passed', async () => {
    const signer = createTokenSigner({ keys, issuer: ISSUER, clock: createManualClock() });
    const input = { subject: 's', audience: 'a', expiresInSeconds: 60 };
    const jtis = new Set<unknown>();
    for (let i = 0; i < 20; i += 1) jtis.add(decodeJwt(await signer.sign(input)).jti);
    expect(jtis.size).toBe(20);
    for (const jti of jtis) expect(String(jti)).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(decodeJwt(await signer.sign({ ...input, jti: 'fixed' })).jti).toBe('fixed');
  });

  it.each(['iss', 'sub', 'aud', 'exp', 'iat', 'nbf', 'jti'])(
    'refuses extra claims that set %s',
    async (claim) => {
      const signer = createTokenSigner({ keys, issuer: ISSUER, clock: createManualClock() });
      await expect(
        signer.sign({ subject: 's', audience: 'a', expiresInSeconds: 60, claims: { [claim]: 'x' } }),
      ).rejects.toThrow(TypeError);
    },
  );

  it.each([0, -1, 1.5, Number.NaN])('refuses expiresInSeconds %s', async (expiresInSeconds) => {
    const signer = createTokenSigner({ keys, issuer: ISSUER, clock: createManualClock() });
    await expect(signer.sign({ subject: 's', audience: 'a', expiresInSeconds })).rejects.toThrow(TypeError);
  });
});
