/**
 * DNS-rebinding defence for the MCP endpoint (MCP transports spec: servers MUST validate `Origin`).
 * A request without `Origin` comes from a non-browser client and is allowed; a browser origin must be
 * loopback or on the configured allow-list.
 */
export function createOriginPolicy(
  allowedOrigins: readonly string[],
): (origin: string | undefined) => boolean {
  const allowed = new Set(allowedOrigins.map(normaliseOrigin));
  return (origin) => {
    if (origin === undefined) return true;
    const normalised = normaliseOrigin(origin);
    return allowed.has(normalised) || isLoopbackOrigin(normalised);
  };
}

function normaliseOrigin(origin: string): string {
  try {
    return new URL(origin).origin;
  } catch {
    return origin;
  }
}

function isLoopbackOrigin(origin: string): boolean {
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return false;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return false;
  return url.hostname === 'localhost' || url.hostname === '127.0.0.1' || url.hostname === '[::1]';
}
