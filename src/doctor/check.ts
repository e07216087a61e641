export type DoctorStatus = 'ok' | 'warn' | 'fail';

/** One finding. Never carries a secret or a token: secrets appear as length and fingerprint only. */
export interface DoctorCheck {
  /**
   * Stable id: `config`, `mode`, `production`, `upstream`, `store`, `secretKey`, `signingKeys`, `verifier:<name>`,
   * `metadata:<name>`, `clock:<name>`, `authorizationServer`, `federation`, `federation:jwks`,
   * `federation:clock`, `downstream:supabase`, `fingerprint:<name>`, `token`.
   */
  readonly id: string;
  readonly status: DoctorStatus;
  /** One line for a person; its wording may change. Match on `id`, `status` and `details.reason` instead. */
  readonly summary: string;
  /** Machine-readable facts; a failing network or file check carries a stable `reason` code here. */
  readonly details?: Record<string, unknown>;
  /** What to do next. */
  readonly hints?: readonly string[];
}

/** A secret as the doctor shows it: its length in bytes and its fingerprint, never its value. */
export interface DescribedSecret {
  readonly length: number;
  readonly fingerprint: string;
}
