import { randomBytes, timingSafeEqual } from 'node:crypto';
import { tokenHash } from '../../crypto/fingerprint.js';
import { GatehouseError, isGatehouseError } from '../../errors/gatehouse-error.js';
import { OAuthError } from '../../errors/oauth-error.js';
import { MISSING_TOKEN_REASON } from '../../guard/challenge.js';
import { readBoundedText } from '../../net/body.js';
import type { Clock } from '../../ops/clock.js';
import type { EventBus } from '../../ops/events.js';
import type { Logger } from '../../ops/logger.js';
import type { ClientStore, CounterStore } from '../../stores/ports.js';
import { parseClientMetadata, toClientRecord, toWireMetadata } from '../client-metadata.js';

/** Largest registration body read, in bytes; real registrations are well under 2 KiB. */
export const MAX_REGISTRATION_BYTES = 16 * 1024;

const HOUR_MS = 60 * 60 * 1000;

export interface RegistrationEndpointOptions {
  clients: ClientStore;
  counters: CounterStore;
  clock: Clock;
  logger: Logger;
  /**
   * Where registrations are reported: `oauth.register` for each one and each refusal of its request, and
   * `ratelimit.rejected` (`limit: 'registration'`) for each refused by the rate limit.
   */
  events: Pick<EventBus, 'emit'>;
  /**
   * When set, registration requires `Authorization: Bearer <initialAccessToken>` (RFC 7591 §3).
   * Default: open registration (what MCP clients expect), throttled by `rateLimit`.
   */
  initialAccessToken?: string;
  /** Registrations allowed per client IP in a fixed one-hour window. */
  rateLimit: { perIpPerHour: number };
  /**
   * Lifetime of issued client secrets, in milliseconds; the registration of a confidential client lapses
   * with its secret. Default: never (`client_secret_expires_at: 0`).
   */
  clientSecretLifetimeMs?: number;
}

/** Headers of every registration answer (RFC 7591 §3.2.1). */
const NO_STORE = {
  'content-type': 'application/json',
  'cache-control': 'no-store',
  pragma: 'no-cache',
} as const;

/**
 * The RFC 7591 dynamic client registration endpoint as a Web-standard handler. Answers 201 with the
 * registered metadata, `client_id` and — for secret-based authentication methods only — a
 * `client_secret` shown this once and stored only as its hash. Errors are thrown for the one boundary to
 * render: `OAuthError` (`invalid_client_metadata`, `invalid_redirect_uri`, `invalid_request`,
 * `invalid_token`) or `GatehouseError` (`ERR_METHOD_NOT_ALLOWED`, `ERR_RATE_LIMITED` with
 * `retryAfterSeconds`, `ERR_UNSUPPORTED_MEDIA_TYPE`, `ERR_BODY_TOO_LARGE`).
 *
 * @example
 * ```ts
 * const register = createRegistrationEndpoint({
 *   clients, counters, clock, logger, events, rateLimit: { perIpPerHour: 20 },
 * });
 * app.post('/register', (c) => register(c.req.raw, clientIp(c)));
 * ```
 */
export function createRegistrationEndpoint(
  options: RegistrationEndpointOptions,
): (request: Request, clientIp: string) => Promise<Response> {
  const { clients, counters, clock, logger, events } = options;
  const perIpPerHour = options.rateLimit.perIpPerHour;
  if (!Number.isInteger(perIpPerHour) || perIpPerHour < 1) {
    throw new GatehouseError('ERR_CONFIG_INVALID', 'rateLimit.perIpPerHour must be a positive integer.');
  }
  const secretLifetimeMs = options.clientSecretLifetimeMs;
  if (secretLifetimeMs !== undefined && !(Number.isInteger(secretLifetimeMs) && secretLifetimeMs > 0)) {
    throw new GatehouseError('ERR_CONFIG_INVALID', 'clientSecretLifetimeMs must be a positive integer.');
  }
  const expectedTokenHash =
    options.initialAccessToken === undefined ? undefined : Buffer.from(tokenHash(options.initialAccessToken));

  const checkInitialAccessToken = (request: Request): void => {
    if (expectedTokenHash === undefined) return;
    const match = /^bearer +(\S+)$/i.exec(request.headers.get('authorization')?.trim() ?? '');
    if (match?.[1] === undefined) {
      throw new OAuthError('invalid_token', {
        reason: MISSING_TOKEN_REASON,
        description: 'an initial access token is required to register',
      });
    }
    const presented = Buffer.from(tokenHash(match[1]));
    if (!timingSafeEqual(presented, expectedTokenHash)) {
      throw new OAuthError('invalid_token', {
        reason: 'wrong_initial_access_token',
        description: 'the initial access token is not valid',
      });
    }
  };

  return async (request, clientIp) => {
    if (request.method !== 'POST') {
      throw new GatehouseError('ERR_METHOD_NOT_ALLOWED', 'Registration accepts POST only.');
    }
    const now = clock.now();
    // Counted before anything else, so failed attempts (guessing the initial access token) count too.
    const { count, resetAt } = await counters.increment(`dcr:${clientIp}`, HOUR_MS, now);
    if (count > perIpPerHour) {
      const retryAfterSeconds = Math.max(1, Math.ceil((resetAt - now) / 1000));
      events.emit({ type: 'ratelimit.rejected', limit: 'registration', ip: clientIp, retryAfterSeconds });
      throw new GatehouseError('ERR_RATE_LIMITED', 'Too many client registrations from this address.', {
        retryAfterSeconds,
      });
    }
    try {
      const { response, clientId } = await register(request, clientIp, now);
      events.emit({ type: 'oauth.register', outcome: 'success', clientId, ip: clientIp });
      return response;
    } catch (error) {
      if (error instanceof OAuthError || error instanceof GatehouseError) {
        events.emit({
          type: 'oauth.register',
          outcome: 'failure',
          error: error.code,
          ...(error instanceof OAuthError && error.reason !== undefined && { reason: error.reason }),
          ip: clientIp,
        });
      }
      throw error;
    }
  };

  async function register(
    request: Request,
    clientIp: string,
    now: number,
  ): Promise<{ response: Response; clientId: string }> {
    checkInitialAccessToken(request);

    const type = request.headers.get('content-type')?.split(';')[0]?.trim().toLowerCase();
    if (type !== 'application/json') {
      throw new GatehouseError(
        'ERR_UNSUPPORTED_MEDIA_TYPE',
        'Registration requests must be application/json.',
      );
    }
    const body = await readBody(request);
    const metadata = parseClientMetadata(body, { mode: 'registration' });

    const confidential = metadata.tokenEndpointAuthMethod !== 'none';
    const secret = confidential ? randomBytes(32).toString('base64url') : undefined;
    const expiresAt = confidential && secretLifetimeMs !== undefined ? now + secretLifetimeMs : undefined;

    let clientId: string | undefined;
    for (let attempt = 0; attempt < 3 && clientId === undefined; attempt++) {
      // 144 random bits, URL-safe; never starts with https:// so it can't be taken for a CIMD URL.
      const candidate = randomBytes(18).toString('base64url');
      const created = await clients.create(
        toClientRecord(metadata, {
          clientId: candidate,
          createdAt: now,
          ...(secret === undefined ? {} : { secretHash: tokenHash(secret) }),
          ...(expiresAt === undefined ? {} : { expiresAt }),
        }),
      );
      if (created) clientId = candidate;
    }
    if (clientId === undefined) throw new Error('Could not allocate a unique client id.');

    logger.info(
      {
        clientId,
        clientName: metadata.clientName,
        tokenEndpointAuthMethod: metadata.tokenEndpointAuthMethod,
        redirectUris: metadata.redirectUris,
        ip: clientIp,
      },
      'client registered',
    );

    const answer: Record<string, unknown> = {
      client_id: clientId,
      client_id_issued_at: Math.floor(now / 1000),
      ...toWireMetadata(metadata),
    };
    if (secret !== undefined) {
      answer.client_secret = secret;
      answer.client_secret_expires_at = expiresAt === undefined ? 0 : Math.floor(expiresAt / 1000);
    }
    return { response: new Response(JSON.stringify(answer), { status: 201, headers: NO_STORE }), clientId };
  }
}

async function readBody(request: Request): Promise<unknown> {
  let text: string;
  try {
    text = await readBoundedText(request, MAX_REGISTRATION_BYTES);
  } catch (error) {
    if (isGatehouseError(error, 'ERR_BODY_TOO_LARGE')) throw error;
    throw new OAuthError('invalid_request', {
      reason: 'body_unreadable',
      description: 'could not read the body',
      cause: error,
    });
  }
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new OAuthError('invalid_request', {
      reason: 'body_not_json',
      description: 'the body is not valid JSON',
    });
  }
}
