import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { Client, StreamableHTTPClientTransport, UnauthorizedError } from '@modelcontextprotocol/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSafeFetch } from '../../src/net/safe-fetch.js';
import { createLogger, type Logger } from '../../src/ops/logger.js';
import { loopbackCertificate } from '../helpers/certificate.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { text } from '../helpers/mcp.js';
import { type PageStop, signIn } from '../helpers/oauth.js';
import { RecordingOAuthProvider } from '../helpers/v2-oauth-provider.js';

const USERNAME = 'frank';
const PASSWORD = 'a long and perfectly fine passphrase';
const CLIENT_NAME = 'Gatehouse CIMD test';
const REDIRECT_URI = 'http://127.0.0.1:53682/callback';

/** The client's web host: serves its metadata documents over HTTPS on 127.0.0.1 and counts what reaches it. */
interface DocumentServer {
  readonly port: number;
  /** The document URL for `path` on 127.0.0.1. */
  url(path: string): string;
  /** Serves `document` at `path` (as `application/json`). */
  serve(path: string, document: Record<string, unknown>): void;
  requests(path: string): number;
  /** TCP connections accepted so far (a refused fetch must not even connect). */
  connections(): number;
  close(): Promise<void>;
}

async function startDocumentServer(tls: { cert: string; key: string }): Promise<DocumentServer> {
  const documents = new Map<string, Record<string, unknown>>();
  const counts = new Map<string, number>();
  let connections = 0;
  const server: Server = createServer(tls, (request, response) => {
    const path = request.url ?? '/';
    counts.set(path, (counts.get(path) ?? 0) + 1);
    const document = documents.get(path);
    if (document === undefined) {
      response.writeHead(404).end();
      return;
    }
    response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(document));
  });
  server.on('connection', () => {
    connections++;
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    url: (path) => `https://127.0.0.1:${port}${path}`,
    serve: (path, document) => {
      documents.set(path, document);
    },
    requests: (path) => counts.get(path) ?? 0,
    connections: () => connections,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** An info-level logger whose JSON lines (audit events among them) the test can read. */
function capturingLogger(): { logger: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n')) if (line !== '') lines.push(JSON.parse(line));
      done();
    },
  });
  return { logger: createLogger({ level: 'info', destination }), lines };
}

function clientDocument(clientId: string): Record<string, unknown> {
  return {
    client_id: clientId,
    client_name: CLIENT_NAME,
    client_uri: 'https://client.example',
    redirect_uris: [REDIRECT_URI],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'none',
  };
}

/**
 * Client ID Metadata Documents with the v2 SDK client: the client's `client_id` is the HTTPS URL of its
 * metadata document, which Gatehouse fetches (through the injected SSRF-safe fetch trusting the test
 * certificate) instead of the client registering.
 */
describe('v2 SDK client with a Client ID Metadata Document', () => {
  let documents: DocumentServer;
  let gw: TestGateway;
  let log: ReturnType<typeof capturingLogger>;
  let userId: string;

  beforeAll(async () => {
    const tls = loopbackCertificate();
    documents = await startDocumentServer(tls);
    log = capturingLogger();
    gw = await startTestGateway(
      // Loopback document hosts are a development-only allowance; the injected fetch enforces it.
      { authorizationServer: { clientIdMetadataDocuments: { allowPrivateNetworks: true } } },
      { cimdFetch: createSafeFetch({ allowPrivateNetworks: true, ca: tls.cert }), logger: log.logger },
    );
    const account = await gw.gateway.authorizationServer?.accounts?.add({
      username: USERNAME,
      password: PASSWORD,
    });
    userId = account?.id ?? '';
    expect(userId).not.toBe('');
  });
  afterAll(async () => {
    await gw?.close();
    await documents?.close();
  });

  /** Lets the SDK discover and start authorizing against `target`; returns the authorization URL it opened. */
  async function startAuthorization(
    target: TestGateway,
    provider: RecordingOAuthProvider,
    requests: string[] = [],
  ): Promise<URL> {
    const client = new Client({ name: 'cimd-test', version: '1.0.0' });
    const transport = new StreamableHTTPClientTransport(target.mcpUrl, {
      authProvider: provider,
      fetch: (input, init) => {
        requests.push(String(input instanceof Request ? input.url : input));
        return fetch(input, init);
      },
    });
    await expect(client.connect(transport)).rejects.toBeInstanceOf(UnauthorizedError);
    expect(provider.authorizationUrls).toHaveLength(1);
    return provider.authorizationUrls[0] as URL;
  }

  const audits = (lines: Record<string, unknown>[], type: string) =>
    lines.filter((line) => line.audit === true && line.type === type);

  it('authorizes with the document URL as client_id (no registration), consent names it, token, tool call', async () => {
    const path = '/clients/v2.json';
    const documentUrl = documents.url(path);
    documents.serve(path, clientDocument(documentUrl));
    const metadata = (await (
      await fetch(`${gw.gateway.urls.publicUrl}/.well-known/oauth-authorization-server`)
    ).json()) as { client_id_metadata_document_supported?: boolean; registration_endpoint: string };
    expect(metadata.client_id_metadata_document_supported).toBe(true);

    const provider = new RecordingOAuthProvider({
      redirectUrl: REDIRECT_URI,
      clientName: CLIENT_NAME,
      clientMetadataUrl: documentUrl,
    });
    const requests: string[] = [];
    const authorizeUrl = await startAuthorization(gw, provider, requests);
    expect(provider.clientInfo?.client_id).toBe(documentUrl);
    expect(authorizeUrl.searchParams.get('client_id')).toBe(documentUrl);
    expect(requests.length).toBeGreaterThan(0);
    expect(requests).not.toContain(metadata.registration_endpoint);

    const consent = (await signIn(authorizeUrl, {
      username: USERNAME,
      password: PASSWORD,
      stopAt: 'consent',
    })) as PageStop;
    expect(consent.kind).toBe('consent');
    expect(documents.requests(path)).toBe(1); // Gatehouse fetched the document
    expect(consent.html).toContain(
      `Published at</dt><dd><code data-testid="client-id">${documentUrl}</code>`,
    );
    expect(consent.html).toContain(`data-testid="client-name">“<bdi>${CLIENT_NAME}</bdi>”</strong>`);
    expect(consent.html).toMatch(/data-testid="client-badge">Unverified</);

    const { callback, pages } = await signIn(consent.url, {
      username: USERNAME,
      password: PASSWORD,
      jar: consent.jar,
    });
    expect(pages).toEqual(['consent']);
    expect(callback.href.startsWith(REDIRECT_URI)).toBe(true);
    expect(callback.searchParams.get('state')).toBe(provider.stateValue);

    const transport = new StreamableHTTPClientTransport(gw.mcpUrl, { authProvider: provider });
    await transport.finishAuth(callback.searchParams);
    expect(provider.savedTokens?.access_token).toBeTruthy();
    const client = new Client({ name: 'cimd-test', version: '1.0.0' });
    await client.connect(transport);
    const whoami = await client.callTool({ name: 'whoami', arguments: {} });
    expect(text(whoami)).toContain(userId);
    await client.close();

    // The registration endpoint saw nothing, while the log did record this client's code.
    expect(log.lines.filter((line) => line.msg === 'client registered')).toEqual([]);
    expect(audits(log.lines, 'oauth.authorize.code_issued').map((line) => line.clientId)).toContain(
      documentUrl,
    );
  });

  it('a document whose client_id is not its own URL: authorize answers the error page, no redirect', async () => {
    const path = '/clients/mismatch.json';
    const documentUrl = documents.url(path);
    documents.serve(path, clientDocument(documents.url('/clients/someone-else.json')));
    const provider = new RecordingOAuthProvider({
      redirectUrl: REDIRECT_URI,
      clientMetadataUrl: documentUrl,
    });
    const authorizeUrl = await startAuthorization(gw, provider);
    expect(authorizeUrl.searchParams.get('client_id')).toBe(documentUrl);

    const response = await fetch(authorizeUrl, { redirect: 'manual' });
    expect(response.status).toBe(400);
    expect(response.headers.get('location')).toBeNull();
    expect(response.headers.get('content-type')).toMatch(/^text\/html/);
    expect(documents.requests(path)).toBe(1);
    const refusal = audits(log.lines, 'oauth.authorize').at(-1);
    expect(refusal).toMatchObject({
      outcome: 'failure',
      error: 'invalid_client',
      reason: 'cimd_client_id_mismatch',
    });
  });

  it('without allowPrivateNetworks, a document host resolving to 127.0.0.1 is refused before any connection', async () => {
    const strictLog = capturingLogger();
    const strict = await startTestGateway({}, { logger: strictLog.logger });
    try {
      const path = '/clients/private.json';
      // `localhost` resolves to loopback; the document itself would be valid.
      const documentUrl = `https://localhost:${documents.port}${path}`;
      documents.serve(path, clientDocument(documentUrl));
      const provider = new RecordingOAuthProvider({
        redirectUrl: REDIRECT_URI,
        clientMetadataUrl: documentUrl,
      });
      const authorizeUrl = await startAuthorization(strict, provider);
      expect(authorizeUrl.searchParams.get('client_id')).toBe(documentUrl);

      const connections = documents.connections();
      const response = await fetch(authorizeUrl, { redirect: 'manual' });
      expect(response.status).toBe(400);
      expect(response.headers.get('location')).toBeNull();
      expect(documents.connections()).toBe(connections);
      expect(documents.requests(path)).toBe(0);
      expect(audits(strictLog.lines, 'oauth.authorize').at(-1)).toMatchObject({
        outcome: 'failure',
        error: 'invalid_client',
        reason: 'cimd_forbidden_address',
      });
    } finally {
      await strict.close();
    }
  });
});
