import type { JSONRPCRequest } from '@modelcontextprotocol/server';
import { describe, expect, it } from 'vitest';
import type { CallContext, CallTransport } from '../../../src/bridge/interceptors.js';
import { createGatewayDrain } from '../../../src/edge/drain.js';
import type { Principal } from '../../../src/identity/principal.js';

const principal = { subject: 'alice' } as unknown as Principal;
const call = (transport: CallTransport, sessionId: string | undefined): CallContext => ({
  principal,
  cacheHit: false,
  sessionId,
  transport,
});
const request = (id: number): JSONRPCRequest => ({ jsonrpc: '2.0', id, method: 'tools/call', params: {} });
const answer = { result: {} };

describe('createGatewayDrain', () => {
  it('is not draining until begin(), then stays so', () => {
    const drain = createGatewayDrain();
    expect(drain.draining).toBe(false);
    drain.begin();
    drain.begin();
    expect(drain.draining).toBe(true);
  });

  it('counts WebSocket and legacy SSE calls until their answer; HTTP calls are the server’s to count', async () => {
    const drain = createGatewayDrain();
    const { interceptor } = drain;
    const ws = request(1);
    const sse = request(2);
    const http = request(3);
    const stateless = request(4);
    expect(await interceptor.request?.(ws, call('websocket', 's1'))).toBeUndefined();
    await interceptor.request?.(sse, call('legacy-sse', 's2'));
    await interceptor.request?.(http, call('streamable-http', 's3'));
    await interceptor.request?.(stateless, call('stateless', undefined));
    expect(drain.callsInFlight).toBe(2);
    expect(interceptor.response?.(ws, answer, call('websocket', 's1'))).toBe(answer);
    expect(drain.callsInFlight).toBe(1);
    interceptor.response?.(http, answer, call('streamable-http', 's3'));
    expect(drain.callsInFlight).toBe(1);
    interceptor.response?.(sse, answer, call('legacy-sse', 's2'));
    expect(drain.callsInFlight).toBe(0);
  });

  it('forgets the calls of a session whose upstream was closed, and only those', async () => {
    const drain = createGatewayDrain();
    await drain.interceptor.request?.(request(1), call('websocket', 'gone'));
    await drain.interceptor.request?.(request(2), call('websocket', 'gone'));
    await drain.interceptor.request?.(request(3), call('legacy-sse', 'kept'));
    drain.forgetSession('gone');
    expect(drain.callsInFlight).toBe(1);
  });
});

describe('createGatewayDrain while draining', () => {
  it('refuses new WebSocket and legacy SSE calls (ERR_SHUTTING_DOWN) and lets HTTP ones through', async () => {
    const drain = createGatewayDrain();
    drain.begin();
    const refused = await drain.interceptor.request?.(request(1), call('websocket', 's1'));
    expect(refused).toMatchObject({ error: { data: { code: 'ERR_SHUTTING_DOWN' } } });
    expect(await drain.interceptor.request?.(request(2), call('legacy-sse', 's2'))).toMatchObject({
      error: { data: { code: 'ERR_SHUTTING_DOWN' } },
    });
    expect(await drain.interceptor.request?.(request(3), call('streamable-http', 's3'))).toBeUndefined();
    expect(drain.callsInFlight).toBe(0);
  });
});
