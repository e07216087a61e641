import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { TestGateway } from '../helpers/gateway.js';
import { freePort } from '../helpers/late-server.js';
import { type ChaosMode, type ChaosUpstream, startChaosUpstream } from './helpers/chaos-upstream.js';
import {
  callTool,
  type EventLog,
  INIT,
  mcpRequest,
  openSession,
  rpcOf,
  sessionsOf,
  startRecorded,
  statelessRequest,
  toolText,
} from './helpers/harness.js';

/**
 * Faults of the upstream MCP server, caused for real: a stdio child that dies mid-call, an HTTP
 * upstream that is down, hangs, or answers garbage — at `initialize` and in the middle of a session. The
 * defended outcome: an answer at once (never a hang, never a 500) with the stable `data.reason`, an
 * `upstream.failed` event, no session left behind by a failed `initialize`, and service resumed once
 * the upstream is back.
 */

const crashy = fileURLToPath(new URL('../fixtures/crashy-server.ts', import.meta.url));
/** An answer to a hung upstream must come within its timeout plus this much, on a loaded machine. */
const MARGIN_MS = 8_000;

/** `promise`, or a rejection naming the hang once `ms` have passed (a test must fail, not time out). */
function within<T>(ms: number, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms: the request hangs`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

describe('a stdio child crashing mid-call', () => {
  let gw: TestGateway;
  let log: EventLog;
  beforeAll(async () => {
    ({ gw, log } = await startRecorded({
      store: { kind: 'memory' },
      upstream: { kind: 'stdio', command: process.execPath, args: ['--import', 'tsx', crashy] },
    }));
  });
  afterAll(async () => {
    await gw?.close();
  });

  it('answers the waiting call with upstream_exited, spares other users, and the next call gets a new child', async () => {
    const alice = await gw.token('alice');
    const bob = await gw.token('bob');
    const aliceSession = await openSession(gw, alice);
    const bobSession = await openSession(gw, bob);
    log.clear();
    const [crash, bystander] = await Promise.all([
      callTool(gw, alice, aliceSession, 'crash'),
      callTool(gw, bob, bobSession, 'echo', { text: 'still here' }),
    ]);
    expect(crash.status).not.toBe(500);
    expect(crash.answer.error?.code).toBe(-32000);
    expect(crash.answer.error?.data?.reason).toBe('upstream_exited');
    expect(toolText(bystander.answer)).toBe('still here');
    expect(log.of('tool.called')).toEqual(
      expect.arrayContaining([expect.objectContaining({ tool: 'crash', outcome: 'failed' })]),
    );
    const again = await callTool(gw, alice, aliceSession, 'echo', { text: 'back' }, 3);
    expect(toolText(again.answer)).toBe('back');
  });
});

describe('an HTTP upstream that is down, slow or answering garbage', () => {
  let gw: TestGateway;
  let log: EventLog;
  let upstream: ChaosUpstream;
  const REQUEST_TIMEOUT_MS = 1_500;
  beforeAll(async () => {
    const port = await freePort();
    upstream = await startChaosUpstream({ port: await freePort(), gatewayUrl: `http://127.0.0.1:${port}` });
    ({ gw, log } = await startRecorded({
      store: { kind: 'memory' },
      server: { port },
      upstream: { kind: 'http', url: upstream.url, requestTimeoutMs: REQUEST_TIMEOUT_MS },
    }));
  });
  afterEach(async () => {
    upstream.mode = 'ok';
    await upstream.up();
  });
  afterAll(async () => {
    await gw?.close();
    await upstream?.close();
  });

  /** An initialize that must fail: its status and reason, an event, and no session. */
  async function expectInitializeFails(subject: string, status: number, reason: string): Promise<void> {
    log.clear();
    const started = Date.now();
    const response = await within(
      REQUEST_TIMEOUT_MS + MARGIN_MS,
      mcpRequest(gw, await gw.token(subject), INIT),
    );
    expect({ status: response.status, sessionId: response.headers.get('mcp-session-id') }).toEqual({
      status,
      sessionId: null,
    });
    expect((await rpcOf(response)).error?.data?.reason).toBe(reason);
    expect(Date.now() - started).toBeLessThan(REQUEST_TIMEOUT_MS + MARGIN_MS);
    expect(log.of('upstream.failed')).toMatchObject([{ reason }]);
    expect(await sessionsOf(gw, subject)).toEqual([]);
  }

  it('down at initialize: 502 upstream_unreachable; back up: served', async () => {
    await upstream.down();
    await expectInitializeFails('down-user', 502, 'upstream_unreachable');
    const stateless = await mcpRequest(gw, await gw.token('down-user'), statelessRequest('tools/list'));
    expect(stateless.status).toBe(502);
    expect((await rpcOf(stateless)).error?.data?.reason).toBe('upstream_unreachable');
    await upstream.up();
    const token = await gw.token('down-user');
    const sessionId = await openSession(gw, token);
    expect(JSON.parse(toolText((await callTool(gw, token, sessionId, 'whoami')).answer))).toMatchObject({
      userId: 'down-user',
    });
  });

  for (const [mode, status, reason] of [
    ['hang', 504, 'upstream_timeout'],
    ['html', 502, 'upstream_invalid_response'],
    ['not-jsonrpc', 502, 'upstream_invalid_response'],
    ['server-error', 502, 'upstream_invalid_response'],
    ['truncated', 502, 'upstream_invalid_response'],
    ['refuse', 502, 'upstream_rejected'],
  ] as Array<[ChaosMode, number, string]>) {
    it(`${mode} at initialize: ${status} ${reason}, no session`, async () => {
      upstream.mode = mode;
      await expectInitializeFails(`${mode}-user`, status, reason);
    });
  }

  for (const [mode, reasons] of [
    ['down', ['upstream_unreachable', 'upstream_exited']],
    ['hang', ['upstream_timeout']],
    ['html', ['upstream_invalid_response']],
    ['server-error', ['upstream_invalid_response']],
  ] as Array<[ChaosMode | 'down', string[]]>) {
    it(`${mode} in the middle of a session: the call is answered with its reason, never left hanging`, async () => {
      const token = await gw.token(`mid-${mode}`);
      const sessionId = await openSession(gw, token);
      expect((await callTool(gw, token, sessionId, 'whoami')).answer.result).toBeDefined();
      if (mode === 'down') await upstream.down();
      else upstream.mode = mode;
      log.clear();
      const started = Date.now();
      const failed = await within(
        REQUEST_TIMEOUT_MS + MARGIN_MS,
        callTool(gw, token, sessionId, 'whoami', {}, 7),
      );
      expect(Date.now() - started).toBeLessThan(REQUEST_TIMEOUT_MS + MARGIN_MS);
      expect(failed.status).not.toBe(500);
      expect(reasons).toContain(failed.answer.error?.data?.reason);
      expect(log.of('tool.called')).toMatchObject([{ outcome: 'failed' }]);
      // Once the upstream is healthy again, the user is served again (same session, or a new one).
      upstream.mode = 'ok';
      await upstream.up();
      const retry = await callTool(gw, token, sessionId, 'whoami', {}, 8);
      const served =
        retry.answer.result !== undefined
          ? retry.answer
          : (await callTool(gw, token, await openSession(gw, token), 'whoami', {}, 9)).answer;
      expect(JSON.parse(toolText(served))).toMatchObject({ userId: `mid-${mode}` });
    });
  }
});
