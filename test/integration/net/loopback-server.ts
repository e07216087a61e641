import { readFileSync } from 'node:fs';
import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type OutgoingHttpHeaders,
  type ServerResponse,
} from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo } from 'node:net';

export type Route =
  | { kind: 'respond'; status?: number; headers?: OutgoingHttpHeaders; body?: string }
  | { kind: 'json'; body: unknown; status?: number; headers?: OutgoingHttpHeaders }
  | { kind: 'redirect'; location: string; status?: number }
  /** Streams `bytes` bytes without a content-length. */
  | { kind: 'stream'; bytes: number }
  /** Declares a body of 100 bytes, sends 10, then drops the connection. */
  | { kind: 'truncate' }
  /** Accepts the request and never answers. */
  | { kind: 'hang' };

/** A self-signed certificate for `cimd.example`, `cimd.test` and `other.example` (test only, valid until 2126). */
export const TEST_TLS_CERT = readFileSync(new URL('./fixtures/test-tls.crt', import.meta.url), 'utf8');
const TEST_TLS_KEY = readFileSync(new URL('./fixtures/test-tls.key', import.meta.url), 'utf8');

/** An HTTP (or, with `tls`, HTTPS) server on 127.0.0.1 that counts connections and requests, for SSRF and caching tests. */
export interface LoopbackServer {
  readonly port: number;
  /** `http(s)://127.0.0.1:<port><path>` */
  url(path: string): string;
  route(path: string, route: Route): void;
  /** TCP connections accepted so far. */
  connections(): number;
  /** Requests seen for `path` (all paths when omitted). */
  requests(path?: string): number;
  /** Request headers of the last request to `path`. */
  lastHeaders(path: string): IncomingHttpHeaders | undefined;
  close(): Promise<void>;
}

export async function startLoopbackServer(options: { tls?: boolean } = {}): Promise<LoopbackServer> {
  const routes = new Map<string, Route>();
  const counts = new Map<string, number>();
  const headers = new Map<string, IncomingHttpHeaders>();
  let connections = 0;
  const handler = (request: IncomingMessage, response: ServerResponse): void => {
    const path = request.url ?? '/';
    counts.set(path, (counts.get(path) ?? 0) + 1);
    headers.set(path, request.headers);
    const route = routes.get(path);
    if (route === undefined) {
      response.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    switch (route.kind) {
      case 'respond':
        response.writeHead(route.status ?? 200, route.headers ?? {}).end(route.body ?? '');
        return;
      case 'json':
        response
          .writeHead(route.status ?? 200, { 'content-type': 'application/json', ...route.headers })
          .end(JSON.stringify(route.body));
        return;
      case 'redirect':
        response.writeHead(route.status ?? 302, { location: route.location }).end();
        return;
      case 'stream': {
        response.writeHead(200, { 'content-type': 'application/octet-stream' });
        const chunk = Buffer.alloc(1024, 'a');
        let sent = 0;
        const pump = (): void => {
          while (sent < route.bytes) {
            sent += chunk.byteLength;
            if (!response.write(chunk)) {
              response.once('drain', pump);
              return;
            }
          }
          response.end();
        };
        response.on('error', () => undefined);
        pump();
        return;
      }
      case 'truncate':
        response.writeHead(200, { 'content-length': '100' });
        response.write('0123456789', () => response.socket?.destroy());
        return;
      case 'hang':
        return;
    }
  };
  const server =
    options.tls === true
      ? createTlsServer({ cert: TEST_TLS_CERT, key: TEST_TLS_KEY }, handler)
      : createServer(handler);
  server.on('connection', () => {
    connections++;
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    url: (path) => `${options.tls === true ? 'https' : 'http'}://127.0.0.1:${port}${path}`,
    route: (path, route) => {
      routes.set(path, route);
    },
    connections: () => connections,
    requests: (path) =>
      path === undefined ? [...counts.values()].reduce((a, b) => a + b, 0) : (counts.get(path) ?? 0),
    lastHeaders: (path) => headers.get(path),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
