import type { Server } from 'node:http';
import { serve } from '@hono/node-server';
import { createNotesHttpApp } from '../../../src/demo/http.js';

/** How the upstream behaves for the next requests. */
export type ChaosMode = 'ok' | 'hang' | 'html' | 'not-jsonrpc' | 'server-error' | 'refuse' | 'truncated';

/**
 * A Streamable HTTP upstream (the demo notes server, verifying Gatehouse's identity tokens) that can be
 * told to misbehave — hang, answer garbage, fail — or be taken down and brought back on the same port.
 */
export interface ChaosUpstream {
  readonly url: string;
  mode: ChaosMode;
  /** Requests received while in each mode. */
  readonly seen: ChaosMode[];
  down(): Promise<void>;
  up(): Promise<void>;
  close(): Promise<void>;
}

export async function startChaosUpstream(options: {
  port: number;
  gatewayUrl: string;
}): Promise<ChaosUpstream> {
  const url = `http://127.0.0.1:${options.port}/mcp`;
  const app = createNotesHttpApp({
    jwksUrl: `${options.gatewayUrl}/.well-known/jwks.json`,
    issuer: `${options.gatewayUrl}/`,
    audience: url,
  });
  const hanging = new Set<() => void>();
  const state: ChaosUpstream = {
    url,
    mode: 'ok',
    seen: [],
    down: async () => {
      if (server === undefined) return;
      const closing = server;
      server = undefined;
      for (const release of hanging) release();
      await new Promise<void>((resolve) => {
        closing.close(() => resolve());
        closing.closeAllConnections();
      });
    },
    up: async () => {
      if (server === undefined) server = await listen();
    },
    close: async () => {
      await state.down();
      await app.close();
    },
  };
  const handle = async (request: Request): Promise<Response> => {
    state.seen.push(state.mode);
    switch (state.mode) {
      case 'hang':
        return new Promise<Response>((resolve) => {
          const release = () => resolve(new Response(null, { status: 503 }));
          hanging.add(release);
        });
      case 'html':
        return new Response('<html><body>Welcome to nginx!</body></html>', {
          headers: { 'content-type': 'text/html' },
        });
      case 'not-jsonrpc':
        return new Response('{"hello":"world"}', { headers: { 'content-type': 'application/json' } });
      case 'server-error':
        return new Response('upstream exploded', { status: 500 });
      case 'refuse':
        return new Response('{}', {
          status: 403,
          headers: { 'content-type': 'application/json', 'www-authenticate': 'Bearer' },
        });
      case 'truncated':
        return new Response('event: message\ndata: {"jsonrpc":"2.0","id":', {
          headers: { 'content-type': 'text/event-stream' },
        });
      default:
        return app.fetch(request);
    }
  };
  const listen = () =>
    new Promise<Server>((resolve) => {
      const created = serve({ fetch: handle, hostname: '127.0.0.1', port: options.port }) as Server;
      created.once('listening', () => resolve(created));
    });
  let server: Server | undefined = await listen();
  return state;
}
