import type { GatehouseConfig } from '../config/schema.js';
import { gatewayUrls } from '../config/urls.js';
import { type Clock, systemClock } from '../ops/clock.js';
import { gatewayVerifiers } from '../tokens/build-verifier.js';
import type { KeyStore } from '../tokens/keys.js';
import { authorizationServerCheck } from './authorization-server.js';
import type { DescribedSecret, DoctorCheck, DoctorStatus } from './check.js';
import { configCheck, modeCheck, productionCheck } from './configuration.js';
import { federationChecks } from './federation.js';
import { expectationCheck, parseFingerprint } from './fingerprints.js';
import { jwksChecks } from './jwks.js';
import { secretKeyCheck } from './secret-key.js';
import { hs256Check, supabaseMintingCheck } from './shared-secrets.js';
import { signingKeysCheck } from './signing-keys.js';
import { storeCheck } from './store.js';
import { tokenCheck } from './token.js';
import { upstreamCheck } from './upstream.js';

export type { DoctorCheck, DoctorStatus };
export { parseFingerprint };

export interface DoctorReport {
  /** False when any check failed. */
  readonly ok: boolean;
  /** `undefined` when the configuration did not load. */
  readonly mode: GatehouseConfig['mode'] | undefined;
  readonly checks: readonly DoctorCheck[];
}

export interface DoctorOptions {
  /** A token to decode, route and verify. Never echoed. */
  readonly token?: string | undefined;
  /**
   * Fingerprints the operator expects, by verifier name (or `secretKey`, `downstream.supabase`), e.g. from
   * the other deployment: `sha256:<hex>` or bare hex, at least 8 digits (a full `sha256sum` works).
   */
  readonly expectFingerprints?: ReadonlyMap<string, string> | undefined;
  /** Time source for clock-skew and expiry checks. Default the system clock. */
  readonly clock?: Clock | undefined;
  /** Largest tolerated difference between an issuer's `Date` header and the local clock, in ms. Default 30 s. */
  readonly maxClockSkewMs?: number | undefined;
  /**
   * The environment the configuration was loaded from (the doctor reads only `NODE_ENV`: production with
   * an explicit `mode: development` is warned about loudly). Default none: the library reads no
   * `process.env`.
   */
  readonly env?: Readonly<Record<string, string | undefined>> | undefined;
}

/** Default for {@link DoctorOptions.maxClockSkewMs}: `Date` headers have one-second resolution. */
export const DEFAULT_MAX_CLOCK_SKEW_MS = 30_000;

/**
 * Checks a deployment without changing it: configuration and mode, production readiness (the very list
 * production start-up refuses on), store (through `openStores`, creating nothing) and secret key
 * (including file permissions), signing keys, each verifier (HS256 fingerprint; JWKS reachability, key
 * ids, issuer metadata, clock skew), the authorization server and its federated identity provider
 * (discovery as sign-in does it, JWKS, clock skew), the Supabase minting secret, expected fingerprints
 * and, optionally, one token routed and verified as a request would be. Never throws for something it
 * checks: an unreachable endpoint or unreadable file is a failing check. `ok` is false when any check
 * failed; `gatehouse doctor` exits 1 then.
 *
 * @example
 * const config = loadConfig({ env: process.env });
 * const report = await runDoctor(config, { env: process.env, expectFingerprints: new Map([['supabase', 'sha256:…']]) });
 * for (const check of report.checks) if (check.status !== 'ok') console.warn(check.id, check.summary);
 */
export async function runDoctor(config: GatehouseConfig, options: DoctorOptions = {}): Promise<DoctorReport> {
  const clock = options.clock ?? systemClock;
  const maxSkewMs = options.maxClockSkewMs ?? DEFAULT_MAX_CLOCK_SKEW_MS;
  const checks: DoctorCheck[] = [configCheck(config)];
  const mode = modeCheck(config, options.env ?? {});
  if (mode !== undefined) checks.push(mode);
  checks.push(productionCheck(config));
  checks.push(await upstreamCheck(config, clock));

  const opened = await storeCheck(config, clock);
  checks.push(opened.check);
  const secret = secretKeyCheck(config);
  checks.push(secret.check);
  try {
    let keys: KeyStore | undefined;
    if (opened.stores !== undefined && secret.key !== undefined) {
      const loaded = await signingKeysCheck(opened.stores, secret.key, config, clock);
      checks.push(loaded.check);
      keys = loaded.keys;
    }

    const hs256 = new Map<string, DescribedSecret>();
    for (const verifier of config.auth.verifiers) {
      if (verifier.kind === 'hs256') {
        const described = hs256Check(verifier);
        checks.push(described.check);
        hs256.set(verifier.name, described.secret);
      } else {
        checks.push(...(await jwksChecks(verifier, clock, maxSkewMs)));
      }
    }
    if (config.authorizationServer.enabled) {
      checks.push(authorizationServerCheck(config, gatewayUrls(config)));
      const federation = config.authorizationServer.federation;
      if (federation !== undefined) checks.push(...(await federationChecks(federation, clock, maxSkewMs)));
    }
    const minting =
      config.downstream.supabase === undefined ? undefined : supabaseMintingCheck(config.downstream.supabase);
    if (minting !== undefined) checks.push(minting.check);

    const fingerprints = new Map(hs256);
    if (secret.described !== undefined) fingerprints.set('secretKey', secret.described);
    if (minting !== undefined) fingerprints.set('downstream.supabase', minting.secret);
    const expectations = new Map<string, string>();
    for (const [name, wanted] of options.expectFingerprints ?? []) {
      checks.push(expectationCheck(name, wanted, fingerprints));
      const parsed = parseFingerprint(wanted);
      if (parsed !== undefined) expectations.set(name, parsed);
    }

    if (options.token !== undefined) {
      const urls = gatewayUrls(config);
      const verifiers = gatewayVerifiers(
        config,
        keys && { keys, issuer: urls.issuer, audience: urls.resource },
        clock,
      ).all;
      checks.push(await tokenCheck(options.token, { verifiers, hs256, expectations, clock }));
    }
  } finally {
    await opened.stores?.close();
  }
  return { ok: !checks.some((check) => check.status === 'fail'), mode: config.mode, checks };
}
