import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { createGateway, type Gateway, type GatewayDeps } from './app.js';
import type { GatehouseConfig } from './config/schema.js';

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
  let handler: ((request: Request) => Response | Promise<Response>) | undefined;
  const server = serve({
    fetch: (request: Request) =>
      handler === undefined
        ? new Response('starting', { status: 503, headers: { 'retry-after': '1' } })
        : handler(request),
    hostname: config.server.host,
    port: config.server.port,
  });
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
  handler = (request) => gateway.app.fetch(request);
  gateway.start();
  return {
    gateway,
    port,
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Long-lived SSE streams would hold close() open forever.
        (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
      });
      await gateway.close();
    },
  };
}
