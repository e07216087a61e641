/**
 * Roles as every adapter stores them: sorted (by UTF-16 code units, the same as byte order for the ASCII
 * role names Gatehouse acts on) and distinct, so two lists naming the same roles compare equal.
 */
export function normalizeRoles(roles: readonly string[]): string[] {
  return [...new Set(roles)].sort();
}
