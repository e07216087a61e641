import { GatehouseError } from '../errors/gatehouse-error.js';
import type { RateLimiter } from '../stores/ports.js';
import type { EventBus } from './events.js';

/** Who spent the point, as `ratelimit.rejected` reports it. */
export interface LimitedCaller {
  readonly ip: string;
  /** `principalKey` of the caller, once known. */
  readonly principal?: string | undefined;
}

/**
 * Spends one point of `limiter` for `key`. Allowed: `undefined`. Refused: the `ERR_RATE_LIMITED` error to
 * answer with (429 and `Retry-After`), after reporting `ratelimit.rejected` named `limit`. A limiter that
 * cannot answer never lets the caller through: it throws `ERR_STORE_UNAVAILABLE` (503).
 */
export async function spendPoint(
  limiter: RateLimiter,
  request: {
    readonly limit: string;
    readonly key: string;
    readonly caller: LimitedCaller;
    readonly events: EventBus;
    /** What the refusal says, e.g. `too many requests; retry later`. */
    readonly message: string;
  },
): Promise<GatehouseError | undefined> {
  let decision: Awaited<ReturnType<RateLimiter['consume']>>;
  try {
    decision = await limiter.consume(request.key);
  } catch (error) {
    if (error instanceof GatehouseError) throw error;
    throw new GatehouseError('ERR_STORE_UNAVAILABLE', 'rate limiter unavailable', { cause: error });
  }
  if (decision.allowed) return undefined;
  const { caller } = request;
  request.events.emit({
    type: 'ratelimit.rejected',
    limit: request.limit,
    ip: caller.ip,
    ...(caller.principal !== undefined && { principal: caller.principal }),
    retryAfterSeconds: decision.retryAfterSeconds,
  });
  return new GatehouseError('ERR_RATE_LIMITED', request.message, {
    retryAfterSeconds: decision.retryAfterSeconds,
  });
}
