import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createServer } from 'node:net';
import { serve } from '@hono/node-server';

/**
 * A loopback HTTP server listening before its app exists: library mode needs its public URL (the port)
 * to build the app. Requests before `setApp` get 503.
 */
export interface LateServer {
  readonly publicUrl: string;
  setApp(app: { fetch: (request: Request) => Response | Promise<Response> }): void;
  close(): Promise<void>;
}

export async function serveLate(): Promise<LateServer> {
  let app: { fetch: (request: Request) => Response | Promise<Response> } | undefined;
  const server = serve({
    fetch: (request) => (app === undefined ? new Response(null, { status: 503 }) : app.fetch(request)),
    hostname: '127.0.0.1',
    port: 0,
  });
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  const { port } = server.address() as AddressInfo;
  return {
    publicUrl: `http://127.0.0.1:${port}`,
    setApp: (next) => {
      app = next;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Open GET streams and keep-alive sockets would hold close() until they time out.
        (server as Server).closeAllConnections();
      }),
  };
}

/** A loopback port nothing listens on right now (for servers that must know each other's URL up front). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}
