import { Client as V1Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport as V1Transport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { GatehouseEvent } from '../../src/ops/events.js';
import { type PollingServer, startPollingServer } from '../fixtures/polling-server.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { text } from '../helpers/mcp.js';
import { ACCEPT, INIT } from '../helpers/mcp-http.js';

/** The upstream's `retry`, which the gateway passes on once it has seen it. */
const UPSTREAM_RETRY_MS = 300;
const PROTOCOL = '2025-11-25';

interface SseEvent {
  readonly id?: string;
  readonly retry?: number;
  readonly data: string;
}

interface Session {
  readonly token: string;
  readonly sessionId: string;
}

/** Parses a whole SSE body (it ends when the server ends the stream); comments are skipped. */
async function readSse(response: Response): Promise<SseEvent[]> {
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toContain('text/event-stream');
  const body = await response.text();
  const events: SseEvent[] = [];
  for (const block of body.split('\n\n')) {
    const fields = block.split('\n').filter((line) => line !== '' && !line.startsWith(':'));
    if (fields.length === 0) continue;
    let id: string | undefined;
    let retry: number | undefined;
    const data: string[] = [];
    for (const line of fields) {
      const [name, value = ''] = line.split(/: ?(.*)/s, 2);
      if (name === 'id') id = value;
      if (name === 'retry') retry = Number(value);
      if (name === 'data') data.push(value);
    }
    events.push({
      ...(id !== undefined && { id }),
      ...(retry !== undefined && { retry }),
      data: data.join('\n'),
    });
  }
  return events;
}

function messagesOf(events: SseEvent[]): Array<Record<string, unknown>> {
  return events.filter((event) => event.data !== '').map((event) => JSON.parse(event.data));
}

function progressOf(events: SseEvent[]): unknown[] {
  return messagesOf(events)
    .filter((message) => message.method === 'notifications/progress')
    .map((message) => (message.params as { progress: unknown }).progress);
}

function responsesTo(events: SseEvent[], id: number): Array<Record<string, unknown>> {
  return messagesOf(events).filter((message) => message.id === id && !('method' in message));
}

describe('SSE resumption through the gateway (SEP-1699, 2025-era sessions)', () => {
  let gw: TestGateway;
  let upstream: PollingServer;
  const events: GatehouseEvent[] = [];

  beforeAll(async () => {
    upstream = await startPollingServer({ retryMs: UPSTREAM_RETRY_MS });
    gw = await startTestGateway({ store: { kind: 'memory' }, upstream: { kind: 'http', url: upstream.url } });
    gw.gateway.events.subscribe((event) => events.push(event));
  });
  afterAll(async () => {
    await gw?.close();
    await upstream?.close();
  });

  function headers(session: Session, extra: Record<string, string> = {}): Record<string, string> {
    return {
      authorization: `Bearer ${session.token}`,
      'mcp-session-id': session.sessionId,
      'mcp-protocol-version': PROTOCOL,
      ...extra,
    };
  }

  async function openSession(user: string): Promise<Session> {
    const token = await gw.token(user);
    const init = await fetch(gw.mcpUrl, {
      method: 'POST',
      headers: { accept: ACCEPT, 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify(INIT),
    });
    expect(init.status).toBe(200);
    await init.text();
    const sessionId = init.headers.get('mcp-session-id');
    expect(sessionId).toBeTruthy();
    const session = { token, sessionId: sessionId as string };
    const initialized = await fetch(gw.mcpUrl, {
      method: 'POST',
      headers: headers(session, { accept: ACCEPT, 'content-type': 'application/json' }),
      body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }),
    });
    expect(initialized.status).toBe(202);
    return session;
  }

  function callTool(
    session: Session,
    id: number,
    name: string,
    args: Record<string, unknown> = {},
    progressToken?: string,
  ): Promise<Response> {
    return fetch(gw.mcpUrl, {
      method: 'POST',
      headers: headers(session, { accept: ACCEPT, 'content-type': 'application/json' }),
      body: JSON.stringify({
        jsonrpc: '2.0',
        id,
        method: 'tools/call',
        params: { name, arguments: args, ...(progressToken !== undefined && { _meta: { progressToken } }) },
      }),
    });
  }

  function resume(session: Session, lastEventId: string): Promise<Response> {
    return fetch(gw.mcpUrl, {
      method: 'GET',
      headers: headers(session, { accept: 'text/event-stream', 'last-event-id': lastEventId }),
    });
  }

  // req: MCP-TRANSPORT-SSE-PRIMING, MCP-TRANSPORT-SSE-RESUME
  it('opens the POST stream with a priming event (id, retry), ends it with the upstream, answers on the resumed GET', async () => {
    const session = await openSession('polling-alice');
    const resumesBefore = upstream.resumes.length;
    const posted = await readSse(await callTool(session, 1, 'test_reconnection'));

    const [priming] = posted;
    expect(priming?.id).toBeTruthy();
    expect(priming?.data).toBe('');
    expect(priming?.retry).toBeGreaterThan(0);
    expect(posted.every((event) => event.id !== undefined)).toBe(true);
    // The stream ended with the upstream's, before the answer.
    expect(responsesTo(posted, 1)).toEqual([]);
    expect(upstream.resumes.length).toBeGreaterThan(resumesBefore);

    const resumed = await readSse(await resume(session, posted.at(-1)?.id as string));
    const [answer] = responsesTo(resumed, 1);
    expect(text(answer?.result)).toBe('Reconnection test completed');
    expect(resumed.every((event) => event.id !== undefined)).toBe(true);

    // The upstream's own `retry` is what the session's next streams carry.
    const again = await readSse(await callTool(session, 2, 'test_reconnection'));
    expect(again[0]?.retry).toBe(UPSTREAM_RETRY_MS);
    const answered = await readSse(await resume(session, again.at(-1)?.id as string));
    expect(responsesTo(answered, 2)).toHaveLength(1);
  });

  it('replays the answer to a client that comes back after it arrived', async () => {
    const session = await openSession('polling-late');
    const posted = await readSse(await callTool(session, 7, 'test_reconnection'));
    expect(responsesTo(posted, 7)).toEqual([]);
    await vi.waitFor(
      () => {
        expect(
          events.some(
            (event) =>
              event.type === 'tool.called' &&
              event.sessionId === session.sessionId &&
              event.outcome === 'success',
          ),
        ).toBe(true);
      },
      { timeout: 10_000, interval: 25 },
    );
    const resumed = await readSse(await resume(session, posted.at(-1)?.id as string));
    expect(responsesTo(resumed, 7)).toHaveLength(1);
    // Resuming from the answer itself: nothing more to say, the stream ends at once.
    expect(await readSse(await resume(session, resumed.at(-1)?.id as string))).toEqual([]);
  });

  it('delivers progress sent around the pause exactly once across the two streams', async () => {
    const session = await openSession('polling-progress');
    const posted = await readSse(await callTool(session, 3, 'long_task', { before: 2, after: 3 }, 'tok'));
    expect(progressOf(posted)).toEqual([1, 2]);
    expect(responsesTo(posted, 3)).toEqual([]);

    const resumed = await readSse(await resume(session, posted.at(-1)?.id as string));
    expect(progressOf(resumed)).toEqual([3, 4, 5]);
    const [answer] = responsesTo(resumed, 3);
    expect(text(answer?.result)).toBe('done after 5');
    // The answer is the last event: the resumed stream ends with it.
    expect(messagesOf(resumed).at(-1)?.id).toBe(3);
  });

  it('keeps the stream of a request sent as an older protocol open until its answer', async () => {
    const session = await openSession('polling-older');
    const response = await fetch(gw.mcpUrl, {
      method: 'POST',
      headers: headers(session, {
        accept: ACCEPT,
        'content-type': 'application/json',
        'mcp-protocol-version': '2025-06-18',
      }),
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 5,
        method: 'tools/call',
        params: { name: 'long_task', arguments: { before: 1, after: 1 }, _meta: { progressToken: 'old' } },
      }),
    });
    const streamed = await readSse(response);
    // No priming event, so no promise that the stream may end early: it carries everything.
    expect(streamed[0]?.data).not.toBe('');
    expect(progressOf(streamed)).toEqual([1, 2]);
    expect(text(responsesTo(streamed, 5)[0]?.result)).toBe('done after 2');
  });

  it('serves the v1 SDK client, which reconnects by itself', async () => {
    const token = await gw.token('polling-v1');
    const client = new V1Client({ name: 'v1', version: '1.0.0' });
    await client.connect(
      new V1Transport(gw.mcpUrl, { requestInit: { headers: { authorization: `Bearer ${token}` } } }),
    );
    const result = await client.callTool({ name: 'test_reconnection', arguments: {} });
    expect(text(result)).toBe('Reconnection test completed');

    const progress: number[] = [];
    const long = await client.callTool({ name: 'long_task', arguments: { before: 2, after: 2 } }, undefined, {
      onprogress: (update) => progress.push(update.progress),
    });
    expect(text(long)).toBe('done after 4');
    expect(progress).toEqual([1, 2, 3, 4]);
    await client.close();
  });

  // req: MCP-SECURITY-SESSION-BINDING
  it("refuses another user's resume as an unknown session, and event ids this session never issued", async () => {
    const alice = await openSession('polling-owner');
    const posted = await readSse(await callTool(alice, 1, 'test_reconnection'));
    const lastEventId = posted.at(-1)?.id as string;

    const mallory = { token: await gw.token('polling-mallory'), sessionId: alice.sessionId };
    const stolen = await resume(mallory, lastEventId);
    expect(stolen.status).toBe(404);
    expect((await stolen.json()).error.data.code).toBe('ERR_SESSION_NOT_FOUND');

    // Another session of the same user knows nothing of Alice's ids; nor does hers of made-up ones.
    const other = await openSession('polling-owner');
    const [prefix, stream] = lastEventId.split('.');
    const attempts: Array<[Session, string]> = [
      [other, lastEventId],
      [alice, 'made-up'],
      [alice, `${prefix}.${stream}.999999`],
      [alice, `x${lastEventId}`],
    ];
    for (const [session, eventId] of attempts) {
      const refused = await resume(session, eventId);
      expect(refused.status).toBe(400);
      expect((await refused.json()).error.data).toMatchObject({
        code: 'ERR_BAD_REQUEST',
        reason: 'last_event_id_unknown',
      });
    }
    const notSse = await fetch(gw.mcpUrl, {
      method: 'GET',
      headers: headers(alice, { accept: 'application/json', 'last-event-id': lastEventId }),
    });
    expect(notSse.status).toBe(406);
    await notSse.body?.cancel();
    // Alice's own session still resumes her stream.
    expect(responsesTo(await readSse(await resume(alice, lastEventId)), 1)).toHaveLength(1);
  });

  it('ends a resumed stream when its session ends', async () => {
    const session = await openSession('polling-ended');
    const posted = await readSse(await callTool(session, 4, 'long_task', { before: 1, after: 200 }, 'tok'));
    const resumed = await resume(session, posted.at(-1)?.id as string);
    const reading = readSse(resumed);
    const deleted = await fetch(gw.mcpUrl, { method: 'DELETE', headers: headers(session) });
    expect(deleted.status).toBe(200);
    // The waiting request is answered (the session is gone), and the stream ends.
    const [answer] = responsesTo(await reading, 4);
    expect(answer?.error).toMatchObject({ data: { reason: 'upstream_exited' } });
    expect((await resume(session, posted.at(-1)?.id as string)).status).toBe(404);
  });
});
