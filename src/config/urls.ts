import type { GatehouseConfig } from './schema.js';

/** URLs derived once from the configuration; every published URL comes from here. */
export interface GatewayUrls {
  /** Base URL clients use (no trailing slash). */
  readonly publicUrl: string;
  /** The MCP endpoint: the RFC 8707 resource identifier and the `aud` of tokens for it. */
  readonly resource: string;
  /** `iss` of the tokens Gatehouse signs. */
  readonly issuer: string;
  readonly resourceMetadataUrl: string;
  readonly jwksUrl: string;
  /**
   * The admin API and console (`<publicUrl>/admin`): the RFC 8707 resource identifier and `aud` of admin
   * tokens, never the MCP resource's, so a token for MCP clients can never act as an operator.
   */
  readonly adminResource: string;
  /** RFC 9728 metadata of the admin resource (path form). */
  readonly adminResourceMetadataUrl: string;
}

/**
 * The gateway's published URLs.
 *
 * @param boundPort The port actually bound when `server.port` is 0, so published URLs are right.
 */
export function gatewayUrls(config: GatehouseConfig, boundPort?: number): GatewayUrls {
  const port = boundPort ?? config.server.port;
  const host = config.server.host.includes(':') ? `[${config.server.host}]` : config.server.host;
  const publicUrl = (config.server.publicUrl ?? `http://${host}:${port}`).replace(/\/+$/, '');
  const resource = `${publicUrl}${config.server.mcpPath}`;
  const adminResource = `${publicUrl}/admin`;
  return {
    publicUrl,
    resource,
    issuer: config.auth.issuer ?? `${publicUrl}/`,
    resourceMetadataUrl: `${publicUrl}${protectedResourceMetadataPath(resource)}`,
    jwksUrl: `${publicUrl}/.well-known/jwks.json`,
    adminResource,
    adminResourceMetadataUrl: `${publicUrl}${protectedResourceMetadataPath(adminResource)}`,
  };
}

/** Path-form well-known URL for a resource (RFC 9728 §3.1): the well-known segment goes before the path. */
export function protectedResourceMetadataPath(resource: string): string {
  const url = new URL(resource);
  const path = url.pathname === '/' ? '' : url.pathname.replace(/\/$/, '');
  return `/.well-known/oauth-protected-resource${path}`;
}
