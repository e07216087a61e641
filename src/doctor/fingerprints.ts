import type { DescribedSecret, DoctorCheck } from './check.js';

const FINGERPRINT = /^(?:sha256:)?([0-9a-f]{8,64})$/;

/**
 * Normalises `sha256:ABCDEF…` / `abcdef…` to `sha256:abcdef…` (at least 8 hex digits; a full
 * `sha256sum` works); `undefined` when it is not a fingerprint.
 *
 * @example
 * parseFingerprint(' SHA256:0A1B2C3D4E5F '); // 'sha256:0a1b2c3d4e5f'
 */
export function parseFingerprint(input: string): string | undefined {
  const match = FINGERPRINT.exec(input.trim().toLowerCase());
  return match?.[1] === undefined ? undefined : `sha256:${match[1]}`;
}

/** Fingerprints match when one hex string starts with the other (a full `sha256sum` matches the 12-digit form). */
export function sameFingerprint(a: string, b: string): boolean {
  const x = a.slice('sha256:'.length);
  const y = b.slice('sha256:'.length);
  return x.length <= y.length ? y.startsWith(x) : x.startsWith(y);
}

/** `fingerprint:<name>`: the fingerprint the operator expects for `name` against the configured one. */
export function expectationCheck(
  name: string,
  wanted: string,
  fingerprints: ReadonlyMap<string, DescribedSecret>,
): DoctorCheck {
  const id = `fingerprint:${name}`;
  const actual = fingerprints.get(name);
  const expected = parseFingerprint(wanted);
  if (expected === undefined) {
    return {
      id,
      status: 'fail',
      summary: `the expected fingerprint for "${name}" is not sha256:<hex> (at least 8 hex digits)`,
      details: { reason: 'bad_expectation' },
    };
  }
  if (actual === undefined) {
    return {
      id,
      status: 'fail',
      summary: `nothing named "${name}" has a fingerprint here (known: ${[...fingerprints.keys()].join(', ') || 'none'})`,
      details: { reason: 'unknown_name' },
    };
  }
  return sameFingerprint(expected, actual.fingerprint)
    ? { id, status: 'ok', summary: `${name}: ${actual.fingerprint} as expected` }
    : {
        id,
        status: 'fail',
        summary: `${name}: fingerprint mismatch: configured ${actual.fingerprint} (${actual.length} bytes), expected ${expected}`,
        details: { configured: actual.fingerprint, expected },
      };
}
