import { describe, expect, it } from 'vitest';
import { createManualClock } from '../../../src/ops/clock.js';
import {
  createJwksVerifier,
  type JwksAlgorithm,
  type JwksVerifierOptions,
} from '../../../src/tokens/jwks-verifier.js';
import { expectRejection, thrown, unsignedToken } from './helpers.js';

// The network behaviour (fetch, rotation, timeouts) is covered in test/integration/tokens/jwks.test.ts.
function options(overrides: Partial<JwksVerifierOptions> = {}): JwksVerifierOptions {
  return {
    name: 'idp',
    // Nothing listens here; the tests below must be decided before any fetch.
    jwksUrl: 'http://127.0.0.1:9/jwks.json',
    issuer: 'https://idp.example/',
    audience: 'https://api.example',
    algorithms: ['RS256'],
    timeoutMs: 200,
    cooldownMs: 30_000,
    cacheMaxAgeMs: 600_000,
    clockToleranceSeconds: 5,
    clock: createManualClock(),
    ...overrides,
  };
}

describe('createJwksVerifier (construction)', () => {
  it('exposes its name and exact issuer', () => {
    const verifier = createJwksVerifier(options());
    expect(verifier.name).toBe('idp');
    expect(verifier.issuer).toBe('https://idp.example/');
  });

  it.each([['HS256'], ['HS512'], ['none'], ['RS256 ']])('refuses the algorithm %s', (alg) => {
    const error = thrown(() => createJwksVerifier(options({ algorithms: [alg as JwksAlgorithm] })));
    expect(error).toMatchObject({ code: 'ERR_CONFIG_INVALID' });
  });

  it('refuses an empty algorithm list', () => {
    expect(thrown(() => createJwksVerifier(options({ algorithms: [] })))).toMatchObject({
      code: 'ERR_CONFIG_INVALID',
    });
  });

  it.each([['not a url'], ['ftp://idp.example/jwks'], ['file:///etc/passwd']])(
    'refuses the JWKS URL %s',
    (jwksUrl) => {
      expect(thrown(() => createJwksVerifier(options({ jwksUrl })))).toMatchObject({
        code: 'ERR_CONFIG_INVALID',
      });
    },
  );

  it('rejects alg none and HS256 before any key is fetched (no 503 for an unreachable JWKS)', async () => {
    const verifier = createJwksVerifier(options());
    await expectRejection(verifier.verify(unsignedToken({ sub: 's', exp: 1 })), 'alg_not_allowed');
    const hs256 = `${Buffer.from('{"alg":"HS256"}').toString('base64url')}.e30.c2ln`;
    await expectRejection(verifier.verify(hs256), 'alg_not_allowed');
  });

  it('rejects garbage as malformed before any key is fetched', async () => {
    const verifier = createJwksVerifier(options());
    await expectRejection(verifier.verify('garbage'), 'malformed');
    await expectRejection(verifier.verify(''), 'malformed');
  });
});
