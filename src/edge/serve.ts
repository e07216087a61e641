import type { IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { serve } from '@hono/node-server';
import type { GatehouseConfig } from '../config/schema.js';
import { createGateway, type Gateway, type GatewayDeps } from './gateway.js';

export interface RunningGateway {
  readonly gateway: Gateway;
  /** The port actually bound (useful with `server.port: 0`). */
  readonly port: number;
  close(): Promise<void>;
}

/**
 * Binds the configured address, then assembles the gateway with the bound port so every published URL
 * (resource, metadata, issuer) is right even when the port was chosen by the OS.
 */
export async function serveGateway(config: GatehouseConfig, deps: GatewayDeps = {}): Promise<RunningGateway> {
  let handler: ((request: Request, env: unknown) => Response | Promise<Response>) | undefined;
  const server = serve({
    // The node bindings (`env.incoming`) carry the TCP peer: the edge reads the client's address from it.
    fetch: (request: Request, env: unknown) =>
      handler === undefined
        ? new Response('starting', { status: 503, headers: { 'retry-after': '1' } })
        : handler(request, env),
    hostname: config.server.host,
    port: config.server.port,
    serverOptions: {
      // Explicit limits on every route: a client that trickles its headers or body is cut off (408)
      // instead of holding a connection open for minutes.
      headersTimeout: config.server.headersTimeoutMs,
      requestTimeout: config.server.requestTimeoutMs,
      // How often Node checks those limits (its default, 30 s, would let a short limit run long).
      connectionsCheckingInterval: Math.min(1_000, config.server.headersTimeoutMs),
    },
  });
  let upgrade: ((request: IncomingMessage, socket: Duplex, head: Buffer) => void) | undefined;
  // WebSocket upgrades never reach the fetch handler; without an endpoint (starting, or disabled) refuse them.
  (server as unknown as NodeJS.EventEmitter).on(
    'upgrade',
    (request: IncomingMessage, socket: Duplex, head: Buffer) => {
      if (upgrade !== undefined) return upgrade(request, socket, head);
      socket.end('HTTP/1.1 404 Not Found\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
    },
  );
  const port = await new Promise<number>((resolve, reject) => {
    server.once('listening', () => resolve((server.address() as AddressInfo).port));
    server.once('error', reject);
  });
  let gateway: Gateway;
  try {
    gateway = await createGateway(config, deps, port);
  } catch (error) {
    server.close();
    throw error;
  }
  handler = (request, env) => gateway.app.fetch(request, env);
  const websocket = gateway.websocket;
  if (websocket !== undefined)
    upgrade = (request, socket, head) => websocket.handleUpgrade(request, socket, head);
  gateway.start();
  return {
    gateway,
    port,
    async close() {
      // Upgraded sockets are no longer the HTTP server's to close: close them first, or close() would wait.
      await gateway.websocket?.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Long-lived SSE streams would hold close() open forever.
        (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
      });
      await gateway.close();
    },
  };
}
