import { describe, expect, it } from 'vitest';
import { renderAdminApiError } from '../../../src/admin/api.js';
import { GatehouseError } from '../../../src/errors/gatehouse-error.js';
import { OAuthError } from '../../../src/errors/oauth-error.js';
import { silentLogger } from '../../../src/ops/logger.js';

const ctx = {
  logger: silentLogger,
  requestId: 'req-1',
  resourceMetadataUrl: 'https://gh.example/.well-known/oauth-protected-resource/admin',
};

const body = async (response: Response) => (await response.json()) as Record<string, unknown>;

describe('admin API error answers', () => {
  it('401: the challenge names the admin resource metadata; no error attribute without a token', async () => {
    const missing = renderAdminApiError(
      new OAuthError('invalid_token', { reason: 'missing_token', description: 'authorization required' }),
      ctx,
    );
    expect(missing.status).toBe(401);
    expect(missing.headers.get('www-authenticate')).toBe(
      `Bearer resource_metadata="${ctx.resourceMetadataUrl}"`,
    );
    expect(await body(missing)).toEqual({
      error: 'invalid_token',
      message: 'authorization required',
      requestId: 'req-1',
    });
    const wrong = renderAdminApiError(
      new OAuthError('invalid_token', { description: 'wrong audience' }),
      ctx,
    );
    expect(wrong.headers.get('www-authenticate')).toContain('error="invalid_token"');
    expect(wrong.headers.get('cache-control')).toBe('no-store');
  });

  it('maps stable codes to their statuses: 400, 403, 404, 409, 429 with Retry-After', async () => {
    const cases: Array<[GatehouseError, number]> = [
      [new GatehouseError('ERR_BAD_REQUEST', 'limit must be an integer'), 400],
      [new GatehouseError('ERR_ADMIN_REQUIRED', 'not an administrator'), 403],
      [new GatehouseError('ERR_USER_NOT_FOUND', 'no such user'), 404],
      [new GatehouseError('ERR_USER_EXISTS', 'taken'), 409],
      [new GatehouseError('ERR_RATE_LIMITED', 'slow down', { retryAfterSeconds: 7 }), 429],
    ];
    for (const [error, status] of cases) {
      const response = renderAdminApiError(error, ctx);
      expect(response.status).toBe(status);
      expect((await body(response)).error).toBe(error.code);
      expect(response.headers.has('www-authenticate')).toBe(false);
    }
    const limited = renderAdminApiError(cases[4]?.[0], ctx);
    expect(limited.headers.get('retry-after')).toBe('7');
  });

  it("503 for a store outage with Retry-After, never the engine's words", async () => {
    const response = renderAdminApiError(
      new GatehouseError('ERR_STORE_UNAVAILABLE', 'connect ECONNREFUSED 10.0.0.5:5432', { expose: false }),
      ctx,
    );
    expect(response.status).toBe(503);
    expect(response.headers.get('retry-after')).not.toBeNull();
    const text = JSON.stringify(await body(response));
    expect(text).toContain('ERR_STORE_UNAVAILABLE');
    expect(text).not.toContain('10.0.0.5');
  });

  it('hides an unknown error behind server_error and the request id', async () => {
    const response = renderAdminApiError(new Error('secret internals'), ctx);
    expect(response.status).toBe(500);
    expect(await body(response)).toEqual({
      error: 'server_error',
      message: 'Internal error',
      requestId: 'req-1',
    });
  });
});
