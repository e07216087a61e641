import { readFileSync } from 'node:fs';
import { Hono } from 'hono';
import type { GatewayUrls } from '../config/urls.js';
import type { GatehouseEnv } from '../net/request-context.js';
import { metadataPaths } from '../oauth/metadata.js';
import { html, PAGE_HEADERS, renderPage } from '../oauth/pages/index.js';

/** The running package's version, read once from its `package.json` (the same path from `src/` and `dist/`). */
export const GATEHOUSE_VERSION: string = (() => {
  try {
    const manifest = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));
    return typeof manifest.version === 'string' ? manifest.version : 'unknown';
  } catch {
    return 'unknown';
  }
})();

export interface LandingOptions {
  readonly urls: GatewayUrls;
  /** RFC 9728 `authorization_servers`: where clients get tokens for the MCP endpoint. */
  readonly authorizationServers: readonly string[];
  /** Whether the built-in authorization server runs (its metadata is linked then). */
  readonly ownAuthorizationServer: boolean;
}

/** What a machine reads at `/`: where the MCP endpoint is and how to get a token for it. */
export interface LandingDocument {
  readonly name: 'Gatehouse';
  readonly version: string;
  readonly mcp_endpoint: string;
  readonly protected_resource_metadata: string;
  readonly authorization_servers: readonly string[];
}

/**
 * `/` for whoever opens the gateway's address: a browser (`Accept: text/html`) gets a short page — what
 * this is, the MCP endpoint, how to connect a client, links to metadata and health — in the layout and
 * CSP of the sign-in pages; anything else gets {@link LandingDocument} as JSON. Mounted only when `/` is
 * not the MCP endpoint itself. Nothing on it is secret: it repeats what the discovery documents publish.
 */
export function createLandingApp(options: LandingOptions): Hono<GatehouseEnv> {
  const { urls, authorizationServers } = options;
  const document: LandingDocument = {
    name: 'Gatehouse',
    version: GATEHOUSE_VERSION,
    mcp_endpoint: urls.resource,
    protected_resource_metadata: urls.resourceMetadataUrl,
    authorization_servers: authorizationServers,
  };
  const page = renderLandingPage(options);
  const app = new Hono<GatehouseEnv>();
  app.get('/', (c) => {
    const vary = { Vary: 'Accept' };
    if (prefersHtml(c.req.header('accept'))) return c.body(page, 200, { ...PAGE_HEADERS, ...vary });
    return c.json(document, 200, vary);
  });
  return app;
}

/** A browser lists `text/html` first; `fetch`, curl and MCP clients send `*\/*` or `application/json`. */
function prefersHtml(accept: string | undefined): boolean {
  return accept !== undefined && /(^|,)\s*text\/html\s*(;|,|$)/i.test(accept);
}

function renderLandingPage({ urls, ownAuthorizationServer }: LandingOptions): string {
  const endpoint = urls.resource;
  const desktop = JSON.stringify(
    { mcpServers: { gatehouse: { command: 'npx', args: ['mcp-remote', endpoint] } } },
    null,
    2,
  );
  const vscode = JSON.stringify({ servers: { gatehouse: { type: 'http', url: endpoint } } }, null, 2);
  const origin = new URL(urls.publicUrl).origin;
  const links = [
    { href: urls.resourceMetadataUrl, label: 'Protected resource metadata' },
    ...(ownAuthorizationServer
      ? [
          {
            href: `${origin}${metadataPaths(urls.issuer)[0]}`,
            label: 'Authorization server metadata',
          },
        ]
      : []),
    { href: `${urls.publicUrl}/healthz`, label: 'Health (/healthz)' },
    { href: `${urls.publicUrl}/readyz`, label: 'Readiness (/readyz)' },
  ];
  return renderPage({
    title: 'MCP gateway',
    width: 'wide',
    testId: 'landing',
    body: html`<h1>This is an MCP server behind Gatehouse</h1>
<p class="lead">Gatehouse signs people in and relays their MCP client to the server behind it, as them. Point an MCP client at the endpoint below; it will be sent to sign in.</p>
<div class="stack">
<div><h2>MCP endpoint</h2><pre class="detail" data-testid="mcp-endpoint">${endpoint}</pre></div>
<div><h2>Connect a client</h2>
<p class="note">A client that speaks MCP over HTTP with OAuth connects directly. One that only runs local (stdio) servers goes through <code>mcp-remote</code>:</p>
<pre class="detail" data-testid="connect-command">npx mcp-remote ${endpoint}</pre></div>
<div><p class="note">Claude Desktop style (<code>claude_desktop_config.json</code>):</p>
<pre class="detail" data-testid="desktop-config">${desktop}</pre></div>
<div><p class="note">VS Code (<code>.vscode/mcp.json</code>):</p>
<pre class="detail" data-testid="vscode-config">${vscode}</pre></div>
<div><h2>For operators</h2>
<ul data-testid="links">${links.map((link) => html`<li><a href="${link.href}">${link.label}</a></li>`)}</ul></div>
</div>`,
  });
}
