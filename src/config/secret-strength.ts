/**
 * Secrets published in documentation, tutorials and default configurations. A token signed with one can
 * be forged by anyone who read the same page. Compared exactly and case-insensitively.
 */
export const PUBLISHED_SECRETS: readonly string[] = [
  // jwt.io's debugger: its current default HS256 secret and the one it showed before.
  'a-string-secret-at-least-256-bits-long',
  'your-256-bit-secret',
  // Supabase: the CLI's local development JWT secret and the one in the self-hosting `.env.example`.
  'super-secret-jwt-token-with-at-least-32-characters-long',
  'your-super-secret-jwt-token-with-at-least-32-characters-long',
  // PostgREST's tutorial.
  'reallyreallyreallyreallyverysafe',
  // The placeholders every tutorial starts from.
  'secret',
  'changeme',
  'change-me',
  'password',
  'your-secret-key',
  'your_jwt_secret',
  'jwt-secret',
];

/** Why a secret is unfit for production: published in documentation, or guessable. */
export type SecretWeakness = 'dev_secret' | 'weak_secret';

export interface SecretStrengthOptions {
  /** Shortest acceptable secret, in bytes. Default 32 (256 bits, RFC 7518 §3.2 for HS256). */
  readonly minBytes?: number | undefined;
}

/** Ignored when comparing with a published secret: `your_256_bit_secret` is `your-256-bit-secret`. */
const SEPARATORS = /[-_.:\s]/g;
/** Fewer distinct characters than this means the secret was typed, not generated. */
const MIN_DISTINCT = 8;
/** Length of the pieces compared when looking for repetition. */
const PIECE = 4;
/** A generated secret repeats almost none of its 4-character pieces; a typed one (`changeme…`) many. */
const MAX_REPEATED_PIECES = 0.25;
/** A generated secret rarely continues a run (`abcd`, `1234`, `aaaa`); a typed one often does. */
const MAX_RUN_STEPS = 0.5;

/**
 * Judges a secret Gatehouse is given: `dev_secret` when it is a published one (jwt.io's defaults,
 * Supabase's local-development secret, `changeme`, … — {@link PUBLISHED_SECRETS}, also repeated, as in
 * `changemechangeme…`), `weak_secret` when it is shorter than `minBytes`, has fewer than 8 distinct
 * characters, repeats itself (over a quarter of its 4-character pieces seen before) or runs in sequence
 * (over half its characters continue a run such as `abcd` or `1234`); `undefined` when none applies.
 * Never looks anything up: the judgement is on the value alone.
 *
 * @example
 * secretWeakness('a-string-secret-at-least-256-bits-long'); // 'dev_secret'
 * secretWeakness('changeme'.repeat(4)); // 'dev_secret'
 * secretWeakness(randomBytes(32).toString('base64url')); // undefined
 */
export function secretWeakness(
  secret: string | Uint8Array,
  options: SecretStrengthOptions = {},
): SecretWeakness | undefined {
  const symbols: readonly (string | number)[] = typeof secret === 'string' ? [...secret] : Array.from(secret);
  if (typeof secret === 'string' && isPublished(secret)) return 'dev_secret';
  const bytes = typeof secret === 'string' ? Buffer.byteLength(secret, 'utf8') : secret.byteLength;
  if (bytes < (options.minBytes ?? 32)) return 'weak_secret';
  if (new Set(symbols).size < MIN_DISTINCT) return 'weak_secret';
  if (repeatedPieces(symbols) > MAX_REPEATED_PIECES) return 'weak_secret';
  if (runSteps(symbols) > MAX_RUN_STEPS) return 'weak_secret';
  return undefined;
}

/** A published secret as it is, or repeated with or without separators (`changeme-changeme-…`). */
function isPublished(secret: string): boolean {
  const compact = (text: string) => text.toLowerCase().replace(SEPARATORS, '');
  const candidate = compact(secret);
  if (candidate === '') return false;
  return PUBLISHED_SECRETS.some((published) =>
    candidate.split(compact(published)).every((rest) => rest === ''),
  );
}

/** Share of the 4-character pieces that already occurred earlier in the secret. */
function repeatedPieces(symbols: readonly (string | number)[]): number {
  const count = symbols.length - PIECE + 1;
  if (count <= 0) return 0;
  const seen = new Set<string>();
  let repeated = 0;
  for (let i = 0; i < count; i++) {
    const piece = symbols.slice(i, i + PIECE).join('\u0000');
    if (seen.has(piece)) repeated++;
    else seen.add(piece);
  }
  return repeated / count;
}

/** Share of the characters that continue the step between the two before them (`c` in `abc`, `a` in `aaa`). */
function runSteps(symbols: readonly (string | number)[]): number {
  const codes = symbols.map((symbol) => (typeof symbol === 'number' ? symbol : (symbol.codePointAt(0) ?? 0)));
  if (codes.length < 3) return 0;
  let steps = 0;
  for (let i = 2; i < codes.length; i++) {
    if ((codes[i] ?? 0) - (codes[i - 1] ?? 0) === (codes[i - 1] ?? 0) - (codes[i - 2] ?? 0)) steps++;
  }
  return steps / (codes.length - 2);
}
