import { CompactSign, exportJWK, exportSPKI, generateKeyPair, SignJWT } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { OAuthError } from '../../../src/errors/oauth-error.js';
import { createManualClock } from '../../../src/ops/clock.js';
import { createKeyStore, type KeyStore } from '../../../src/tokens/keys.js';
import {
  createLocalVerifier,
  DEVELOPMENT_TOKEN_CLAIM,
  DEVELOPMENT_TOKEN_REASON,
} from '../../../src/tokens/local-verifier.js';
import { createTokenSigner } from '../../../src/tokens/sign.js';
import { expectRejection, hmacKey, seconds, signJwt, tamperPayload, unsignedToken } from './helpers.js';

const ISSUER = 'https://gatehouse.example';
const RESOURCE = `${ISSUER}/mcp`;

describe('createLocalVerifier', () => {
  let keys: KeyStore;
  let otherKeys: KeyStore;
  beforeAll(async () => {
    [keys, otherKeys] = await Promise.all([
      createKeyStore({ clock: createManualClock() }),
      createKeyStore({ clock: createManualClock() }),
    ]);
  });

  function setup(tolerance = 5) {
    const clock = createManualClock();
    const verifier = createLocalVerifier({
      keys,
      issuer: ISSUER,
      audience: RESOURCE,
      clockToleranceSeconds: tolerance,
      clock,
    });
    const signer = createTokenSigner({ keys, issuer: ISSUER, clock });
    const now = seconds(clock.now());
    const kid = keys.describe().kid;
    /** Signs arbitrary claims with Gatehouse's key and the headers the real signer uses. */
    const signRaw = (payload: Record<string, unknown>, header: Record<string, unknown> = {}) =>
      new SignJWT(payload)
        .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid, ...header })
        .sign(keys.signingKey().privateKey);
    const claims = (extra: Record<string, unknown> = {}) => ({
      iss: ISSUER,
      sub: 'user-1',
      aud: RESOURCE,
      iat: now,
      exp: now + 300,
      ...extra,
    });
    return { clock, verifier, signer, now, kid, signRaw, claims };
  }

  it('round-trips a token from the signer into a principal', async () => {
    const { verifier, signer, now } = setup();
    const token = await signer.sign({
      subject: 'user-1',
      audience: RESOURCE,
      expiresInSeconds: 300,
      claims: { scope: 'notes:read notes:write', client_id: 'client-1', email: 'ada@example.com' },
    });
    const principal = await verifier.verify(token);
    expect(principal).toMatchObject({
      subject: 'user-1',
      issuer: ISSUER,
      email: 'ada@example.com',
      scopes: ['notes:read', 'notes:write'],
      clientId: 'client-1',
      expiresAt: now + 300,
      verifier: 'gatehouse',
    });
    expect(verifier.name).toBe('gatehouse');
    expect(verifier.issuer).toBe(ISSUER);
  });

  it('takes a custom name', async () => {
    const clock = createManualClock();
    const verifier = createLocalVerifier({
      keys,
      issuer: ISSUER,
      audience: [RESOURCE, 'https://second.example'],
      clockToleranceSeconds: 0,
      clock,
      name: 'own',
    });
    const token = await createTokenSigner({ keys, issuer: ISSUER, clock }).sign({
      subject: 's',
      audience: 'https://second.example',
      expiresInSeconds: 60,
    });
    expect((await verifier.verify(token)).verifier).toBe('own');
  });

  describe('attacks', () => {
    // req: RFC9068-4-SIGNATURE, RFC8725-3.1-ALGORITHM-VERIFICATION
    it('rejects alg none', async () => {
      const { verifier, claims, kid } = setup();
      await expectRejection(
        verifier.verify(unsignedToken(claims(), { typ: 'at+jwt', kid })),
        'alg_not_allowed',
      );
    });

    it('rejects HS256 signed with the public key (JWK JSON, PEM, or raw x) as the secret', async () => {
      const { verifier, claims, kid } = setup();
      const publicJwk = keys.publicJwks().keys[0] ?? {};
      const secrets = [
        JSON.stringify(publicJwk),
        JSON.stringify({ kty: publicJwk.kty, x: publicJwk.x }),
        publicJwk.x ?? '',
      ];
      for (const secret of secrets) {
        const token = await signJwt(claims(), hmacKey(secret), { alg: 'HS256', typ: 'at+jwt', kid });
        await expectRejection(verifier.verify(token), 'alg_not_allowed');
      }
    });

    it('rejects RS256 and ES384 tokens', async () => {
      const { verifier, claims, kid } = setup();
      for (const alg of ['RS256', 'ES384']) {
        const { privateKey } = await generateKeyPair(alg);
        await expectRejection(
          verifier.verify(await signJwt(claims(), privateKey, { alg, kid, typ: 'at+jwt' })),
          'alg_not_allowed',
        );
      }
    });

    it('rejects an HS256 token signed with an RSA public key PEM', async () => {
      const { verifier, claims } = setup();
      const { publicKey } = await generateKeyPair('RS256', { extractable: true });
      const pem = await exportSPKI(publicKey);
      await expectRejection(
        verifier.verify(await signJwt(claims(), hmacKey(pem), { alg: 'HS256' })),
        'alg_not_allowed',
      );
      const jwkJson = JSON.stringify(await exportJWK(publicKey));
      await expectRejection(
        verifier.verify(await signJwt(claims(), hmacKey(jwkJson), { alg: 'HS256' })),
        'alg_not_allowed',
      );
    });

    // req: RFC9068-4-SIGNATURE
    it('rejects a token signed by another key that claims our kid', async () => {
      const { verifier, claims, kid } = setup();
      const token = await new SignJWT(claims())
        .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid })
        .sign(otherKeys.signingKey().privateKey);
      await expectRejection(verifier.verify(token), 'bad_signature');
    });

    it('rejects an unknown kid', async () => {
      const { verifier, claims } = setup();
      const token = await new SignJWT(claims())
        .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: otherKeys.describe().kid })
        .sign(otherKeys.signingKey().privateKey);
      await expectRejection(verifier.verify(token), 'unknown_kid');
    });

    // req: RFC9068-4-SIGNATURE
    it('rejects a tampered payload', async () => {
      const { verifier, signRaw, claims } = setup();
      const token = tamperPayload(await signRaw(claims()), (c) => {
        c.scope = 'admin';
      });
      await expectRejection(verifier.verify(token), 'bad_signature');
    });

    it('rejects a tampered header (kid swapped)', async () => {
      const { verifier, signRaw, claims } = setup();
      const [, payload, signature] = (await signRaw(claims())).split('.');
      const header = Buffer.from(JSON.stringify({ alg: 'ES256', typ: 'at+jwt', kid: 'other' })).toString(
        'base64url',
      );
      await expectRejection(verifier.verify(`${header}.${payload}.${signature}`), 'unknown_kid');
    });

    // req: RFC9068-4-ISS-AUD-VALIDATION
    it('rejects a wrong audience and a missing audience', async () => {
      const { verifier, signRaw, claims } = setup();
      await expectRejection(
        verifier.verify(await signRaw(claims({ aud: 'https://upstream.example' }))),
        'wrong_audience',
      );
      await expectRejection(verifier.verify(await signRaw(claims({ aud: undefined }))), 'missing_claim');
    });

    // req: RFC9068-4-ISS-AUD-VALIDATION
    it('rejects a wrong issuer, including a trailing-slash variant', async () => {
      const { verifier, signRaw, claims } = setup();
      await expectRejection(
        verifier.verify(await signRaw(claims({ iss: 'https://evil.example' }))),
        'wrong_issuer',
      );
      await expectRejection(verifier.verify(await signRaw(claims({ iss: `${ISSUER}/` }))), 'wrong_issuer');
    });

    it('rejects an expired token, accepting it within the clock tolerance', async () => {
      const { verifier, signer, clock } = setup(5);
      const token = await signer.sign({ subject: 's', audience: RESOURCE, expiresInSeconds: 60 });
      clock.advance(64_000);
      await expect(verifier.verify(token)).resolves.toBeDefined();
      clock.advance(2_000);
      await expectRejection(verifier.verify(token), 'token_expired');
    });

    it('rejects a not-yet-valid token, accepting nbf within the clock tolerance', async () => {
      const { verifier, signRaw, claims, now } = setup(5);
      await expectRejection(verifier.verify(await signRaw(claims({ nbf: now + 30 }))), 'not_yet_valid');
      await expect(verifier.verify(await signRaw(claims({ nbf: now + 5 })))).resolves.toBeDefined();
    });

    it('rejects a token without sub or exp', async () => {
      const { verifier, signRaw, claims } = setup();
      await expectRejection(verifier.verify(await signRaw(claims({ sub: undefined }))), 'missing_claim');
      await expectRejection(verifier.verify(await signRaw(claims({ exp: undefined }))), 'missing_claim');
    });

    // req: RFC9068-4-TYP-VALIDATION, RFC8725-3.11-EXPLICIT-TYPING
    it('rejects a validly signed token that is not an access token (typ JWT or absent) as malformed', async () => {
      const { verifier, signRaw, claims } = setup();
      await expectRejection(verifier.verify(await signRaw(claims(), { typ: 'JWT' })), 'malformed');
      await expectRejection(verifier.verify(await signRaw(claims(), { typ: undefined })), 'malformed');
    });

    it('rejects a critical header it does not understand as malformed', async () => {
      const { verifier, claims, kid } = setup();
      const token = await new SignJWT(claims())
        .setProtectedHeader({
          alg: 'ES256',
          typ: 'at+jwt',
          kid,
          crit: ['urn:example:unknown'],
          'urn:example:unknown': 1,
        })
        .sign(keys.signingKey().privateKey, { crit: { 'urn:example:unknown': true } });
      await expectRejection(verifier.verify(token), 'malformed');
    });

    it('rejects a validly signed token whose payload is not a JSON object as malformed', async () => {
      const { verifier, kid } = setup();
      const token = await new CompactSign(new TextEncoder().encode('[1]'))
        .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid })
        .sign(keys.signingKey().privateKey);
      await expectRejection(verifier.verify(token), 'malformed');
    });

    it.each([
      ['empty', ''],
      ['random text', 'hello world'],
      ['dots only', '..'],
      ['header only', 'eyJhbGciOiJFUzI1NiJ9'],
      ['non-JSON header', `${Buffer.from('{alg').toString('base64url')}.e30.sig`],
      ['header without alg', `${Buffer.from('{}').toString('base64url')}.e30.sig`],
    ])('rejects a garbage token (%s) as malformed', async (_label, token) => {
      const { verifier } = setup();
      await expectRejection(verifier.verify(token), 'malformed');
    });
  });

  describe('refuseDevelopmentTokens', () => {
    async function devToken(signer: ReturnType<typeof setup>['signer'], marker: unknown = true) {
      return signer.sign({
        subject: 'alice',
        audience: RESOURCE,
        expiresInSeconds: 300,
        claims: { [DEVELOPMENT_TOKEN_CLAIM]: marker },
      });
    }

    function strict() {
      const clock = createManualClock();
      const verifier = createLocalVerifier({
        keys,
        issuer: ISSUER,
        audience: RESOURCE,
        clockToleranceSeconds: 5,
        refuseDevelopmentTokens: true,
        clock,
      });
      return { verifier, signer: createTokenSigner({ keys, issuer: ISSUER, clock }) };
    }

    async function rejection(promise: Promise<unknown>): Promise<OAuthError> {
      const error = await promise.then(
        () => undefined,
        (caught: unknown) => caught,
      );
      expect(error).toBeInstanceOf(OAuthError);
      return error as OAuthError;
    }

    it('refuses a token marked gatehouse_dev as invalid_token / development_token (401)', async () => {
      const { verifier, signer } = strict();
      const error = await rejection(verifier.verify(await devToken(signer)));
      expect({ code: error.code, status: error.status, reason: error.reason }).toEqual({
        code: 'invalid_token',
        status: 401,
        reason: DEVELOPMENT_TOKEN_REASON,
      });
      expect((await rejection(verifier.verify(await devToken(signer, 'yes')))).reason).toBe(
        DEVELOPMENT_TOKEN_REASON,
      );
    });

    it("still admits the same gateway's other tokens, and a marker set to false", async () => {
      const { verifier, signer } = strict();
      const genuine = await signer.sign({ subject: 'alice', audience: RESOURCE, expiresInSeconds: 300 });
      await expect(verifier.verify(genuine)).resolves.toMatchObject({ subject: 'alice' });
      await expect(verifier.verify(await devToken(signer, false))).resolves.toMatchObject({
        subject: 'alice',
      });
    });

    it('checks the signature first: a forged development token is bad_signature, not development_token', async () => {
      const { verifier, signer } = strict();
      const forged = tamperPayload(await devToken(signer), (claims) => {
        claims.sub = 'root';
      });
      await expectRejection(verifier.verify(forged), 'bad_signature');
    });

    it('admits development tokens by default (development mode)', async () => {
      const { verifier, signer } = setup();
      await expect(verifier.verify(await devToken(signer))).resolves.toMatchObject({
        subject: 'alice',
        claims: expect.objectContaining({ [DEVELOPMENT_TOKEN_CLAIM]: true }),
      });
    });
  });
});
