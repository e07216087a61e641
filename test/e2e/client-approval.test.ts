import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { AdminClient } from '../../src/admin/service.js';
import { cleanEnv, runCli } from '../helpers/cli.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { freePort } from '../helpers/late-server.js';
import { authorizeUrl, pkce } from '../helpers/oauth.js';
import {
  openSession,
  REDIRECT_URI,
  registerClient,
  signInAndRedeem,
  tokenRequest,
} from '../helpers/signed-in-client.js';

const PASSWORD = 'correct horse battery staple';

/**
 * `authorizationServer.dynamicRegistration.requireApproval`: a client that registered itself is refused
 * — a page at /authorize naming the command that approves it, `invalid_client` at the token endpoint —
 * until an operator runs `gatehouse clients approve`.
 */
describe('clients that registered themselves wait for an operator when approval is required', () => {
  let gw: TestGateway | undefined;
  let dir: string | undefined;
  afterEach(async () => {
    await gw?.close();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
    gw = undefined;
  });

  async function start(requireApproval: boolean) {
    dir = mkdtempSync(join(tmpdir(), 'gatehouse-approval-'));
    const port = await freePort();
    const input = {
      server: { port },
      dataDir: join(dir, 'data'),
      authorizationServer: { dynamicRegistration: { requireApproval } },
    };
    const config = join(dir, 'gatehouse.json');
    writeFileSync(config, JSON.stringify(input));
    gw = await startTestGateway(input);
    await gw.gateway.authorizationServer?.accounts?.add({ username: 'alice', password: PASSWORD });
    const base = gw.gateway.urls.publicUrl;
    const resource = gw.gateway.urls.resource;
    return {
      base,
      resource,
      // The config goes first: an id after `--` must stay last.
      cli: (group: string, verb: string, ...args: string[]) =>
        runCli([group, verb, '--config', config, ...args], dir as string, cleanEnv()),
    };
  }

  it('answers /authorize with a page naming `gatehouse clients approve`, refuses the token endpoint, and lets the client in once approved', {
    timeout: 120_000,
  }, async () => {
    const { base, resource, cli } = await start(true);
    const clientId = await registerClient(base, 'Waiting client');

    const authorize = await fetch(
      authorizeUrl(base, { clientId, redirectUri: REDIRECT_URI, challenge: pkce().challenge, resource }),
      { redirect: 'manual' },
    );
    expect(authorize.status).toBe(403);
    expect(authorize.headers.get('location')).toBeNull();
    const page = await authorize.text();
    expect(page).toContain('data-testid="message-page"');
    // The command on the page is the one to run, as it stands (with `--` before an id that begins with "-").
    const command = /gatehouse (clients approve (?:-- )?(\S+))</.exec(page);
    expect(command?.[2]).toBe(clientId);

    const token = await tokenRequest(base, {
      grant_type: 'authorization_code',
      client_id: clientId,
      code: 'ghc_not-a-real-code',
      code_verifier: pkce().verifier,
      redirect_uri: REDIRECT_URI,
    });
    expect(token.status).toBe(401);
    expect(((await token.json()) as { error: string }).error).toBe('invalid_client');

    const listed = await cli('clients', 'list', '--json');
    expect(listed.code, listed.stderr).toBe(0);
    const [waiting] = JSON.parse(listed.stdout) as AdminClient[];
    expect(waiting).toMatchObject({ clientId, clientName: 'Waiting client' });
    expect(waiting?.approvedAt).toBeUndefined();

    const [group, verb, ...rest] = (command?.[1] ?? '').split(' ');
    const approved = await cli(group as string, verb as string, ...rest);
    expect(approved.code, approved.stderr).toBe(0);
    expect(approved.stdout).toBe(`approved client ${clientId} ("Waiting client")\n`);

    const { tokens } = await signInAndRedeem({ base, resource }, clientId, {
      username: 'alice',
      password: PASSWORD,
    });
    expect(await openSession(resource, tokens.access_token)).toBeTruthy();
    const shown = await cli('clients', 'show', '--json', '--', clientId);
    expect((JSON.parse(shown.stdout) as AdminClient).approvedAt).toMatch(/^\d{4}-\d\d-\d\dT/);
  });

  it('lets every client in when approval is not required (the default)', { timeout: 120_000 }, async () => {
    const { base, resource } = await start(false);
    const clientId = await registerClient(base);
    const { tokens } = await signInAndRedeem({ base, resource }, clientId, {
      username: 'alice',
      password: PASSWORD,
    });
    expect(tokens.refresh_token).toBeTruthy();
  });
});
