import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanEnv, runCli } from '../helpers/cli.js';
import { freePort } from '../helpers/late-server.js';
import { postMcp } from '../helpers/mcp-http.js';
import type { CookieJar } from '../helpers/oauth.js';
import { type ServeProcess, startServe } from '../helpers/serve-process.js';
import { registerAndSignIn } from '../helpers/signed-in-client.js';
import { INIT, type RpcAnswer, rpcOf } from './helpers/harness.js';
import { PASSWORD, pkce, REDIRECT, type Tokens } from './helpers/oauth-client.js';

/**
 * SIGKILL of `gatehouse serve` (the real CLI, SQLite in a temp dir) in the middle of sign-ins, refreshes
 * and tool calls, then a restart on the same data directory. Nothing committed is lost — sessions,
 * grants, refresh families, browser sign-ins, signing keys — and nothing is half-written: the database is
 * intact, every family's current refresh token exists, and the refresh token that was in flight when the
 * process died behaves by the rules whether or not its rotation committed (retry within the grace window
 * → the identical answer; otherwise → a normal rotation), while an older one is still a reuse.
 */

const FAMILIES = 4;
const LOAD_MS = 2_000;

interface Family {
  clientId: string;
  jar: CookieJar;
  sessionId: string;
  /** The first refresh token: the attacker's stale copy after restart. */
  first: string;
  /** The newest refresh token whose answer we saw. */
  current: string;
  /** A refresh token sent whose answer never came (the process died): it may or may not have rotated. */
  unanswered: string | undefined;
  access: string;
  refreshes: number;
  calls: number;
}

describe('SIGKILL under load, restart on SQLite', () => {
  let dir: string;
  let config: string;
  let base: string;
  let serve: ServeProcess | undefined;

  const env = cleanEnv();
  const start = async () => {
    serve = await startServe(['--config', config], { cwd: dir, env, timeoutMs: 60_000 });
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gatehouse-sigkill-'));
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    config = join(dir, 'gatehouse.json');
    writeFileSync(
      config,
      JSON.stringify({
        dataDir: join(dir, 'data'),
        server: { port },
        // Restart may take a while on a loaded machine; the retry of an in-flight refresh must still count.
        authorizationServer: { refreshGraceSeconds: 120 },
        log: { level: 'warn' },
      }),
    );
    const added = await runCli(
      ['users', 'add', 'alice', '--password-stdin', '--config', config],
      dir,
      env,
      `${PASSWORD}\n`,
    );
    expect(added.code).toBe(0);
  }, 60_000);
  afterAll(async () => {
    if (serve !== undefined && serve.child.exitCode === null) {
      serve.child.kill('SIGKILL');
      await serve.exited;
    }
    rmSync(dir, { recursive: true, force: true });
  });

  const form = (path: string, fields: Record<string, string>) =>
    fetch(`${base}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(fields).toString(),
    });
  const mcp = (token: string, body: unknown, sessionId?: string) =>
    postMcp(`${base}/mcp`, token, body, sessionId);
  const authorize = (clientId: string, challenge: string, extra: Record<string, string> = {}) =>
    `${base}/oauth/authorize?${new URLSearchParams({
      response_type: 'code',
      client_id: clientId,
      redirect_uri: REDIRECT,
      code_challenge: challenge,
      code_challenge_method: 'S256',
      resource: `${base}/mcp`,
      ...extra,
    })}`;

  async function signInFamily(): Promise<Family> {
    const { clientId, tokens, jar } = await registerAndSignIn(
      { base, resource: `${base}/mcp` },
      { username: 'alice', password: PASSWORD },
      'Crash test client',
    );
    const opened = await mcp(tokens.access_token, INIT);
    expect(opened.status).toBe(200);
    await opened.text();
    const sessionId = opened.headers.get('mcp-session-id') ?? '';
    await (
      await mcp(tokens.access_token, { jsonrpc: '2.0', method: 'notifications/initialized' }, sessionId)
    ).text();
    return {
      clientId,
      jar,
      sessionId,
      first: tokens.refresh_token,
      current: tokens.refresh_token,
      unanswered: undefined,
      access: tokens.access_token,
      refreshes: 0,
      calls: 0,
    };
  }

  async function refreshLoop(family: Family, stop: { stopped: boolean }): Promise<void> {
    while (!stop.stopped) {
      const sent = family.current;
      family.unanswered = sent;
      try {
        const response = await form('/oauth/token', {
          grant_type: 'refresh_token',
          client_id: family.clientId,
          refresh_token: sent,
        });
        const tokens = (await response.json()) as Tokens;
        if (response.status !== 200) throw new Error(`refresh answered ${response.status}`);
        family.current = tokens.refresh_token;
        family.access = tokens.access_token;
        family.unanswered = undefined;
        family.refreshes += 1;
      } catch (error) {
        if (stop.stopped) return; // the process was killed under this request
        throw error;
      }
    }
  }

  async function callLoop(family: Family, stop: { stopped: boolean }): Promise<void> {
    let id = 10;
    while (!stop.stopped) {
      try {
        const response = await mcp(
          family.access,
          {
            jsonrpc: '2.0',
            id: id++,
            method: 'tools/call',
            params: { name: 'notes_add', arguments: { text: `n${id}` } },
          },
          family.sessionId,
        );
        const answer = await rpcOf(response);
        if (answer.result === undefined) throw new Error(`tool call failed: ${JSON.stringify(answer)}`);
        family.calls += 1;
      } catch (error) {
        if (stop.stopped) return;
        throw error;
      }
    }
  }

  async function signInLoop(stop: { stopped: boolean }): Promise<void> {
    while (!stop.stopped) {
      try {
        await signInFamily();
      } catch (error) {
        if (stop.stopped) return;
        throw error;
      }
    }
  }

  it('loses no committed session, grant or refresh family, and half-writes nothing', async () => {
    await start();
    const families: Family[] = [];
    for (let index = 0; index < FAMILIES; index += 1) families.push(await signInFamily());

    // A refresh whose answer the client never received (it died with the connection): the rotation
    // committed, so after the restart a retry of the same token must get that very answer.
    const lost = await signInFamily();
    const lostAnswer = await (
      await form('/oauth/token', {
        grant_type: 'refresh_token',
        client_id: lost.clientId,
        refresh_token: lost.current,
      })
    ).json();

    const stop = { stopped: false };
    const loops = [
      ...families.flatMap((family) => [refreshLoop(family, stop), callLoop(family, stop)]),
      signInLoop(stop),
    ];
    await new Promise((resolve) => setTimeout(resolve, LOAD_MS));
    stop.stopped = true;
    serve?.child.kill('SIGKILL');
    expect(await serve?.exited).toBe('SIGKILL');
    await Promise.all(loops); // every loop ends without an unexpected error
    expect(families.every((family) => family.refreshes > 0 && family.calls > 0)).toBe(true);

    await start();

    // Nothing half-written: the database is intact and every family has its current refresh token.
    const db = new Database(join(dir, 'data', 'gatehouse.db'), { readonly: true });
    try {
      expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
      expect(db.pragma('foreign_key_check')).toEqual([]);
      expect(
        db
          .prepare(
            `SELECT id FROM grants g WHERE generation > 0 AND NOT EXISTS
               (SELECT 1 FROM refresh_tokens r WHERE r.grant_id = g.id AND r.generation = g.generation)`,
          )
          .all(),
      ).toEqual([]);
      expect(
        db.prepare('SELECT id FROM grants WHERE generation > 1 AND grace_response IS NULL').all(),
      ).toEqual([]);
      expect(db.prepare('SELECT COUNT(*) AS n FROM grants WHERE revoked_at IS NOT NULL').get()).toEqual({
        n: 0,
      });
    } finally {
      db.close();
    }

    const retriedLost = await form('/oauth/token', {
      grant_type: 'refresh_token',
      client_id: lost.clientId,
      refresh_token: lost.current,
    });
    expect(retriedLost.status).toBe(200);
    expect(await retriedLost.json()).toEqual(lostAnswer);

    for (const family of families) {
      // Access tokens signed before the kill still verify (the signing keys were kept), and the MCP
      // session still selects this user's state (a new upstream, the initialize replayed).
      const listed = await mcp(
        family.access,
        { jsonrpc: '2.0', id: 99, method: 'tools/call', params: { name: 'notes_list', arguments: {} } },
        family.sessionId,
      );
      expect(listed.status).toBe(200);
      expect(((await rpcOf(listed)) as RpcAnswer).result).toBeDefined();

      // The refresh token in flight at the kill (or the current one): rotated or not, it is honoured.
      const inFlight = family.unanswered ?? family.current;
      const retried = await form('/oauth/token', {
        grant_type: 'refresh_token',
        client_id: family.clientId,
        refresh_token: inFlight,
      });
      expect(retried.status).toBe(200);
      const next = (await retried.json()) as Tokens;
      const rotated = await form('/oauth/token', {
        grant_type: 'refresh_token',
        client_id: family.clientId,
        refresh_token: next.refresh_token,
      });
      expect(rotated.status).toBe(200);
      const latest = (await rotated.json()) as Tokens;

      // The browser's sign-in survived: prompt=none answers with a code.
      const silent = await fetch(authorize(family.clientId, pkce().challenge, { prompt: 'none' }), {
        redirect: 'manual',
        headers: { cookie: family.jar.header() },
      });
      expect(new URL(silent.headers.get('location') ?? 'x:/').searchParams.get('code')).toMatch(/^ghc_/);

      // The stale first token is still recognised as reuse: the family dies, its access token with it.
      const reused = await form('/oauth/token', {
        grant_type: 'refresh_token',
        client_id: family.clientId,
        refresh_token: family.first,
      });
      expect(reused.status).toBe(400);
      expect(((await reused.json()) as { error: string }).error).toBe('invalid_grant');
      const refused = await mcp(latest.access_token, { jsonrpc: '2.0', id: 1, method: 'ping' });
      expect(refused.status).toBe(401);
      await refused.text();
    }
  }, 150_000);
});
