import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { Client as V1Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport as V1Transport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { text } from '../helpers/mcp.js';

describe('real MCP clients through the gateway to the stdio demo', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startTestGateway({ store: { kind: 'memory' } });
  });
  afterAll(async () => {
    await gw?.close();
  });

  async function v2Client(user: string, mode: 'legacy' | 'modern'): Promise<Client> {
    const token = await gw.token(user, { email: `${user}@example.test`, scope: 'notes' });
    const client = new Client(
      { name: 'test', version: '1.0.0' },
      mode === 'modern' ? { versionNegotiation: { mode: { pin: '2026-07-28' } } } : {},
    );
    await client.connect(
      new StreamableHTTPClientTransport(gw.mcpUrl, { authProvider: { token: async () => token } }),
    );
    return client;
  }

  it('v2 client, 2025 era: whoami reports the caller and notes stay per user', async () => {
    const alice = await v2Client('alice', 'legacy');
    const bob = await v2Client('bob', 'legacy');
    const who = JSON.parse(text(await alice.callTool({ name: 'whoami', arguments: {} })));
    expect(who).toMatchObject({ userId: 'alice', email: 'alice@example.test', scopes: ['notes'] });
    await alice.callTool({ name: 'notes_add', arguments: { text: 'alice secret' } });
    expect(text(await alice.callTool({ name: 'notes_list', arguments: {} }))).toContain('alice secret');
    expect(text(await bob.callTool({ name: 'notes_list', arguments: {} }))).not.toContain('alice secret');
    await alice.close();
    await bob.close();
  });

  it('v2 client, 2026-07-28 stateless: tools list and call with the caller identity', async () => {
    const carol = await v2Client('carol', 'modern');
    expect(carol.getNegotiatedProtocolVersion()).toBe('2026-07-28');
    const tools = await carol.listTools();
    expect(tools.tools.map((tool) => tool.name)).toContain('whoami');
    const who = JSON.parse(text(await carol.callTool({ name: 'whoami', arguments: {} })));
    expect(who).toMatchObject({ userId: 'carol' });
    await carol.close();
  });

  it('v1 client with a bearer token', async () => {
    const token = await gw.token('dave');
    const client = new V1Client({ name: 'v1', version: '1.0.0' });
    await client.connect(
      new V1Transport(gw.mcpUrl, { requestInit: { headers: { authorization: `Bearer ${token}` } } }),
    );
    const who = JSON.parse(text(await client.callTool({ name: 'whoami', arguments: {} })));
    expect(who.userId).toBe('dave');
    await client.close();
  });
});
