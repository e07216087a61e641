import type { Context } from 'hono';
import { UNKNOWN_ADDRESS } from './client-address.js';

/**
 * What the edge establishes once per request, before any sub-app runs: every sub-app (MCP transports,
 * OAuth, pages) reads the client's address and the request id from here instead of working them out again.
 */
export interface RequestVariables {
  /** Random id of this request: in every error answer and log line about it. */
  readonly requestId: string;
  /** The client's address as `server.trustedProxies` resolved it, or `unknown` when served in-process. */
  readonly clientAddress: string;
}

/** The Hono environment of every Gatehouse app and sub-app. */
export interface GatehouseEnv {
  Variables: RequestVariables;
}

/** The client's address of a request that passed the edge (`unknown` for one that did not). */
export function clientAddressOf(c: Context): string {
  return (c.get('clientAddress') as string | undefined) ?? UNKNOWN_ADDRESS;
}

/** The request id the edge gave this request, if it passed the edge. */
export function requestIdOf(c: Context): string | undefined {
  return c.get('requestId') as string | undefined;
}
