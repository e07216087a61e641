import { isIP } from 'node:net';
import { isLoopbackHost } from '../config/production.js';

/**
 * DNS-rebinding defence for every route (MCP security best practices, "Local MCP Server Compromise"): a
 * page on `evil.example` whose name the attacker re-points at 127.0.0.1 reaches a loopback gateway as a
 * same-origin request, and a browser sends no `Origin` on a same-origin GET — but `Host` always names the
 * attacker's domain. A request is served only when its `Host` names this gateway.
 *
 * Compared by hostname alone, port ignored, as the MCP SDK's `hostHeaderValidation` does: the attacker
 * controls the name, not the port (their page must use the gateway's port to reach it at all), and
 * proxies differ on whether they keep a default port (`:443`), so comparing ports refuses real clients
 * and stops nothing.
 */
export interface HostPolicy {
  /** Whether a `Host` header value (`name[:port]`) names this gateway; false for anything malformed. */
  allows(host: string): boolean;
  /** The hostnames allowed, normalised (lowercase, IPv6 in brackets), for logs and diagnostics. */
  readonly hostnames: readonly string[];
}

export interface HostPolicyOptions {
  /** `server.publicUrl` (or the URL derived from `server.host` and `server.port`): its hostname is allowed. */
  readonly publicUrl: string;
  /** `server.allowedHosts`: more names, e.g. the other public names a proxy serves the gateway under. */
  readonly allowedHosts: readonly string[];
}

/** The names a loopback gateway is reached by on its own machine, whichever one `publicUrl` spells. */
const LOOPBACK_NAMES = ['localhost', '127.0.0.1', '[::1]'];
/** Listening on every interface with no public URL set: the URL names the wildcard, reached as loopback. */
const WILDCARD_NAMES = new Set(['0.0.0.0', '[::]']);

/** `uri-host [":" port]` (RFC 9110 §7.2), with a reg-name as DNS spells it; nothing else passes. */
const HOST_HEADER = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(?::\d{0,5})?$/;
const HOSTNAME = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)$/;

/**
 * @example
 * const policy = createHostPolicy({ publicUrl: 'http://127.0.0.1:8787', allowedHosts: [] });
 * policy.allows('localhost:8787'); // true: a loopback gateway answers to every loopback name
 * policy.allows('evil.example.com:8787'); // false
 */
export function createHostPolicy(options: HostPolicyOptions): HostPolicy {
  // Already normalised by the URL parser, as a browser's `Host` is.
  const published = new URL(options.publicUrl).hostname;
  const allowed = new Set([published]);
  if (isLoopbackHost(published) || WILDCARD_NAMES.has(published)) {
    for (const name of LOOPBACK_NAMES) allowed.add(name);
  }
  for (const entry of options.allowedHosts) {
    const name = normaliseHostname(entry);
    if (name === undefined) throw new RangeError(`not a hostname: ${entry}`);
    allowed.add(name);
  }
  return {
    allows(host) {
      const name = hostnameOfHost(host);
      return name !== undefined && allowed.has(name);
    },
    hostnames: [...allowed],
  };
}

/**
 * An `allowedHosts` entry as the policy compares it (`MCP.Example.com` → `mcp.example.com`, `::1` →
 * `[::1]`); `undefined` when it is not a bare hostname or IP address (a scheme, port, path or wildcard).
 */
export function normaliseHostname(entry: string): string | undefined {
  const bracketed = isIP(entry) === 6 ? `[${entry}]` : entry;
  if (!HOSTNAME.test(bracketed)) return undefined;
  return urlHostname(bracketed);
}

/** The hostname a `Host` header value names, normalised as a browser does; `undefined` when malformed. */
export function hostnameOfHost(host: string): string | undefined {
  const match = HOST_HEADER.exec(host.trim());
  return match?.[1] === undefined ? undefined : urlHostname(match[1]);
}

/** WHATWG normalisation (lowercase, `0x7f.1` → `127.0.0.1`, IPv6 compressed): what a browser sends. */
function urlHostname(host: string): string | undefined {
  try {
    const hostname = new URL(`http://${host}`).hostname;
    return hostname === '' ? undefined : hostname;
  } catch {
    return undefined;
  }
}
