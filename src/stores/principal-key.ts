import type { PrincipalSnapshot } from './ports.js';

/** The `principalKey` grants are listed by: `${idp}#${subject}` (see `GrantStore.listByPrincipal`). */
export function snapshotPrincipalKey(principal: Pick<PrincipalSnapshot, 'idp' | 'subject'>): string {
  return `${principal.idp}#${principal.subject}`;
}
