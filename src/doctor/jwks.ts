import type { JwksVerifierConfig } from '../config/schema.js';
import type { Clock } from '../ops/clock.js';
import type { DoctorCheck } from './check.js';
import { algList, type Fetched, fetchJson, kidList, probeJwks, skewCheck } from './http.js';

/**
 * A JWKS verifier as verification will meet it: `verifier:<name>` (the key set answers and holds a key
 * for an accepted algorithm), `metadata:<name>` (the issuer's metadata names the same issuer and key
 * set), and `clock:<name>` (skew against the issuer's `Date` header, when anything answered).
 */
export async function jwksChecks(
  verifier: JwksVerifierConfig,
  clock: Clock,
  maxSkewMs: number,
): Promise<DoctorCheck[]> {
  const id = `verifier:${verifier.name}`;
  const checks: DoctorCheck[] = [];
  const probe = await probeJwks(verifier.jwksUrl, verifier.timeoutMs, clock);
  let answered = probe.ok || probe.answered !== undefined;
  let skewMs = probe.ok ? probe.skewMs : probe.answered?.skewMs;
  if (!probe.ok) {
    checks.push({
      id,
      status: 'fail',
      summary: `${probe.problem}; tokens from ${verifier.issuer} get 503`,
      details: { kind: 'jwks', jwksUrl: verifier.jwksUrl, reason: probe.reason },
    });
  } else {
    const accepted: readonly string[] = verifier.algorithms;
    const usable = probe.keys.filter((key) => key.alg === null || accepted.includes(key.alg));
    checks.push({
      id,
      status: usable.length > 0 ? 'ok' : 'fail',
      summary:
        usable.length > 0
          ? `JWKS reachable: ${probe.keys.length} key(s), kids ${kidList(probe.keys)}; algorithms ${algList(probe.keys)}`
          : `JWKS at ${verifier.jwksUrl} has no key for the accepted algorithms ${accepted.join(', ')}`,
      details: {
        kind: 'jwks',
        jwksUrl: verifier.jwksUrl,
        keys: probe.keys,
        algorithms: verifier.algorithms,
        ...(usable.length === 0 && { reason: 'jwks_no_usable_key' }),
      },
    });
  }

  const metadata = await issuerMetadata(verifier.issuer, verifier.timeoutMs, clock);
  if (metadata === undefined) {
    checks.push({
      id: `metadata:${verifier.name}`,
      status: 'warn',
      summary: `no issuer metadata reachable for ${verifier.issuer} (openid-configuration, oauth-authorization-server)`,
      details: { reason: 'metadata_unreachable' },
    });
  } else {
    answered = true;
    skewMs ??= metadata.skewMs;
    const doc = metadata.body as { issuer?: unknown; jwks_uri?: unknown };
    const problems: string[] = [];
    if (doc.issuer !== verifier.issuer) problems.push(`it names issuer ${String(doc.issuer)}`);
    if (typeof doc.jwks_uri === 'string' && doc.jwks_uri !== verifier.jwksUrl) {
      problems.push(`its jwks_uri is ${doc.jwks_uri}`);
    }
    checks.push({
      id: `metadata:${verifier.name}`,
      status: problems.length > 0 ? (doc.issuer !== verifier.issuer ? 'fail' : 'warn') : 'ok',
      summary:
        problems.length > 0
          ? `issuer metadata at ${metadata.url} disagrees with the configuration: ${problems.join('; ')}`
          : `issuer metadata at ${metadata.url} matches`,
      details: {
        url: metadata.url,
        ...(problems.length > 0 && {
          reason: doc.issuer !== verifier.issuer ? 'issuer_mismatch' : 'jwks_uri_mismatch',
        }),
      },
    });
  }
  // With nothing answering there is no Date header to compare; the failures above already say so.
  if (answered) checks.push(skewCheck(`clock:${verifier.name}`, verifier.name, skewMs, maxSkewMs));
  return checks;
}

/**
 * The issuer's metadata, wherever it publishes it: OpenID Connect Discovery (`<issuer>/.well-known/
 * openid-configuration`) or RFC 8414 (`/.well-known/oauth-authorization-server<path>`). A resource-server
 * verifier only compares it with its configuration; nothing here signs anyone in.
 */
async function issuerMetadata(
  issuer: string,
  timeoutMs: number,
  clock: Clock,
): Promise<(Fetched & { url: string }) | undefined> {
  let candidates: string[];
  try {
    const parsed = new URL(issuer);
    const path = parsed.pathname.replace(/\/+$/, '');
    candidates = [
      `${parsed.origin}${path}/.well-known/openid-configuration`,
      `${parsed.origin}/.well-known/oauth-authorization-server${path}`,
    ];
  } catch {
    return undefined;
  }
  for (const url of candidates) {
    try {
      const fetched = await fetchJson(url, timeoutMs, clock);
      if (fetched.status === 200 && typeof fetched.body === 'object' && fetched.body !== null) {
        return { ...fetched, url };
      }
    } catch {
      // Try the next form.
    }
  }
  return undefined;
}
