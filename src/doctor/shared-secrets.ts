import type { Hs256VerifierConfig, SupabaseDownstreamConfig } from '../config/schema.js';
import { secretWeakness } from '../config/secret-strength.js';
import { describeSecret } from '../crypto/fingerprint.js';
import type { DescribedSecret, DoctorCheck } from './check.js';

/**
 * `verifier:<name>` of an HS256 verifier: its secret by length and fingerprint (compare across
 * deployments with `--expect-fingerprint <name>=sha256:…`), warned about when published or guessable.
 */
export function hs256Check(verifier: Hs256VerifierConfig): { check: DoctorCheck; secret: DescribedSecret } {
  return describedHs256Secret(`verifier:${verifier.name}`, 'HS256 secret', verifier.secret, {
    scope: `issuer ${verifier.issuer ?? '(any)'}, audience ${[verifier.audience].flat().join(' ')}`,
    details: { issuer: verifier.issuer ?? null, audience: verifier.audience },
  });
}

/**
 * `downstream:supabase`: the secret (or key) Supabase user tokens are minted with, by length and
 * fingerprint (compare with `--expect-fingerprint downstream.supabase=sha256:…` against the project's).
 */
export function supabaseMintingCheck(supabase: SupabaseDownstreamConfig): {
  check: DoctorCheck;
  secret: DescribedSecret;
} {
  const id = 'downstream:supabase';
  const scope = `issuer ${supabase.issuer}, ${supabase.ttlSeconds} s tokens, stdio variable ${supabase.env}`;
  if (supabase.secret !== undefined) {
    return describedHs256Secret(id, 'Supabase minting secret (HS256)', supabase.secret, {
      scope,
      details: { issuer: supabase.issuer },
    });
  }
  const key = describeSecret(supabase.privateKey.trim());
  return {
    check: {
      id,
      status: 'ok',
      summary: `Supabase minting key (${supabase.algorithm}, kid ${supabase.kid}): ${key.length} bytes, ${key.fingerprint}; ${scope}`,
      details: { kind: supabase.algorithm, kid: supabase.kid, ...key, issuer: supabase.issuer },
    },
    secret: key,
  };
}

/** An HS256 secret by length and fingerprint, warned about when published or guessable (production refuses both). */
function describedHs256Secret(
  id: string,
  label: string,
  value: string,
  context: { scope: string; details: Record<string, unknown> },
): { check: DoctorCheck; secret: DescribedSecret } {
  const secret = describeSecret(value);
  const weakness = secretWeakness(value);
  const note =
    weakness === undefined
      ? ''
      : ` (${weakness === 'dev_secret' ? 'a published development secret' : 'a guessable secret'})`;
  return {
    check: {
      id,
      status: weakness === undefined ? 'ok' : 'warn',
      summary: `${label}: ${secret.length} bytes, ${secret.fingerprint}; ${context.scope}${note}`,
      details: {
        kind: 'hs256',
        ...secret,
        ...context.details,
        ...(weakness !== undefined && { reason: weakness }),
      },
    },
    secret,
  };
}
