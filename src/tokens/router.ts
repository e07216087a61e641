import { decodeJwt } from 'jose';
import { rejectToken, type TokenVerifier } from './verifier.js';

/** Chooses the verifiers that may accept a token, by its issuer. */
export interface IssuerRouter {
  /**
   * The verifiers for a token, in order. Rejects with `invalid_token` (reason `malformed`) for a token
   * that is not a JWT, and (reason `unknown_issuer`) when no verifier takes its issuer.
   */
  route(token: string): readonly TokenVerifier[];
  /** The verifiers for an (unverified) `iss` value; empty when none takes it. */
  candidates(issuer: unknown): readonly TokenVerifier[];
}

/**
 * Routes tokens by their *unverified* `iss`, read only to choose: verifiers whose `issuer` equals it
 * exactly are tried in order; verifiers without an issuer (legacy HS256) only when none matched. The
 * chosen verifier checks `iss` again among the signed claims. The verification cache and
 * `gatehouse doctor` route through this one router.
 *
 * @example
 * const router = createIssuerRouter([gatehouse, supabase]);
 * for (const verifier of router.route(token)) …
 */
export function createIssuerRouter(verifiers: readonly TokenVerifier[]): IssuerRouter {
  const byIssuer = new Map<string, TokenVerifier[]>();
  const withoutIssuer: TokenVerifier[] = [];
  for (const verifier of verifiers) {
    if (verifier.issuer === undefined) {
      withoutIssuer.push(verifier);
    } else {
      const group = byIssuer.get(verifier.issuer) ?? [];
      group.push(verifier);
      byIssuer.set(verifier.issuer, group);
    }
  }

  const candidates = (issuer: unknown): readonly TokenVerifier[] =>
    (typeof issuer === 'string' ? byIssuer.get(issuer) : undefined) ?? withoutIssuer;

  return {
    candidates,
    route(token: string): readonly TokenVerifier[] {
      let issuer: unknown;
      try {
        issuer = decodeJwt(token).iss;
      } catch (cause) {
        throw rejectToken('malformed', 'The token is not a well-formed JWT.', cause);
      }
      const chosen = candidates(issuer);
      if (chosen.length === 0) {
        throw rejectToken('unknown_issuer', 'No configured verifier accepts tokens from this issuer.');
      }
      return chosen;
    },
  };
}
