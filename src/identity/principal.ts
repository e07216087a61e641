/**
 * Who is calling: built only from a token whose signature, issuer, audience, algorithm and expiry
 * were verified. Nothing downstream ever reads identity from anywhere else.
 */
export interface Principal {
  /** The token's `sub`. */
  readonly subject: string;
  /** The token's `iss` (exactly as issued; `https://a/` and `https://a` differ). */
  readonly issuer: string;
  readonly email?: string;
  readonly name?: string;
  /** Granted scopes, from `scope` (space-separated) or `scp` (array). */
  readonly scopes: readonly string[];
  /** OAuth client the token was issued to (`client_id` or `azp`), when present. */
  readonly clientId?: string;
  /** The verified claims, as issued. */
  readonly claims: Readonly<Record<string, unknown>>;
  /** The token's `exp`, in seconds since the epoch. */
  readonly expiresAt: number;
  /** Name of the verifier that accepted the token (for diagnostics and logs). */
  readonly verifier: string;
}

/** The key sessions are bound to: two principals are the same user only if issuer and subject both match. */
export function principalKey(principal: Pick<Principal, 'issuer' | 'subject'>): string {
  return `${principal.issuer}#${principal.subject}`;
}
