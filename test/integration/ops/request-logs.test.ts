import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../../src/ops/logger.js';
import { startTestGateway, type TestGateway } from '../../helpers/gateway.js';
import { INIT, postMcp } from '../../helpers/mcp-http.js';
import { authorizeUrl, CookieJar, pkce, signIn } from '../../helpers/oauth.js';

const PASSWORD = 'a very long and secret passphrase 7';
const REDIRECT = 'http://127.0.0.1:53682/callback';

type Line = Record<string, unknown>;

describe('request logs: one request id on every line of a request; no credential in any line', () => {
  let gw: TestGateway;
  const text: string[] = [];
  const lines = (): Line[] =>
    text
      .join('')
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => JSON.parse(line) as Line);
  const secrets: string[] = [PASSWORD];

  /** The lines logged while `send` ran, and the request id the answer carried. */
  async function during(send: () => Promise<Response>): Promise<{ response: Response; logged: Line[] }> {
    const from = lines().length;
    const response = await send();
    await response.arrayBuffer().catch(() => undefined);
    // Lines are written synchronously by the time the answer is read.
    return { response, logged: lines().slice(from) };
  }

  beforeAll(async () => {
    const destination = new Writable({
      write(chunk, _encoding, done) {
        text.push(String(chunk));
        done();
      },
    });
    gw = await startTestGateway({}, { logger: createLogger({ level: 'debug', destination }) });
    await gw.gateway.authorizationServer?.accounts?.add({ username: 'alice', password: PASSWORD });
  });
  afterAll(async () => {
    await gw?.close();
  });

  it('gives every line logged while serving a request that request’s id, the one its answer carries', async () => {
    const base = gw.gateway.urls.publicUrl;
    const { verifier, challenge } = pkce();
    secrets.push(verifier);
    const jar = new CookieJar();
    const registered = (await (
      await fetch(`${base}/oauth/register`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ redirect_uris: [REDIRECT], token_endpoint_auth_method: 'none' }),
      })
    ).json()) as { client_id: string };
    const result = await signIn(
      authorizeUrl(base, {
        clientId: registered.client_id,
        redirectUri: REDIRECT,
        challenge,
        resource: gw.gateway.urls.resource,
      }),
      { username: 'alice', password: PASSWORD, jar },
    );
    let accessToken = '';
    const code = result.callback.searchParams.get('code') as string;
    secrets.push(code, ...[...result.jar.cookies.values()]);

    const token = await during(() =>
      fetch(`${base}/oauth/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: result.jar.header() },
        body: new URLSearchParams({
          grant_type: 'authorization_code',
          client_id: registered.client_id,
          code,
          code_verifier: verifier,
          redirect_uri: REDIRECT,
        }).toString(),
      }).then(async (response) => {
        const body = (await response.clone().json()) as { access_token: string; refresh_token?: string };
        accessToken = body.access_token;
        secrets.push(body.access_token, ...(body.refresh_token === undefined ? [] : [body.refresh_token]));
        return response;
      }),
    );
    const tokenId = token.response.headers.get('x-request-id');
    expect(tokenId).toMatch(/^[A-Za-z0-9_-]{16}$/);
    expect(token.logged.length).toBeGreaterThanOrEqual(1);
    expect(token.logged.map((line) => line.requestId)).toEqual(token.logged.map(() => tokenId));

    // An MCP request that starts an upstream: its lines carry its id; the child's own output carries none.
    const initialize = await during(() => postMcp(gw.mcpUrl, accessToken, INIT));
    expect(initialize.response.status).toBe(200);
    const initializeId = initialize.response.headers.get('x-request-id');
    const childOutput = (line: Line) => line.upstream === 'stdio' && line.audit !== true;
    const ours = initialize.logged.filter((line) => !childOutput(line));
    expect(ours.length).toBeGreaterThanOrEqual(3);
    expect(ours.map((line) => line.msg)).toContain('token verified');
    expect(ours.map((line) => line.msg)).toContain('session.opened');
    expect(ours.map((line) => line.msg)).toContain('upstream.started');
    expect(ours.map((line) => line.requestId)).toEqual(ours.map(() => initializeId));
    for (const line of initialize.logged.filter(childOutput)) {
      expect(line.requestId).toBeUndefined();
    }
    expect(ours.find((line) => line.msg === 'token verified')).toMatchObject({
      verifier: 'gatehouse',
      cache: 'miss',
    });

    // A refused request: its refusal and its audit line share the id of the 401.
    const forged = `${accessToken.slice(0, -4)}AAAA`;
    secrets.push(forged);
    const refused = await during(() => postMcp(gw.mcpUrl, forged, INIT));
    expect(refused.response.status).toBe(401);
    expect(refused.logged.length).toBeGreaterThanOrEqual(1);
    expect(refused.logged.map((line) => line.requestId)).toEqual(
      refused.logged.map(() => refused.response.headers.get('x-request-id')),
    );
  });

  it('never writes a token, code, verifier, cookie or password, whatever the level', () => {
    const all = text.join('');
    expect(all.length).toBeGreaterThan(0);
    expect(secrets.length).toBeGreaterThanOrEqual(6);
    for (const secret of secrets) {
      expect(secret.length).toBeGreaterThan(8);
      expect(all.includes(secret), `a secret of ${secret.length} characters was logged`).toBe(false);
    }
  });
});
