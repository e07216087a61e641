import type { OAuthError } from '../errors/oauth-error.js';

/** Reason used when a request carried no credentials at all (RFC 6750 §3.1: then no `error` attribute). */
export const MISSING_TOKEN_REASON = 'missing_token';

/**
 * The `WWW-Authenticate` challenge for a 401 or 403 from the MCP endpoint: RFC 6750 §3 plus RFC 9728 §5.1
 * `resource_metadata`, so MCP clients can discover the authorization server from the challenge alone.
 */
export function bearerChallenge(
  error: OAuthError | undefined,
  options: { resourceMetadataUrl: string; scope: readonly string[] },
): string {
  const params: string[] = [];
  if (error !== undefined && error.reason !== MISSING_TOKEN_REASON) {
    params.push(`error="${error.code}"`);
    if (error.description !== undefined) params.push(`error_description="${quote(error.description)}"`);
  }
  const scope = error?.scope ?? options.scope;
  if (scope.length > 0) params.push(`scope="${quote(scope.join(' '))}"`);
  params.push(`resource_metadata="${quote(options.resourceMetadataUrl)}"`);
  return `Bearer ${params.join(', ')}`;
}

/** RFC 7230 quoted-string: escape backslash and double quote, drop control characters. */
function quote(value: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: stripping control characters is the point
  return value.replace(/[\u0000-\u001f\u007f]/g, ' ').replace(/["\\]/g, '\\$&');
}
