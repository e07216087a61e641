import { describe, expect, it } from 'vitest';
import type { Principal } from '../../../src/identity/principal.js';
import { createIssuerRouter } from '../../../src/tokens/router.js';
import type { TokenVerifier } from '../../../src/tokens/verifier.js';
import { base64url, thrown } from './helpers.js';

function verifier(name: string, issuer: string | undefined): TokenVerifier {
  return {
    name,
    issuer,
    verify: () => Promise.reject(new Error(`${name} should not run`)) as Promise<Principal>,
  };
}

/** A token whose payload is `claims`; the router never checks signatures. */
const tokenWith = (claims: Record<string, unknown>) =>
  `${base64url({ alg: 'ES256' })}.${base64url(claims)}.sig`;

const names = (verifiers: readonly TokenVerifier[]) => verifiers.map((candidate) => candidate.name);

describe('createIssuerRouter', () => {
  const auth0 = verifier('auth0', 'https://tenant.auth0.com/');
  const gatehouse = verifier('gatehouse', 'https://gatehouse.example/');
  const supabaseJwks = verifier('supabase-jwks', 'https://ref.supabase.co/auth/v1');
  const supabaseHs256 = verifier('supabase-hs256', 'https://ref.supabase.co/auth/v1');
  const legacy = verifier('legacy', undefined);
  const router = createIssuerRouter([auth0, gatehouse, supabaseJwks, legacy, supabaseHs256]);

  it('routes by the exact iss, keeping the configured order for a shared issuer', () => {
    expect(names(router.route(tokenWith({ iss: 'https://tenant.auth0.com/' })))).toEqual(['auth0']);
    expect(names(router.candidates('https://ref.supabase.co/auth/v1'))).toEqual([
      'supabase-jwks',
      'supabase-hs256',
    ]);
  });

  it('treats a trailing slash as another issuer, and falls back to issuer-less verifiers only then', () => {
    expect(names(router.route(tokenWith({ iss: 'https://tenant.auth0.com' })))).toEqual(['legacy']);
    expect(names(router.route(tokenWith({ sub: 'no-iss' })))).toEqual(['legacy']);
    expect(names(router.candidates(42))).toEqual(['legacy']);
  });

  it('rejects an issuer nothing takes as unknown_issuer, and a non-JWT as malformed', () => {
    const strict = createIssuerRouter([auth0]);
    expect(strict.candidates('https://elsewhere.example/')).toEqual([]);
    expect(thrown(() => strict.route(tokenWith({ iss: 'https://elsewhere.example/' })))).toMatchObject({
      code: 'invalid_token',
      reason: 'unknown_issuer',
    });
    expect(thrown(() => strict.route('not-a-jwt'))).toMatchObject({
      code: 'invalid_token',
      reason: 'malformed',
    });
  });
});
