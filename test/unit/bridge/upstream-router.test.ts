import {
  InMemoryTransport,
  type JSONRPCMessage,
  type JSONRPCNotification,
} from '@modelcontextprotocol/server';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { UpstreamRouter } from '../../../src/bridge/upstream-router.js';

const ENVELOPE = { 'io.modelcontextprotocol/protocolVersion': '2026-07-28' };

/** A router over one end of an in-memory pair; the test plays the upstream on the other end. */
async function pair() {
  const [gateway, upstream] = InMemoryTransport.createLinkedPair();
  const received: JSONRPCMessage[] = [];
  const unclaimed: JSONRPCMessage[] = [];
  upstream.onmessage = (message) => received.push(message);
  const router = new UpstreamRouter(gateway, (message) => unclaimed.push(message));
  await gateway.start();
  await upstream.start();
  const sentId = async (index: number) => {
    await vi.waitFor(() => expect(received.length).toBeGreaterThan(index));
    return (received[index] as { id: string }).id;
  };
  return { router, upstream, received, unclaimed, sentId, close: () => gateway.close() };
}

describe('UpstreamRouter', () => {
  let close: (() => Promise<void>) | undefined;
  afterEach(async () => close?.());

  it('sends the params untouched under its own id and resolves with the raw result', async () => {
    const link = await pair();
    close = link.close;
    const params = {
      name: 'ask',
      requestState: 'opaque',
      inputResponses: { a: { action: 'accept' } },
      _meta: ENVELOPE,
    };
    const answer = link.router.request(
      { method: 'tools/call', params, clientId: 7 },
      { notify: () => undefined, signal: new AbortController().signal },
    );
    const id = await link.sentId(0);
    expect(id).not.toBe(7);
    expect(link.received[0]).toEqual({ jsonrpc: '2.0', id, method: 'tools/call', params });
    const result = { resultType: 'input_required', requestState: 'next' };
    await link.upstream.send({ jsonrpc: '2.0', id, result });
    await expect(answer).resolves.toEqual({ result });
  });

  it('gives each concurrent request its own progress, and log messages to the request that asked for them', async () => {
    const link = await pair();
    close = link.close;
    const first: JSONRPCNotification[] = [];
    const second: JSONRPCNotification[] = [];
    const signal = new AbortController().signal;
    const a = link.router.request(
      { method: 'tools/call', params: { _meta: { ...ENVELOPE, progressToken: 'a' } }, clientId: 1 },
      { notify: (n) => first.push(n), signal },
    );
    const b = link.router.request(
      {
        method: 'tools/call',
        params: { _meta: { ...ENVELOPE, progressToken: 'b', 'io.modelcontextprotocol/logLevel': 'info' } },
        clientId: 2,
      },
      { notify: (n) => second.push(n), signal },
    );
    const idA = await link.sentId(0);
    const idB = await link.sentId(1);
    await link.upstream.send({
      jsonrpc: '2.0',
      method: 'notifications/progress',
      params: { progressToken: 'b', progress: 1 },
    });
    await link.upstream.send({
      jsonrpc: '2.0',
      method: 'notifications/progress',
      params: { progressToken: 'a', progress: 2 },
    });
    await link.upstream.send({
      jsonrpc: '2.0',
      method: 'notifications/message',
      params: { level: 'info', data: 'x' },
    });
    await link.upstream.send({ jsonrpc: '2.0', method: 'notifications/tools/list_changed' });
    await link.upstream.send({ jsonrpc: '2.0', id: idA, result: {} });
    await link.upstream.send({ jsonrpc: '2.0', id: idB, result: {} });
    await Promise.all([a, b]);
    expect(first.map((n) => n.params?.progress)).toEqual([2]);
    expect(second.map((n) => n.method)).toEqual(['notifications/progress', 'notifications/message']);
    // Nobody's: handed to the fallback (the SDK client that negotiated the connection).
    expect(link.unclaimed).toEqual([{ jsonrpc: '2.0', method: 'notifications/tools/list_changed' }]);
  });

  it("tags a subscription's notifications with the client's own request id", async () => {
    const link = await pair();
    close = link.close;
    const events: JSONRPCNotification[] = [];
    const aborter = new AbortController();
    const listening = link.router.request(
      { method: 'subscriptions/listen', params: { _meta: ENVELOPE }, clientId: 42 },
      { notify: (n) => events.push(n), signal: aborter.signal },
    );
    const id = await link.sentId(0);
    await link.upstream.send({
      jsonrpc: '2.0',
      method: 'notifications/tools/list_changed',
      params: { _meta: { 'io.modelcontextprotocol/subscriptionId': id } },
    });
    await vi.waitFor(() => expect(events).toHaveLength(1));
    expect(events[0]?.params?._meta).toEqual({ 'io.modelcontextprotocol/subscriptionId': '42' });
    aborter.abort();
    await expect(listening).rejects.toBeDefined();
    // The upstream is told to stop.
    await vi.waitFor(() =>
      expect(link.received.at(-1)).toEqual({
        jsonrpc: '2.0',
        method: 'notifications/cancelled',
        params: { requestId: id },
      }),
    );
  });

  it('fails every waiting request when the connection goes away', async () => {
    const link = await pair();
    close = link.close;
    const answer = link.router.request(
      { method: 'tools/call', params: { _meta: ENVELOPE }, clientId: 1 },
      { notify: () => undefined, signal: new AbortController().signal },
    );
    await link.sentId(0);
    link.router.failAll(new Error('gone'));
    await expect(answer).rejects.toThrow('gone');
  });
});
