import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { loopbackCertificate } from '../../helpers/certificate.js';

/**
 * A client's web host on loopback: serves Client ID Metadata Documents over HTTPS (a self-signed
 * certificate for 127.0.0.1, made with `openssl`) and counts every request, so a test can prove what
 * Gatehouse fetched and what it did not.
 */
export interface DocumentHost {
  /** The certificate to trust (`createSafeFetch({ ca })`). */
  readonly ca: string;
  /** A document URL on this host. */
  url(path: string): string;
  /** Serves a client metadata document at `path` whose `client_id` is its own URL. */
  serveClient(path: string, metadata: Record<string, unknown>): string;
  /** Requests received, all paths. */
  requests(): number;
  close(): Promise<void>;
}

export async function startDocumentHost(): Promise<DocumentHost> {
  const tls = loopbackCertificate();
  const documents = new Map<string, Record<string, unknown>>();
  let requests = 0;
  const server = createServer(tls, (request, response) => {
    requests += 1;
    const document = documents.get(request.url ?? '/');
    if (document === undefined) {
      response.writeHead(404).end();
      return;
    }
    response
      .writeHead(200, { 'content-type': 'application/json', 'cache-control': 'max-age=600' })
      .end(JSON.stringify(document));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as AddressInfo).port;
  const url = (path: string) => `https://127.0.0.1:${port}${path}`;
  return {
    ca: tls.cert,
    url,
    serveClient(path, metadata) {
      const clientId = url(path);
      documents.set(path, { client_id: clientId, token_endpoint_auth_method: 'none', ...metadata });
      return clientId;
    },
    requests: () => requests,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
