import { errors } from 'jose';
import { describe, expect, it } from 'vitest';
import { GatehouseError, isGatehouseError } from '../../../src/errors/gatehouse-error.js';
import { OAuthError } from '../../../src/errors/oauth-error.js';
import {
  assertTokenShape,
  isTokenRejection,
  MAX_TOKEN_LENGTH,
  principalFromClaims,
  rejectToken,
  TOKEN_REJECTION_REASONS,
  type TokenRejectionReason,
  toVerificationError,
} from '../../../src/tokens/verifier.js';
import { thrown } from './helpers.js';

describe('principalFromClaims', () => {
  const base = { iss: 'https://issuer.example/', sub: 'user-1', exp: 1_800_000_000 };

  it('maps subject, issuer, email, name, expiry and verifier', () => {
    const principal = principalFromClaims({ ...base, email: 'a@example.com', name: 'Ada' }, 'auth0');
    expect(principal).toMatchObject({
      subject: 'user-1',
      issuer: 'https://issuer.example/',
      email: 'a@example.com',
      name: 'Ada',
      expiresAt: 1_800_000_000,
      verifier: 'auth0',
      scopes: [],
    });
    expect(principal.claims).toEqual({ ...base, email: 'a@example.com', name: 'Ada' });
    expect('clientId' in principal).toBe(false);
  });

  it('reads scopes from a space-separated scope string, ignoring extra spaces', () => {
    expect(principalFromClaims({ ...base, scope: ' read  write ' }, 'v').scopes).toEqual(['read', 'write']);
  });

  it('reads scopes from an scp array, or an scp string (Entra ID)', () => {
    expect(principalFromClaims({ ...base, scp: ['a', 'b', 3] }, 'v').scopes).toEqual(['a', 'b']);
    expect(principalFromClaims({ ...base, scp: 'User.Read Mail.Read' }, 'v').scopes).toEqual([
      'User.Read',
      'Mail.Read',
    ]);
  });

  it('prefers scope over scp', () => {
    expect(principalFromClaims({ ...base, scope: 'x', scp: ['y'] }, 'v').scopes).toEqual(['x']);
  });

  it('takes the client from client_id, else azp', () => {
    expect(principalFromClaims({ ...base, client_id: 'c1', azp: 'c2' }, 'v').clientId).toBe('c1');
    expect(principalFromClaims({ ...base, azp: 'c2' }, 'v').clientId).toBe('c2');
  });

  it('ignores non-string email and name', () => {
    const principal = principalFromClaims({ ...base, email: 42, name: { first: 'A' } }, 'v');
    expect(principal.email).toBeUndefined();
    expect(principal.name).toBeUndefined();
  });

  it('uses the fallback issuer only when iss is absent', () => {
    const { iss: _iss, ...withoutIssuer } = base;
    expect(principalFromClaims(withoutIssuer, 'v', { fallbackIssuer: 'urn:x' }).issuer).toBe('urn:x');
    expect(principalFromClaims(base, 'v', { fallbackIssuer: 'urn:x' }).issuer).toBe(base.iss);
    expect(thrown(() => principalFromClaims(withoutIssuer, 'v'))).toMatchObject({ reason: 'missing_claim' });
  });

  it.each([
    ['sub missing', { iss: 'i', exp: 1 }],
    ['sub empty', { iss: 'i', exp: 1, sub: '' }],
    ['sub not a string', { iss: 'i', exp: 1, sub: 7 }],
    ['exp missing', { iss: 'i', sub: 's' }],
    ['exp not a number', { iss: 'i', sub: 's', exp: '1' }],
  ])('rejects claims with %s as missing_claim', (_label, claims) => {
    const error = thrown(() => principalFromClaims(claims, 'v'));
    expect(isTokenRejection(error, 'missing_claim')).toBe(true);
  });

  it('returns a frozen principal whose claims cannot be changed afterwards', () => {
    const claims: Record<string, unknown> = { ...base, scope: 'a' };
    const principal = principalFromClaims(claims, 'v');
    claims.sub = 'someone-else';
    expect(principal.claims.sub).toBe('user-1');
    expect(Object.isFrozen(principal)).toBe(true);
    expect(Object.isFrozen(principal.claims)).toBe(true);
    expect(Object.isFrozen(principal.scopes)).toBe(true);
  });
});

describe('toVerificationError', () => {
  const payload = {};
  const cases: Array<[string, Error, TokenRejectionReason]> = [
    ['ERR_JWT_EXPIRED', new errors.JWTExpired('x', payload, 'exp', 'check_failed'), 'token_expired'],
    ['iss check', new errors.JWTClaimValidationFailed('x', payload, 'iss', 'check_failed'), 'wrong_issuer'],
    ['aud check', new errors.JWTClaimValidationFailed('x', payload, 'aud', 'check_failed'), 'wrong_audience'],
    ['nbf check', new errors.JWTClaimValidationFailed('x', payload, 'nbf', 'check_failed'), 'not_yet_valid'],
    ['missing aud', new errors.JWTClaimValidationFailed('x', payload, 'aud', 'missing'), 'missing_claim'],
    ['missing sub', new errors.JWTClaimValidationFailed('x', payload, 'sub', 'missing'), 'missing_claim'],
    ['typ check', new errors.JWTClaimValidationFailed('x', payload, 'typ', 'check_failed'), 'malformed'],
    ['exp not a number', new errors.JWTClaimValidationFailed('x', payload, 'exp', 'invalid'), 'malformed'],
    ['ERR_JOSE_ALG_NOT_ALLOWED', new errors.JOSEAlgNotAllowed('x'), 'alg_not_allowed'],
    ['ERR_JWS_SIGNATURE_VERIFICATION_FAILED', new errors.JWSSignatureVerificationFailed(), 'bad_signature'],
    ['ERR_JWKS_NO_MATCHING_KEY', new errors.JWKSNoMatchingKey(), 'unknown_kid'],
    ['ERR_JWKS_MULTIPLE_MATCHING_KEYS', new errors.JWKSMultipleMatchingKeys(), 'unknown_kid'],
    ['ERR_JWS_INVALID', new errors.JWSInvalid('x'), 'malformed'],
    ['ERR_JWT_INVALID', new errors.JWTInvalid('x'), 'malformed'],
    ['ERR_JOSE_NOT_SUPPORTED (unknown crit)', new errors.JOSENotSupported('x'), 'malformed'],
  ];

  it.each(cases)('maps %s to invalid_token', (_label, input, reason) => {
    const mapped = toVerificationError(input, 'v');
    expect(mapped).toBeInstanceOf(OAuthError);
    expect(mapped).toMatchObject({ code: 'invalid_token', status: 401, reason });
    expect((mapped as OAuthError).cause).toBe(input);
  });

  it.each([
    ['ERR_JWKS_TIMEOUT', new errors.JWKSTimeout()],
    ['ERR_JWKS_INVALID', new errors.JWKSInvalid('x')],
    ['ERR_JWK_INVALID', new errors.JWKInvalid('x')],
  ])('maps %s to ERR_JWKS_UNAVAILABLE (503), not invalid_token', (_label, input) => {
    const mapped = toVerificationError(input, 'auth0');
    expect(isGatehouseError(mapped, 'ERR_JWKS_UNAVAILABLE')).toBe(true);
    expect((mapped as GatehouseError).status).toBe(503);
    expect((mapped as GatehouseError).details).toEqual({ verifier: 'auth0' });
  });

  it('passes Gatehouse and OAuth errors through unchanged', () => {
    const unavailable = new GatehouseError('ERR_JWKS_UNAVAILABLE', 'x');
    const rejection = rejectToken('wrong_issuer', 'x');
    expect(toVerificationError(unavailable, 'v')).toBe(unavailable);
    expect(toVerificationError(rejection, 'v')).toBe(rejection);
  });

  it('returns unknown errors unchanged (they are bugs, rendered as server errors)', () => {
    const bug = new TypeError('boom');
    expect(toVerificationError(bug, 'v')).toBe(bug);
    const generic = new errors.JOSEError('x');
    expect(toVerificationError(generic, 'v')).toBe(generic);
  });
});

describe('assertTokenShape', () => {
  it('accepts a string up to MAX_TOKEN_LENGTH and refuses empty, non-string and longer input', () => {
    expect(thrown(() => assertTokenShape('a'.repeat(MAX_TOKEN_LENGTH)))).toBeUndefined();
    for (const input of ['', 'a'.repeat(MAX_TOKEN_LENGTH + 1), undefined, 42, null]) {
      expect(
        isTokenRejection(
          thrown(() => assertTokenShape(input)),
          'malformed',
        ),
      ).toBe(true);
    }
  });
});

describe('TOKEN_REJECTION_REASONS', () => {
  it('lists every reason exactly once', () => {
    expect(new Set(TOKEN_REJECTION_REASONS).size).toBe(TOKEN_REJECTION_REASONS.length);
    expect([...TOKEN_REJECTION_REASONS].sort()).toEqual(
      [
        'alg_not_allowed',
        'bad_signature',
        'development_token',
        'malformed',
        'missing_claim',
        'not_yet_valid',
        'token_expired',
        'unknown_issuer',
        'unknown_kid',
        'wrong_audience',
        'wrong_issuer',
      ].sort(),
    );
  });
});
