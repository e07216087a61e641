/**
 * The number of rows a `deleteExpired(now, limit)` call may remove: `limit` rounded down, 0 for zero,
 * negative or NaN (SQL reads a negative `LIMIT` as "no limit"; the ports read it as "nothing"), and at
 * most `Number.MAX_SAFE_INTEGER` so every backend can bind it as an integer.
 */
export function sweepLimit(limit: number): number {
  const max = Math.floor(limit);
  if (!(max > 0)) return 0;
  return Math.min(max, Number.MAX_SAFE_INTEGER);
}
