import { isGatehouseError } from '../../errors/gatehouse-error.js';
import { OAuthError } from '../../errors/oauth-error.js';
import { readBoundedText } from '../../net/body.js';

/** Largest form body the OAuth endpoints read, in bytes. */
export const MAX_FORM_BYTES = 16 * 1024;

/** A parsed `application/x-www-form-urlencoded` body whose parameters each appear at most once. */
export interface FormParams {
  get(name: string): string | undefined;
  /** Every value of a parameter that may repeat (`resource`). */
  getAll(name: string): string[];
}

/**
 * Reads an OAuth request body (RFC 6749 §3.2: form-encoded, parameters not repeated, unless listed in
 * `repeatable`). Anything else is `invalid_request` — never a crash, never a partial parse.
 */
export async function readForm(request: Request, repeatable: readonly string[] = []): Promise<FormParams> {
  const params = await readFormParams(request);
  const seen = new Set<string>();
  for (const name of params.keys()) {
    if (seen.has(name) && !repeatable.includes(name)) {
      throw new OAuthError('invalid_request', {
        reason: 'repeated_parameter',
        description: `${name} is repeated`,
      });
    }
    seen.add(name);
  }
  return {
    get: (name) => {
      const value = params.get(name);
      return value === null ? undefined : value;
    },
    getAll: (name) => params.getAll(name),
  };
}

/** Reads a bounded `application/x-www-form-urlencoded` body as is (repeated parameters kept). */
export async function readFormParams(request: Request): Promise<URLSearchParams> {
  const type = request.headers.get('content-type')?.split(';')[0]?.trim().toLowerCase();
  if (type !== 'application/x-www-form-urlencoded') {
    throw new OAuthError('invalid_request', {
      reason: 'unsupported_content_type',
      description: 'the body must be application/x-www-form-urlencoded',
    });
  }
  try {
    return new URLSearchParams(await readBoundedText(request, MAX_FORM_BYTES));
  } catch (error) {
    if (isGatehouseError(error, 'ERR_BODY_TOO_LARGE')) {
      throw new OAuthError('invalid_request', {
        reason: 'body_too_large',
        description: 'request body too large',
      });
    }
    throw error;
  }
}

/** Headers every token, registration and introspection answer carries (RFC 6749 §5.1). */
export const NO_STORE = { 'cache-control': 'no-store', pragma: 'no-cache' } as const;

export function jsonNoStore(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { 'content-type': 'application/json', ...NO_STORE },
  });
}
