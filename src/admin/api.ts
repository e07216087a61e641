import { createHash, timingSafeEqual } from 'node:crypto';
import { type Context, Hono } from 'hono';
import { z } from 'zod';
import { GatehouseError } from '../errors/gatehouse-error.js';
import { OAuthError } from '../errors/oauth-error.js';
import {
  clientFacing,
  genericMessage,
  logExposedError,
  logHiddenError,
  type RenderContext,
} from '../errors/render.js';
import { authenticate } from '../guard/bearer.js';
import { bearerChallenge } from '../guard/challenge.js';
import type { Principal } from '../identity/principal.js';
import { JsonRpcParseError, readJsonBody } from '../net/body.js';
import { clientAddressOf, type GatehouseEnv, requestIdOf } from '../net/request-context.js';
import type { Clock } from '../ops/clock.js';
import type { EventBus } from '../ops/events.js';
import type { Logger } from '../ops/logger.js';
import type { RateLimiter, UserRecord, UserStore } from '../stores/ports.js';
import type { RevocationList } from '../tokens/revocation.js';
import { ADMIN_ROLE, type AdminAuditEntry, type AdminAuditFilter, type AdminService } from './service.js';

/** The `actor` of what the configured `admin.apiToken` does. */
export const API_TOKEN_ACTOR = 'admin-api-token';
/** Where the admin API lives. */
export const ADMIN_API_PATH = '/admin/api';

/** Who is calling the admin API or using the console. */
export interface AdminCaller {
  /** `local#<user id>` of an administrator, or {@link API_TOKEN_ACTOR}. */
  readonly actor: string;
  /** The administrator's username; absent for the API token. */
  readonly username?: string;
  readonly userId?: string;
}

/**
 * Whether a local account is an administrator now: it exists, is enabled and holds the `admin` role. Read
 * from the store, remembered for at most `cacheMs` (so a role removed or an account disabled elsewhere —
 * the CLI, another instance — stops counting within that), and forgotten at once after an operator acts
 * here.
 */
export interface AdminRoleCheck {
  /** The account when it is an enabled administrator, else `undefined`. */
  admin(userId: string): Promise<UserRecord | undefined>;
  /** Forgets what was remembered (after any change an operator makes). */
  forget(): void;
}

export function createAdminRoleCheck(options: {
  readonly users: Pick<UserStore, 'get'>;
  readonly clock: Clock;
  /** How long an answer is reused, in milliseconds. Default 2000; 0 reads the store every time. */
  readonly cacheMs?: number;
}): AdminRoleCheck {
  const cacheMs = options.cacheMs ?? 2000;
  const remembered = new Map<string, { user: UserRecord | undefined; until: number }>();
  return {
    async admin(userId) {
      const now = options.clock.now();
      const hit = remembered.get(userId);
      if (hit !== undefined && hit.until > now) return hit.user;
      const record = await options.users.get(userId);
      const user =
        record !== undefined && record.disabledAt === undefined && record.roles.includes(ADMIN_ROLE)
          ? record
          : undefined;
      if (cacheMs > 0) {
        if (remembered.size >= 1000) remembered.clear();
        remembered.set(userId, { user, until: now + cacheMs });
      }
      return user;
    },
    forget() {
      remembered.clear();
    },
  };
}

/** The two request limits every admin request passes: per client address first, then per caller. */
export interface AdminLimits {
  readonly perAddress: RateLimiter;
  readonly perCaller: RateLimiter;
}

/** Refuses with 429 (`Retry-After`) when `key` spent its points this minute; reports `ratelimit.rejected`. */
export async function spendAdminLimit(
  limiter: RateLimiter,
  key: string,
  report: { events: Pick<EventBus, 'emit'>; limit: string; ip: string },
): Promise<void> {
  const decision = await limiter.consume(key);
  if (decision.allowed) return;
  report.events.emit({
    type: 'ratelimit.rejected',
    limit: report.limit,
    ip: report.ip,
    retryAfterSeconds: decision.retryAfterSeconds,
  });
  throw new GatehouseError('ERR_RATE_LIMITED', 'too many admin requests; slow down', {
    retryAfterSeconds: decision.retryAfterSeconds,
  });
}

export interface AdminApiOptions {
  readonly service: AdminService;
  /**
   * Verifies an access token Gatehouse signed for the admin resource: signature, issuer, `aud` = the admin
   * resource (so a token issued for the MCP endpoint fails here), expiry. Throws `OAuthError('invalid_token')`.
   */
  readonly verifyToken: (token: string) => Promise<Principal>;
  /** The gateway's revocation list: a revoked grant's admin tokens stop here as on the MCP endpoint. */
  readonly revocations: Pick<RevocationList, 'sync' | 'isRevoked'>;
  readonly roles: AdminRoleCheck;
  /** `admin.apiToken`: a caller presenting it acts as {@link API_TOKEN_ACTOR}. */
  readonly apiToken?: string | undefined;
  /** The admin resource (`<publicUrl>/admin`) and its RFC 9728 metadata URL, named in every 401 challenge. */
  readonly resource: string;
  readonly resourceMetadataUrl: string;
  /** The authorization servers that issue admin tokens (published in the resource metadata). */
  readonly authorizationServers: readonly string[];
  readonly limits: AdminLimits;
  readonly events: Pick<EventBus, 'emit'>;
  readonly clock: Clock;
  readonly logger: Logger;
}

interface AdminApiEnv extends GatehouseEnv {
  Variables: GatehouseEnv['Variables'] & { caller: AdminCaller };
}

/** Largest JSON body the admin API reads, in bytes. */
const MAX_BODY_BYTES = 16 * 1024;

/**
 * The admin API: every operator verb of {@link AdminService} as JSON under `/admin/api`, plus the RFC 9728
 * metadata of the admin resource. Callers authenticate with `Authorization: Bearer` only — never a cookie,
 * so a page on another site cannot make a browser act here — presenting an admin-audience access token of
 * an enabled local account holding the `admin` role (checked against the store on every request, through a
 * cache of a few seconds), or `admin.apiToken`. Every answer is `Cache-Control: no-store`; every error is
 * `{ error, message, requestId }` with its status. What an operator changes is reported as `admin.action`.
 */
export function createAdminApi(options: AdminApiOptions): Hono<GatehouseEnv> {
  const { service, events, logger, roles, limits } = options;
  const apiTokenHash = options.apiToken === undefined ? undefined : sha256(options.apiToken);
  const challengeContext = { resourceMetadataUrl: options.resourceMetadataUrl, scope: [] as string[] };

  const app = new Hono<AdminApiEnv>();
  app.onError((error, c) =>
    renderAdminApiError(error, { logger, requestId: requestIdOf(c), ...challengeContext }),
  );

  const metadata = {
    resource: options.resource,
    authorization_servers: options.authorizationServers,
    bearer_methods_supported: ['header'],
    scopes_supported: [],
    resource_name: 'Gatehouse admin API',
  };
  // RFC 9728 §3.1 path form for the resource `<publicUrl>/admin`.
  app.get('/.well-known/oauth-protected-resource/admin', (c) =>
    c.json(metadata, 200, { 'cache-control': 'public, max-age=300' }),
  );

  /** Admin-audience tokens of administrators, or the configured credential. */
  async function callerOf(c: Context): Promise<AdminCaller> {
    const header = c.req.header('authorization');
    const presented = /^Bearer +(\S+)$/i.exec(header?.trim() ?? '')?.[1];
    if (
      apiTokenHash !== undefined &&
      presented !== undefined &&
      equalDigests(sha256(presented), apiTokenHash)
    ) {
      return { actor: API_TOKEN_ACTOR };
    }
    const { principal } = await authenticate(
      header,
      { verify: async (token) => ({ principal: await options.verifyToken(token), cacheHit: false }) },
      [],
    );
    await options.revocations.sync();
    if (options.revocations.isRevoked(principal.claims)) {
      throw new OAuthError('invalid_token', { reason: 'token_revoked', description: 'token revoked' });
    }
    const user = principal.claims.idp === 'local' ? await roles.admin(principal.subject) : undefined;
    if (user === undefined) {
      throw new GatehouseError('ERR_ADMIN_REQUIRED', 'this account is not an administrator');
    }
    return { actor: `local#${user.id}`, username: user.username, userId: user.id };
  }

  app.use(`${ADMIN_API_PATH}/*`, async (c, next) => {
    const ip = clientAddressOf(c);
    await spendAdminLimit(limits.perAddress, ip, { events, limit: 'admin-address', ip });
    const caller = await callerOf(c);
    await spendAdminLimit(limits.perCaller, caller.actor, { events, limit: 'admin-caller', ip });
    c.set('caller', caller);
    await next();
    c.res.headers.set('cache-control', 'no-store');
  });

  /** Reports what an operator did, then forgets cached roles (the change may have been one). */
  const acted = (c: Context<AdminApiEnv>, action: string, target?: string) => {
    roles.forget();
    const caller = c.get('caller');
    events.emit({
      type: 'admin.action',
      outcome: 'success',
      actor: caller.actor,
      ...(caller.username !== undefined && { actorName: caller.username }),
      action,
      ...(target !== undefined && { target }),
      via: 'api',
      ip: clientAddressOf(c),
      ...(requestIdOf(c) !== undefined && { requestId: requestIdOf(c) as string }),
    });
  };
  const limitOf = (c: Context) => parseLimit(c.req.query('limit'), 100, 1000);
  const P = ADMIN_API_PATH;

  app.get(`${P}/whoami`, (c) => c.json({ caller: c.get('caller') }));

  app.get(`${P}/users`, async (c) => c.json({ users: await service.users.list() }));
  app.post(`${P}/users`, async (c) => {
    const input = await readBody(c.req.raw, newUserSchema);
    const user = await service.users.add(input);
    acted(c, 'user.add', user.username);
    return c.json({ user }, 201);
  });
  app.get(`${P}/users/:username`, async (c) =>
    c.json({ user: await service.users.get(c.req.param('username')) }),
  );
  app.delete(`${P}/users/:username`, async (c) => {
    const revoked = await service.users.remove(c.req.param('username'));
    acted(c, 'user.remove', c.req.param('username'));
    return c.json({ revoked });
  });
  app.post(`${P}/users/:username/password`, async (c) => {
    const { password } = await readBody(c.req.raw, z.object({ password: z.string().min(1) }).strict());
    const revoked = await service.users.setPassword(c.req.param('username'), password);
    acted(c, 'user.password', c.req.param('username'));
    return c.json({ revoked });
  });
  app.post(`${P}/users/:username/disable`, async (c) => {
    const revoked = await service.users.disable(c.req.param('username'));
    acted(c, 'user.disable', c.req.param('username'));
    return c.json({ revoked });
  });
  app.post(`${P}/users/:username/enable`, async (c) => {
    const user = await service.users.enable(c.req.param('username'));
    acted(c, 'user.enable', user.username);
    return c.json({ user });
  });
  // "Sign out everywhere": grants, refresh families, consents, browser sign-ins and live sessions.
  app.post(`${P}/users/:username/revoke`, async (c) => {
    const revoked = await service.users.revoke(c.req.param('username'));
    acted(c, 'user.signout', c.req.param('username'));
    return c.json({ revoked });
  });
  app.put(`${P}/users/:username/admin`, async (c) => {
    const user = await service.users.setAdmin(c.req.param('username'), true);
    acted(c, 'user.admin.grant', user.username);
    return c.json({ user });
  });
  app.delete(`${P}/users/:username/admin`, async (c) => {
    const user = await service.users.setAdmin(c.req.param('username'), false);
    acted(c, 'user.admin.revoke', user.username);
    return c.json({ user });
  });
  app.delete(`${P}/users/:username/sessions`, async (c) => {
    const ended = await service.sessions.endForUser(c.req.param('username'));
    acted(c, 'sessions.end_for_user', c.req.param('username'));
    return c.json({ ended });
  });

  app.get(`${P}/sessions`, async (c) => {
    const username = c.req.query('user');
    const sessions = await service.sessions.list({
      ...(username !== undefined && { username }),
      limit: limitOf(c),
    });
    return c.json({ sessions });
  });
  app.delete(`${P}/sessions/:id`, async (c) => {
    const session = await service.sessions.end(c.req.param('id'));
    acted(c, 'session.end', session.id);
    return c.json({ session });
  });

  app.get(`${P}/grants`, async (c) => {
    const username = c.req.query('user');
    const grants = await service.grants.list({
      ...(username !== undefined && { username }),
      limit: limitOf(c),
    });
    return c.json({ grants });
  });
  app.delete(`${P}/grants/:id`, async (c) => {
    const grant = await service.grants.revoke(c.req.param('id'));
    acted(c, 'grant.revoke', grant.id);
    return c.json({ grant });
  });

  app.get(`${P}/clients`, async (c) =>
    c.json({ clients: await service.clients.list({ limit: limitOf(c) }) }),
  );
  app.get(`${P}/clients/:id`, async (c) => c.json({ client: await service.clients.show(c.req.param('id')) }));
  app.delete(`${P}/clients/:id`, async (c) => {
    const removed = await service.clients.remove(c.req.param('id'));
    acted(c, 'client.remove', removed.client.clientId);
    return c.json(removed);
  });
  app.post(`${P}/clients/:id/approve`, async (c) => {
    const client = await service.clients.approve(c.req.param('id'));
    acted(c, 'client.approve', client.clientId);
    return c.json({ client });
  });

  app.get(`${P}/keys`, async (c) => c.json({ keys: await service.keys.list() }));
  app.post(`${P}/keys/rotate`, async (c) => {
    const key = await service.keys.rotate();
    acted(c, 'keys.rotate', key.kid);
    return c.json({ key }, 201);
  });

  app.get(`${P}/audit`, async (c) => {
    const filter = auditFilterOf((name) => c.req.query(name), options.clock.now());
    if (c.req.query('format') === 'jsonl') return exportAudit(service, filter);
    if (c.req.query('format') !== undefined && c.req.query('format') !== 'json') {
      throw new GatehouseError('ERR_BAD_REQUEST', 'format must be json or jsonl');
    }
    const cursor = decodeCursor(c.req.query('cursor'));
    const page = await auditPage(service, filter, limitOf(c), cursor);
    return c.json({
      entries: page.entries,
      ...(page.next !== undefined && { nextCursor: encodeCursor(page.next) }),
    });
  });

  app.all(`${P}/*`, () => {
    throw new GatehouseError('ERR_NOT_FOUND', 'no such admin API route');
  });
  app.all(P, () => {
    throw new GatehouseError('ERR_NOT_FOUND', 'no such admin API route');
  });

  return app as unknown as Hono<GatehouseEnv>;
}

const newUserSchema = z
  .object({
    username: z.string().min(1),
    password: z.string().min(1),
    email: z.string().min(1).optional(),
    name: z.string().min(1).optional(),
    admin: z.boolean().optional(),
  })
  .strict();

/** Parses a JSON body with `schema`; anything else is `ERR_BAD_REQUEST` naming the field. */
async function readBody<T extends z.ZodType>(request: Request, schema: T): Promise<z.output<T>> {
  const type = request.headers.get('content-type')?.split(';')[0]?.trim().toLowerCase();
  if (type !== 'application/json') {
    throw new GatehouseError('ERR_UNSUPPORTED_MEDIA_TYPE', 'the body must be application/json');
  }
  let body: unknown;
  try {
    body = await readJsonBody(request, MAX_BODY_BYTES);
  } catch (error) {
    if (error instanceof JsonRpcParseError)
      throw new GatehouseError('ERR_BAD_REQUEST', 'the body is not JSON');
    throw error;
  }
  const parsed = schema.safeParse(body);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const path = issue === undefined || issue.path.length === 0 ? 'body' : issue.path.join('.');
    throw new GatehouseError('ERR_BAD_REQUEST', `${path}: ${issue?.message ?? 'invalid'}`);
  }
  return parsed.data;
}

function parseLimit(value: string | undefined, fallback: number, max: number): number {
  if (value === undefined || value === '') return fallback;
  if (!/^\d{1,6}$/.test(value) || Number(value) < 1 || Number(value) > max) {
    throw new GatehouseError('ERR_BAD_REQUEST', `limit must be an integer from 1 to ${max}`);
  }
  return Number(value);
}

const DURATION = /^(\d{1,6})(s|m|h|d)$/;
const UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/**
 * A point in time as an operator writes it: ISO 8601 (`2026-12-03T10:00:00Z`), epoch milliseconds, or a
 * duration back from `now` (`15m`, `24h`, `7d`). `undefined` for an empty value; `ERR_BAD_REQUEST` otherwise.
 */
export function parseTime(value: string | undefined, now: number, field: string): number | undefined {
  if (value === undefined || value === '') return undefined;
  const duration = DURATION.exec(value);
  if (duration !== null) return now - Number(duration[1]) * UNIT_MS[duration[2] as keyof typeof UNIT_MS];
  if (/^\d{10,16}$/.test(value)) return Number(value);
  const parsed = Date.parse(value);
  if (Number.isNaN(parsed)) {
    throw new GatehouseError('ERR_BAD_REQUEST', `${field} must be ISO 8601, epoch ms or a duration like 24h`);
  }
  return parsed;
}

/** The audit filter from query parameters `user`, `event`, `since`, `until`. */
export function auditFilterOf(query: (name: string) => string | undefined, now: number): AdminAuditFilter {
  const username = query('user') || undefined;
  const type = query('event') || undefined;
  const since = parseTime(query('since'), now, 'since');
  const until = parseTime(query('until'), now, 'until');
  return {
    ...(username !== undefined && { username }),
    ...(type !== undefined && { type }),
    ...(since !== undefined && { since }),
    ...(until !== undefined && { until }),
  };
}

export interface AuditCursor {
  readonly at: number;
  readonly id: string;
}

export function encodeCursor(cursor: AuditCursor): string {
  return Buffer.from(`${cursor.at}.${cursor.id}`).toString('base64url');
}

export function decodeCursor(value: string | undefined): AuditCursor | undefined {
  if (value === undefined || value === '') return undefined;
  const text = Buffer.from(value, 'base64url').toString('utf8');
  const match = /^(\d{1,16})\.(.{1,200})$/.exec(text);
  if (match === null) throw new GatehouseError('ERR_BAD_REQUEST', 'cursor is not one this API gave out');
  return { at: Number(match[1]), id: match[2] as string };
}

/** Strictly older than `cursor` in the log's newest-first order (`at`, then id). */
function olderThan(entry: AdminAuditEntry, cursor: AuditCursor): boolean {
  return (
    entry.at < cursor.at ||
    (entry.at === cursor.at && Buffer.compare(Buffer.from(entry.id), Buffer.from(cursor.id)) < 0)
  );
}

/**
 * One page of the audit log, newest first, starting strictly after `cursor`. The store pages by time
 * (`until` is exclusive, in milliseconds), so entries sharing the cursor's millisecond are read again and
 * skipped by id.
 */
export async function auditPage(
  service: AdminService,
  filter: AdminAuditFilter,
  limit: number,
  cursor?: AuditCursor,
): Promise<{ entries: AdminAuditEntry[]; next?: AuditCursor }> {
  const entries: AdminAuditEntry[] = [];
  let from = cursor;
  for (let round = 0; round < 10 && entries.length <= limit; round += 1) {
    const want = Math.min(1000, limit + 1 - entries.length + 20);
    const until =
      from === undefined ? filter.until : Math.min(from.at + 1, filter.until ?? Number.POSITIVE_INFINITY);
    const batch = await service.audit.query({
      ...filter,
      ...(until !== undefined && { until }),
      order: 'desc',
      limit: want,
    });
    const fresh = from === undefined ? batch : batch.filter((entry) => olderThan(entry, from as AuditCursor));
    entries.push(...fresh);
    const last = batch[batch.length - 1];
    if (batch.length < want || last === undefined) break;
    from = { at: last.at, id: last.id };
  }
  if (entries.length <= limit) return { entries };
  const page = entries.slice(0, limit);
  const last = page[page.length - 1] as AdminAuditEntry;
  return { entries: page, next: { at: last.at, id: last.id } };
}

/** The filtered audit log as JSON Lines, oldest first, read from the store a thousand entries at a time. */
export function exportAudit(service: AdminService, filter: AdminAuditFilter): Response {
  let after: AuditCursor | undefined;
  let done = false;
  const encoder = new TextEncoder();
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (done) {
        controller.close();
        return;
      }
      const batch = await service.audit.query({
        ...filter,
        ...(after !== undefined && { after }),
        order: 'asc',
        limit: 1000,
      });
      if (batch.length > 0) {
        controller.enqueue(encoder.encode(batch.map((entry) => `${JSON.stringify(entry)}\n`).join('')));
        const last = batch[batch.length - 1] as AdminAuditEntry;
        after = { at: last.at, id: last.id };
      }
      if (batch.length < 1000) done = true;
    },
  });
  return new Response(body, {
    status: 200,
    headers: {
      'content-type': 'application/x-ndjson; charset=utf-8',
      'content-disposition': 'attachment; filename="gatehouse-audit.jsonl"',
      'cache-control': 'no-store',
    },
  });
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

function equalDigests(a: Buffer, b: Buffer): boolean {
  return a.byteLength === b.byteLength && timingSafeEqual(a, b);
}

export interface AdminApiRenderContext extends RenderContext {
  readonly resourceMetadataUrl: string;
}

/**
 * The admin API's error boundary: `{ error, message, requestId }` with the error's status and
 * `Cache-Control: no-store`. A 401 carries the `WWW-Authenticate` challenge naming the admin resource's
 * metadata (RFC 6750 §3, RFC 9728 §5.1), a 429 or 503 its `Retry-After`. A server error that is not marked
 * safe is a generic `server_error`; its cause goes to the log only.
 */
export function renderAdminApiError(thrown: unknown, ctx: AdminApiRenderContext): Response {
  const error = clientFacing(thrown);
  const headers = new Headers({ 'content-type': 'application/json', 'cache-control': 'no-store' });
  const answer = (status: number, code: string, message: string, extra: Record<string, unknown> = {}) =>
    new Response(
      JSON.stringify({
        error: code,
        message,
        ...extra,
        ...(ctx.requestId !== undefined && { requestId: ctx.requestId }),
      }),
      { status, headers },
    );
  if (error instanceof OAuthError && error.expose) {
    if (error.status === 401) {
      headers.set('www-authenticate', bearerChallenge(error, { ...ctx, scope: [] }));
    }
    ctx.logger.info(
      { error: error.code, reason: error.reason, requestId: ctx.requestId },
      'admin request refused',
    );
    return answer(error.status, error.code, error.description ?? error.code);
  }
  if (error instanceof GatehouseError) {
    if (error.retryAfterSeconds !== undefined) headers.set('retry-after', String(error.retryAfterSeconds));
    if (error.expose) {
      logExposedError(error, ctx);
      return answer(
        error.status,
        error.code,
        error.message,
        error.details === undefined ? {} : { details: error.details },
      );
    }
    logHiddenError(error, ctx);
    return answer(error.status, 'server_error', genericMessage(error.status));
  }
  logHiddenError(error, ctx, 'unhandled error');
  return answer(500, 'server_error', genericMessage(500));
}
