import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { cleanEnv, runCli } from '../helpers/cli.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { freePort } from '../helpers/late-server.js';
import { postMcp } from '../helpers/mcp-http.js';
import { authorizeUrl as authorizeAt, type CookieJar, pkce } from '../helpers/oauth.js';
import { gatewayAt, REDIRECT_URI, registerAndSignIn, type Tokens } from '../helpers/signed-in-client.js';
import { eventually, isAlive } from '../helpers/wait.js';
import { connectRaw } from '../helpers/websocket.js';

const PASSWORD = 'correct horse battery staple';
const NEW_PASSWORD = 'a completely new passphrase';

/**
 * Security finding HIGH: removing an account, changing its password or disabling it must take away
 * everything it holds — refresh families, access tokens on every transport, open MCP sessions, browser
 * sign-ins — from the moment the command returns. The command is the real CLI, another process on the
 * same SQLite store as the running gateway.
 */
describe('removing, re-passwording or disabling an account takes its access away everywhere', () => {
  let gw: TestGateway | undefined;
  let dir: string | undefined;
  afterEach(async () => {
    await gw?.close();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
    gw = undefined;
  });

  async function start(): Promise<{
    running: TestGateway;
    cli: (...args: string[]) => ReturnType<typeof runCli>;
  }> {
    dir = mkdtempSync(join(tmpdir(), 'gatehouse-revoke-'));
    const port = await freePort();
    const config = join(dir, 'gatehouse.json');
    writeFileSync(config, JSON.stringify({ server: { port }, dataDir: join(dir, 'data') }));
    gw = await startTestGateway({ dataDir: join(dir, 'data'), server: { port } });
    await gw.gateway.authorizationServer?.accounts?.add({ username: 'alice', password: PASSWORD });
    return {
      running: gw,
      cli: (...args) => runCli([...args, '--config', config], dir as string, cleanEnv(), `${NEW_PASSWORD}\n`),
    };
  }

  const signInAndRedeem = (running: TestGateway, password = PASSWORD) =>
    registerAndSignIn(gatewayAt(running), { username: 'alice', password }, 'Revoke test');

  const authorizeUrl = (
    running: TestGateway,
    clientId: string,
    challenge: string,
    extra: Record<string, string> = {},
  ) =>
    authorizeAt(
      running.gateway.urls.publicUrl,
      { clientId, redirectUri: REDIRECT_URI, challenge, resource: running.gateway.urls.resource },
      extra,
    );

  const token = (running: TestGateway, fields: Record<string, string>) =>
    fetch(`${running.gateway.urls.publicUrl}/oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(fields).toString(),
    });

  const mcp = (running: TestGateway, accessToken: string, body: unknown, sessionId?: string) =>
    postMcp(running.mcpUrl, accessToken, body, sessionId);

  async function openSession(
    running: TestGateway,
    accessToken: string,
  ): Promise<{ sessionId: string; pid: number }> {
    const opened = await mcp(running, accessToken, {
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
    });
    expect(opened.status).toBe(200);
    await opened.text();
    const sessionId = opened.headers.get('mcp-session-id') as string;
    const call = await mcp(
      running,
      accessToken,
      { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'whoami', arguments: {} } },
      sessionId,
    );
    const line = (await call.text()).split('\n').find((l) => l.startsWith('data: ')) ?? '';
    const answer = JSON.parse(line.slice(6)) as { result: { content: Array<{ text: string }> } };
    return { sessionId, pid: (JSON.parse(answer.result.content[0]?.text ?? '{}') as { pid: number }).pid };
  }

  /** Everything alice holds is refused: the refresh token, the access token and session, the browser. */
  async function expectAllRevoked(
    running: TestGateway,
    held: { clientId: string; tokens: Tokens; jar: CookieJar; sessionId: string; pid: number },
  ) {
    const refreshed = await token(running, {
      grant_type: 'refresh_token',
      client_id: held.clientId,
      refresh_token: held.tokens.refresh_token,
    });
    expect(refreshed.status).toBe(400);
    expect(((await refreshed.json()) as { error: string }).error).toBe('invalid_grant');

    const inSession = await mcp(
      running,
      held.tokens.access_token,
      { jsonrpc: '2.0', id: 3, method: 'ping' },
      held.sessionId,
    );
    expect(inSession.status).toBe(401);
    expect(inSession.headers.get('www-authenticate')).toContain('invalid_token');
    await eventually(() => !isAlive(held.pid));

    // The browser's sign-in no longer answers prompt=none with a code.
    expect(await silentCode(running, held)).toBeNull();
  }

  /** The code `prompt=none` gets in this browser, if any (a sign-in and consent the browser remembers). */
  async function silentCode(
    running: TestGateway,
    held: { clientId: string; jar: CookieJar },
  ): Promise<string | null> {
    const silent = await fetch(
      authorizeUrl(running, held.clientId, pkce().challenge, {
        prompt: 'none',
      }),
      { redirect: 'manual', headers: { cookie: held.jar.header() } },
    );
    return new URL(silent.headers.get('location') ?? 'http://none/').searchParams.get('code');
  }

  async function hold(running: TestGateway) {
    const signedIn = await signInAndRedeem(running);
    const session = await openSession(running, signedIn.tokens.access_token);
    // Before anything is revoked, the browser's remembered sign-in and consent answer prompt=none.
    expect(await silentCode(running, signedIn)).toMatch(/^ghc_/);
    return { ...signedIn, ...session };
  }

  it('users remove', async () => {
    const { running, cli } = await start();
    const held = await hold(running);
    const socket = await connectRaw(running, { token: held.tokens.access_token });
    await socket.initialize();

    const removed = await cli('users', 'remove', 'alice');
    expect(removed.stderr).toBe('');
    expect(removed.code).toBe(0);
    expect(removed.stdout).toMatch(/1 grant revoked/);

    // The WebSocket's very next message is refused, as is every request on the MCP endpoint.
    socket.send({ jsonrpc: '2.0', id: 9, method: 'ping' });
    expect((await socket.closed).code).toBe(4401);
    await expectAllRevoked(running, held);
  });

  it('users passwd: the old sign-ins and tokens stop, a new sign-in with the new password works', async () => {
    const { running, cli } = await start();
    const held = await hold(running);
    const changed = await cli('users', 'passwd', 'alice', '--password-stdin');
    expect(changed.code).toBe(0);
    await expectAllRevoked(running, held);
    const again = await signInAndRedeem(running, NEW_PASSWORD);
    expect(
      (await mcp(running, again.tokens.access_token, { jsonrpc: '2.0', id: 1, method: 'ping' })).status,
    ).not.toBe(401);
  });

  it('users disable, then enable', async () => {
    const { running, cli } = await start();
    const held = await hold(running);
    expect((await cli('users', 'disable', 'alice')).code).toBe(0);
    await expectAllRevoked(running, held);
    await expect(signInAndRedeem(running)).rejects.toThrow(/sign-in refused \(401\)/);
    expect((await cli('users', 'enable', 'alice')).code).toBe(0);
    const again = await signInAndRedeem(running);
    expect(again.tokens.access_token).toBeTruthy();
  });

  it('an idle WebSocket of a removed account is closed without waiting for its next message', async () => {
    const { running, cli } = await start();
    const held = await hold(running);
    const socket = await connectRaw(running, { token: held.tokens.access_token });
    await socket.initialize();
    const { pid } = await socket.whoami();
    expect((await cli('users', 'remove', 'alice')).code).toBe(0);
    expect((await socket.closed).code).toBe(4401);
    await eventually(() => !isAlive(pid));
  });
});
