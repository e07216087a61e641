import { AsyncLocalStorage } from 'node:async_hooks';
import { GatehouseError } from '../errors/gatehouse-error.js';
import type { Principal } from '../identity/principal.js';

/** The MCP session a request belongs to, when it has one (2025-era `Mcp-Session-Id`). */
export interface GatehouseSessionRef {
  readonly id: string;
  readonly kind: 'streamable-http' | 'legacy-sse' | 'websocket';
}

/** What a tool handler knows about the request it serves: always built from a verified token. */
export interface GatehouseContext {
  readonly principal: Principal;
  readonly session?: GatehouseSessionRef;
  /** Whether this request's bearer token was answered from the verification cache (library mode sets it). */
  readonly cacheHit?: boolean;
  /** Credentials derived for this user (the credential broker's result), when configured. */
  readonly credentials?: unknown;
}

// One store per process: every request runs in its own `run()` scope, so interleaved requests of different
// users never see each other's context, and nothing outside a scope sees any context at all.
const storage = new AsyncLocalStorage<GatehouseContext>();

/**
 * Runs `fn` with `context` as the current request's context (and returns what `fn` returns). Library mode
 * calls it for every authenticated request; call it yourself only to test a tool in isolation.
 *
 * @example
 * ```ts
 * await runWithContext({ principal }, () => tool.handler(args));
 * ```
 */
export function runWithContext<T>(context: GatehouseContext, fn: () => T): T {
  return storage.run(Object.freeze({ ...context }), fn);
}

/** The current request's context, or `undefined` outside a request Gatehouse authenticated. */
export function currentContext(): GatehouseContext | undefined {
  return storage.getStore();
}

/**
 * The caller of the current request. Throws `GatehouseError` `ERR_NO_REQUEST_CONTEXT` outside a request
 * Gatehouse authenticated: there is no global or default user to fall back to.
 *
 * @example
 * ```ts
 * server.registerTool('whoami', {}, async () => {
 *   const { subject, email } = currentPrincipal();
 *   return { content: [{ type: 'text', text: `${subject} <${email}>` }] };
 * });
 * ```
 */
export function currentPrincipal(): Principal {
  const context = storage.getStore();
  if (context === undefined) {
    throw new GatehouseError(
      'ERR_NO_REQUEST_CONTEXT',
      'currentPrincipal() called outside a request authenticated by Gatehouse',
    );
  }
  return context.principal;
}
