import type { CallToolResult, Tool } from '@modelcontextprotocol/server';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import type { CredentialCache } from '../downstream/credential-broker.js';
import { GatehouseError } from '../errors/gatehouse-error.js';
import { OAuthError } from '../errors/oauth-error.js';
import type { BearerVerifier } from '../guard/bearer.js';
import type { Principal } from '../identity/principal.js';
import type { Clock } from '../ops/clock.js';
import type { SessionManager } from '../sessions/manager.js';
import type { VerificationCacheStats } from '../tokens/cache.js';

/** Every diagnostics tool's name starts with this; the upstream's own tools should not. */
export const DIAGNOSTIC_TOOL_PREFIX = 'gatehouse_';

/** Characters of a session id shown by diagnostics: enough to tell sessions apart, useless to resume one. */
export const SESSION_ID_PREFIX_LENGTH = 8;

/** Who asked, as the gateway established it for this very request. */
export interface DiagnosticsCaller {
  readonly principal: Principal;
  /** Whether this request's bearer token was answered from the verification cache. */
  readonly cacheHit: boolean;
  /** The caller's Gatehouse session; `undefined` for stateless (2026-07-28) requests. */
  readonly sessionId: string | undefined;
}

export interface DiagnosticsDeps {
  /**
   * Verifies a token for `gatehouse_validate_token` without touching the request path's cache: the same
   * verifiers (and revocation check), but nothing is stored, so validating a token never signs anyone in.
   */
  readonly validator: BearerVerifier;
  readonly sessions: SessionManager;
  /** Aggregate numbers of the request path's verification cache. */
  readonly verificationStats: () => VerificationCacheStats;
  readonly requiredScopes: readonly string[];
  readonly credentials?: CredentialCache | undefined;
  readonly clock: Clock;
}

/**
 * The `gatehouse_*` tools: added to the upstream's tool list and answered by Gatehouse itself, never
 * forwarded. Their output describes the caller only — no token, secret, or other user's data.
 */
export interface Diagnostics {
  readonly tools: readonly Tool[];
  /** True for the name of one of {@link tools} (other `gatehouse_*` names go to the upstream). */
  handles(toolName: unknown): boolean;
  call(toolName: string, args: unknown, caller: DiagnosticsCaller): Promise<CallToolResult>;
  /**
   * A `tools/list` result with the diagnostics tools appended when it is the last page (no `nextCursor`),
   * so a client that pages through the list sees them exactly once. Anything else is returned unchanged.
   */
  appendTools(result: unknown): unknown;
}

const TOOLS: readonly Tool[] = [
  {
    name: 'gatehouse_whoami',
    description:
      'Gatehouse diagnostics: how this request was authenticated (scheme, issuer, subject, scopes, token expiry, verifier, verification cache hit or miss).',
    inputSchema: { type: 'object', properties: {} },
    annotations: { readOnlyHint: true, openWorldHint: false },
  },
  {
    name: 'gatehouse_validate_token',
    description:
      'Gatehouse diagnostics: checks a JWT with the gateway verifiers and reports valid or invalid with a stable reason and its non-secret claims. The token is never stored or echoed.',
    inputSchema: {
      type: 'object',
      properties: { token: { type: 'string', description: 'The JWT to check' } },
      required: ['token'],
    },
    annotations: { readOnlyHint: true, openWorldHint: false },
  },
  {
    name: 'gatehouse_sessions',
    description:
      "Gatehouse diagnostics: your own live sessions (id prefix, kind, idle and absolute expiry) and the verification cache's aggregate numbers.",
    inputSchema: { type: 'object', properties: {} },
    annotations: { readOnlyHint: true, openWorldHint: false },
  },
];

const NAMES = new Set(TOOLS.map((tool) => tool.name));

/** Claims shown by `gatehouse_validate_token`: identifying and timing claims, nothing that is a credential. */
const SHOWN_CLAIMS = ['iss', 'sub', 'aud', 'exp', 'nbf', 'iat', 'scope', 'scp', 'client_id', 'azp'] as const;
const SHOWN_HEADER = ['alg', 'kid', 'typ'] as const;
const MAX_SHOWN_LENGTH = 256;

export function createDiagnostics(deps: DiagnosticsDeps): Diagnostics {
  const { clock } = deps;
  const iso = (epochMs: number) => new Date(epochMs).toISOString();

  function whoami(caller: DiagnosticsCaller): Record<string, unknown> {
    const { principal, sessionId } = caller;
    return {
      authScheme: 'Bearer',
      issuer: principal.issuer,
      subject: principal.subject,
      ...(principal.email === undefined ? {} : { email: principal.email }),
      ...(principal.clientId === undefined ? {} : { clientId: principal.clientId }),
      scopes: [...principal.scopes],
      tokenExpiresAt: iso(principal.expiresAt * 1000),
      tokenExpiresInSeconds: Math.max(0, principal.expiresAt - Math.floor(clock.now() / 1000)),
      verifier: principal.verifier,
      verificationCache: caller.cacheHit ? 'hit' : 'miss',
      session:
        sessionId === undefined
          ? null
          : { idPrefix: sessionId.slice(0, SESSION_ID_PREFIX_LENGTH), protocol: '2025 session' },
      ...(deps.credentials === undefined
        ? {}
        : { brokeredCredentials: describeCredentials(deps.credentials, principal, sessionId) }),
    };
  }

  async function validate(args: unknown): Promise<CallToolResult> {
    const token = (args as { token?: unknown } | undefined)?.token;
    // The message never quotes what was sent: it may be a token.
    if (typeof token !== 'string' || token.length === 0) {
      return errorResult('invalid_arguments', 'token must be a non-empty string');
    }
    const decoded = decodeShown(token);
    try {
      const { principal } = await deps.validator.verify(token);
      const missingScopes = deps.requiredScopes.filter((scope) => !principal.scopes.includes(scope));
      return result({
        valid: true,
        verifier: principal.verifier,
        ...(missingScopes.length === 0 ? {} : { missingScopes }),
        claims: pick(principal.claims, SHOWN_CLAIMS),
        ...(decoded.header === undefined ? {} : { header: decoded.header }),
      });
    } catch (error) {
      const reason =
        error instanceof OAuthError
          ? (error.reason ?? error.code)
          : error instanceof GatehouseError
            ? error.code
            : 'server_error';
      if (reason === 'server_error') throw error;
      return result({
        valid: false,
        reason,
        // Unverified: shown to help spot a wrong iss/aud/exp, never trusted for anything.
        ...(decoded.claims === undefined ? {} : { unverifiedClaims: decoded.claims }),
        ...(decoded.header === undefined ? {} : { header: decoded.header }),
      });
    }
  }

  async function sessions(caller: DiagnosticsCaller): Promise<Record<string, unknown>> {
    const own = await deps.sessions.list(caller.principal);
    return {
      subject: caller.principal.subject,
      sessions: own.map((record) => ({
        idPrefix: record.id.slice(0, SESSION_ID_PREFIX_LENGTH),
        kind: record.kind,
        current: record.id === caller.sessionId,
        createdAt: iso(record.createdAt),
        lastSeenAt: iso(record.lastSeenAt),
        idleExpiresAt: iso(record.idleExpiresAt),
        absoluteExpiresAt: iso(record.absoluteExpiresAt),
      })),
      verificationCache: { ...deps.verificationStats() },
    };
  }

  return {
    tools: TOOLS,
    handles: (toolName) => typeof toolName === 'string' && NAMES.has(toolName),
    async call(toolName, args, caller) {
      switch (toolName) {
        case 'gatehouse_whoami':
          return result(whoami(caller));
        case 'gatehouse_validate_token':
          return validate(args);
        case 'gatehouse_sessions':
          return result(await sessions(caller));
        default:
          return errorResult('unknown_tool', 'not a Gatehouse diagnostics tool');
      }
    },
    appendTools(listResult) {
      if (typeof listResult !== 'object' || listResult === null) return listResult;
      const page = listResult as { tools?: unknown; nextCursor?: unknown };
      if (!Array.isArray(page.tools) || page.nextCursor !== undefined) return listResult;
      const upstreamTools = page.tools.filter(
        (tool: { name?: unknown }) => !(typeof tool?.name === 'string' && NAMES.has(tool.name)),
      );
      return { ...page, tools: [...upstreamTools, ...TOOLS] };
    },
  };
}

function describeCredentials(
  credentials: CredentialCache,
  principal: Principal,
  sessionId: string | undefined,
): Record<string, unknown> {
  const state = credentials.describe(principal, sessionId);
  return {
    cached: state.cached,
    ...(state.expiresAt === undefined ? {} : { expiresAt: new Date(state.expiresAt).toISOString() }),
    ...(state.envNames === undefined ? {} : { envNames: state.envNames }),
  };
}

function decodeShown(token: string): {
  claims?: Record<string, unknown>;
  header?: Record<string, unknown>;
} {
  const out: { claims?: Record<string, unknown>; header?: Record<string, unknown> } = {};
  try {
    out.header = pick(decodeProtectedHeader(token), SHOWN_HEADER);
  } catch {
    // Not a JWS: nothing to show.
  }
  try {
    out.claims = pick(decodeJwt(token), SHOWN_CLAIMS);
  } catch {
    // Not a JWT: nothing to show.
  }
  return out;
}

function pick(source: Readonly<Record<string, unknown>>, keys: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of keys) {
    const value = bounded(source[key]);
    if (value !== undefined) out[key] = value;
  }
  return out;
}

/** Scalars and short arrays of scalars only, each string bounded: claims are attacker-chosen input here. */
function bounded(value: unknown): unknown {
  if (typeof value === 'string') return value.slice(0, MAX_SHOWN_LENGTH);
  if (typeof value === 'number' || typeof value === 'boolean') return value;
  if (Array.isArray(value)) {
    return value
      .slice(0, 20)
      .filter((item) => typeof item === 'string')
      .map((item: string) => item.slice(0, MAX_SHOWN_LENGTH));
  }
  return undefined;
}

function result(body: Record<string, unknown>): CallToolResult {
  return { content: [{ type: 'text', text: JSON.stringify(body) }], structuredContent: body };
}

function errorResult(code: string, message: string): CallToolResult {
  const body = { error: code, message };
  return { content: [{ type: 'text', text: JSON.stringify(body) }], structuredContent: body, isError: true };
}
