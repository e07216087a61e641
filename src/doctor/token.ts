import { decodeJwt, decodeProtectedHeader, type JWTPayload, type ProtectedHeaderParameters } from 'jose';
import { isGatehouseError } from '../errors/gatehouse-error.js';
import { OAuthError } from '../errors/oauth-error.js';
import type { Clock } from '../ops/clock.js';
import { createIssuerRouter } from '../tokens/router.js';
import type { TokenVerifier } from '../tokens/verifier.js';
import type { DescribedSecret, DoctorCheck } from './check.js';
import { sameFingerprint } from './fingerprints.js';

interface Attempt {
  readonly verifier: string;
  readonly result: 'verified' | 'rejected' | 'unavailable';
  readonly reason?: string;
}

export interface TokenCheckContext {
  /** The gateway's verifiers, in the gateway's order. */
  readonly verifiers: readonly TokenVerifier[];
  /** HS256 secrets by verifier name, to explain a `bad_signature`. */
  readonly hs256: ReadonlyMap<string, DescribedSecret>;
  /** Fingerprints the operator expects, by name (normalised). */
  readonly expectations: ReadonlyMap<string, string>;
  readonly clock: Clock;
}

/**
 * `token`: decodes a token for display, routes it with the gateway's issuer router and verifies it with
 * the verifiers it routes to, as a request would be. A `bad_signature` from an HS256 verifier is explained
 * by fingerprints. Never echoes the token.
 */
export async function tokenCheck(token: string, context: TokenCheckContext): Promise<DoctorCheck> {
  let header: ProtectedHeaderParameters;
  let payload: JWTPayload;
  try {
    header = decodeProtectedHeader(token);
    payload = decodeJwt(token);
  } catch {
    return {
      id: 'token',
      status: 'fail',
      summary: 'not a well-formed JWT',
      details: { reason: 'malformed' },
    };
  }
  const nowSeconds = context.clock.now() / 1000;
  const decoded = {
    alg: header.alg ?? null,
    kid: header.kid ?? null,
    typ: header.typ ?? null,
    iss: payload.iss ?? null,
    aud: payload.aud ?? null,
    sub: payload.sub ?? null,
    exp: typeof payload.exp === 'number' ? new Date(payload.exp * 1000).toISOString() : null,
    expiresInSeconds: typeof payload.exp === 'number' ? Math.round(payload.exp - nowSeconds) : null,
  };
  const expiry =
    decoded.expiresInSeconds === null
      ? 'no exp'
      : decoded.expiresInSeconds >= 0
        ? `expires in ${decoded.expiresInSeconds} s`
        : `expired ${-decoded.expiresInSeconds} s ago`;

  const candidates = createIssuerRouter(context.verifiers).candidates(payload.iss);
  if (candidates.length === 0) {
    return {
      id: 'token',
      status: 'fail',
      summary: `no verifier accepts issuer ${String(payload.iss ?? '(none)')} (reason unknown_issuer)`,
      details: { ...decoded, reason: 'unknown_issuer' },
      hints: [
        `configured issuers: ${context.verifiers.map((verifier) => verifier.issuer ?? `(any, ${verifier.name})`).join(', ')}`,
      ],
    };
  }
  const attempts: Attempt[] = [];
  for (const verifier of candidates) {
    try {
      const principal = await verifier.verify(token);
      return {
        id: 'token',
        status: 'ok',
        summary: `verified by ${verifier.name}: sub ${principal.subject}, issuer ${principal.issuer}, audience ${[payload.aud ?? ''].flat().join(' ')}, ${expiry}`,
        details: { ...decoded, verifier: verifier.name, attempts },
      };
    } catch (error) {
      if (error instanceof OAuthError) {
        attempts.push({ verifier: verifier.name, result: 'rejected', reason: error.reason ?? error.code });
      } else if (isGatehouseError(error, 'ERR_JWKS_UNAVAILABLE')) {
        attempts.push({ verifier: verifier.name, result: 'unavailable', reason: 'jwks_unavailable' });
      } else {
        attempts.push({ verifier: verifier.name, result: 'rejected', reason: 'error' });
      }
    }
  }
  const badSecret = attempts.find(
    (attempt) => attempt.reason === 'bad_signature' && context.hs256.has(attempt.verifier),
  );
  const configured = badSecret === undefined ? undefined : context.hs256.get(badSecret.verifier);
  if (badSecret !== undefined && configured !== undefined) {
    const expected = context.expectations.get(badSecret.verifier);
    const hints: string[] = [];
    let summary = `signature does not match the configured secret of verifier ${badSecret.verifier} (${configured.length} bytes, ${configured.fingerprint}); reason bad_signature`;
    if (expected === undefined) {
      hints.push(
        'a token cannot reveal the secret that signed it: fingerprint the secret of the deployment that issued it (gatehouse doctor there, or printf %s "$SECRET" | sha256sum, first 12 hex digits)',
        `then compare: gatehouse doctor --token-file <file> --expect-fingerprint ${badSecret.verifier}=<that fingerprint>`,
      );
    } else if (sameFingerprint(expected, configured.fingerprint)) {
      summary += `; the expected fingerprint ${expected} matches, so the token was signed with yet another secret or altered`;
    } else {
      summary += `; the issuing secret is ${expected} but this deployment has ${configured.fingerprint}: the secrets differ`;
      hints.push(
        `make both deployments use the same secret (configured ${configured.fingerprint}, issuer ${expected})`,
      );
    }
    return {
      id: 'token',
      status: 'fail',
      summary: `${summary}; ${expiry}`,
      details: {
        ...decoded,
        reason: 'bad_signature',
        verifier: badSecret.verifier,
        configuredFingerprint: configured.fingerprint,
        ...(expected !== undefined && { expectedFingerprint: expected }),
        attempts,
      },
      ...(hints.length > 0 && { hints }),
    };
  }
  const first = attempts.find((attempt) => attempt.reason !== 'alg_not_allowed') ?? attempts[0];
  return {
    id: 'token',
    status: 'fail',
    summary: `rejected by ${first?.verifier}: ${first?.reason}; ${expiry}`,
    details: { ...decoded, reason: first?.reason ?? null, attempts },
  };
}
