import { createServer, request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A load balancer in front of several instances, as a team would put one: plain HTTP forwarding with no
 * session affinity. `route` decides which backend takes the next request.
 */
export interface Balancer {
  /** `http://127.0.0.1:<port>`: the public URL every instance is configured with. */
  readonly url: string;
  /**
   * The backend index for each next request: a number pins every request to that backend, `'alternate'`
   * takes them in turn (round robin).
   */
  route: number | 'alternate';
  /** The backend index each request went to, in order. */
  readonly log: number[];
  close(): Promise<void>;
}

/** Starts a balancer over `backends` (ports on 127.0.0.1), forwarding requests and streaming responses. */
export async function startBalancer(backends: readonly number[]): Promise<Balancer> {
  let turn = 0;
  const state: { route: number | 'alternate' } = { route: 'alternate' };
  const log: number[] = [];
  const server = createServer((incoming, outgoing) => {
    const index = state.route === 'alternate' ? turn++ % backends.length : state.route;
    log.push(index);
    const forward = httpRequest(
      {
        host: '127.0.0.1',
        port: backends[index],
        method: incoming.method,
        path: incoming.url,
        headers: incoming.headers,
      },
      (answer) => {
        outgoing.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(outgoing);
      },
    );
    forward.on('error', () => {
      if (!outgoing.headersSent) outgoing.writeHead(502, { 'content-type': 'text/plain' });
      outgoing.end('backend unavailable');
    });
    outgoing.on('close', () => forward.destroy());
    incoming.pipe(forward);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    get route() {
      return state.route;
    },
    set route(next) {
      state.route = next;
    },
    log,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
