import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AdminGrant, AdminSession } from '../../src/admin/service.js';
import { cleanEnv, runCli } from '../helpers/cli.js';
import { freePort } from '../helpers/late-server.js';
import { authorizeUrl, type CookieJar, pkce, signIn } from '../helpers/oauth.js';
import { type ConfiguredServe, startConfiguredServe } from '../helpers/serve-process.js';
import {
  openSession,
  ping,
  REDIRECT_URI,
  refreshOutcome,
  registerClient,
  signInAndRedeem,
} from '../helpers/signed-in-client.js';

const PASSWORD = 'correct horse battery staple';

/**
 * Issue 13's "done when": a real `gatehouse serve` process on SQLite, users signed in with a real MCP OAuth
 * client, and the operator's commands — other processes on the same store — take effect on the very next
 * request after the command returns (the revocation watermark is read on every request; an ended session
 * is looked up in the store on every request).
 */
describe('operator commands against a running gateway', () => {
  let dir: string;
  let serve: ConfiguredServe;
  let base: string;
  let mcpUrl: string;
  let configFile: string;
  const cli = (...args: string[]) =>
    runCli([...args, '--config', configFile], dir, cleanEnv(), `${PASSWORD}\n`);

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gatehouse-admin-'));
    const port = await freePort();
    serve = await startConfiguredServe({
      dir,
      name: 'gatehouse',
      port,
      config: { dataDir: join(dir, 'data'), store: { kind: 'sqlite' } },
    });
    configFile = join(dir, 'gatehouse.json');
    mcpUrl = serve.mcpUrl;
    base = new URL(mcpUrl).origin;
    for (const name of ['alice', 'bob', 'carol', 'dave']) {
      const added = await cli('users', 'add', name, '--password-stdin');
      expect(added.code, added.stderr).toBe(0);
    }
  }, 120_000);

  afterAll(async () => {
    await serve?.stop();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  /** `username` signs in with a freshly registered client and opens a session. */
  async function signedIn(username: string) {
    const clientId = await registerClient(base);
    const { tokens, jar } = await signInAndRedeem({ base, resource: mcpUrl }, clientId, {
      username,
      password: PASSWORD,
    });
    const sessionId = await openSession(mcpUrl, tokens.access_token);
    return { clientId, tokens, jar, sessionId };
  }

  /**
   * Whether the browser's sign-in still counts: authorizing again skips the login form. (Not `prompt=none`:
   * revoking forgets consents too, which alone would stop a silent code.)
   */
  async function browserSignedIn(clientId: string, jar: CookieJar): Promise<boolean> {
    const url = authorizeUrl(base, {
      clientId,
      redirectUri: REDIRECT_URI,
      challenge: pkce().challenge,
      resource: mcpUrl,
    });
    const outcome = await signIn(url, { username: 'nobody', password: 'never typed', jar, stopAt: 'login' });
    return !('kind' in outcome);
  }

  it('users revoke: the very next MCP request is 401, the refresh token invalid_grant, the browser signed out; the account stays usable', {
    timeout: 120_000,
  }, async () => {
    const held = await signedIn('alice');
    expect(await browserSignedIn(held.clientId, held.jar)).toBe(true);

    const revoked = await cli('users', 'revoke', 'alice');
    const returnedAt = Date.now();
    expect(revoked.stderr).toBe('');
    expect(revoked.code).toBe(0);
    expect(revoked.stdout).toMatch(
      /^revoked the access of alice; signed out everywhere: 1 grant revoked, 1 live session ended/,
    );

    const next = await ping(mcpUrl, held.tokens.access_token, held.sessionId);
    const refusedAfterMs = Date.now() - returnedAt;
    expect(next.status).toBe(401);
    expect(next.headers.get('www-authenticate')).toContain('invalid_token');
    // The watermark makes it the very next request; the bound below only guards against a regression to polling.
    expect(refusedAfterMs).toBeLessThan(5_000);
    expect((await ping(mcpUrl, held.tokens.access_token)).status).toBe(401);
    expect(await refreshOutcome(base, held.clientId, held.tokens.refresh_token)).toEqual({
      status: 400,
      error: 'invalid_grant',
    });
    expect(await browserSignedIn(held.clientId, held.jar)).toBe(false);

    // Signed out, not locked out: a new sign-in works.
    const again = await signedIn('alice');
    expect((await ping(mcpUrl, again.tokens.access_token, again.sessionId)).status).toBe(200);
  });

  it('users disable: the very next MCP request is 401 and the refresh token invalid_grant', {
    timeout: 120_000,
  }, async () => {
    const held = await signedIn('bob');
    const disabled = await cli('users', 'disable', 'bob');
    expect(disabled.code, disabled.stderr).toBe(0);
    expect((await ping(mcpUrl, held.tokens.access_token, held.sessionId)).status).toBe(401);
    expect(await refreshOutcome(base, held.clientId, held.tokens.refresh_token)).toEqual({
      status: 400,
      error: 'invalid_grant',
    });
    await expect(signedIn('bob')).rejects.toThrow(/sign-in refused/);
    expect((await cli('users', 'enable', 'bob')).code).toBe(0);
  });

  it('sessions end: the next request in that session is 404 (MCP: session gone); the token still works', {
    timeout: 120_000,
  }, async () => {
    const held = await signedIn('carol');
    const listed = await cli('sessions', 'list', '--user', 'carol', '--json');
    expect(listed.code, listed.stderr).toBe(0);
    const sessions = JSON.parse(listed.stdout) as AdminSession[];
    expect(sessions.map((session) => session.id)).toEqual([held.sessionId]);
    expect(sessions[0]).toMatchObject({
      username: 'carol',
      transport: 'streamable-http',
      client: 'admin-test 1',
    });

    // `--`: a random session id may begin with "-".
    const ended = await runCli(
      ['sessions', 'end', '--config', configFile, '--', held.sessionId],
      dir,
      cleanEnv(),
    );
    expect(ended.code, ended.stderr).toBe(0);
    expect(ended.stdout).toBe(`ended session ${held.sessionId} of carol\n`);
    expect((await ping(mcpUrl, held.tokens.access_token, held.sessionId)).status).toBe(404);
    // Only the session ended: the client re-initializes with the same token.
    const reopened = await openSession(mcpUrl, held.tokens.access_token);
    expect(reopened).not.toBe(held.sessionId);
  });

  it("grants revoke: the grant's access token is refused on the next request, its refresh token invalid_grant", {
    timeout: 120_000,
  }, async () => {
    const held = await signedIn('dave');
    const listed = await cli('grants', 'list', '--user', 'dave', '--json');
    expect(listed.code, listed.stderr).toBe(0);
    const grants = JSON.parse(listed.stdout) as AdminGrant[];
    expect(grants).toHaveLength(1);
    expect(grants[0]).toMatchObject({
      clientId: held.clientId,
      username: 'dave',
      clientName: 'Admin test client',
    });

    const revoked = await cli('grants', 'revoke', grants[0]?.id as string);
    expect(revoked.code, revoked.stderr).toBe(0);
    expect((await ping(mcpUrl, held.tokens.access_token, held.sessionId)).status).toBe(401);
    expect(await refreshOutcome(base, held.clientId, held.tokens.refresh_token)).toEqual({
      status: 400,
      error: 'invalid_grant',
    });
  });
});
