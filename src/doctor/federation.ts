import type { FederationConfig } from '../config/federation.js';
import { isGatehouseError } from '../errors/gatehouse-error.js';
import { discoverIdentityProvider } from '../identity/oidc.js';
import type { Clock } from '../ops/clock.js';
import type { DoctorCheck } from './check.js';
import { algList, describeFetchError, kidList, probeJwks, skewCheck, skewOf } from './http.js';

/** What the discovery request met, recorded by the fetch handed to discovery. */
interface Answer {
  readonly status: number;
  readonly skewMs: number | undefined;
}

/** Where OpenID Connect Discovery 1.0 §4 (and oauth4webapi, which signs users in) looks: issuer + path. */
function discoveryUrlOf(issuer: string): string {
  const parsed = new URL(issuer);
  return `${parsed.origin}${parsed.pathname.replace(/\/+$/, '')}/.well-known/openid-configuration`;
}

/**
 * The upstream identity provider as sign-in will meet it: `federation` (discovery through the same
 * `discoverIdentityProvider` sign-in uses, so the doctor judges the document by sign-in's rules),
 * `federation:jwks` (its key set, which ID tokens are verified against) and `federation:clock` (skew
 * against its `Date` header).
 */
export async function federationChecks(
  federation: FederationConfig,
  clock: Clock,
  maxSkewMs: number,
): Promise<DoctorCheck[]> {
  const { issuer, timeoutMs } = federation;
  const discoveryUrl = discoveryUrlOf(issuer);
  const seen: { answer?: Answer } = {};
  const recording: typeof fetch = async (input, init) => {
    const started = clock.now();
    const response = await fetch(input, init);
    seen.answer = { status: response.status, skewMs: skewOf(response, started, clock.now()) };
    return response;
  };
  const clockCheck = () =>
    skewCheck('federation:clock', `identity provider ${federation.name}`, seen.answer?.skewMs, maxSkewMs);
  const fail = (reason: string, summary: string): DoctorCheck => ({
    id: 'federation',
    status: 'fail',
    summary: `${summary}; sign-in through ${federation.name} will fail`,
    details: { idp: federation.name, issuer, discoveryUrl, reason },
  });

  let jwksUri: string | undefined;
  try {
    jwksUri = (await discoverIdentityProvider(federation, { fetch: recording })).jwks_uri;
  } catch (error) {
    const { answer } = seen;
    if (answer === undefined) {
      return [
        fail(
          'discovery_unreachable',
          `federation issuer ${issuer} unreachable: GET ${discoveryUrl} failed (${describeFetchError(error)})`,
        ),
      ];
    }
    const refused = isGatehouseError(error, 'ERR_IDP_RESPONSE_INVALID') ? error.details : undefined;
    if (refused?.check === 'issuer') {
      return [
        fail(
          'issuer_mismatch',
          `federation discovery at ${discoveryUrl} names issuer ${JSON.stringify(refused.issuer)}, not the configured ${JSON.stringify(issuer)} (compared exactly: a trailing "/" matters)`,
        ),
        clockCheck(),
      ];
    }
    if (refused?.check === 'metadata') {
      const missing = Array.isArray(refused.missing) ? refused.missing.join(' and ') : 'an endpoint';
      return [
        fail('endpoints_missing', `federation discovery at ${discoveryUrl} lacks ${missing}`),
        clockCheck(),
      ];
    }
    return [
      fail(
        'discovery_failed',
        `federation discovery at ${discoveryUrl} answered ${answer.status}${answer.status === 200 ? ' without a valid discovery document' : ''}`,
      ),
      clockCheck(),
    ];
  }

  const checks: DoctorCheck[] = [
    {
      id: 'federation',
      status: 'ok',
      summary: `federation issuer ${issuer} answers discovery at ${discoveryUrl}`,
      details: { idp: federation.name, issuer, discoveryUrl },
    },
  ];
  if (jwksUri === undefined) {
    checks.push({
      id: 'federation:jwks',
      status: 'warn',
      summary:
        'discovery names no jwks_uri: ID-token signatures go unchecked (TLS to the token endpoint only)',
      details: { reason: 'no_jwks_uri' },
    });
  } else {
    const probe = await probeJwks(jwksUri, timeoutMs, clock);
    if (!probe.ok) {
      checks.push({
        id: 'federation:jwks',
        status: 'fail',
        summary: `${probe.problem}; ID tokens from ${issuer} cannot be verified, so sign-in will fail`,
        details: { jwksUrl: jwksUri, reason: probe.reason },
      });
    } else {
      checks.push({
        id: 'federation:jwks',
        status: probe.keys.length > 0 ? 'ok' : 'fail',
        summary:
          probe.keys.length > 0
            ? `JWKS reachable: ${probe.keys.length} key(s), kids ${kidList(probe.keys)}; algorithms ${algList(probe.keys)}`
            : `JWKS at ${jwksUri} is empty; ID tokens from ${issuer} cannot be verified, so sign-in will fail`,
        details: {
          jwksUrl: jwksUri,
          keys: probe.keys,
          ...(probe.keys.length === 0 && { reason: 'jwks_empty' }),
        },
      });
    }
  }
  checks.push(clockCheck());
  return checks;
}
