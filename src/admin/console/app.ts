import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { type Context, Hono } from 'hono';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import { tokenHash } from '../../crypto/fingerprint.js';
import { GatehouseError } from '../../errors/gatehouse-error.js';
import { OAuthError } from '../../errors/oauth-error.js';
import { clientFacing, logHiddenError } from '../../errors/render.js';
import { clientAddressOf, type GatehouseEnv, requestIdOf } from '../../net/request-context.js';
import { canonicalResource } from '../../oauth/authorize-request.js';
import type { BrowserSessions, LoginSession } from '../../oauth/browser-session.js';
import { readFormParams } from '../../oauth/endpoints/form.js';
import { PAGE_HEADERS } from '../../oauth/pages/layout.js';
import { renderMessagePage } from '../../oauth/pages/message.js';
import { verifyS256 } from '../../oauth/pkce.js';
import type { Clock } from '../../ops/clock.js';
import type { EventBus } from '../../ops/events.js';
import type { Logger } from '../../ops/logger.js';
import type { AuthorizationCodeStore, UserRecord } from '../../stores/ports.js';
import {
  type AdminLimits,
  type AdminRoleCheck,
  auditFilterOf,
  auditPage,
  decodeCursor,
  encodeCursor,
  exportAudit,
  spendAdminLimit,
} from '../api.js';
import type { AdminAuditEntry, AdminAuditFilter, AdminService } from '../service.js';
import { hourlySeries } from './charts.js';
import { type ConsoleFrame, consoleHeaders, type Flash } from './layout.js';
import {
  renderAudit,
  renderClients,
  renderForbidden,
  renderKeys,
  renderOverview,
  renderUser,
  renderUsers,
} from './pages.js';

/** The console's own OAuth client: configured, public (PKCE), trusted (no consent page). */
export const CONSOLE_CLIENT_ID = 'gatehouse-admin-console';
/** Where the authorization server sends the browser back to. */
export const CONSOLE_CALLBACK_PATH = '/admin/callback';
/** What the CSRF token of a browser sign-in is computed over (see `BrowserSessions.signInProof`). */
const CSRF_PURPOSE = 'gatehouse admin console: csrf';

export interface AdminConsoleOptions {
  readonly service: AdminService;
  /** The authorization server's browser sign-in: the console has no login of its own. */
  readonly sessions: BrowserSessions;
  readonly roles: AdminRoleCheck;
  /** Where the console redeems the code it is sent back with (it is its own client, in this process). */
  readonly codes: Pick<AuthorizationCodeStore, 'consume'>;
  readonly publicUrl: string;
  /** The admin resource (`<publicUrl>/admin`), asked for in the authorization request. */
  readonly resource: string;
  readonly authorizationEndpoint: string;
  readonly limits: AdminLimits;
  readonly events: Pick<EventBus, 'emit'>;
  readonly clock: Clock;
  readonly logger: Logger;
}

/** What an action did, for the flash message and the audit log. */
interface Done {
  readonly text: string;
  readonly target?: string;
}

const SIGN_IN_TTL_SECONDS = 600;
const FLASH_TTL_SECONDS = 60;
const CHART_WINDOW_MS = 24 * 3_600_000;
/** Most audit entries one chart reads (20 pages of 1000). */
const CHART_MAX_PAGES = 20;

/**
 * The web console at `/admin`: server-rendered pages over {@link AdminService}, no script. A visit without
 * a browser sign-in goes through the authorization server's own sign-in (the console is a configured,
 * trusted client asking for the admin resource, which the authorization server grants only to
 * administrators) and comes back; every request then reads the sign-in cookie and checks the `admin` role
 * in the store (through a cache of a few seconds). Every change is a POST form carrying a CSRF token bound
 * to the sign-in (an HMAC keyed by its secret), from this origin only (`Origin`, `Sec-Fetch-Site`), and is
 * answered with a redirect and a one-time flash message. Every answer refuses framing and caching.
 */
export function createAdminConsole(options: AdminConsoleOptions): Hono<GatehouseEnv> {
  const { service, sessions, roles, limits, events, clock, logger } = options;
  const secure = new URL(options.publicUrl).protocol === 'https:';
  const origin = new URL(options.publicUrl).origin;
  const redirectUri = `${options.publicUrl}${CONSOLE_CALLBACK_PATH}`;
  const prefix = secure ? '__Secure-' : '';
  const SIGN_IN_COOKIE = `${prefix}gh_admin_signin`;
  const FLASH_COOKIE = `${prefix}gh_admin_flash`;
  const cookieOptions = (maxAge: number) =>
    ({ path: '/admin', httpOnly: true, sameSite: 'Lax', secure, maxAge }) as const;

  const app = new Hono<GatehouseEnv>();
  app.onError((error, c) => renderConsoleError(error, { logger, requestId: requestIdOf(c) }));

  const html = (c: Context, body: string, status = 200) => c.body(body, status as 200, consoleHeaders());
  const redirect = (c: Context, location: string, status: 302 | 303 = 303) => {
    c.header('cache-control', 'no-store');
    return c.redirect(location, status);
  };
  const message = (c: Context, status: number, title: string, text: string, detail?: string) =>
    c.body(
      renderMessagePage({ tone: 'error', title, message: text, ...(detail !== undefined && { detail }) }),
      status as 400,
      { ...PAGE_HEADERS },
    );

  /** Sends the browser to the authorization server's sign-in, to come back to `returnTo`. */
  function startSignIn(c: Context, returnTo: string): Response {
    const state = randomBytes(24).toString('base64url');
    const verifier = randomBytes(32).toString('base64url');
    const challenge = createHash('sha256').update(verifier).digest('base64url');
    const back = Buffer.from(safeReturn(returnTo)).toString('base64url');
    setCookie(c, SIGN_IN_COOKIE, `${state}.${verifier}.${back}`, cookieOptions(SIGN_IN_TTL_SECONDS));
    const url = new URL(options.authorizationEndpoint);
    url.search = new URLSearchParams({
      response_type: 'code',
      client_id: CONSOLE_CLIENT_ID,
      redirect_uri: redirectUri,
      state,
      code_challenge: challenge,
      code_challenge_method: 'S256',
      resource: options.resource,
    }).toString();
    return redirect(c, url.href, 302);
  }

  const adminOf = async (login: LoginSession): Promise<UserRecord | undefined> =>
    login.principal.idp === 'local' ? roles.admin(login.principal.subject) : undefined;
  const usernameOf = (login: LoginSession): string =>
    typeof login.principal.claims?.username === 'string'
      ? login.principal.claims.username
      : login.principal.subject;

  function forbidden(c: Context, login: LoginSession): Response {
    return html(
      c,
      renderForbidden({ username: usernameOf(login), csrf: sessions.signInProof(c, CSRF_PURPOSE) }),
      403,
    );
  }

  /** The flash message the last action left, read once. */
  function takeFlash(c: Context): Flash | undefined {
    const value = getCookie(c, FLASH_COOKIE);
    if (value === undefined) return undefined;
    deleteCookie(c, FLASH_COOKIE, { path: '/admin', secure });
    try {
      const parsed = JSON.parse(Buffer.from(value, 'base64url').toString('utf8')) as Partial<Flash>;
      if ((parsed.tone === 'ok' || parsed.tone === 'error') && typeof parsed.text === 'string') {
        return { tone: parsed.tone, text: parsed.text.slice(0, 400) };
      }
    } catch {
      // A cookie that is not ours: show nothing.
    }
    return undefined;
  }
  const setFlash = (c: Context, flash: Flash) =>
    setCookie(
      c,
      FLASH_COOKIE,
      Buffer.from(JSON.stringify(flash)).toString('base64url'),
      cookieOptions(FLASH_TTL_SECONDS),
    );

  /** A console page: signed in (else off to sign in), an administrator (else 403), within the limits. */
  const page =
    (render: (c: Context, frame: ConsoleFrame, admin: UserRecord) => Promise<string | Response>) =>
    async (c: Context) => {
      const ip = clientAddressOf(c);
      await spendAdminLimit(limits.perAddress, ip, { events, limit: 'admin-address', ip });
      const login = await sessions.currentLogin(c);
      if (login === undefined) {
        const url = new URL(c.req.url);
        return startSignIn(c, `${url.pathname}${url.search}`);
      }
      const admin = await adminOf(login);
      if (admin === undefined) return forbidden(c, login);
      await spendAdminLimit(limits.perCaller, `local#${admin.id}`, { events, limit: 'admin-caller', ip });
      const frame: ConsoleFrame = {
        username: admin.username,
        csrf: sessions.signInProof(c, CSRF_PURPOSE) as string,
        flash: takeFlash(c),
      };
      const out = await render(c, frame, admin);
      return typeof out === 'string' ? html(c, out) : out;
    };

  /**
   * Refuses a form post another site could have made, before the CSRF token is even read: `Sec-Fetch-Site`
   * must say `same-origin` when sent, and `Origin` must be this origin when it names one. The pages' `no-referrer`
   * policy makes Chromium send `Origin: null` on their own form posts, so `null` passes only with
   * `Sec-Fetch-Site: same-origin` (a sandboxed frame elsewhere says `cross-site`).
   */
  function assertSameOrigin(c: Context): void {
    const requestOrigin = c.req.header('origin');
    const site = c.req.header('sec-fetch-site');
    const originOk =
      requestOrigin === undefined ||
      requestOrigin === origin ||
      (requestOrigin === 'null' && site === 'same-origin');
    if (!originOk || (site !== undefined && site !== 'same-origin')) {
      throw new GatehouseError('ERR_CSRF_INVALID', 'this form was not posted from the console');
    }
  }

  /** A console action: a same-origin POST with this sign-in's CSRF token, by an administrator; then back with a flash. */
  const action = (name: string, run: (c: Context) => Promise<Done>) => async (c: Context) => {
    const ip = clientAddressOf(c);
    await spendAdminLimit(limits.perAddress, ip, { events, limit: 'admin-address', ip });
    assertSameOrigin(c);
    const form = await readFormParams(c.req.raw);
    const expected = sessions.signInProof(c, CSRF_PURPOSE);
    if (expected === undefined || !equal(form.get('csrf') ?? '', expected)) {
      throw new GatehouseError('ERR_CSRF_INVALID', 'the form has no valid CSRF token');
    }
    const login = await sessions.currentLogin(c);
    if (login === undefined) throw new GatehouseError('ERR_CSRF_INVALID', 'the sign-in has ended');
    const admin = await adminOf(login);
    if (admin === undefined) return forbidden(c, login);
    await spendAdminLimit(limits.perCaller, `local#${admin.id}`, { events, limit: 'admin-caller', ip });
    const back = safeReturn(form.get('back') ?? '/admin');
    const report = (outcome: 'success' | 'failure', target: string | undefined, error?: string) =>
      events.emit({
        type: 'admin.action',
        outcome,
        ...(error !== undefined && { error }),
        actor: `local#${admin.id}`,
        actorName: admin.username,
        action: name,
        ...(target !== undefined && { target }),
        via: 'console',
        ip,
        ...(requestIdOf(c) !== undefined && { requestId: requestIdOf(c) as string }),
      });
    try {
      const done = await run(c);
      roles.forget();
      report('success', done.target);
      setFlash(c, { tone: 'ok', text: done.text });
    } catch (thrown) {
      const error = clientFacing(thrown);
      if (!(error instanceof GatehouseError) || !error.expose || error.status >= 500) throw thrown;
      report('failure', c.req.param('username') ?? c.req.param('id'), error.code);
      setFlash(c, { tone: 'error', text: `${error.message} (${error.code})` });
    }
    return redirect(c, back);
  };

  app.get(CONSOLE_CALLBACK_PATH, async (c) => {
    const ip = clientAddressOf(c);
    await spendAdminLimit(limits.perAddress, ip, { events, limit: 'admin-address', ip });
    const [state, verifier, back] = (getCookie(c, SIGN_IN_COOKIE) ?? '').split('.');
    deleteCookie(c, SIGN_IN_COOKIE, { path: '/admin', secure });
    const expired = () =>
      message(
        c,
        400,
        'This sign-in has expired',
        'The sign-in took too long or was started in another browser. Open the admin console again.',
      );
    if (
      state === undefined ||
      verifier === undefined ||
      back === undefined ||
      !equal(c.req.query('state') ?? '', state)
    ) {
      return expired();
    }
    const error = c.req.query('error');
    if (error === 'access_denied') {
      const login = await sessions.currentLogin(c);
      return login === undefined ? expired() : forbidden(c, login);
    }
    const code = c.req.query('code');
    if (error !== undefined || code === undefined) {
      return message(c, 400, 'Sign-in did not complete', 'Open the admin console again.', error);
    }
    const consumed = await options.codes.consume(tokenHash(code), clock.now());
    const record = consumed?.status === 'consumed' ? consumed.record : undefined;
    if (
      record === undefined ||
      record.clientId !== CONSOLE_CLIENT_ID ||
      record.redirectUri !== redirectUri ||
      !verifyS256(verifier, record.codeChallenge) ||
      canonicalResource(record.resource) !== canonicalResource(options.resource)
    ) {
      return expired();
    }
    return redirect(c, safeReturn(Buffer.from(back, 'base64url').toString('utf8')));
  });

  app.post('/admin/sign-out', async (c) => {
    assertSameOrigin(c);
    const form = await readFormParams(c.req.raw);
    const expected = sessions.signInProof(c, CSRF_PURPOSE);
    if (expected === undefined || !equal(form.get('csrf') ?? '', expected)) {
      throw new GatehouseError('ERR_CSRF_INVALID', 'the form has no valid CSRF token');
    }
    await sessions.signOut(c);
    return c.body(
      renderMessagePage({
        tone: 'info',
        title: 'Signed out',
        message: 'You are signed out of Gatehouse in this browser. Open /admin to sign in again.',
      }),
      200,
      { ...PAGE_HEADERS },
    );
  });

  app.get(
    '/admin',
    page(async (c, frame) => {
      const username = c.req.query('user') || undefined;
      const now = clock.now();
      const since = now - CHART_WINDOW_MS;
      const [users, liveSessions, clients, toolCalls, guardRefusals, logins, federated, opened] =
        await Promise.all([
          service.users.list(),
          service.sessions.list({ limit: 1000 }),
          service.clients.list({ limit: 1000 }),
          auditTimes(service, { type: 'tool.called', since, ...(username !== undefined && { username }) }),
          auditTimes(service, { type: 'guard.refused', since, ...(username !== undefined && { username }) }),
          auditTimes(
            service,
            { type: 'login', since, ...(username !== undefined && { username }) },
            isFailure,
          ),
          auditTimes(
            service,
            { type: 'login.federated', since, ...(username !== undefined && { username }) },
            isFailure,
          ),
          auditTimes(service, { type: 'session.opened', since, ...(username !== undefined && { username }) }),
        ]);
      return renderOverview(frame, {
        users: users.length,
        sessions: liveSessions.length,
        clients: clients.length,
        username,
        toolCalls: hourlySeries(toolCalls, now),
        authFailures: hourlySeries([...guardRefusals, ...logins, ...federated], now),
        sessionsOpened: hourlySeries(opened, now),
      });
    }),
  );
  app.get(
    '/admin/users',
    page(async (_c, frame) => renderUsers(frame, await service.users.list())),
  );
  app.get(
    '/admin/users/:username',
    page(async (c, frame) => {
      const username = c.req.param('username') as string;
      const user = await service.users.get(username);
      const [userSessions, grants] = await Promise.all([
        service.sessions.list({ username: user.username, limit: 1000 }),
        service.grants.list({ username: user.username, limit: 1000 }),
      ]);
      return renderUser(frame, { user, sessions: userSessions, grants });
    }),
  );
  app.get(
    '/admin/clients',
    page(async (_c, frame) => renderClients(frame, await service.clients.list({ limit: 1000 }))),
  );
  app.get(
    '/admin/keys',
    page(async (_c, frame) => renderKeys(frame, await service.keys.list())),
  );
  app.get(
    '/admin/audit',
    page(async (c, frame) => {
      const query = (name: string) => c.req.query(name);
      const filter = auditFilterOf(query, clock.now());
      const result = await auditPage(service, filter, 100, decodeCursor(query('cursor')));
      const kept = new URLSearchParams();
      for (const name of ['user', 'event', 'since']) {
        const value = query(name);
        if (value !== undefined && value !== '') kept.set(name, value);
      }
      const older = new URLSearchParams(kept);
      if (result.next !== undefined) older.set('cursor', encodeCursor(result.next));
      return renderAudit(frame, {
        entries: result.entries,
        filter: { user: query('user') ?? '', event: query('event') ?? '', since: query('since') ?? '' },
        olderQuery: result.next === undefined ? undefined : older.toString(),
        exportQuery: kept.toString(),
      });
    }),
  );
  app.get(
    '/admin/audit.jsonl',
    page(async (c) =>
      exportAudit(
        service,
        auditFilterOf((name) => c.req.query(name), clock.now()),
      ),
    ),
  );

  const revocationText = (what: string, r: { grants: number; sessions: number }) =>
    `${what}: ${r.sessions} ${r.sessions === 1 ? 'session' : 'sessions'} ended, ${r.grants} ${r.grants === 1 ? 'client' : 'clients'} disconnected.`;
  const user = (c: Context) => c.req.param('username') as string;

  app.post(
    '/admin/users/:username/disable',
    action('user.disable', async (c) => ({
      text: revocationText(`Disabled ${user(c)}`, await service.users.disable(user(c))),
      target: user(c),
    })),
  );
  app.post(
    '/admin/users/:username/enable',
    action('user.enable', async (c) => {
      const done = await service.users.enable(user(c));
      return { text: `Enabled ${done.username}.`, target: done.username };
    }),
  );
  app.post(
    '/admin/users/:username/revoke',
    action('user.signout', async (c) => ({
      text: revocationText(`Signed ${user(c)} out everywhere`, await service.users.revoke(user(c))),
      target: user(c),
    })),
  );
  app.post(
    '/admin/users/:username/grant-admin',
    action('user.admin.grant', async (c) => {
      const done = await service.users.setAdmin(user(c), true);
      return { text: `${done.username} is now an administrator.`, target: done.username };
    }),
  );
  app.post(
    '/admin/users/:username/revoke-admin',
    action('user.admin.revoke', async (c) => {
      const done = await service.users.setAdmin(user(c), false);
      return { text: `${done.username} is no longer an administrator.`, target: done.username };
    }),
  );
  app.post(
    '/admin/users/:username/end-sessions',
    action('sessions.end_for_user', async (c) => {
      const ended = await service.sessions.endForUser(user(c));
      return {
        text: `Ended ${ended} ${ended === 1 ? 'session' : 'sessions'} of ${user(c)}.`,
        target: user(c),
      };
    }),
  );
  app.post(
    '/admin/sessions/:id/end',
    action('session.end', async (c) => {
      const session = await service.sessions.end(c.req.param('id') as string);
      return { text: `Ended session ${session.id.slice(0, 12)}….`, target: session.id };
    }),
  );
  app.post(
    '/admin/grants/:id/revoke',
    action('grant.revoke', async (c) => {
      const grant = await service.grants.revoke(c.req.param('id') as string);
      return { text: `Disconnected ${grant.clientName ?? grant.clientId}.`, target: grant.id };
    }),
  );
  app.post(
    '/admin/clients/:id/approve',
    action('client.approve', async (c) => {
      const client = await service.clients.approve(c.req.param('id') as string);
      return { text: `Approved ${client.clientName ?? client.clientId}.`, target: client.clientId };
    }),
  );
  app.post(
    '/admin/clients/:id/remove',
    action('client.remove', async (c) => {
      const removed = await service.clients.remove(c.req.param('id') as string);
      return {
        text: `Removed ${removed.client.clientName ?? removed.client.clientId}; ${removed.grantsRevoked} ${removed.grantsRevoked === 1 ? 'grant' : 'grants'} revoked.`,
        target: removed.client.clientId,
      };
    }),
  );
  app.post(
    '/admin/keys/rotate',
    action('keys.rotate', async () => {
      const key = await service.keys.rotate();
      return { text: `New signing key ${key.kid}.`, target: key.kid };
    }),
  );

  // Anything else under /admin (the API answers its own paths first) is a page, not the edge's JSON.
  app.all('/admin/*', () => {
    throw new GatehouseError('ERR_NOT_FOUND', 'no such console page');
  });

  return app;
}

const isFailure = (entry: AdminAuditEntry) => entry.outcome === 'failure';

/** The times of the audit entries matching `filter` (and `keep`), oldest first, at most 20 000 of them. */
async function auditTimes(
  service: AdminService,
  filter: AdminAuditFilter,
  keep: (entry: AdminAuditEntry) => boolean = () => true,
): Promise<number[]> {
  const times: number[] = [];
  let after: { at: number; id: string } | undefined;
  for (let round = 0; round < CHART_MAX_PAGES; round += 1) {
    const batch = await service.audit.query({
      ...filter,
      ...(after !== undefined && { after }),
      order: 'asc',
      limit: 1000,
    });
    for (const entry of batch) if (keep(entry)) times.push(entry.at);
    const last = batch[batch.length - 1];
    if (batch.length < 1000 || last === undefined) break;
    after = { at: last.at, id: last.id };
  }
  return times;
}

/** A path inside the console to come back to; anything else (another origin, `//host`) is `/admin`. */
function safeReturn(path: string): string {
  return /^\/admin(\/[^\\]*)?(\?[^\\]*)?$/.test(path) && !path.startsWith('//') ? path : '/admin';
}

function equal(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.byteLength === right.byteLength && timingSafeEqual(left, right);
}

/**
 * The console's error boundary: a page, never JSON. A refused form (`ERR_CSRF_INVALID`) says to reload and
 * try again; other client errors name their stable code; a server error names only the request id.
 */
function renderConsoleError(
  thrown: unknown,
  ctx: { logger: Logger; requestId: string | undefined },
): Response {
  const error = clientFacing(thrown);
  const known = error instanceof OAuthError || error instanceof GatehouseError;
  const status = known ? error.status : 500;
  const shown = known && error.expose;
  if (!shown) logHiddenError(error, ctx, 'admin console request failed');
  const csrf = error instanceof GatehouseError && error.code === 'ERR_CSRF_INVALID';
  const detail = [
    shown ? error.code : undefined,
    status >= 500 && ctx.requestId !== undefined ? `request ${ctx.requestId}` : undefined,
  ]
    .filter((part) => part !== undefined)
    .join(' · ');
  const body = renderMessagePage({
    tone: 'error',
    title: csrf
      ? 'This form has expired'
      : status === 404
        ? 'Not found'
        : status >= 500
          ? 'Something went wrong'
          : 'This request is not valid',
    message: csrf
      ? 'The form was not sent from this console page, or your sign-in changed. Go back, reload the page and try again.'
      : status === 429
        ? 'Too many requests in a short time. Wait a moment and try again.'
        : status >= 500
          ? 'Gatehouse could not complete this request. Try again in a moment.'
          : 'Go back to the admin console and try again.',
    ...(detail !== '' && { detail }),
  });
  const headers = new Headers(PAGE_HEADERS);
  if (error instanceof GatehouseError && error.retryAfterSeconds !== undefined) {
    headers.set('retry-after', String(error.retryAfterSeconds));
  }
  return new Response(body, { status, headers });
}
