import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { createMcpHandler, McpServer } from '@modelcontextprotocol/server';
import { z } from 'zod';

/** A running benchmark upstream: a Streamable HTTP MCP endpoint on a loopback port. */
export interface EchoUpstream {
  /** The MCP endpoint, `http://127.0.0.1:<port>/mcp`. */
  readonly url: string;
  close(): Promise<void>;
}

const EchoInput = z.object({ text: z.string().max(1000) });

/**
 * The cheapest useful MCP server: one `echo` tool, no authentication, served by the SDK's stateless
 * `createMcpHandler` (a fresh `McpServer` per request) on 127.0.0.1 with an OS-chosen port. It ignores
 * any `Authorization` header, so it serves the direct (no-auth) baseline and, unchanged, sits behind
 * the gateway, which sends it a minted identity token.
 *
 * @example
 * const upstream = await startEchoUpstream();
 * // POST tools/call { name: 'echo', arguments: { text: 'hi' } } to upstream.url
 * await upstream.close();
 */
export async function startEchoUpstream(): Promise<EchoUpstream> {
  const handler = createMcpHandler(() => {
    const server = new McpServer({ name: 'bench-echo', version: '0.0.0' });
    server.registerTool(
      'echo',
      { description: 'Returns its input', inputSchema: EchoInput, annotations: { readOnlyHint: true } },
      async ({ text }) => ({ content: [{ type: 'text', text }] }),
    );
    return server;
  });
  const server = serve({
    fetch: (request: Request) => handler.fetch(request),
    hostname: '127.0.0.1',
    port: 0,
  });
  const port = await new Promise<number>((resolve, reject) => {
    server.once('listening', () => resolve((server.address() as AddressInfo).port));
    server.once('error', reject);
  });
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
      });
      await handler.close();
    },
  };
}
