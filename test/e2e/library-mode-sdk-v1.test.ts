import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { getRequestListener } from '@hono/node-server';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { currentContext, currentPrincipal } from '../../src/downstream/context.js';
import { createGatehouse, type Gatehouse } from '../../src/library/protect.js';
import { silentLogger } from '../../src/ops/logger.js';
import { text } from '../helpers/mcp.js';

/** Resolves once `parties` callers have arrived under `name`: proof that their tool calls overlap. */
function createMeetings() {
  const meetings = new Map<string, { arrived: number; all: Promise<void>; release: () => void }>();
  return (name: string, parties: number): Promise<void> => {
    let meeting = meetings.get(name);
    if (meeting === undefined) {
      let release = () => {};
      const all = new Promise<void>((resolve) => {
        release = resolve;
      });
      meeting = { arrived: 0, all, release };
      meetings.set(name, meeting);
    }
    meeting.arrived += 1;
    if (meeting.arrived === parties) meeting.release();
    return meeting.all;
  };
}

/**
 * SDK v1 in library mode: `McpServer` + the Node `StreamableHTTPServerTransport` (stateful, one transport per
 * session), behind `nodeMiddleware()` on a plain `node:http` server, called by the v1 `Client`.
 */
describe('library mode with SDK v1 (nodeMiddleware)', () => {
  let httpServer: Server;
  let gatehouse: Gatehouse;
  let mcpUrl: URL;
  let dataDir: string;
  const transports = new Map<string, StreamableHTTPServerTransport>();
  const clients: Client[] = [];
  const meet = createMeetings();
  let toolCalls = 0;

  function whoamiServer(): McpServer {
    const server = new McpServer({ name: 'library-v1-whoami', version: '1.0.0' });
    server.registerTool(
      'whoami',
      {
        description: 'The caller, read before and after awaits (and after meeting another caller)',
        inputSchema: { meeting: z.string().optional() },
      },
      async ({ meeting }, extra) => {
        toolCalls += 1;
        const before = currentPrincipal().subject;
        if (meeting !== undefined) await meet(meeting, 2);
        await nextTurn();
        const after = currentPrincipal().subject;
        const seen = {
          before,
          after,
          viaAuthInfo: extra.authInfo?.extra?.subject,
          authInfoToken: extra.authInfo?.token,
          authorizationHeader: extra.requestInfo?.headers.authorization ?? null,
          contextSessionId: currentContext()?.session?.id,
          sdkSessionId: extra.sessionId,
          // Everything of the request the SDK shows a tool, for the token-leak assertion.
          everything: JSON.stringify({ authInfo: extra.authInfo, requestInfo: extra.requestInfo }),
        };
        return { content: [{ type: 'text', text: JSON.stringify(seen) }] };
      },
    );
    gatehouse.registerDiagnosticsTools(server);
    return server;
  }

  async function handleMcp(req: IncomingMessage, res: ServerResponse, body: unknown): Promise<void> {
    const sessionId = req.headers['mcp-session-id'];
    const existing = typeof sessionId === 'string' ? transports.get(sessionId) : undefined;
    if (existing !== undefined) {
      await existing.handleRequest(req, res, body);
      return;
    }
    if (sessionId !== undefined || !isInitializeRequest(body)) {
      res.writeHead(400, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({ jsonrpc: '2.0', error: { code: -32000, message: 'no valid session' }, id: null }),
      );
      return;
    }
    const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => {
        transports.set(id, transport);
      },
    });
    transport.onclose = () => {
      if (transport.sessionId !== undefined) transports.delete(transport.sessionId);
    };
    await whoamiServer().connect(transport);
    await transport.handleRequest(req, res, body);
  }

  /** What `express.json()` does before the middleware: the body is parsed, the stream consumed. */
  async function readJson(req: IncomingMessage): Promise<unknown> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const raw = Buffer.concat(chunks).toString('utf8');
    return raw === '' ? undefined : JSON.parse(raw);
  }

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'gatehouse-library-v1-'));
    let serve: ((req: IncomingMessage, res: ServerResponse) => void) | undefined;
    httpServer = createServer((req, res) => {
      if (serve === undefined) res.writeHead(503).end();
      else serve(req, res);
    });
    await new Promise<void>((resolve) => httpServer.listen(0, '127.0.0.1', resolve));
    const port = (httpServer.address() as AddressInfo).port;
    gatehouse = await createGatehouse({
      config: { dataDir, server: { publicUrl: `http://127.0.0.1:${port}` }, log: { level: 'silent' } },
      deps: { logger: silentLogger },
    });
    const middleware = gatehouse.nodeMiddleware();
    const gatewayRoutes = getRequestListener((request) => gatehouse.gateway.app.fetch(request));
    const mcpPath = gatehouse.gateway.config.server.mcpPath;
    serve = (req, res) => {
      if (new URL(req.url ?? '/', 'http://localhost').pathname !== mcpPath) {
        void gatewayRoutes(req, res);
        return;
      }
      readJson(req).then(
        (body) =>
          middleware(req, res, (error) => {
            if (error !== undefined) res.writeHead(500).end();
            else void handleMcp(req, res, body);
          }),
        () => res.writeHead(400).end(),
      );
    };
    mcpUrl = new URL(gatehouse.gateway.urls.resource);
  });

  afterAll(async () => {
    await Promise.all(clients.map((client) => client.close()));
    await Promise.all([...transports.values()].map((transport) => transport.close()));
    httpServer?.closeAllConnections();
    await new Promise<void>((resolve) =>
      httpServer === undefined ? resolve() : httpServer.close(() => resolve()),
    );
    await gatehouse?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  function token(user: string): Promise<string> {
    return gatehouse.gateway.signer.sign({
      subject: user,
      audience: gatehouse.gateway.urls.resource,
      expiresInSeconds: 600,
      claims: { email: `${user}@example.com` },
    });
  }

  async function connect(user: string): Promise<{ client: Client; bearer: string; sessionId: string }> {
    const bearer = await token(user);
    const transport = new StreamableHTTPClientTransport(mcpUrl, {
      requestInit: { headers: { authorization: `Bearer ${bearer}` } },
    });
    const client = new Client({ name: `library-v1-${user}`, version: '1.0.0' });
    await client.connect(transport);
    clients.push(client);
    const { sessionId } = transport;
    if (sessionId === undefined) throw new Error('the v1 server issued no session id');
    return { client, bearer, sessionId };
  }

  async function whoami(client: Client, meeting?: string): Promise<Record<string, unknown>> {
    const result = await client.callTool({
      name: 'whoami',
      arguments: meeting === undefined ? {} : { meeting },
    });
    return JSON.parse(text(result)) as Record<string, unknown>;
  }

  function rawRequest(method: string, headers: Record<string, string>, body?: unknown): Promise<Response> {
    return fetch(mcpUrl, {
      method,
      headers: {
        accept: 'application/json, text/event-stream',
        'mcp-protocol-version': '2025-06-18',
        ...(body !== undefined && { 'content-type': 'application/json' }),
        ...headers,
      },
      ...(body !== undefined && { body: JSON.stringify(body) }),
    });
  }

  it('gives a v1 tool the caller from currentPrincipal() and req.auth, in a session it opened', async () => {
    const { client, sessionId } = await connect('alice');
    const seen = await whoami(client);
    expect(seen).toMatchObject({
      before: 'alice',
      after: 'alice',
      viaAuthInfo: 'alice',
      contextSessionId: sessionId,
      sdkSessionId: sessionId,
    });
  });

  it('keeps two users apart while their v1 tool calls overlap', async () => {
    const alice = await connect('alice');
    const bob = await connect('bob');
    // Each pair meets inside the tool: neither call returns until both are in flight at once.
    const pairs = await Promise.all(
      Array.from({ length: 20 }, async (_, i) => {
        const meeting = `pair-${i}`;
        const [a, b] = await Promise.all([whoami(alice.client, meeting), whoami(bob.client, meeting)]);
        return { a, b };
      }),
    );
    for (const { a, b } of pairs) {
      expect(a).toMatchObject({ before: 'alice', after: 'alice', viaAuthInfo: 'alice' });
      expect(a.contextSessionId).toBe(alice.sessionId);
      expect(b).toMatchObject({ before: 'bob', after: 'bob', viaAuthInfo: 'bob' });
      expect(b.contextSessionId).toBe(bob.sessionId);
    }
  });

  // req: MCP-SECURITY-SESSION-BINDING
  it("refuses alice's session id with bob's valid token with 404, before the server sees it", async () => {
    const alice = await connect('alice');
    const bobBearer = await token('bob');
    const callsBefore = toolCalls;
    const asBob = { authorization: `Bearer ${bobBearer}`, 'mcp-session-id': alice.sessionId };
    const call = { jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'whoami', arguments: {} } };

    expect((await rawRequest('POST', asBob, call)).status).toBe(404);
    expect((await rawRequest('GET', asBob)).status).toBe(404);
    expect((await rawRequest('DELETE', asBob)).status).toBe(404);
    // An id no one was issued is refused alike: nothing tells bob whose an id is.
    const invented = { authorization: `Bearer ${bobBearer}`, 'mcp-session-id': randomUUID() };
    expect((await rawRequest('POST', invented, call)).status).toBe(404);
    expect(toolCalls).toBe(callsBefore);

    // Alice's session survived bob's DELETE and still answers her.
    expect(await whoami(alice.client)).toMatchObject({ before: 'alice', contextSessionId: alice.sessionId });
  });

  it('answers a request without a token with 401 and a Bearer challenge naming resource_metadata', async () => {
    const response = await rawRequest(
      'POST',
      {},
      { jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} },
    );
    expect(response.status).toBe(401);
    const challenge = response.headers.get('www-authenticate') ?? '';
    expect(challenge).toMatch(/^Bearer /);
    expect(challenge).toContain(`resource_metadata="${gatehouse.gateway.urls.resourceMetadataUrl}"`);
    const metadata = await fetch(gatehouse.gateway.urls.resourceMetadataUrl);
    expect(metadata.status).toBe(200);
    expect(await metadata.json()).toMatchObject({ resource: gatehouse.gateway.urls.resource });
  });

  // req: MCP-AUTH-NO-TOKEN-PASSTHROUGH
  it("never shows the v1 tool the client's bearer token", async () => {
    const { client, bearer } = await connect('carol');
    const seen = await whoami(client);
    expect(seen.authInfoToken).toBe('');
    expect(seen.authorizationHeader).toBeNull();
    expect(seen.everything).toContain('carol');
    expect(seen.everything).not.toContain(bearer);
    expect(seen.everything).not.toContain(bearer.split('.')[2]);
  });

  it('serves the diagnostics tools on a v1 McpServer through the same call', async () => {
    const { client, bearer, sessionId } = await connect('dave');
    const { tools } = await client.listTools();
    expect(tools.map((tool) => tool.name)).toEqual(
      expect.arrayContaining([
        'whoami',
        'gatehouse_whoami',
        'gatehouse_validate_token',
        'gatehouse_sessions',
      ]),
    );
    const whoamiResult = await client.callTool({ name: 'gatehouse_whoami', arguments: {} });
    expect(whoamiResult.structuredContent).toMatchObject({
      subject: 'dave',
      session: { idPrefix: sessionId.slice(0, 8) },
    });
    const validated = await client.callTool({
      name: 'gatehouse_validate_token',
      arguments: { token: bearer },
    });
    expect(validated.structuredContent).toMatchObject({ valid: true, claims: { sub: 'dave' } });
    expect(JSON.stringify(validated)).not.toContain(bearer);
  });
});
