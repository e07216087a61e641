/**
 * A stdio MCP server whose one tool, `env`, answers with its whole environment: what a tool could read.
 * The token-passthrough test checks that no client token is in it.
 *
 *   node --import tsx test/security/helpers/env-dump-server.ts
 */
import { McpServer } from '@modelcontextprotocol/server';
import { serveStdio } from '@modelcontextprotocol/server/stdio';

serveStdio(() => {
  const server = new McpServer({ name: 'env-dump', version: '0.0.0' });
  server.registerTool('env', { description: 'Report the whole environment' }, async () => ({
    content: [{ type: 'text', text: JSON.stringify({ env: process.env, argv: process.argv }) }],
  }));
  return server;
});
