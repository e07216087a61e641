import { AsyncLocalStorage } from 'node:async_hooks';

/** What is known about the request being served, wherever the code that runs for it happens to be. */
export interface RequestScope {
  /** The id the edge gave the request: in its error answers, its log lines and its audit entries. */
  readonly requestId: string;
  /** The client's address as `server.trustedProxies` resolved it. */
  readonly clientAddress: string;
}

/*
 * One store per process, not per gateway: a scope is a fact about the async call chain, and several
 * gateways in one process (tests, library mode beside a gateway) never share a request.
 */
const storage = new AsyncLocalStorage<RequestScope>();

/**
 * Runs `fn` inside `scope`: everything it starts — awaited or not, timers and promises included — sees
 * the scope through {@link currentRequestScope}. The edge runs every HTTP request's sub-apps this way, and
 * the WebSocket upgrade its handshake.
 */
export function runInRequestScope<T>(scope: RequestScope, fn: () => T): T {
  return storage.run(scope, fn);
}

/** The request being served by the current call chain, or `undefined` outside one (timers, the sweeper). */
export function currentRequestScope(): RequestScope | undefined {
  return storage.getStore();
}

/**
 * The current request scope (or its absence), to re-enter later from code that runs in another context:
 * the answer to an upstream request arrives on the upstream's own stream, not in the request that sent it.
 */
export function captureRequestScope(): <T>(fn: () => T) => T {
  const scope = storage.getStore();
  return (fn) => (scope === undefined ? storage.exit(fn) : storage.run(scope, fn));
}

/**
 * Runs `fn` outside any request scope. Long-lived resources started while serving one request (an
 * upstream child process and its streams) are started this way, so what they later log or report is not
 * attributed to the request that happened to start them.
 */
export function outsideRequestScope<T>(fn: () => T): T {
  return storage.exit(fn);
}
