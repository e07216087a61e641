import { afterEach, describe, expect, it } from 'vitest';
import { createManualClock, type ManualClock } from '../../src/ops/clock.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { INIT, messages, postMcp } from '../helpers/mcp-http.js';
import { eventually, isAlive } from '../helpers/wait.js';

describe('abandoned 2025-era sessions never lock a user out (over HTTP)', () => {
  let gw: TestGateway | undefined;
  let clock: ManualClock;
  afterEach(async () => {
    await gw?.close();
    gw = undefined;
  });

  async function start(sessions: Record<string, unknown>): Promise<TestGateway> {
    clock = createManualClock(Date.now());
    gw = await startTestGateway({ store: { kind: 'memory' }, sessions }, { clock });
    return gw;
  }

  const post = (running: TestGateway, token: string, body: unknown, sessionId?: string) =>
    postMcp(running.mcpUrl, token, body, sessionId);

  /** What a client that restarts without DELETE does: initialize, and never come back. */
  async function initialize(running: TestGateway, token: string): Promise<string> {
    const response = await post(running, token, INIT);
    expect(response.status).toBe(200);
    await messages(response);
    return response.headers.get('mcp-session-id') as string;
  }

  async function whoamiPid(running: TestGateway, token: string, sessionId: string): Promise<number> {
    const response = await post(
      running,
      token,
      { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'whoami', arguments: {} } },
      sessionId,
    );
    expect(response.status).toBe(200);
    const [answer] = await messages(response);
    const text = (answer as { result: { content: Array<{ text: string }> } }).result.content[0]?.text ?? '{}';
    return (JSON.parse(text) as { pid: number }).pid;
  }

  // req: MCP-TRANSPORT-SESSION-404
  it('at the cap, initialize ends the least recently used session (404 for its client, its child stops) instead of refusing', async () => {
    const running = await start({ maxPerUser: 3 });
    const token = await running.token('alice');
    const oldest = await initialize(running, token);
    const oldestPid = await whoamiPid(running, token, oldest);
    clock.advance(1_000);
    const older = [await initialize(running, token), await initialize(running, token)];
    clock.advance(1_000);
    // More restarts, as a client without DELETE makes them: every one gets a session.
    for (let restart = 0; restart < 4; restart++) {
      clock.advance(10);
      expect(typeof (await initialize(running, token))).toBe('string');
    }
    const evicted = await post(running, token, { jsonrpc: '2.0', id: 3, method: 'tools/list' }, oldest);
    expect(evicted.status).toBe(404);
    for (const id of older) {
      expect((await post(running, token, { jsonrpc: '2.0', id: 4, method: 'ping' }, id)).status).toBe(404);
    }
    await eventually(() => !isAlive(oldestPid));
    expect((await running.gateway.sessions.list({ ...principalOf('alice', running) })).length).toBe(3);
  });

  it('onLimit refuse keeps the old behaviour: 429 ERR_SESSION_LIMIT', async () => {
    const running = await start({ maxPerUser: 2, onLimit: 'refuse' });
    const token = await running.token('bob');
    await initialize(running, token);
    await initialize(running, token);
    const refused = await post(running, token, INIT);
    expect(refused.status).toBe(429);
    expect(((await refused.json()) as { error: { data: { code: string } } }).error.data.code).toBe(
      'ERR_SESSION_LIMIT',
    );
  });

  it('a session nobody came back to after initialize expires after the short pending idle time; a used one lives on', async () => {
    const running = await start({ pendingIdleTimeoutMs: 120_000, idleTimeoutMs: 30 * 60_000 });
    const token = await running.token('carol');
    const abandoned = await initialize(running, token);
    const used = await initialize(running, token);
    expect((await post(running, token, { jsonrpc: '2.0', id: 2, method: 'ping' }, used)).status).toBe(200);
    clock.advance(120_001);
    expect((await post(running, token, { jsonrpc: '2.0', id: 3, method: 'ping' }, abandoned)).status).toBe(
      404,
    );
    expect((await post(running, token, { jsonrpc: '2.0', id: 4, method: 'ping' }, used)).status).toBe(200);
  });
});

function principalOf(subject: string, running: TestGateway) {
  return {
    subject,
    issuer: running.gateway.urls.issuer,
    scopes: [],
    claims: {},
    expiresAt: 0,
    verifier: 'gatehouse',
  };
}
