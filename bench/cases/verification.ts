import { performance } from 'node:perf_hooks';
import { systemClock } from '../../src/ops/clock.js';
import { createVerificationCache, type VerificationCache } from '../../src/tokens/cache.js';
import { createKeyStore } from '../../src/tokens/keys.js';
import { createLocalVerifier } from '../../src/tokens/local-verifier.js';
import { createTokenSigner } from '../../src/tokens/sign.js';

export type CacheVariant = 'hit' | 'miss';

export interface VerificationOptions {
  rounds: number;
  /** Operation bound of one measured run. */
  maxOps: number;
  /** Wall-time bound of one measured run, in milliseconds. */
  maxRunMs: number;
}

export interface VerificationRun {
  variant: CacheVariant;
  round: number;
  ops: number;
  durationMs: number;
  opsPerSecond: number;
  microsPerOp: number;
}

const ISSUER = 'http://127.0.0.1:8787';
const AUDIENCE = `${ISSUER}/mcp`;

/**
 * Case (b): one valid Gatehouse access token verified through `createVerificationCache`, sequentially
 * (one `await` at a time, so the figure is the cost of one verification, not a throughput under
 * concurrency).
 *
 * - hit: a cache with the gateway's default size, warmed with the token; every call is answered from
 *   the cache (shape check, SHA-256 of the token, LRU touch).
 * - miss: the same token through a cache built with `maxEntries: 0` (caching disabled, a supported
 *   setting), so every call takes the full miss path: SHA-256 key, in-flight bookkeeping, unverified
 *   decode to route by `iss`, then the local verifier's ES256 `jwtVerify` with every claim check. Same
 *   token, same code path as a cold cache, without minting tokens inside the timed loop.
 */
export async function measureVerification(options: VerificationOptions): Promise<VerificationRun[]> {
  const keys = await createKeyStore({ clock: systemClock });
  const signer = createTokenSigner({ keys, issuer: ISSUER, clock: systemClock });
  const verifier = createLocalVerifier({
    keys,
    issuer: ISSUER,
    audience: AUDIENCE,
    clockToleranceSeconds: 5,
    clock: systemClock,
  });
  const build = (maxEntries: number) =>
    createVerificationCache({ verifiers: [verifier], maxEntries, maxTtlMs: 5 * 60_000, clock: systemClock });
  const caches: Record<CacheVariant, VerificationCache> = { hit: build(10_000), miss: build(0) };
  const token = await signer.sign({
    subject: 'bench-user',
    audience: AUDIENCE,
    expiresInSeconds: 900,
    claims: { scope: 'notes:read notes:write', email: 'bench-user@example.test' },
  });

  // Fill the hit cache (its one miss), then warm up both paths.
  await caches.hit.verify(token);
  for (const variant of ['hit', 'miss'] as const) {
    await timed(caches[variant], token, variant, Math.min(options.maxOps, 500), options.maxRunMs);
  }

  const runs: VerificationRun[] = [];
  for (let round = 1; round <= options.rounds; round++) {
    const order: CacheVariant[] = round % 2 === 1 ? ['hit', 'miss'] : ['miss', 'hit'];
    for (const variant of order) {
      const { ops, durationMs } = await timed(
        caches[variant],
        token,
        variant,
        options.maxOps,
        options.maxRunMs,
      );
      runs.push({
        variant,
        round,
        ops,
        durationMs,
        opsPerSecond: (ops * 1000) / durationMs,
        microsPerOp: (durationMs * 1000) / ops,
      });
    }
  }
  const hitStats = caches.hit.stats();
  const missStats = caches.miss.stats();
  if (hitStats.misses !== 1 || missStats.hits !== 0) {
    throw new Error(`cache did not behave as measured: ${JSON.stringify({ hitStats, missStats })}`);
  }
  return runs;
}

async function timed(
  cache: VerificationCache,
  token: string,
  variant: CacheVariant,
  maxOps: number,
  maxRunMs: number,
): Promise<{ ops: number; durationMs: number }> {
  const begin = performance.now();
  const deadline = begin + maxRunMs;
  let ops = 0;
  // Checking the clock every 64 operations keeps it out of the hit path's measurement.
  while (ops < maxOps && (ops % 64 !== 0 || performance.now() < deadline)) {
    const { cacheHit } = await cache.verify(token);
    if (cacheHit !== (variant === 'hit')) throw new Error(`expected a cache ${variant}`);
    ops += 1;
  }
  return { ops, durationMs: performance.now() - begin };
}
