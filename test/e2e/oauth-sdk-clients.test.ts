import {
  auth as authV2,
  Client as ClientV2,
  StreamableHTTPClientTransport as TransportV2,
  UnauthorizedError as UnauthorizedErrorV2,
} from '@modelcontextprotocol/client';
import {
  auth as authV1,
  UnauthorizedError as UnauthorizedErrorV1,
} from '@modelcontextprotocol/sdk/client/auth.js';
import { Client as ClientV1 } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport as TransportV1 } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { text } from '../helpers/mcp.js';
import { TestOAuthProvider } from '../helpers/oauth-provider.js';

const PASSWORD = 'a long and perfectly fine passphrase';

/**
 * The done-when of the authorization server: each real SDK client completes discovery, registration,
 * sign-in (the test fills the login form), consent, token, an MCP tool call, a refresh that returns a
 * new refresh token, then revocation — against the configuration `npm start` uses (SQLite, local
 * accounts, the bundled demo server).
 */
describe('real MCP SDK clients complete the OAuth flow against the default configuration', () => {
  let gw: TestGateway;
  let userId: string;

  beforeAll(async () => {
    gw = await startTestGateway();
    const account = await gw.gateway.authorizationServer?.accounts?.add({
      username: 'carol',
      password: PASSWORD,
      email: 'carol@example.com',
    });
    userId = account?.id ?? '';
  });
  afterAll(async () => {
    await gw?.close();
  });

  async function revoke(token: string, clientId: string) {
    const metadata = (await (
      await fetch(`${gw.gateway.urls.publicUrl}/.well-known/oauth-authorization-server`)
    ).json()) as {
      revocation_endpoint: string;
    };
    const response = await fetch(metadata.revocation_endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token, token_type_hint: 'refresh_token', client_id: clientId }),
    });
    expect(response.status).toBe(200);
  }

  it('v1 SDK client (@modelcontextprotocol/sdk): DCR, sign-in, consent, tool call, refresh, revocation', async () => {
    const provider = new TestOAuthProvider({ username: 'carol', password: PASSWORD });
    const first = new ClientV1({ name: 'v1-oauth-test', version: '1.0.0' });
    await expect(
      first.connect(new TransportV1(gw.mcpUrl, { authProvider: provider as never })),
    ).rejects.toBeInstanceOf(UnauthorizedErrorV1);
    expect(provider.clientInfo?.client_id).toBeTruthy(); // dynamic registration happened
    const redirect = provider.redirects[0];
    expect(redirect?.searchParams.get('resource')).toBe(gw.gateway.urls.resource);
    expect(redirect?.searchParams.get('code_challenge_method')).toBe('S256');
    const { callback, pages } = await (provider.pending as NonNullable<typeof provider.pending>);
    expect(pages).toEqual(['login', 'consent']);

    const transport = new TransportV1(gw.mcpUrl, { authProvider: provider as never });
    await transport.finishAuth(callback.searchParams.get('code') as string);
    const firstRefresh = provider.savedTokens?.refresh_token;
    expect(firstRefresh).toBeTruthy();

    const client = new ClientV1({ name: 'v1-oauth-test', version: '1.0.0' });
    await client.connect(transport);
    const whoami = await client.callTool({ name: 'whoami', arguments: {} });
    expect(text(whoami)).toContain(userId);
    await client.close();

    // The SDK refreshes when it holds a refresh token: a new pair, the old refresh token rotated out.
    expect(await authV1(provider as never, { serverUrl: gw.mcpUrl })).toBe('AUTHORIZED');
    const secondRefresh = provider.savedTokens?.refresh_token;
    expect(secondRefresh).toBeTruthy();
    expect(secondRefresh).not.toBe(firstRefresh);

    await revoke(secondRefresh as string, provider.clientInfo?.client_id as string);
    const afterRevocation = new ClientV1({ name: 'v1-oauth-test', version: '1.0.0' });
    // The revoked grant's access token is refused and its refresh token no longer works: back to sign-in.
    const redirectsBefore = provider.redirects.length;
    await expect(
      afterRevocation.connect(new TransportV1(gw.mcpUrl, { authProvider: provider as never })),
    ).rejects.toBeInstanceOf(UnauthorizedErrorV1);
    expect(provider.redirects.length).toBe(redirectsBefore + 1);
  });

  // req: MCP-AUTH-AS-METADATA, RFC8414-2-REQUIRED-METADATA
  it('v2 SDK client (@modelcontextprotocol/client): DCR, sign-in, consent, tool call, refresh, revocation', async () => {
    const provider = new TestOAuthProvider({ username: 'carol', password: PASSWORD });
    const first = new ClientV2({ name: 'v2-oauth-test', version: '1.0.0' });
    await expect(
      first.connect(new TransportV2(gw.mcpUrl, { authProvider: provider as never })),
    ).rejects.toBeInstanceOf(UnauthorizedErrorV2);
    expect(provider.clientInfo?.client_id).toBeTruthy();
    const { callback } = await (provider.pending as NonNullable<typeof provider.pending>);

    const transport = new TransportV2(gw.mcpUrl, { authProvider: provider as never });
    // v2 checks RFC 9207 `iss` against the discovered issuer before redeeming the code.
    await transport.finishAuth(callback.searchParams);
    const firstRefresh = provider.savedTokens?.refresh_token;
    expect(firstRefresh).toBeTruthy();

    const client = new ClientV2({ name: 'v2-oauth-test', version: '1.0.0' });
    await client.connect(transport);
    const whoami = await client.callTool({ name: 'whoami', arguments: {} });
    expect(text(whoami as never)).toContain(userId);
    await client.close();

    expect(await authV2(provider as never, { serverUrl: gw.mcpUrl })).toBe('AUTHORIZED');
    const secondRefresh = provider.savedTokens?.refresh_token;
    expect(secondRefresh).not.toBe(firstRefresh);

    await revoke(secondRefresh as string, provider.clientInfo?.client_id as string);
    const afterRevocation = new ClientV2({ name: 'v2-oauth-test', version: '1.0.0' });
    // The revoked grant's access token is refused and its refresh token no longer works: back to sign-in.
    const redirectsBefore = provider.redirects.length;
    await expect(
      afterRevocation.connect(new TransportV2(gw.mcpUrl, { authProvider: provider as never })),
    ).rejects.toBeInstanceOf(UnauthorizedErrorV2);
    expect(provider.redirects.length).toBe(redirectsBefore + 1);
  });
});
