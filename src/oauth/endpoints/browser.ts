import type { Context, Hono } from 'hono';
import { tokenHash } from '../../crypto/fingerprint.js';
import { GatehouseError, isGatehouseError } from '../../errors/gatehouse-error.js';
import { OAuthError } from '../../errors/oauth-error.js';
import type { LocalAccounts } from '../../identity/local-accounts.js';
import type { GatehouseEnv } from '../../net/request-context.js';
import type { Audit } from '../../ops/audit.js';
import type { Clock } from '../../ops/clock.js';
import type { EventBus } from '../../ops/events.js';
import type { Logger } from '../../ops/logger.js';
import type {
  AuthorizationCodeStore,
  ConsentStore,
  CounterStore,
  PrincipalSnapshot,
} from '../../stores/ports.js';
import { snapshotPrincipalKey } from '../../stores/principal-key.js';
import {
  type AuthorizationRequest,
  AuthorizeError,
  type AuthorizeRequestContext,
  parseAuthorizeRequest,
} from '../authorize-request.js';
import type { BrowserSessions, Interaction, LoginSession } from '../browser-session.js';
import type { ClientLookup } from '../cimd.js';
import type { ResolvedClient } from '../clients.js';
import { type AuthorizationServerUrls, OAUTH_PATHS } from '../metadata.js';
import {
  formActionSource,
  type LoginErrorCode,
  PAGE_HEADERS,
  pageHeaders,
  renderConsentPage,
  renderLoginPage,
  renderMessagePage,
} from '../pages/index.js';
import { redirectTarget } from '../redirect-target.js';
import { newAuthorizationCode, newId } from '../tokens.js';
import { readForm, readFormParams } from './form.js';

/** Sign-in through an upstream OpenID Provider (see `identity/oidc.ts`). */
export interface FederatedLogin {
  readonly name: string;
  readonly displayName: string;
  begin(interactionId: string): Promise<URL>;
  complete(callbackUrl: URL): Promise<{ interactionId: string; principal: PrincipalSnapshot }>;
}

export interface BrowserRoutesOptions {
  readonly urls: AuthorizationServerUrls;
  readonly sessions: BrowserSessions;
  readonly authorizeContext: AuthorizeRequestContext;
  readonly resolveClient: (clientId: string, lookup?: ClientLookup) => Promise<ResolvedClient | undefined>;
  readonly codes: AuthorizationCodeStore;
  readonly consents: ConsentStore;
  readonly accounts?: LocalAccounts | undefined;
  readonly federation?: FederatedLogin | undefined;
  /** Clients whose requests skip the consent screen. */
  readonly trustedClients: ReadonlySet<string>;
  readonly scopeDescriptions: Readonly<Record<string, string>>;
  readonly codeTtlSeconds: number;
  readonly consentTtlSeconds: number;
  readonly clientIp: (c: Context) => string;
  /** Fixed-window counters for the limits below, shared by every instance on the store. */
  readonly counters: CounterStore;
  /**
   * Authorization requests (GET or POST `/oauth/authorize`) one client address may start per minute;
   * beyond it the browser gets a 429 page with `Retry-After`. Default 60.
   */
  readonly authorizeRequestsPerAddressPerMinute?: number;
  /**
   * Whether the client still waits for an operator's approval
   * (`authorizationServer.dynamicRegistration.requireApproval`): nobody may authorize it until then.
   * Default: no client waits.
   */
  readonly awaitsApproval?: ((client: ResolvedClient) => boolean) | undefined;
  /**
   * Whether this user may have a code for `resource`: the admin resource only for administrators. A
   * refusal is `access_denied`, answered like any other authorization error. Default: every served resource.
   */
  readonly resourceAllowed?:
    | ((resource: string, principal: PrincipalSnapshot) => Promise<boolean>)
    | undefined;
  readonly audit: Audit;
  /** The event stream, for what is not an audit event: `ratelimit.rejected`. */
  readonly events: Pick<EventBus, 'emit'>;
  readonly clock: Clock;
  readonly logger: Logger;
}

/**
 * The browser half of the authorization server: `/oauth/authorize`, the sign-in and consent pages,
 * the federation callback and sign-out. Every form is bound to its interaction (CSRF token) and to the
 * browser that started it (cookie); every page refuses framing.
 */
export function mountBrowserRoutes(app: Hono<GatehouseEnv>, options: BrowserRoutesOptions): void {
  const { urls, sessions, audit, clock } = options;
  const authorizeLimit =
    options.authorizeRequestsPerAddressPerMinute ?? DEFAULT_AUTHORIZE_PER_ADDRESS_PER_MINUTE;
  if (!Number.isInteger(authorizeLimit) || authorizeLimit < 1) {
    throw new GatehouseError(
      'ERR_CONFIG_INVALID',
      'authorizeRequestsPerAddressPerMinute must be a positive integer.',
    );
  }
  const interactionUrl = (id: string, step = '') => `${urls.interaction}/${id}${step}`;
  const lookupOf = (c: Context): ClientLookup => ({ clientAddress: options.clientIp(c) });

  const page = (body: string, status: number, extraFormAction: readonly string[] = []) =>
    new Response(body, {
      status,
      headers:
        extraFormAction.length === 0 ? PAGE_HEADERS : pageHeaders({ formActionOrigins: extraFormAction }),
    });
  const message = (status: number, title: string, text: string, detail?: string) =>
    page(
      renderMessagePage({ tone: 'error', title, message: text, ...(detail !== undefined && { detail }) }),
      status,
    );
  const expired = () =>
    message(
      400,
      'This sign-in has expired',
      'The sign-in link expired or was opened in another browser. Go back to your app and connect again.',
    );

  const redirectTo = (location: string, status: 302 | 303): Response =>
    new Response(null, { status, headers: { location, 'cache-control': 'no-store' } });
  const seeOther = (location: string): Response => redirectTo(location, 303);

  /** RFC 6749 §4.1.2 / §4.1.2.1 with RFC 9207 `iss` on every response. */
  const redirectToClient = (
    redirectUri: string,
    params: Record<string, string | undefined>,
    status: 302 | 303 = 303,
  ): Response => {
    const url = new URL(redirectUri);
    for (const [name, value] of Object.entries(params))
      if (value !== undefined) url.searchParams.append(name, value);
    url.searchParams.append('iss', urls.issuer);
    return new Response(null, { status, headers: { location: url.href, 'cache-control': 'no-store' } });
  };

  /**
   * An authorization error for a validated client and redirect URI (RFC 6749 §4.1.2.1). It is redirected
   * to the client only when that URI may be trusted with the browser: always for a client the operator
   * configured; for one that registered itself (DCR, CIMD) only once the person has interacted in this
   * interaction — signed in, or answered the consent page (RFC 9700 §4.11.2). Otherwise anyone could
   * register `https://attacker.example/cb` and have this server bounce browsers there with no click
   * (`response_type=token`, or `prompt=none`). A remembered sign-in or consent is not interaction: the
   * browser sends those cookies on any top-level navigation another site starts, so they say nothing
   * about what the person means to do now — counting them would make the bounce zero-click for everyone
   * signed in. The error is then shown on a page instead.
   */
  const answerError = (
    target: ErrorTarget,
    error: OAuthError,
    how: { readonly interacted: boolean; readonly status: 302 | 303 },
  ): Response => {
    if (target.clientSource !== 'configured' && !how.interacted) {
      const reason = error.description ?? 'the app sent a request this server cannot complete';
      return message(
        400,
        'This sign-in cannot continue',
        `${reason.charAt(0).toUpperCase()}${reason.slice(1)}. Go back to the app and try again.`,
        error.code,
      );
    }
    return redirectToClient(
      target.redirectUri,
      { error: error.code, error_description: error.description, state: target.state },
      how.status,
    );
  };

  /** The page for a refused request: 429 with `Retry-After`, never a redirect; reported as `ratelimit.rejected`. */
  const tooManyRequests = (limit: string, ip: string, retryAfterSeconds: number): Response => {
    options.events.emit({ type: 'ratelimit.rejected', limit, ip, retryAfterSeconds });
    const response = message(
      429,
      'Too many sign-in requests',
      'Too many sign-ins were started from this network in a short time. Wait a moment, then go back to your app and connect again.',
      'ERR_RATE_LIMITED',
    );
    response.headers.set('retry-after', String(retryAfterSeconds));
    return response;
  };

  /** Seconds to wait when this address has started too many authorization requests this minute. */
  async function authorizeRefusedFor(ip: string): Promise<number | undefined> {
    const now = clock.now();
    const { count, resetAt } = await options.counters.increment(`authorize:${ip}`, MINUTE_MS, now);
    return count > authorizeLimit ? Math.max(1, Math.ceil((resetAt - now) / 1000)) : undefined;
  }

  const formActions = (interaction: Interaction): string[] => [
    formActionSource(interaction.request.redirectUri),
  ];

  async function consentCovers(interaction: Interaction, login: LoginSession): Promise<boolean> {
    const { request } = interaction;
    if (request.prompt.includes('consent')) return false;
    if (options.trustedClients.has(request.clientId)) return true;
    const consent = await options.consents.get(
      snapshotPrincipalKey(login.principal),
      request.clientId,
      clock.now(),
    );
    return consent !== undefined && request.scopes.every((scope) => consent.scopes.includes(scope));
  }

  const loginCounts = (interaction: Interaction, login: LoginSession | undefined): login is LoginSession =>
    login !== undefined && (!interaction.forceLogin || login.authTime >= interaction.createdAt);

  /** Issues the code and sends the browser back to the client. */
  async function complete(
    interaction: Interaction,
    login: LoginSession,
    status: 302 | 303,
  ): Promise<Response> {
    const { request } = interaction;
    if (
      options.resourceAllowed !== undefined &&
      !(await options.resourceAllowed(request.resource, login.principal))
    ) {
      audit.record({
        type: 'oauth.authorize',
        outcome: 'failure',
        error: 'access_denied',
        reason: 'resource_forbidden',
        clientId: request.clientId,
        principal: snapshotPrincipalKey(login.principal),
      });
      // Redirected to a configured client (the admin console shows its 403 page); a page for any other.
      return answerError(
        request,
        new OAuthError('access_denied', { description: 'this account may not use the requested resource' }),
        { interacted: false, status },
      );
    }
    const code = newAuthorizationCode();
    const now = clock.now();
    await options.codes.create({
      codeHash: tokenHash(code),
      grantId: newId('grt'),
      clientId: request.clientId,
      redirectUri: request.redirectUri,
      codeChallenge: request.codeChallenge,
      resource: request.resource,
      scopes: request.scopes,
      principal: login.principal,
      authTime: login.authTime,
      createdAt: now,
      expiresAt: now + options.codeTtlSeconds * 1000,
    });
    audit.record({
      type: 'oauth.authorize.code_issued',
      outcome: 'success',
      clientId: request.clientId,
      principal: snapshotPrincipalKey(login.principal),
    });
    return redirectToClient(request.redirectUri, { code, state: request.state }, status);
  }

  /**
   * Where an interaction goes next once the browser may have signed in. `signedIn` is the session a
   * sign-in in this very request created (its cookie is not readable until the next request).
   */
  async function proceed(
    c: Context,
    interaction: Interaction,
    status: 302 | 303,
    signedIn?: LoginSession,
  ): Promise<Response> {
    const login = signedIn ?? (await sessions.currentLogin(c));
    if (loginCounts(interaction, login) && (await consentCovers(interaction, login))) {
      const taken = await sessions.takeInteraction(c, interaction.id);
      if (taken === undefined) return expired();
      return complete(taken, login, status);
    }
    if (interaction.request.prompt.includes('none')) {
      await sessions.takeInteraction(c, interaction.id);
      const code = loginCounts(interaction, login) ? 'consent_required' : 'login_required';
      const interacted = signedIn !== undefined;
      audit.record({
        type: 'oauth.authorize',
        outcome: 'failure',
        error: code,
        clientId: interaction.request.clientId,
        ip: options.clientIp(c),
        detail: { redirected: interacted || interaction.request.clientSource === 'configured' },
      });
      return answerError(
        interaction.request,
        new OAuthError(code, { description: `prompt=none but ${code.replace('_', ' ')}` }),
        { interacted, status },
      );
    }
    return redirectTo(interactionUrl(interaction.id), status);
  }

  async function renderLogin(
    c: Context,
    interaction: Interaction,
    status: number,
    error?: { code: LoginErrorCode; retryAfterSeconds?: number; username?: string },
  ): Promise<Response> {
    const client = await options.resolveClient(interaction.request.clientId, lookupOf(c));
    const body = renderLoginPage({
      action: interactionUrl(interaction.id, '/login'),
      hidden: { csrf: interaction.csrf },
      ...(client?.clientName !== undefined && { clientName: client.clientName }),
      clientHost: redirectTarget(interaction.request.redirectUri).label,
      ...(error?.username !== undefined && { username: error.username }),
      ...(error !== undefined && { error: error.code }),
      ...(error?.retryAfterSeconds !== undefined && { retryAfterSeconds: error.retryAfterSeconds }),
      ...(options.federation !== undefined && {
        federated: {
          label: options.federation.displayName,
          href: `${interactionUrl(interaction.id, '/federate')}?${new URLSearchParams({ csrf: interaction.csrf })}`,
        },
      }),
      localEnabled: options.accounts !== undefined,
    });
    const response = page(body, status, formActions(interaction));
    if (error?.retryAfterSeconds !== undefined)
      response.headers.set('retry-after', String(error.retryAfterSeconds));
    return response;
  }

  async function renderConsent(c: Context, interaction: Interaction, login: LoginSession): Promise<Response> {
    const { request } = interaction;
    const client = await options.resolveClient(request.clientId, lookupOf(c));
    if (client === undefined) return message(400, 'Unknown app', 'This app is no longer registered.');
    const body = renderConsentPage({
      action: interactionUrl(interaction.id, '/consent'),
      hidden: { csrf: interaction.csrf },
      user: {
        ...(login.principal.name !== undefined && { name: login.principal.name }),
        ...(login.principal.email !== undefined && { email: login.principal.email }),
        username:
          typeof login.principal.claims?.username === 'string'
            ? login.principal.claims.username
            : login.principal.subject,
      },
      client: {
        clientId: client.clientId,
        source: client.source,
        ...(client.clientName !== undefined && { name: client.clientName }),
        ...(client.clientUri !== undefined && { clientUri: client.clientUri }),
        ...(client.logoUri !== undefined && { logoUri: client.logoUri }),
      },
      redirectUri: request.redirectUri,
      scopes: request.scopes.map((name) => ({
        name,
        ...(options.scopeDescriptions[name] !== undefined && {
          description: options.scopeDescriptions[name],
        }),
      })),
      resource: request.resource,
      signOutAction: interactionUrl(interaction.id, '/sign-out'),
    });
    return page(body, 200, formActions(interaction));
  }

  async function authorize(c: Context, params: URLSearchParams): Promise<Response> {
    const ip = options.clientIp(c);
    // RFC 9700 §4.12: a redirect answering a POST is a 303, so the browser does not post the form again.
    const status = c.req.method === 'POST' ? 303 : 302;
    // Counted before anything else: unknown clients and failed requests cost their address too.
    const retryAfter = await authorizeRefusedFor(ip);
    if (retryAfter !== undefined) return tooManyRequests('authorize', ip, retryAfter);
    let request: AuthorizationRequest;
    try {
      request = await parseAuthorizeRequest(params, options.authorizeContext, { clientAddress: ip });
    } catch (error) {
      if (isGatehouseError(error, 'ERR_RATE_LIMITED')) {
        const limit = typeof error.details?.limit === 'string' ? error.details.limit : 'cimd-fetch';
        return tooManyRequests(limit, ip, error.retryAfterSeconds ?? 60);
      }
      if (!(error instanceof AuthorizeError)) {
        if (error instanceof OAuthError) {
          audit.record({
            type: 'oauth.authorize',
            outcome: 'failure',
            error: error.code,
            ...(error.reason !== undefined && { reason: error.reason }),
          });
          return message(
            400,
            'This app could not be verified',
            error.description ?? 'The client could not be verified.',
            error.code,
          );
        }
        throw error;
      }
      const redirected = error.redirect?.clientSource === 'configured';
      audit.record({
        type: 'oauth.authorize',
        outcome: 'failure',
        error: error.error.code,
        ...(params.get('client_id') !== null && { clientId: params.get('client_id') as string }),
        ip,
        detail: { redirected },
      });
      if (error.redirect === undefined) {
        return message(
          400,
          'This sign-in request is not valid',
          error.error.description ?? 'The app sent an invalid request.',
          error.error.code,
        );
      }
      return answerError(error.redirect, error.error, { interacted: false, status });
    }
    if (await awaitingApproval(c, request)) {
      audit.record({
        type: 'oauth.authorize',
        outcome: 'failure',
        error: 'unauthorized_client',
        reason: 'client_not_approved',
        clientId: request.clientId,
        ip,
        detail: { redirected: false },
      });
      // A page, never a redirect: the client is not one this server answers for yet.
      return message(
        403,
        'This app is waiting for approval',
        'An administrator of this server must approve this app before anyone can connect it. Ask them to run the command below, then connect again from your app.',
        approveCommand(request.clientId),
      );
    }
    const interaction = await sessions.startInteraction(c, request);
    const response = await proceed(c, interaction, status);
    return withCookies(c, response);
  }

  /** Only a client that registered itself can wait for approval; the others are never looked up again. */
  async function awaitingApproval(c: Context, request: AuthorizationRequest): Promise<boolean> {
    if (options.awaitsApproval === undefined || request.clientSource !== 'registered') return false;
    const client = await options.resolveClient(request.clientId, lookupOf(c));
    return client !== undefined && options.awaitsApproval(client);
  }

  /** Copies the cookies Hono collected on the context onto a Response built by hand. */
  function withCookies(c: Context, response: Response): Response {
    for (const cookie of c.res.headers.getSetCookie()) response.headers.append('set-cookie', cookie);
    return response;
  }

  app.get(OAUTH_PATHS.authorization, (c) => authorize(c, new URL(c.req.url).searchParams));
  // OAuth 2.1 §4.1.1: the authorization endpoint may also accept the request as a form POST.
  app.post(OAUTH_PATHS.authorization, async (c) => authorize(c, await readFormParams(c.req.raw)));

  app.get(`${OAUTH_PATHS.interaction}/:id`, async (c) => {
    const interaction = await sessions.findInteraction(c, c.req.param('id'));
    if (interaction === undefined) return expired();
    const login = await sessions.currentLogin(c);
    if (!loginCounts(interaction, login)) return renderLogin(c, interaction, 200);
    return renderConsent(c, interaction, login);
  });

  app.post(`${OAUTH_PATHS.interaction}/:id/login`, async (c) => {
    const form = await readForm(c.req.raw);
    const interaction = await sessions.findInteraction(c, c.req.param('id'));
    if (interaction === undefined || !sessions.csrfMatches(interaction, form.get('csrf'))) {
      audit.record({ type: 'login', outcome: 'failure', reason: 'csrf_or_expired', ip: options.clientIp(c) });
      return expired();
    }
    if (options.accounts === undefined)
      return message(404, 'Not available', 'Sign-in with a password is disabled.');
    const username = form.get('username') ?? '';
    const password = form.get('password') ?? '';
    const ip = options.clientIp(c);
    const result = await options.accounts.authenticate(username, password, { ip });
    if (!result.ok) {
      audit.record({
        type: 'login',
        outcome: 'failure',
        reason: result.reason,
        ip,
        clientId: interaction.request.clientId,
      });
      if (result.reason === 'throttled') {
        return renderLogin(c, interaction, 429, {
          code: 'throttled',
          retryAfterSeconds: result.retryAfterSeconds,
          username,
        });
      }
      return renderLogin(c, interaction, 401, { code: 'invalid_credentials', username });
    }
    const { user } = result;
    const principal: PrincipalSnapshot = {
      subject: user.id,
      idp: 'local',
      ...(user.email !== undefined && { email: user.email }),
      ...(user.name !== undefined && { name: user.name }),
      claims: { username: user.username },
    };
    const login = await sessions.signIn(c, principal);
    audit.record({ type: 'login', outcome: 'success', principal: snapshotPrincipalKey(principal), ip });
    return withCookies(c, await proceed(c, interaction, 303, login));
  });

  app.post(`${OAUTH_PATHS.interaction}/:id/consent`, async (c) => {
    const form = await readForm(c.req.raw);
    const interaction = await sessions.findInteraction(c, c.req.param('id'));
    if (interaction === undefined || !sessions.csrfMatches(interaction, form.get('csrf'))) {
      audit.record({
        type: 'consent',
        outcome: 'failure',
        reason: 'csrf_or_expired',
        ip: options.clientIp(c),
      });
      return expired();
    }
    const login = await sessions.currentLogin(c);
    if (!loginCounts(interaction, login)) return renderLogin(c, interaction, 401, { code: 'expired' });
    const decision = form.get('decision');
    if (decision !== 'approve' && decision !== 'deny') {
      return message(400, 'Invalid request', 'Choose Approve or Deny.');
    }
    const taken = await sessions.takeInteraction(c, interaction.id);
    if (taken === undefined) return expired();
    const principalKey = snapshotPrincipalKey(login.principal);
    if (decision === 'deny') {
      audit.record({
        type: 'consent',
        outcome: 'failure',
        reason: 'denied',
        clientId: taken.request.clientId,
        principal: principalKey,
      });
      // The person answered the consent page: the client hears of it, whoever registered it.
      return answerError(
        taken.request,
        new OAuthError('access_denied', { description: 'the user denied access' }),
        { interacted: true, status: 303 },
      );
    }
    if (options.consentTtlSeconds > 0) {
      const now = clock.now();
      const previous = await options.consents.get(principalKey, taken.request.clientId, now);
      await options.consents.put({
        principalKey,
        clientId: taken.request.clientId,
        scopes: [...new Set([...(previous?.scopes ?? []), ...taken.request.scopes])],
        grantedAt: now,
        expiresAt: now + options.consentTtlSeconds * 1000,
      });
    }
    audit.record({
      type: 'consent',
      outcome: 'success',
      clientId: taken.request.clientId,
      principal: principalKey,
    });
    return complete(taken, login, 303);
  });

  app.post(`${OAUTH_PATHS.interaction}/:id/sign-out`, async (c) => {
    const form = await readForm(c.req.raw);
    const interaction = await sessions.findInteraction(c, c.req.param('id'));
    if (interaction === undefined || !sessions.csrfMatches(interaction, form.get('csrf'))) return expired();
    await sessions.signOut(c);
    return withCookies(c, seeOther(interactionUrl(interaction.id)));
  });

  // A GET (a link, not a form): see `renderLoginPage`'s `federated`. The CSRF token and the browser
  // binding are checked all the same; starting a sign-in at the IdP changes nothing else.
  app.get(`${OAUTH_PATHS.interaction}/:id/federate`, async (c) => {
    const interaction = await sessions.findInteraction(c, c.req.param('id'));
    if (interaction === undefined || !sessions.csrfMatches(interaction, c.req.query('csrf')))
      return expired();
    if (options.federation === undefined) {
      return message(404, 'Not available', 'No identity provider is configured.');
    }
    const location = await options.federation.begin(interaction.id);
    return seeOther(location.href);
  });

  app.get(OAUTH_PATHS.federationCallback, async (c) => {
    if (options.federation === undefined)
      return message(404, 'Not available', 'No identity provider is configured.');
    let outcome: Awaited<ReturnType<FederatedLogin['complete']>>;
    try {
      outcome = await options.federation.complete(new URL(c.req.url));
    } catch (error) {
      options.logger.info({ err: error }, 'federated sign-in failed');
      audit.record({
        type: 'login.federated',
        outcome: 'failure',
        reason: errorCode(error),
        ip: options.clientIp(c),
      });
      return message(
        400,
        'Sign-in did not complete',
        'The identity provider did not confirm your sign-in. Go back to your app and try again.',
        errorCode(error),
      );
    }
    const interaction = await sessions.findInteraction(c, outcome.interactionId);
    if (interaction === undefined) return expired();
    const login = await sessions.signIn(c, outcome.principal);
    audit.record({
      type: 'login.federated',
      outcome: 'success',
      principal: snapshotPrincipalKey(outcome.principal),
      ip: options.clientIp(c),
    });
    return withCookies(c, await proceed(c, interaction, 303, login));
  });
}

/**
 * The command that approves `clientId`, ready to paste: an id that begins with `-` (random base64url does,
 * one time in 32) goes after `--`, or the command would read it as an option.
 */
export function approveCommand(clientId: string): string {
  return `gatehouse clients approve ${clientId.startsWith('-') ? '-- ' : ''}${clientId}`;
}

const MINUTE_MS = 60_000;
const DEFAULT_AUTHORIZE_PER_ADDRESS_PER_MINUTE = 60;

/** Where an authorization error may be sent, and whether the client behind it is trusted with that. */
interface ErrorTarget {
  readonly redirectUri: string;
  readonly state?: string | undefined;
  /** Absent on an interaction stored before the field existed: treated as not configured. */
  readonly clientSource?: ResolvedClient['source'];
}

function errorCode(error: unknown): string {
  if (typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'string')
    return error.code;
  return 'ERR_FEDERATION';
}
