import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { GatehouseEvent } from '../../src/ops/events.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { postMcp } from '../helpers/mcp-http.js';
import { authorizeUrl, pkce, signIn } from '../helpers/oauth.js';
import { gatewayAt, registerAndSignIn } from '../helpers/signed-in-client.js';

const PASSWORD = 'correct horse battery staple';
const REDIRECT = 'http://127.0.0.1:53682/callback';
const ADMIN_CLIENT = 'ops-script';
const API_TOKEN = 'k3V9qLx2Zr8TfW1mNb7YcD4sHj6PaE0uGo5Q';

interface Tokens {
  access_token: string;
  refresh_token?: string;
}

/**
 * The admin API end to end on a real gateway: tokens come from its own authorization server (the admin
 * resource, RFC 8707) or `admin.apiToken`; every operator verb is reachable; who may call is read from the
 * store on every request.
 */
describe('admin API', () => {
  let gw: TestGateway;
  let base: string;
  const events: GatehouseEvent[] = [];
  let ids: Record<'root' | 'alice', string>;

  beforeAll(async () => {
    gw = await startTestGateway({
      store: { kind: 'memory' },
      // The limit has its own test below; here every test shares one client address.
      admin: { apiToken: API_TOKEN, requestsPerMinute: 1000 },
      authorizationServer: {
        clients: [
          {
            clientId: ADMIN_CLIENT,
            redirectUris: [REDIRECT],
            grantTypes: ['authorization_code', 'refresh_token'],
            trusted: true,
          },
        ],
      },
    });
    base = gw.gateway.urls.publicUrl;
    gw.gateway.events.subscribe((event) => events.push(event));
    const accounts = gw.gateway.authorizationServer?.accounts;
    const root = await accounts?.add({ username: 'root', password: PASSWORD });
    const alice = await accounts?.add({ username: 'alice', password: PASSWORD });
    ids = { root: root?.id ?? '', alice: alice?.id ?? '' };
    await gw.gateway.admin?.users.setAdmin('root', true);
  });
  afterAll(async () => {
    await gw?.close();
  });

  const api = (path: string, token: string | undefined, init: RequestInit = {}) =>
    fetch(`${base}/admin/api${path}`, {
      ...init,
      headers: {
        ...(token !== undefined && { authorization: `Bearer ${token}` }),
        ...(init.body !== undefined && { 'content-type': 'application/json' }),
        ...(init.headers as Record<string, string> | undefined),
      },
    });

  const tokenRequest = (fields: Record<string, string>) =>
    fetch(`${base}/oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(fields).toString(),
    });

  /** Signs `username` in at the authorization server asking for the admin resource; the callback URL. */
  async function authorizeAdmin(username: string) {
    const { verifier, challenge } = pkce();
    const result = await signIn(
      authorizeUrl(base, {
        clientId: ADMIN_CLIENT,
        redirectUri: REDIRECT,
        challenge,
        resource: gw.gateway.urls.adminResource,
      }),
      { username, password: PASSWORD },
    );
    return { callback: result.callback, verifier };
  }

  async function adminTokens(username: string): Promise<Tokens> {
    const { callback, verifier } = await authorizeAdmin(username);
    const code = callback.searchParams.get('code');
    expect(code, callback.href).not.toBeNull();
    const response = await tokenRequest({
      grant_type: 'authorization_code',
      client_id: ADMIN_CLIENT,
      code: code as string,
      code_verifier: verifier,
      redirect_uri: REDIRECT,
      resource: gw.gateway.urls.adminResource,
    });
    expect(response.status).toBe(200);
    return (await response.json()) as Tokens;
  }

  /** A token Gatehouse signed for the admin resource, for any subject (as the AS would issue it). */
  const signedAdminToken = (subject: string) =>
    gw.gateway.signer.sign({
      subject,
      audience: gw.gateway.urls.adminResource,
      expiresInSeconds: 300,
      claims: { idp: 'local', scope: '' },
    });

  const challengeOf = (response: Response) => response.headers.get('www-authenticate') ?? '';

  it('publishes the admin resource metadata (RFC 9728, path form)', async () => {
    const response = await fetch(gw.gateway.urls.adminResourceMetadataUrl);
    expect(response.status).toBe(200);
    const metadata = (await response.json()) as Record<string, unknown>;
    expect(metadata.resource).toBe(`${base}/admin`);
    expect(metadata.authorization_servers).toEqual([gw.gateway.urls.issuer]);
  });

  it('answers a request without a token 401 with a challenge naming the admin resource metadata', async () => {
    const response = await api('/users', undefined);
    expect(response.status).toBe(401);
    expect(challengeOf(response)).toContain(
      `resource_metadata="${gw.gateway.urls.adminResourceMetadataUrl}"`,
    );
    expect(response.headers.get('cache-control')).toBe('no-store');
    const body = (await response.json()) as Record<string, unknown>;
    expect(body.error).toBe('invalid_token');
    expect(typeof body.message).toBe('string');
    expect(typeof body.requestId).toBe('string');
  });

  // req: MCP-AUTH-AUDIENCE-VALIDATION
  it("refuses an MCP-audience token, even an administrator's, with 401 invalid_token", async () => {
    const mcpToken = await gw.token(ids.root);
    const response = await api('/users', mcpToken);
    expect(response.status).toBe(401);
    expect(challengeOf(response)).toContain('error="invalid_token"');
    expect(challengeOf(response)).toContain(gw.gateway.urls.adminResourceMetadataUrl);
    expect(((await response.json()) as { error: string }).error).toBe('invalid_token');
  });

  it('serves an administrator signed in through the authorization server for the admin resource', async () => {
    const { access_token } = await adminTokens('root');
    const response = await api('/users', access_token);
    expect(response.status).toBe(200);
    expect(response.headers.get('cache-control')).toBe('no-store');
    const { users } = (await response.json()) as { users: Array<{ username: string; admin: boolean }> };
    expect(users.map((user) => [user.username, user.admin])).toEqual([
      ['alice', false],
      ['root', true],
    ]);
    // The admin token is for the admin resource only: the MCP endpoint refuses it.
    const mcp = await postMcp(gw.mcpUrl, access_token, { jsonrpc: '2.0', id: 1, method: 'ping' });
    expect(mcp.status).toBe(401);
  });

  it('refuses to authorize the admin resource for a user who is not an administrator', async () => {
    const { callback } = await authorizeAdmin('alice');
    expect(callback.searchParams.get('code')).toBeNull();
    expect(callback.searchParams.get('error')).toBe('access_denied');
  });

  it("answers a normal user's valid admin-audience token 403 ERR_ADMIN_REQUIRED", async () => {
    const response = await api('/users', await signedAdminToken(ids.alice));
    expect(response.status).toBe(403);
    expect(((await response.json()) as { error: string }).error).toBe('ERR_ADMIN_REQUIRED');
  });

  it('accepts the configured admin credential, and nothing like it', async () => {
    const ok = await api('/users', API_TOKEN);
    expect(ok.status).toBe(200);
    const wrong = await api('/users', `${API_TOKEN.slice(0, -1)}X`);
    expect(wrong.status).toBe(401);
  });

  it('stops an administrator demoted or disabled elsewhere (the CLI, another instance) within seconds', async () => {
    await gw.gateway.authorizationServer?.accounts?.add({ username: 'erin', password: PASSWORD });
    await gw.gateway.admin?.users.setAdmin('erin', true);
    const { access_token } = await adminTokens('erin');
    expect((await api('/keys', access_token)).status).toBe(200);
    // Straight to the service, as `gatehouse users revoke-admin` does: this process's cache is not told.
    await gw.gateway.admin?.users.setAdmin('erin', false);
    await vi.waitFor(async () => expect((await api('/keys', access_token)).status).toBe(403), {
      timeout: 10_000,
      interval: 250,
    });
  });

  // req: RFC8707-2-INVALID-TARGET
  it('stops an administrator at once when the role is removed, and their refresh fails', async () => {
    const bob = await gw.gateway.authorizationServer?.accounts?.add({ username: 'bob', password: PASSWORD });
    await gw.gateway.admin?.users.setAdmin('bob', true);
    const tokens = await adminTokens('bob');
    expect((await api('/users', tokens.access_token)).status).toBe(200);
    const demoted = await api('/users/bob/admin', API_TOKEN, { method: 'DELETE' });
    expect(demoted.status).toBe(200);
    expect(((await demoted.json()) as { user: { admin: boolean } }).user.admin).toBe(false);
    const refused = await api('/users', tokens.access_token);
    expect(refused.status).toBe(403);
    const refreshed = await tokenRequest({
      grant_type: 'refresh_token',
      client_id: ADMIN_CLIENT,
      refresh_token: tokens.refresh_token as string,
    });
    expect(refreshed.status).toBe(400);
    expect(((await refreshed.json()) as { error: string }).error).toBe('invalid_target');
    expect(bob?.id).toBeDefined();
  });

  it("refuses an administrator's token once they are signed out everywhere (revocation list)", async () => {
    await gw.gateway.authorizationServer?.accounts?.add({ username: 'carol', password: PASSWORD });
    await gw.gateway.admin?.users.setAdmin('carol', true);
    const { access_token } = await adminTokens('carol');
    expect((await api('/users/carol', access_token)).status).toBe(200);
    expect((await api('/users/carol/revoke', API_TOKEN, { method: 'POST' })).status).toBe(200);
    const response = await api('/users/carol', access_token);
    expect(response.status).toBe(401);
    expect(challengeOf(response)).toContain('error="invalid_token"');
  });

  it('reaches every operator verb, and records who did what', async () => {
    const { access_token: admin } = await adminTokens('root');
    const call = async (method: string, path: string, body?: unknown, status = 200) => {
      const response = await api(path, admin, {
        method,
        ...(body !== undefined && { body: JSON.stringify(body) }),
      });
      expect(response.status, `${method} ${path}: ${await response.clone().text()}`).toBe(status);
      return (await response.json()) as Record<string, unknown>;
    };

    // Users.
    const added = await call(
      'POST',
      '/users',
      { username: 'dave', password: PASSWORD, email: 'd@example.com' },
      201,
    );
    expect((added.user as { username: string }).username).toBe('dave');
    await call('POST', '/users', { username: 'dave', password: PASSWORD }, 409);
    expect(((await call('GET', '/users/dave')).user as { email: string }).email).toBe('d@example.com');
    await call('GET', '/users/nobody', undefined, 404);
    await call('POST', '/users', { username: 'x' }, 400);
    await call('POST', '/users/dave/password', { password: 'another long passphrase here' });
    await call('POST', '/users/dave/disable');
    expect(((await call('GET', '/users/dave')).user as { disabled: boolean }).disabled).toBe(true);
    await call('POST', '/users/dave/enable');
    await call('PUT', '/users/dave/admin');
    expect(((await call('GET', '/users/dave')).user as { admin: boolean }).admin).toBe(true);
    await call('DELETE', '/users/dave/admin');
    await call('POST', '/users/dave/revoke');

    // Sessions and grants: alice connects through OAuth with a registered client and opens a session.
    const { clientId: client_id, tokens: aliceTokens } = await registerAndSignIn(
      gatewayAt(gw),
      { username: 'alice', password: PASSWORD },
      'Alice app',
    );
    const opened = await postMcp(gw.mcpUrl, aliceTokens.access_token, {
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
    });
    expect(opened.status).toBe(200);
    await opened.text();
    const sessionId = opened.headers.get('mcp-session-id') as string;

    const sessions = (await call('GET', '/sessions?user=alice')).sessions as Array<{ id: string }>;
    expect(sessions.map((session) => session.id)).toContain(sessionId);
    expect(((await call('GET', '/sessions')).sessions as unknown[]).length).toBeGreaterThan(0);
    await call('DELETE', `/sessions/${sessionId}`);
    await call('DELETE', `/sessions/${sessionId}`, undefined, 404);
    expect(((await call('DELETE', '/users/alice/sessions')).ended as number) >= 0).toBe(true);

    const grants = (await call('GET', '/grants?user=alice')).grants as Array<{
      id: string;
      clientId: string;
    }>;
    const grant = grants.find((g) => g.clientId === client_id);
    expect(grant).toBeDefined();
    await call('DELETE', `/grants/${grant?.id}`);
    await call('DELETE', '/grants/grt_nothing', undefined, 404);

    // Clients.
    const clients = (await call('GET', '/clients')).clients as Array<{ clientId: string }>;
    expect(clients.map((client) => client.clientId)).toContain(client_id);
    expect(((await call('GET', `/clients/${client_id}`)).client as { clientName: string }).clientName).toBe(
      'Alice app',
    );
    expect(
      ((await call('POST', `/clients/${client_id}/approve`)).client as { approvedAt?: string }).approvedAt,
    ).toBeDefined();
    await call('DELETE', `/clients/${client_id}`);
    await call('GET', `/clients/${client_id}`, undefined, 404);

    // Keys.
    const before = (await call('GET', '/keys')).keys as Array<{ kid: string; state: string }>;
    const rotated = (await call('POST', '/keys/rotate', undefined, 201)).key as { kid: string };
    const after = (await call('GET', '/keys')).keys as Array<{ kid: string; state: string }>;
    expect(after.find((key) => key.state === 'signing')?.kid).toBe(rotated.kid);
    expect(before.map((key) => key.kid)).not.toContain(rotated.kid);

    // Audit: the actions above are in the log with who did them, newest first, paged by cursor.
    await gw.gateway.audit?.flush();
    const firstPage = await call('GET', '/audit?event=admin.action&limit=2');
    const entries = firstPage.entries as Array<{ type: string; event: Record<string, unknown> }>;
    expect(entries).toHaveLength(2);
    expect(entries[0]?.event.actor).toBe(`local#${ids.root}`);
    const secondPage = await call('GET', `/audit?event=admin.action&limit=2&cursor=${firstPage.nextCursor}`);
    expect((secondPage.entries as unknown[]).length).toBe(2);
    expect(JSON.stringify(secondPage.entries)).not.toBe(JSON.stringify(entries));
    await call('GET', '/audit?since=not-a-time', undefined, 400);
    const exported = await api('/audit?format=jsonl&event=admin.action', admin);
    expect(exported.status).toBe(200);
    expect(exported.headers.get('content-type')).toContain('application/x-ndjson');
    const lines = (await exported.text())
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { at: number });
    expect(lines.length).toBeGreaterThanOrEqual(4);
    expect(lines.map((line) => line.at)).toEqual([...lines.map((line) => line.at)].sort((a, b) => a - b));

    // Removing an account.
    await call('DELETE', '/users/dave');
    await call('GET', '/users/dave', undefined, 404);
    await call('GET', '/no-such-route', undefined, 404);

    const actions = events.flatMap((event) => (event.type === 'admin.action' ? [event] : []));
    expect(actions.map((event) => event.action)).toEqual(
      expect.arrayContaining([
        'user.add',
        'user.password',
        'user.disable',
        'user.enable',
        'user.admin.grant',
        'user.admin.revoke',
        'user.signout',
        'session.end',
        'sessions.end_for_user',
        'grant.revoke',
        'client.approve',
        'client.remove',
        'keys.rotate',
        'user.remove',
      ]),
    );
    expect(actions.find((event) => event.action === 'user.remove')).toMatchObject({
      actor: `local#${ids.root}`,
      actorName: 'root',
      target: 'dave',
      via: 'api',
      outcome: 'success',
    });
  });
});

describe('admin API rate limit', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startTestGateway({
      store: { kind: 'memory' },
      admin: { apiToken: API_TOKEN, requestsPerMinute: 3 },
    });
  });
  afterAll(async () => {
    await gw?.close();
  });

  it('answers 429 with Retry-After past admin.requestsPerMinute', async () => {
    const statuses: number[] = [];
    let last = new Response();
    for (let i = 0; i < 4; i += 1) {
      last = await fetch(`${gw.gateway.urls.publicUrl}/admin/api/keys`, {
        headers: { authorization: `Bearer ${API_TOKEN}` },
      });
      statuses.push(last.status);
    }
    expect(statuses).toEqual([200, 200, 200, 429]);
    expect(Number(last.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(((await last.json()) as { error: string }).error).toBe('ERR_RATE_LIMITED');
  });
});
