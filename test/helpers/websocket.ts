import type { IncomingHttpHeaders } from 'node:http';
import { expect } from 'vitest';
import { type ClientOptions, WebSocket as WS } from 'ws';
import type { TestGateway } from './gateway.js';
import { text } from './mcp.js';

export const PROTOCOL_VERSION = '2025-06-18';

/**
 * A `WebSocket` class for the SDK's `WebSocketClientTransport` (which opens `globalThis.WebSocket`, absent
 * on Node 20, and sets no headers): a `ws` socket that authenticates with a `hello` message first and
 * keeps the `hello_ack` from the SDK, handing it to `acks` when given.
 */
export function helloWebSocket(token: string, acks?: unknown[]): unknown {
  const onmessage = Object.getOwnPropertyDescriptor(WS.prototype, 'onmessage') as PropertyDescriptor;
  return class extends WS {
    constructor(url: string | URL, protocols?: string | string[]) {
      super(url, protocols);
      // Registered before the SDK's own `onopen`: the hello goes first, `initialize` right behind it.
      this.addEventListener('open', () => this.send(JSON.stringify({ op: 'hello', token })));
      Object.defineProperty(this, 'onmessage', {
        get: () => onmessage.get?.call(this),
        set: (listener: ((event: WS.MessageEvent) => void) | null) =>
          onmessage.set?.call(this, (event: WS.MessageEvent) => {
            const message = JSON.parse(String(event.data)) as { op?: string };
            if (message.op === 'hello_ack') acks?.push(message);
            else listener?.(event);
          }),
      });
    }
  };
}

export function wsUrl(gw: TestGateway): string {
  const url = new URL(gw.gateway.config.websocket.path, gw.mcpUrl);
  url.protocol = 'ws:';
  return url.href;
}

export interface Refusal {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

export interface Closed {
  code: number;
  reason: string;
}

/** A plain `ws` client that speaks JSON-RPC by hand, so every byte on the wire is the test's. */
export class RawClient {
  readonly closed: Promise<Closed>;
  private readonly inbox: Array<Record<string, unknown>> = [];
  private readonly waiters: Array<{
    match: (message: Record<string, unknown>) => boolean;
    resolve: (message: Record<string, unknown>) => void;
  }> = [];
  private seq = 0;

  constructor(readonly ws: WS) {
    ws.on('message', (data) => {
      const message = JSON.parse(String(data)) as Record<string, unknown>;
      const index = this.waiters.findIndex((waiter) => waiter.match(message));
      if (index === -1) {
        this.inbox.push(message);
        return;
      }
      const [waiter] = this.waiters.splice(index, 1);
      waiter?.resolve(message);
    });
    this.closed = new Promise((resolve) => {
      ws.once('close', (code, reason) => resolve({ code, reason: reason.toString('utf8') }));
    });
  }

  /** The first message (already received or still to come) that `match` accepts; rejects if the socket closes first. */
  next(match: (message: Record<string, unknown>) => boolean = () => true): Promise<Record<string, unknown>> {
    const index = this.inbox.findIndex(match);
    if (index !== -1) return Promise.resolve(this.inbox.splice(index, 1)[0] as Record<string, unknown>);
    return new Promise((resolve, reject) => {
      this.waiters.push({ match, resolve });
      void this.closed.then((closed) => reject(new Error(`socket closed: ${closed.code} ${closed.reason}`)));
    });
  }

  send(message: unknown): void {
    this.ws.send(typeof message === 'string' ? message : JSON.stringify(message));
  }

  async request(method: string, params: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
    const id = ++this.seq;
    this.send({ jsonrpc: '2.0', id, method, params });
    return this.next((message) => message.id === id && !('method' in message));
  }

  async hello(token: string): Promise<Record<string, unknown>> {
    this.send({ op: 'hello', token });
    return this.next((message) => message.op === 'hello_ack');
  }

  async initialize(): Promise<void> {
    const answer = await this.request('initialize', {
      protocolVersion: PROTOCOL_VERSION,
      capabilities: {},
      clientInfo: { name: 'raw-ws', version: '1.0.0' },
    });
    expect(answer.result).toBeDefined();
    this.send({ jsonrpc: '2.0', method: 'notifications/initialized' });
  }

  async call(name: string, args: Record<string, unknown> = {}): Promise<string> {
    const answer = await this.request('tools/call', { name, arguments: args });
    return text(answer.result);
  }

  async whoami(): Promise<{ userId: string; email: string | null; sessionId: string | null; pid: number }> {
    return JSON.parse(await this.call('whoami'));
  }

  close(): Promise<Closed> {
    this.ws.close();
    return this.closed;
  }
}

/** Opens a socket; rejects with the HTTP answer when the gateway refuses the upgrade. */
export function connectRaw(
  gw: TestGateway,
  options: { token?: string; origin?: string; protocols?: string[]; localAddress?: string } = {},
): Promise<RawClient> {
  const clientOptions: ClientOptions = {
    headers: options.token === undefined ? {} : { authorization: `Bearer ${options.token}` },
    ...(options.origin === undefined ? {} : { origin: options.origin }),
    ...(options.localAddress === undefined ? {} : { localAddress: options.localAddress }),
  };
  const ws = new WS(wsUrl(gw), options.protocols ?? ['mcp'], clientOptions);
  const client = new RawClient(ws);
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(client));
    ws.once('unexpected-response', (_request, response) => {
      let body = '';
      response.on('data', (chunk: Buffer) => {
        body += chunk.toString('utf8');
      });
      response.on('end', () => reject({ status: response.statusCode ?? 0, headers: response.headers, body }));
    });
    ws.once('error', reject);
  });
}
