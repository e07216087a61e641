import { OAuthError, type OAuthErrorCode } from '../../../src/errors/oauth-error.js';

/** A matcher for `toSatisfy`: an OAuthError with this RFC code and sub-code. */
export const isOAuthErrorWithReason =
  (code: OAuthErrorCode, reason: string) =>
  (error: unknown): boolean =>
    error instanceof OAuthError && error.code === code && error.reason === reason;
