import type { Clock } from '../ops/clock.js';
import type { DoctorCheck } from './check.js';

/** One answer of a remote endpoint, as far as the doctor reads it. */
export interface Fetched {
  readonly status: number;
  readonly body: unknown;
  /** Remote clock minus local clock, in ms, from the `Date` header; `undefined` without one. */
  readonly skewMs: number | undefined;
}

/**
 * The remote clock's offset from `clock`, in ms, read from a response's `Date` header against the middle
 * of the request (`Date` has one-second resolution); `undefined` without a header.
 */
export function skewOf(response: Response, startedMs: number, endedMs: number): number | undefined {
  const date = Date.parse(response.headers.get('date') ?? '');
  return Number.isNaN(date) ? undefined : date - (startedMs + endedMs) / 2;
}

export async function fetchJson(url: string, timeoutMs: number, clock: Clock): Promise<Fetched> {
  const started = clock.now();
  const response = await fetch(url, {
    headers: { accept: 'application/json' },
    signal: AbortSignal.timeout(timeoutMs),
  });
  const skewMs = skewOf(response, started, clock.now());
  let body: unknown;
  try {
    body = await response.json();
  } catch {
    body = undefined;
  }
  return { status: response.status, body, skewMs };
}

/** Why a request failed, in a word: `timed out`, `ECONNREFUSED`, … */
export function describeFetchError(error: unknown): string {
  if (error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError'))
    return 'timed out';
  const cause = (error as { cause?: { code?: unknown } } | null)?.cause?.code;
  return typeof cause === 'string' ? cause : error instanceof Error ? error.message : String(error);
}

/** A clock-skew check: `warn` beyond `maxSkewMs`, or when the remote sent no `Date` header. */
export function skewCheck(
  id: string,
  source: string,
  skewMs: number | undefined,
  maxSkewMs: number,
): DoctorCheck {
  if (skewMs === undefined) {
    return { id, status: 'warn', summary: `${source} sent no Date header; clock skew unknown` };
  }
  const seconds = Math.round(skewMs / 1000);
  const ahead = seconds >= 0 ? 'ahead of' : 'behind';
  const text = `${source} clock is ${Math.abs(seconds)} s ${ahead} this machine`;
  return Math.abs(skewMs) > maxSkewMs
    ? {
        id,
        status: 'warn',
        summary: `clock skew: ${text} (more than ${Math.round(maxSkewMs / 1000)} s)`,
        details: { skewSeconds: seconds },
        hints: ['tokens may be refused as expired or not yet valid: synchronise the clocks (NTP)'],
      }
    : { id, status: 'ok', summary: text, details: { skewSeconds: seconds } };
}

/** A key of a key set, by what identifies it (never its material). */
export interface DescribedKey {
  readonly kid: string | null;
  readonly kty: string | null;
  readonly alg: string | null;
}

export type JwksProbe =
  | { readonly ok: true; readonly keys: readonly DescribedKey[]; readonly skewMs: number | undefined }
  | {
      readonly ok: false;
      readonly reason: 'jwks_unreachable' | 'jwks_http_status' | 'jwks_no_key_set';
      /** Names the URL and what went wrong; the caller adds what it means. */
      readonly problem: string;
      /** `undefined` when nothing answered. */
      readonly answered: { readonly skewMs: number | undefined } | undefined;
    };

/** Fetches a key set and lists its keys (ids and algorithms only); every failure is a value, never thrown. */
export async function probeJwks(url: string, timeoutMs: number, clock: Clock): Promise<JwksProbe> {
  let fetched: Fetched;
  try {
    fetched = await fetchJson(url, timeoutMs, clock);
  } catch (error) {
    return {
      ok: false,
      reason: 'jwks_unreachable',
      problem: `JWKS at ${url} unreachable (${describeFetchError(error)})`,
      answered: undefined,
    };
  }
  const keys = (fetched.body as { keys?: unknown } | undefined)?.keys;
  if (fetched.status !== 200 || !Array.isArray(keys)) {
    return {
      ok: false,
      reason: fetched.status !== 200 ? 'jwks_http_status' : 'jwks_no_key_set',
      problem: `JWKS at ${url} answered ${fetched.status}${Array.isArray(keys) ? '' : ' without a key set'}`,
      answered: { skewMs: fetched.skewMs },
    };
  }
  const text = (key: unknown, name: string): string | null => {
    const value = typeof key === 'object' && key !== null ? (key as Record<string, unknown>)[name] : null;
    return typeof value === 'string' ? value : null;
  };
  return {
    ok: true,
    keys: keys.map((key: unknown) => ({
      kid: text(key, 'kid'),
      kty: text(key, 'kty'),
      alg: text(key, 'alg'),
    })),
    skewMs: fetched.skewMs,
  };
}

export const kidList = (keys: readonly DescribedKey[]): string =>
  keys.map((key) => key.kid ?? '(none)').join(', ');

export const algList = (keys: readonly DescribedKey[]): string =>
  [...new Set(keys.map((key) => key.alg ?? '(unspecified)'))].join(', ');
