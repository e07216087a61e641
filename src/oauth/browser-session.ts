import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Context } from 'hono';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import { tokenHash } from '../crypto/fingerprint.js';
import type { Clock } from '../ops/clock.js';
import type { EphemeralStore, PrincipalSnapshot } from '../stores/ports.js';
import type { AuthorizationRequest } from './authorize-request.js';

/** A pending authorization request, waiting for the user to sign in and consent. */
export interface Interaction {
  readonly id: string;
  readonly request: AuthorizationRequest;
  /** Sent back in every form of this interaction; compared in constant time. */
  readonly csrf: string;
  /** Hash of the browser cookie the interaction was started in: only that browser may continue it. */
  readonly browserHash: string;
  readonly createdAt: number;
  /** `prompt=login`: a sign-in older than the interaction does not count. */
  readonly forceLogin: boolean;
}

/** The user signed in to Gatehouse in this browser. */
export interface LoginSession {
  readonly principal: PrincipalSnapshot;
  /** When the user authenticated (epoch ms). */
  readonly authTime: number;
}

const INTERACTIONS = 'interaction';
const LOGINS = 'login';

/**
 * Browser state of the authorization server: the sign-in cookie, the browser-binding cookie and the
 * pending interactions. Cookies are `HttpOnly`, `SameSite=Lax` (a cross-site form POST carries neither,
 * so a forged consent POST has no session to act with) and `Secure` + `__Host-` on https.
 */
export interface BrowserSessions {
  /** The browser's binding secret, set on the response when the browser has none yet. */
  browserSecret(c: Context): string;
  startInteraction(c: Context, request: AuthorizationRequest): Promise<Interaction>;
  /** The interaction, only when it exists and this browser started it. */
  findInteraction(c: Context, id: string): Promise<Interaction | undefined>;
  /** Takes the interaction (single use): of two concurrent completions exactly one gets it. */
  takeInteraction(c: Context, id: string): Promise<Interaction | undefined>;
  /** Constant-time comparison of a submitted CSRF token with the interaction's. */
  csrfMatches(interaction: Interaction, submitted: string | undefined): boolean;
  currentLogin(c: Context): Promise<LoginSession | undefined>;
  /**
   * A value bound to this browser's sign-in: HMAC-SHA256 keyed by the sign-in cookie's secret over
   * `purpose`, base64url; `undefined` without a sign-in cookie. Only a page this origin served to the
   * signed-in browser can know it (the cookie is `HttpOnly`), so it serves as that sign-in's CSRF token,
   * and it changes with every new sign-in. It says nothing about whether the sign-in still counts.
   */
  signInProof(c: Context, purpose: string): string | undefined;
  signIn(c: Context, principal: PrincipalSnapshot): Promise<LoginSession>;
  signOut(c: Context): Promise<void>;
}

export function createBrowserSessions(options: {
  ephemeral: EphemeralStore;
  clock: Clock;
  secure: boolean;
  interactionTtlSeconds: number;
  loginSessionTtlSeconds: number;
  /**
   * Whether a sign-in still counts: its account may have been removed, disabled or re-passworded since.
   * A sign-in that no longer counts is forgotten, so it can neither skip the login form nor answer
   * `prompt=none`. Default: every unexpired sign-in counts.
   */
  loginStillValid?: (login: LoginSession) => Promise<boolean>;
}): BrowserSessions {
  const { ephemeral, clock, secure } = options;
  const prefix = secure ? '__Host-' : '';
  const BROWSER_COOKIE = `${prefix}gh_browser`;
  const SESSION_COOKIE = `${prefix}gh_session`;
  const cookieOptions = (maxAgeSeconds: number) =>
    ({ path: '/', httpOnly: true, sameSite: 'Lax', secure, maxAge: maxAgeSeconds }) as const;
  const random = () => randomBytes(32).toString('base64url');

  function browserSecret(c: Context): string {
    const existing = getCookie(c, BROWSER_COOKIE);
    if (existing !== undefined && /^[A-Za-z0-9_-]{43}$/.test(existing)) return existing;
    const secret = random();
    setCookie(c, BROWSER_COOKIE, secret, cookieOptions(24 * 3600));
    return secret;
  }

  function fromRecord(id: string, value: Record<string, unknown> | undefined): Interaction | undefined {
    if (value === undefined) return undefined;
    return { ...(value as unknown as Omit<Interaction, 'id'>), id };
  }

  function boundToThisBrowser(c: Context, interaction: Interaction): boolean {
    const cookie = getCookie(c, BROWSER_COOKIE);
    return cookie !== undefined && equal(tokenHash(cookie), interaction.browserHash);
  }

  return {
    browserSecret,
    async startInteraction(c, request) {
      const id = random();
      const now = clock.now();
      const interaction: Interaction = {
        id,
        request,
        csrf: random(),
        browserHash: tokenHash(browserSecret(c)),
        createdAt: now,
        forceLogin: request.prompt.includes('login'),
      };
      const { id: _id, ...stored } = interaction;
      await ephemeral.put(INTERACTIONS, id, stored, now + options.interactionTtlSeconds * 1000);
      return interaction;
    },
    async findInteraction(c, id) {
      const interaction = fromRecord(id, await ephemeral.get(INTERACTIONS, id, clock.now()));
      return interaction !== undefined && boundToThisBrowser(c, interaction) ? interaction : undefined;
    },
    async takeInteraction(c, id) {
      const found = fromRecord(id, await ephemeral.get(INTERACTIONS, id, clock.now()));
      if (found === undefined || !boundToThisBrowser(c, found)) return undefined;
      return fromRecord(id, await ephemeral.take(INTERACTIONS, id, clock.now()));
    },
    csrfMatches(interaction, submitted) {
      return submitted !== undefined && equal(submitted, interaction.csrf);
    },
    async currentLogin(c) {
      const secret = getCookie(c, SESSION_COOKIE);
      if (secret === undefined) return undefined;
      const value = await ephemeral.get(LOGINS, tokenHash(secret), clock.now());
      if (value === undefined) return undefined;
      const login = value as unknown as LoginSession;
      if (options.loginStillValid !== undefined && !(await options.loginStillValid(login))) {
        await ephemeral.delete(LOGINS, tokenHash(secret));
        return undefined;
      }
      return login;
    },
    signInProof(c, purpose) {
      const secret = getCookie(c, SESSION_COOKIE);
      if (secret === undefined) return undefined;
      return createHmac('sha256', secret).update(purpose, 'utf8').digest('base64url');
    },
    async signIn(c, principal) {
      // A new secret on every sign-in: a session id planted before sign-in is never promoted (fixation).
      const previous = getCookie(c, SESSION_COOKIE);
      if (previous !== undefined) await ephemeral.delete(LOGINS, tokenHash(previous));
      const secret = random();
      const session: LoginSession = { principal, authTime: clock.now() };
      await ephemeral.put(
        LOGINS,
        tokenHash(secret),
        { ...session },
        clock.now() + options.loginSessionTtlSeconds * 1000,
      );
      setCookie(c, SESSION_COOKIE, secret, cookieOptions(options.loginSessionTtlSeconds));
      return session;
    },
    async signOut(c) {
      const secret = getCookie(c, SESSION_COOKIE);
      if (secret !== undefined) await ephemeral.delete(LOGINS, tokenHash(secret));
      deleteCookie(c, SESSION_COOKIE, { path: '/', secure });
    },
  };
}

function equal(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.byteLength === right.byteLength && timingSafeEqual(left, right);
}
