import { BlockList, isIP } from 'node:net';

/** The client address when the peer is unknown (a request served in-process with no socket). */
export const UNKNOWN_ADDRESS = 'unknown';

/** Which forwarding header the trusted proxies write. */
export type ForwardedHeader = 'x-forwarded-for' | 'forwarded';

export interface ClientAddressOptions {
  /** CIDR ranges or addresses of the reverse proxies whose forwarding header is believed. */
  readonly trustedProxies: readonly string[];
  readonly forwardedHeader: ForwardedHeader;
}

/**
 * Resolves the client's address from the TCP peer and, only when that peer is a trusted proxy, the
 * forwarding header: walking the hops from the right, the first one that is not a trusted proxy is the
 * client (every hop to its right was added by a proxy we trust; anything to its left the client wrote).
 */
export type ClientAddressResolver = (
  peer: string | undefined,
  header: (name: string) => string | undefined,
) => string;

/** True for an IPv4/IPv6 address or a CIDR range of one (`10.0.0.0/8`, `2001:db8::/32`). */
export function isCidr(value: string): boolean {
  return parseCidr(value) !== undefined;
}

/**
 * @example
 * const resolve = createClientAddressResolver({ trustedProxies: ['10.0.0.0/8'], forwardedHeader: 'x-forwarded-for' });
 * resolve('10.1.2.3', (name) => request.headers.get(name) ?? undefined); // '203.0.113.7' from "203.0.113.7, 10.9.9.9"
 */
export function createClientAddressResolver(options: ClientAddressOptions): ClientAddressResolver {
  const trusted = new BlockList();
  for (const entry of options.trustedProxies) {
    const cidr = parseCidr(entry);
    if (cidr === undefined) throw new RangeError(`not an IP address or CIDR range: ${entry}`);
    trusted.addSubnet(cidr.address, cidr.prefix, cidr.family);
  }
  const isTrusted = (address: string): boolean => {
    const family = isIP(address) === 6 ? 'ipv6' : 'ipv4';
    return trusted.check(address, family);
  };
  const readHops = options.forwardedHeader === 'forwarded' ? forwardedHops : xForwardedForHops;
  const headerName = options.forwardedHeader;

  return (rawPeer, header) => {
    const peer = rawPeer === undefined ? undefined : normalizeAddress(rawPeer);
    if (peer === undefined) return UNKNOWN_ADDRESS;
    if (options.trustedProxies.length === 0 || !isTrusted(peer)) return peer;
    const value = header(headerName);
    if (value === undefined || value.trim() === '') return peer;
    // The closest hop we trust; each step left is one more proxy hop, as long as we trust the proxy.
    let client = peer;
    const hops = readHops(value);
    for (let i = hops.length - 1; i >= 0; i--) {
      const hop = hops[i];
      // A hop we cannot read (an obfuscated `_node`, `unknown`, garbage) ends the trail: the trusted proxy
      // that received it is the last address we know.
      if (hop === undefined) return client;
      client = hop;
      if (!isTrusted(hop)) return hop;
    }
    return client;
  };
}

/**
 * The key per-address limits count under: an IPv4 address, or the /64 of an IPv6 address (one
 * subscriber's allocation, in which a client can pick any address it likes).
 */
export function addressLimitKey(address: string): string {
  if (isIP(address) !== 6) return address;
  const groups = expandIpv6(address);
  return groups === undefined ? address : `${groups.slice(0, 4).join(':')}::/64`;
}

/** `::ffff:192.0.2.1` → `192.0.2.1`; `undefined` when it is not an IP address. */
export function normalizeAddress(value: string): string | undefined {
  const trimmed = value.trim();
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(trimmed);
  if (mapped?.[1] !== undefined && isIP(mapped[1]) === 4) return mapped[1];
  if (isIP(trimmed) === 0) return undefined;
  return trimmed.toLowerCase();
}

function xForwardedForHops(value: string): (string | undefined)[] {
  return value.split(',').map((hop) => normalizeAddress(stripPort(hop.trim())));
}

/** RFC 7239 §4: `for=` of each forwarded-element, in order; IPv6 quoted and bracketed, maybe with a port. */
function forwardedHops(value: string): (string | undefined)[] {
  const hops: (string | undefined)[] = [];
  for (const element of value.split(',')) {
    const forPair = element
      .split(';')
      .map((pair) => pair.trim())
      .find((pair) => pair.toLowerCase().startsWith('for='));
    if (forPair === undefined) continue;
    const node = forPair
      .slice(4)
      .trim()
      .replace(/^"(.*)"$/, '$1');
    hops.push(normalizeAddress(stripPort(node)));
  }
  return hops;
}

/** `[2001:db8::1]:443` → `2001:db8::1`, `192.0.2.1:80` → `192.0.2.1`; a bare IPv6 address is left alone. */
function stripPort(node: string): string {
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(node);
  if (bracketed?.[1] !== undefined) return bracketed[1];
  const v4WithPort = /^(\d+\.\d+\.\d+\.\d+):\d+$/.exec(node);
  return v4WithPort?.[1] ?? node;
}

function parseCidr(value: string): { address: string; prefix: number; family: 'ipv4' | 'ipv6' } | undefined {
  const [address = '', prefixText, ...rest] = value.trim().split('/');
  if (rest.length > 0) return undefined;
  const version = isIP(address);
  if (version === 0) return undefined;
  const max = version === 4 ? 32 : 128;
  if (prefixText !== undefined && !/^\d{1,3}$/.test(prefixText)) return undefined;
  const prefix = prefixText === undefined ? max : Number(prefixText);
  if (prefix > max) return undefined;
  return { address, prefix, family: version === 4 ? 'ipv4' : 'ipv6' };
}

/** Eight 4-digit hex groups, or `undefined` for something `isIP` would not call IPv6. */
function expandIpv6(address: string): string[] | undefined {
  let text = address.toLowerCase();
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4?.[1] !== undefined) {
    const [a = 0, b = 0, c = 0, d = 0] = v4[1].split('.').map(Number);
    text = text.replace(v4[1], `${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`);
  }
  const [head = '', tail] = text.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const missing = 8 - left.length - right.length;
  if (tail === undefined ? missing !== 0 : missing < 0) return undefined;
  return [...left, ...Array<string>(missing).fill('0'), ...right].map((group) => group.padStart(4, '0'));
}
