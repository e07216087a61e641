/**
 * RFC 9728 protected-resource metadata. The resource identifier is the MCP endpoint's URL; clients
 * probe `/.well-known/oauth-protected-resource<path>` first and the root form second, so both are served.
 */
export interface ProtectedResourceOptions {
  /** The MCP endpoint's canonical URL (RFC 8707 resource identifier). */
  resource: string;
  authorizationServers: readonly string[];
  scopesSupported: readonly string[];
}

export function protectedResourceMetadata(options: ProtectedResourceOptions): Record<string, unknown> {
  return {
    resource: options.resource,
    authorization_servers: options.authorizationServers,
    bearer_methods_supported: ['header'],
    scopes_supported: options.scopesSupported,
    resource_name: 'Gatehouse MCP gateway',
  };
}
