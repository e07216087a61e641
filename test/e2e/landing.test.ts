import { afterEach, describe, expect, it } from 'vitest';
import { GATEHOUSE_VERSION } from '../../src/edge/landing.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';

const BROWSER_ACCEPT = 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8';

describe('the landing page at /', () => {
  const open: TestGateway[] = [];
  afterEach(async () => {
    for (const gw of open.splice(0)) await gw.close();
  });

  it('shows a browser what this is and how to connect, under the pages’ CSP', async () => {
    const gw = await startTestGateway({ store: { kind: 'memory' } });
    open.push(gw);
    const response = await fetch(new URL('/', gw.gateway.urls.publicUrl), {
      headers: { accept: BROWSER_ACCEPT },
    });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toContain('text/html');
    const csp = response.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("default-src 'none'");
    expect(csp).not.toContain('unsafe-inline');
    expect(response.headers.get('x-frame-options')).toBe('DENY');
    expect(response.headers.get('vary')).toContain('Accept');
    const page = await response.text();
    const endpoint = gw.gateway.urls.resource;
    expect(page).toContain(`npx mcp-remote ${endpoint}`);
    expect(page).toContain('&quot;mcpServers&quot;');
    expect(page).toContain(`href="${gw.gateway.urls.resourceMetadataUrl}"`);
    expect(page).toContain('/.well-known/oauth-authorization-server');
    expect(page).toContain('/readyz');
    // No inline style or script the CSP would block.
    expect(page).not.toMatch(/<script|style="/);
  });

  it('gives a machine JSON: name, version, MCP endpoint, metadata and authorization servers', async () => {
    const gw = await startTestGateway({ store: { kind: 'memory' } });
    open.push(gw);
    for (const accept of [undefined, 'application/json', '*/*']) {
      const response = await fetch(new URL('/', gw.gateway.urls.publicUrl), {
        headers: accept === undefined ? {} : { accept },
      });
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toContain('application/json');
      expect(await response.json()).toEqual({
        name: 'Gatehouse',
        version: GATEHOUSE_VERSION,
        mcp_endpoint: gw.gateway.urls.resource,
        protected_resource_metadata: gw.gateway.urls.resourceMetadataUrl,
        authorization_servers: [gw.gateway.urls.issuer],
      });
    }
    expect(GATEHOUSE_VERSION).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('names the configured issuers when Gatehouse runs no authorization server', async () => {
    const issuer = 'https://idp.example.test/';
    const gw = await startTestGateway({
      store: { kind: 'memory' },
      authorizationServer: { enabled: false },
      auth: {
        verifiers: [
          { kind: 'jwks', issuer, jwksUrl: 'https://idp.example.test/jwks', audience: 'gatehouse' },
        ],
      },
    });
    open.push(gw);
    const json = await (await fetch(new URL('/', gw.gateway.urls.publicUrl))).json();
    expect(json.authorization_servers).toEqual([issuer]);
    const page = await (
      await fetch(new URL('/', gw.gateway.urls.publicUrl), { headers: { accept: BROWSER_ACCEPT } })
    ).text();
    expect(page).not.toContain('/.well-known/oauth-authorization-server');
  });

  it('stays out of the way when / is the MCP endpoint', async () => {
    const gw = await startTestGateway({ store: { kind: 'memory' }, server: { mcpPath: '/' } });
    open.push(gw);
    const response = await fetch(new URL('/', gw.gateway.urls.publicUrl), {
      headers: { accept: BROWSER_ACCEPT },
    });
    // The MCP endpoint's guard answers: no token, no page.
    expect(response.status).toBe(401);
    expect(response.headers.get('www-authenticate')).toContain('Bearer');
  });
});
