import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanEnv, runCli } from '../helpers/cli.js';
import type { TestGateway } from '../helpers/gateway.js';
import { freePort } from '../helpers/late-server.js';
import { eventually } from '../helpers/wait.js';
import { connectRaw } from '../helpers/websocket.js';
import {
  challengeError,
  type EventLog,
  legacyPost,
  mcpRequest,
  openLegacyStream,
  openSession,
  startRecorded,
  statelessRequest,
} from './helpers/harness.js';
import { addAccount, oauthError, refresh, signInAndRedeem } from './helpers/oauth-client.js';

/**
 * Finding 1: disabling an account (the real CLI, another process on the same SQLite store) takes its
 * access away on every transport at once — Streamable HTTP in both eras, legacy SSE, WebSocket — and its
 * refresh family with it. test/e2e/account-revocation.test.ts covers remove and passwd the same way.
 */
describe('an account disabled by the CLI is refused on every transport from the moment the command returns', () => {
  let dir: string;
  let config: string;
  let gw: TestGateway;
  let log: EventLog;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gatehouse-battery-revoke-'));
    const port = await freePort();
    config = join(dir, 'gatehouse.json');
    writeFileSync(config, JSON.stringify({ server: { port }, dataDir: join(dir, 'data') }));
    ({ gw, log } = await startRecorded({ dataDir: join(dir, 'data'), server: { port } }));
    await addAccount(gw, 'alice');
  });
  afterAll(async () => {
    await gw?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('users disable: session, stateless, legacy SSE, WebSocket and refresh all refused', async () => {
    const { clientId, tokens } = await signInAndRedeem(gw, { username: 'alice' });
    const token = tokens.access_token;
    const sessionId = await openSession(gw, token);
    const stream = await openLegacyStream(gw, token);
    const socket = await connectRaw(gw, { token });
    await socket.initialize();
    const statelessBefore = await mcpRequest(gw, token, statelessRequest('tools/list'));
    expect(statelessBefore.status).toBe(200);
    await statelessBefore.text();

    const disabled = await runCli(['users', 'disable', 'alice', '--config', config], dir, cleanEnv());
    expect(disabled.code).toBe(0);
    log.clear();

    const inSession = await mcpRequest(gw, token, { jsonrpc: '2.0', id: 3, method: 'ping' }, { sessionId });
    expect(inSession.status).toBe(401);
    expect(challengeError(inSession)).toBe('invalid_token');
    await inSession.text();
    const stateless = await mcpRequest(gw, token, statelessRequest('tools/list'));
    expect(stateless.status).toBe(401);
    await stateless.text();
    const legacy = await legacyPost(gw, stream.messagesPath, token, {
      jsonrpc: '2.0',
      id: 4,
      method: 'ping',
    });
    expect(legacy.status).toBe(401);
    await legacy.text();
    socket.send({ jsonrpc: '2.0', id: 9, method: 'ping' });
    expect((await socket.closed).code).toBe(4401);
    await expect(connectRaw(gw, { token })).rejects.toMatchObject({ status: 401 });

    const refused = log.of('guard.refused');
    expect(refused.every((event) => event.reason === 'token_revoked')).toBe(true);
    expect(new Set(refused.map((event) => event.transport))).toEqual(
      new Set(['streamable-http', 'legacy-sse', 'websocket']),
    );
    expect(await oauthError(await refresh(gw, clientId, tokens.refresh_token))).toBe('invalid_grant');
    // The open legacy stream ends too (its session was revoked), without waiting for its client.
    await eventually(async () => (await stream.next()) === undefined, 10_000);
    await stream.close();
  });
});
