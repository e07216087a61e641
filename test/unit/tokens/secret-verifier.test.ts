import { CompactSign, exportJWK, exportSPKI, generateKeyPair } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { createManualClock } from '../../../src/ops/clock.js';
import { createSecretVerifier } from '../../../src/tokens/secret-verifier.js';
import {
  expectRejection,
  hmacKey,
  seconds,
  signJwt,
  tamperPayload,
  thrown,
  unsignedToken,
} from './helpers.js';

const SECRET = 'super-secret-jwt-token-with-at-least-32-characters-long';
const ISSUER = 'https://abcdefghijklmnop.supabase.co/auth/v1';
const USER_ID = '6f1c2f6e-9a51-4b8a-a3c4-2e6f0b7d8c91';

function setup(overrides: { issuer?: string; tolerance?: number } = {}) {
  const clock = createManualClock();
  const verifier = createSecretVerifier({
    name: 'supabase',
    secret: SECRET,
    issuer: overrides.issuer,
    audience: 'authenticated',
    clockToleranceSeconds: overrides.tolerance ?? 5,
    clock,
  });
  const now = seconds(clock.now());
  /** A Supabase-shaped access token as GoTrue issues it. */
  const claims = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({
    aud: 'authenticated',
    exp: now + 3600,
    iat: now,
    iss: ISSUER,
    sub: USER_ID,
    email: 'ada@example.com',
    phone: '',
    app_metadata: { provider: 'email', providers: ['email'] },
    user_metadata: { full_name: 'Ada Lovelace' },
    role: 'authenticated',
    aal: 'aal1',
    amr: [{ method: 'password', timestamp: now }],
    session_id: 'b7c1d9e2-0f4a-4e51-9d3b-7a2c6e8f1b04',
    is_anonymous: false,
    ...extra,
  });
  const sign = (payload: Record<string, unknown>, secret = SECRET) =>
    signJwt(payload, hmacKey(secret), { alg: 'HS256', typ: 'JWT' });
  return { clock, verifier, now, claims, sign };
}

describe('createSecretVerifier', () => {
  it('verifies a Supabase-shaped HS256 token and maps sub, email, issuer and expiry', async () => {
    const { verifier, claims, sign, now } = setup({ issuer: ISSUER });
    const principal = await verifier.verify(await sign(claims()));
    expect(principal.subject).toBe(USER_ID);
    expect(principal.email).toBe('ada@example.com');
    expect(principal.issuer).toBe(ISSUER);
    expect(principal.expiresAt).toBe(now + 3600);
    expect(principal.verifier).toBe('supabase');
    expect(principal.scopes).toEqual([]);
    expect(principal.claims.role).toBe('authenticated');
    expect(principal.claims.session_id).toBe('b7c1d9e2-0f4a-4e51-9d3b-7a2c6e8f1b04');
    expect(verifier.issuer).toBe(ISSUER);
  });

  it('without a configured issuer keeps the token iss, and names tokens without iss by a URN', async () => {
    const { verifier, claims, sign } = setup();
    expect(verifier.issuer).toBeUndefined();
    expect((await verifier.verify(await sign(claims()))).issuer).toBe(ISSUER);
    expect((await verifier.verify(await sign(claims({ iss: undefined })))).issuer).toBe(
      'urn:gatehouse:hs256:supabase',
    );
  });

  it('with a configured issuer, a token without iss is missing_claim', async () => {
    const { verifier, claims, sign } = setup({ issuer: ISSUER });
    await expectRejection(verifier.verify(await sign(claims({ iss: undefined }))), 'missing_claim');
  });

  it('refuses a secret shorter than 32 bytes, counting bytes rather than characters', () => {
    const clock = createManualClock();
    const build = (secret: string) =>
      createSecretVerifier({ name: 'x', secret, audience: 'a', clockToleranceSeconds: 0, clock });
    expect(thrown(() => build('x'.repeat(31)))).toMatchObject({ code: 'ERR_KEY_INVALID' });
    expect(thrown(() => build('é'.repeat(15)))).toMatchObject({ code: 'ERR_KEY_INVALID' });
    expect(build('x'.repeat(32)).name).toBe('x');
    expect(build('é'.repeat(16)).name).toBe('x');
  });

  describe('attacks', () => {
    it('rejects alg none', async () => {
      const { verifier, claims } = setup();
      await expectRejection(verifier.verify(unsignedToken(claims())), 'alg_not_allowed');
    });

    it('rejects RS256 and ES256 tokens (no asymmetric algorithm on a shared-secret verifier)', async () => {
      const { verifier, claims } = setup();
      for (const alg of ['RS256', 'ES256'] as const) {
        const { privateKey } = await generateKeyPair(alg);
        const token = await signJwt(claims(), privateKey, { alg });
        await expectRejection(verifier.verify(token), 'alg_not_allowed');
      }
    });

    it('rejects HS384/HS512 with the same secret (HS256 only)', async () => {
      const { verifier, claims } = setup();
      for (const alg of ['HS384', 'HS512']) {
        const token = await signJwt(claims(), hmacKey(SECRET), { alg });
        await expectRejection(verifier.verify(token), 'alg_not_allowed');
      }
    });

    it('rejects a token signed with another secret', async () => {
      const { verifier, claims, sign } = setup();
      await expectRejection(verifier.verify(await sign(claims(), `${SECRET}-other`)), 'bad_signature');
    });

    it('rejects a tampered payload', async () => {
      const { verifier, claims, sign } = setup();
      const token = tamperPayload(await sign(claims()), (c) => {
        c.sub = '00000000-0000-0000-0000-000000000000';
      });
      await expectRejection(verifier.verify(token), 'bad_signature');
    });

    it('rejects a wrong audience (including the anon role audience)', async () => {
      const { verifier, claims, sign } = setup();
      await expectRejection(verifier.verify(await sign(claims({ aud: 'anon' }))), 'wrong_audience');
      await expectRejection(verifier.verify(await sign(claims({ aud: ['other', 'api'] }))), 'wrong_audience');
    });

    it('rejects a wrong issuer when one is configured', async () => {
      const { verifier, claims, sign } = setup({ issuer: ISSUER });
      const token = await sign(claims({ iss: 'https://evil.supabase.co/auth/v1' }));
      await expectRejection(verifier.verify(token), 'wrong_issuer');
      // Exact comparison: a trailing slash is another issuer.
      await expectRejection(verifier.verify(await sign(claims({ iss: `${ISSUER}/` }))), 'wrong_issuer');
    });

    it('rejects an expired token, and accepts one expired within the clock tolerance', async () => {
      const { verifier, claims, sign, now } = setup({ tolerance: 5 });
      await expectRejection(verifier.verify(await sign(claims({ exp: now - 6 }))), 'token_expired');
      await expect(verifier.verify(await sign(claims({ exp: now - 4 })))).resolves.toBeDefined();
    });

    it('rejects a token that expires later once the clock moves past exp', async () => {
      const { verifier, claims, sign, clock, now } = setup({ tolerance: 0 });
      const token = await sign(claims({ exp: now + 60 }));
      await expect(verifier.verify(token)).resolves.toBeDefined();
      clock.advance(60_000);
      await expectRejection(verifier.verify(token), 'token_expired');
    });

    it('rejects a not-yet-valid token, and accepts nbf within the clock tolerance', async () => {
      const { verifier, claims, sign, now } = setup({ tolerance: 5 });
      await expectRejection(verifier.verify(await sign(claims({ nbf: now + 60 }))), 'not_yet_valid');
      await expect(verifier.verify(await sign(claims({ nbf: now + 4 })))).resolves.toBeDefined();
    });

    it('rejects a token without sub or without exp', async () => {
      const { verifier, claims, sign } = setup();
      await expectRejection(verifier.verify(await sign(claims({ sub: undefined }))), 'missing_claim');
      await expectRejection(verifier.verify(await sign(claims({ exp: undefined }))), 'missing_claim');
      await expectRejection(verifier.verify(await sign(claims({ sub: '' }))), 'missing_claim');
    });

    it('rejects a non-numeric exp as malformed', async () => {
      const { verifier, claims, sign } = setup();
      await expectRejection(verifier.verify(await sign(claims({ exp: 'tomorrow' }))), 'malformed');
    });

    it('rejects an HS256 token signed with a public key as the secret (it is not this secret)', async () => {
      const { verifier, claims } = setup();
      const { publicKey } = await generateKeyPair('RS256', { extractable: true });
      for (const secret of [await exportSPKI(publicKey), JSON.stringify(await exportJWK(publicKey))]) {
        const token = await signJwt(claims(), hmacKey(secret), { alg: 'HS256' });
        await expectRejection(verifier.verify(token), 'bad_signature');
      }
    });

    it.each([
      ['empty', ''],
      ['one part', 'abc'],
      ['two parts', 'abc.def'],
      ['four parts', 'a.b.c.d'],
      ['five parts (JWE)', 'a.b.c.d.e'],
      ['non-base64 header', '!!!.e30.sig'],
      ['non-JSON header', `${Buffer.from('not json').toString('base64url')}.e30.sig`],
      ['bearer prefix', 'Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig'],
      ['oversized', `${'a'.repeat(40_000)}.b.c`],
    ])('rejects a garbage token (%s) as malformed', async (_label, token) => {
      const { verifier } = setup();
      await expectRejection(verifier.verify(token), 'malformed');
    });

    it('rejects a validly signed token whose payload is not JSON as malformed', async () => {
      const { verifier } = setup();
      const token = await new CompactSign(new TextEncoder().encode('not json'))
        .setProtectedHeader({ alg: 'HS256' })
        .sign(hmacKey(SECRET));
      await expectRejection(verifier.verify(token), 'malformed');
    });
  });
});

describe('createSecretVerifier with a list audience', () => {
  let token: string;
  const clock = createManualClock();
  beforeAll(async () => {
    token = await signJwt({ sub: 'u', exp: seconds(clock.now()) + 60, aud: 'service' }, hmacKey(SECRET), {
      alg: 'HS256',
    });
  });

  it('accepts any one of the configured audiences', async () => {
    const verifier = createSecretVerifier({
      name: 'multi',
      secret: SECRET,
      audience: ['authenticated', 'service'],
      clockToleranceSeconds: 0,
      clock,
    });
    await expect(verifier.verify(token)).resolves.toMatchObject({ subject: 'u' });
  });
});
