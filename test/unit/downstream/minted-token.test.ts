import {
  createLocalJWKSet,
  decodeJwt,
  decodeProtectedHeader,
  exportJWK,
  exportPKCS8,
  generateKeyPair,
  jwtVerify,
} from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { configSchema } from '../../../src/config/schema.js';
import {
  createAudienceTokenMinter,
  createSupabaseTokenMinter,
  supabaseMinterFromConfig,
} from '../../../src/downstream/minted-token.js';
import { isGatehouseError } from '../../../src/errors/gatehouse-error.js';
import { OAuthError } from '../../../src/errors/oauth-error.js';
import type { Principal } from '../../../src/identity/principal.js';
import { createManualClock, type ManualClock } from '../../../src/ops/clock.js';
import { createKeyStore, type KeyStore } from '../../../src/tokens/keys.js';
import { createLocalVerifier } from '../../../src/tokens/local-verifier.js';
import { createSecretVerifier } from '../../../src/tokens/secret-verifier.js';
import { createTokenSigner } from '../../../src/tokens/sign.js';
import { expectRejection, hmacKey, seconds, thrown } from '../tokens/helpers.js';

const SECRET = 'super-secret-jwt-token-with-at-least-32-characters-long';
const SUPABASE_ISSUER = 'https://abcdefghijklmnop.supabase.co/auth/v1';
const USER_ID = '6f1c2f6e-9a51-4b8a-a3c4-2e6f0b7d8c91';
const GATEHOUSE = 'https://gatehouse.example/';
const RESOURCE = 'https://gatehouse.example/mcp';
const API = 'https://api.example.test';

function principalAt(clock: ManualClock, extra: Partial<Principal> = {}): Principal {
  return {
    subject: USER_ID,
    issuer: GATEHOUSE,
    email: 'alice@example.test',
    scopes: ['notes:read', 'notes:write'],
    claims: {},
    expiresAt: seconds(clock.now()) + 3600,
    verifier: 'gatehouse',
    ...extra,
  };
}

describe('createSupabaseTokenMinter', () => {
  it('mints exactly the Supabase user-token claim shape, HS256', async () => {
    const clock = createManualClock();
    const now = seconds(clock.now());
    const minter = createSupabaseTokenMinter({ secret: SECRET, issuer: SUPABASE_ISSUER, clock });
    const minted = await minter.mint(principalAt(clock), { sessionId: 'sess-1' });
    expect(minted.expiresIn).toBe(60);
    expect(minted.expiresAt).toBe(now + 60);
    expect(decodeProtectedHeader(minted.token)).toEqual({ alg: 'HS256', typ: 'JWT' });
    expect(decodeJwt(minted.token)).toEqual({
      iss: SUPABASE_ISSUER,
      sub: USER_ID,
      aud: 'authenticated',
      role: 'authenticated',
      email: 'alice@example.test',
      session_id: 'sess-1',
      is_anonymous: false,
      aal: 'aal1',
      app_metadata: { provider: 'gatehouse', providers: ['gatehouse'] },
      user_metadata: {},
      iat: now,
      exp: now + 60,
    });
  });

  it('verifies with Gatehouse HS256 verifier and with jose', async () => {
    const clock = createManualClock();
    const minter = createSupabaseTokenMinter({ secret: SECRET, issuer: SUPABASE_ISSUER, clock });
    const { token } = await minter.mint(principalAt(clock));
    const verifier = createSecretVerifier({
      name: 'supabase',
      secret: SECRET,
      issuer: SUPABASE_ISSUER,
      audience: 'authenticated',
      clockToleranceSeconds: 0,
      clock,
    });
    const principal = await verifier.verify(token);
    expect(principal).toMatchObject({
      subject: USER_ID,
      issuer: SUPABASE_ISSUER,
      email: 'alice@example.test',
    });
    const { payload } = await jwtVerify(token, hmacKey(SECRET), {
      algorithms: ['HS256'],
      issuer: SUPABASE_ISSUER,
      audience: 'authenticated',
      currentDate: new Date(clock.now()),
    });
    expect(payload.role).toBe('authenticated');
    // Signed with another secret: refused.
    const other = createSecretVerifier({
      name: 'other',
      secret: `${SECRET}-other`,
      issuer: SUPABASE_ISSUER,
      audience: 'authenticated',
      clockToleranceSeconds: 0,
      clock,
    });
    await expectRejection(other.verify(token), 'bad_signature');
  });

  it('honours expiry on the injected clock', async () => {
    const clock = createManualClock();
    const minter = createSupabaseTokenMinter({
      secret: SECRET,
      issuer: SUPABASE_ISSUER,
      ttlSeconds: 30,
      clock,
    });
    const { token } = await minter.mint(principalAt(clock));
    const verifier = createSecretVerifier({
      name: 'supabase',
      secret: SECRET,
      issuer: SUPABASE_ISSUER,
      audience: 'authenticated',
      clockToleranceSeconds: 0,
      clock,
    });
    clock.advance(29_000);
    await expect(verifier.verify(token)).resolves.toMatchObject({ subject: USER_ID });
    clock.advance(2_000);
    await expectRejection(verifier.verify(token), 'token_expired');
  });

  it('never outlives the principal, and refuses an expired one', async () => {
    const clock = createManualClock();
    const minter = createSupabaseTokenMinter({
      secret: SECRET,
      issuer: SUPABASE_ISSUER,
      ttlSeconds: 600,
      clock,
    });
    const principal = principalAt(clock, { expiresAt: seconds(clock.now()) + 20 });
    expect((await minter.mint(principal)).expiresIn).toBe(20);
    clock.advance(20_000);
    const error = await rejection(minter.mint(principal));
    expect(error).toBeInstanceOf(OAuthError);
    expect((error as OAuthError).code).toBe('invalid_token');
  });

  it('takes session_id from the principal, omits unknown email, maps the subject', async () => {
    const clock = createManualClock();
    const minter = createSupabaseTokenMinter({
      secret: SECRET,
      issuer: SUPABASE_ISSUER,
      clock,
      subject: (p) => `mapped-${p.subject}`,
    });
    const { email: _email, ...withoutEmail } = principalAt(clock);
    const claims = decodeJwt(
      (await minter.mint({ ...withoutEmail, claims: { session_id: 'from-idp' } })).token,
    );
    expect(claims.session_id).toBe('from-idp');
    expect(claims.sub).toBe(`mapped-${USER_ID}`);
    expect(claims).not.toHaveProperty('email');
  });

  it('signs with an asymmetric project key (PEM or JWK), verifiable through a JWKS', async () => {
    const clock = createManualClock();
    const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
    const jwks = createLocalJWKSet({ keys: [{ ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256' }] });
    for (const key of [await exportPKCS8(privateKey), JSON.stringify(await exportJWK(privateKey))]) {
      const minter = createSupabaseTokenMinter({
        privateKey: key,
        kid: 'k1',
        issuer: SUPABASE_ISSUER,
        clock,
      });
      expect(minter.algorithm).toBe('ES256');
      const { token } = await minter.mint(principalAt(clock));
      expect(decodeProtectedHeader(token)).toEqual({ alg: 'ES256', typ: 'JWT', kid: 'k1' });
      const { payload } = await jwtVerify(token, jwks, {
        algorithms: ['ES256'],
        issuer: SUPABASE_ISSUER,
        audience: 'authenticated',
        currentDate: new Date(clock.now()),
      });
      expect(payload.sub).toBe(USER_ID);
    }
  });

  it('refuses a short secret, a public key and an out-of-range lifetime', async () => {
    const clock = createManualClock();
    const short = thrown(() =>
      createSupabaseTokenMinter({ secret: 'short', issuer: SUPABASE_ISSUER, clock }),
    );
    expect(isGatehouseError(short, 'ERR_KEY_INVALID')).toBe(true);
    for (const ttlSeconds of [0, 3601, 1.5]) {
      const error = thrown(() =>
        createSupabaseTokenMinter({ secret: SECRET, issuer: SUPABASE_ISSUER, ttlSeconds, clock }),
      );
      expect(isGatehouseError(error, 'ERR_CONFIG_INVALID')).toBe(true);
    }
    const { publicKey } = await generateKeyPair('ES256', { extractable: true });
    const minter = createSupabaseTokenMinter({
      privateKey: JSON.stringify(await exportJWK(publicKey)),
      kid: 'k1',
      issuer: SUPABASE_ISSUER,
      clock,
    });
    expect(isGatehouseError(await rejection(minter.mint(principalAt(clock))), 'ERR_KEY_INVALID')).toBe(true);
  });
});

describe('downstream.supabase configuration', () => {
  it('defaults to a 60 s lifetime and builds a minter', async () => {
    const clock = createManualClock();
    const config = configSchema.parse({
      downstream: { supabase: { issuer: SUPABASE_ISSUER, secret: SECRET } },
    });
    const supabase = config.downstream.supabase;
    expect(supabase?.ttlSeconds).toBe(60);
    if (supabase === undefined) throw new Error('unreachable');
    const { token } = await supabaseMinterFromConfig(supabase, clock).mint(principalAt(clock));
    expect(decodeJwt(token)).toMatchObject({ iss: SUPABASE_ISSUER, role: 'authenticated' });
  });

  it('refuses two key sources, an asymmetric key without kid, and a lifetime over 3600 s', () => {
    const parse = (supabase: Record<string, unknown>) =>
      configSchema.safeParse({ downstream: { supabase: { issuer: SUPABASE_ISSUER, ...supabase } } }).success;
    expect(parse({ secret: SECRET, privateKey: 'pem' })).toBe(false);
    expect(parse({})).toBe(false);
    expect(parse({ privateKey: 'pem' })).toBe(false);
    expect(parse({ privateKey: 'pem', kid: 'k1' })).toBe(true);
    expect(parse({ secret: SECRET, ttlSeconds: 3601 })).toBe(false);
    expect(configSchema.parse({}).authorizationServer.tokenExchange).toEqual({
      audiences: [],
      ttlSeconds: 300,
    });
  });
});

describe('createAudienceTokenMinter', () => {
  let keys: KeyStore;
  beforeAll(async () => {
    keys = await createKeyStore({ clock: createManualClock() });
  });

  it('binds the token to the audience, with typ JWT and the identity claims', async () => {
    const clock = createManualClock();
    const now = seconds(clock.now());
    const minter = createAudienceTokenMinter({ keys, issuer: GATEHOUSE, clock });
    const minted = await minter.mint(principalAt(clock), {
      audience: API,
      ttlSeconds: 120,
      scope: ['notes:read'],
      sessionId: 'gs-1',
      claims: { client_id: 'svc' },
    });
    expect(minted).toMatchObject({ expiresIn: 120, expiresAt: now + 120 });
    expect(decodeProtectedHeader(minted.token)).toEqual({
      alg: 'ES256',
      typ: 'JWT',
      kid: keys.describe().kid,
    });
    const { payload } = await jwtVerify(minted.token, createLocalJWKSet(keys.publicJwks()), {
      algorithms: ['ES256'],
      issuer: GATEHOUSE,
      audience: API,
      currentDate: new Date(clock.now()),
    });
    expect(payload).toMatchObject({
      sub: USER_ID,
      aud: API,
      email: 'alice@example.test',
      scope: 'notes:read',
      sid: 'gs-1',
      client_id: 'svc',
      original_iss: GATEHOUSE,
      iat: now,
      exp: now + 120,
    });
    expect(typeof payload.jti).toBe('string');
  });

  it('mints tokens Gatehouse own MCP endpoint refuses (wrong typ, wrong aud)', async () => {
    const clock = createManualClock();
    const signer = createTokenSigner({ keys, issuer: GATEHOUSE, clock });
    const minter = createAudienceTokenMinter({ signer, clock });
    const local = (audience: string) =>
      createLocalVerifier({ keys, issuer: GATEHOUSE, audience, clockToleranceSeconds: 5, clock });
    const forApi = await minter.mint(principalAt(clock), { audience: API, ttlSeconds: 60 });
    await expectRejection(local(RESOURCE).verify(forApi.token), 'malformed');
    // Even minted for the MCP resource itself, the typ keeps it out.
    const forResource = await minter.mint(principalAt(clock), { audience: RESOURCE, ttlSeconds: 60 });
    await expectRejection(local(RESOURCE).verify(forResource.token), 'malformed');
    // Control: a real access token passes the same verifier.
    const access = await signer.sign({ subject: USER_ID, audience: RESOURCE, expiresInSeconds: 60 });
    await expect(local(RESOURCE).verify(access)).resolves.toMatchObject({ subject: USER_ID });
  });

  it('caps the lifetime at the principal expiry and refuses owned claims and bad lifetimes', async () => {
    const clock = createManualClock();
    const minter = createAudienceTokenMinter({ keys, issuer: GATEHOUSE, clock });
    const principal = principalAt(clock, { expiresAt: seconds(clock.now()) + 10 });
    expect((await minter.mint(principal, { audience: API, ttlSeconds: 60 })).expiresIn).toBe(10);
    await expect(
      minter.mint(principal, { audience: API, ttlSeconds: 60, claims: { sub: 'mallory' } }),
    ).rejects.toThrow(TypeError);
    await expect(minter.mint(principal, { audience: API, ttlSeconds: 0 })).rejects.toThrow(TypeError);
    clock.advance(10_000);
    const error = await rejection(minter.mint(principal, { audience: API, ttlSeconds: 60 }));
    expect((error as OAuthError).code).toBe('invalid_token');
  });
});

function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => undefined,
    (error: unknown) => error,
  );
}
