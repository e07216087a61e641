import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { afterEach, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { text } from '../helpers/mcp.js';

const crashy = fileURLToPath(new URL('../fixtures/crashy-server.ts', import.meta.url));

async function connect(gw: TestGateway, token: string, capabilities: Record<string, unknown> = {}) {
  const client = new Client({ name: 'test', version: '1.0.0' }, { capabilities });
  const transport = new StreamableHTTPClientTransport(gw.mcpUrl, {
    authProvider: { token: async () => token },
  });
  await client.connect(transport);
  return { client, transport };
}

describe('session lifecycle through the gateway', () => {
  const open: TestGateway[] = [];
  afterEach(async () => {
    for (const gw of open.splice(0)) await gw.close();
  });

  it('keeps a SQLite-backed session across a gateway restart; the next request re-establishes the upstream', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'gatehouse-restart-'));
    const first = await startTestGateway({ store: { kind: 'sqlite' }, dataDir });
    const token = await first.token('alice');
    const { client, transport } = await connect(first, token);
    await client.callTool({ name: 'notes_add', arguments: { text: 'before restart' } });
    const sessionId = transport.sessionId;
    expect(sessionId).toBeDefined();
    const port = first.port;
    await first.close().catch(() => undefined);
    // Same data dir (keys and database) and port: the process is "restarted".
    const second = await startTestGateway({ store: { kind: 'sqlite' }, dataDir, server: { port } });
    open.push(second);
    const who = JSON.parse(text(await client.callTool({ name: 'whoami', arguments: {} })));
    expect(who.userId).toBe('alice');
    expect(who.sessionId).toBe(sessionId);
    expect(transport.sessionId).toBe(sessionId);
    await client.close();
    await second.close();
    open.pop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('turns an upstream crash into a JSON-RPC error, not a hang, and recovers on the next request', async () => {
    const gw = await startTestGateway({
      store: { kind: 'memory' },
      upstream: { kind: 'stdio', command: process.execPath, args: ['--import', 'tsx', crashy] },
    });
    open.push(gw);
    const { client } = await connect(gw, await gw.token('alice'));
    const crashed = await client.callTool({ name: 'crash', arguments: {} }).then(
      () => 'answered',
      (error: unknown) => error,
    );
    expect(crashed).toBeInstanceOf(Error);
    expect((crashed as { code?: number }).code).toBe(-32000);
    const echoed = await client.callTool({ name: 'echo', arguments: { text: 'still here' } });
    expect(text(echoed)).toBe('still here');
    await client.close();
  });

  it('relays request-scoped progress and log notifications and server-to-client elicitation', async () => {
    const gw = await startTestGateway({ store: { kind: 'memory' } });
    open.push(gw);
    const { client } = await connect(gw, await gw.token('alice'), { elicitation: { form: {} } });
    const progress: number[] = [];
    const logs: unknown[] = [];
    client.setNotificationHandler('notifications/message', (notification) => {
      logs.push(notification.params.data);
    });
    const counted = await client.callTool(
      { name: 'count_slowly', arguments: { to: 3, delayMs: 1 } },
      { onprogress: (p) => progress.push(p.progress) },
    );
    expect(text(counted)).toBe('counted to 3');
    expect(progress).toEqual([1, 2, 3]);
    expect(logs).toHaveLength(3);

    client.setRequestHandler('elicitation/create', async () => ({
      action: 'accept',
      content: { name: 'Alice' },
    }));
    const greeted = await client.callTool({ name: 'ask_name', arguments: {} });
    expect(text(greeted)).toContain('Alice');
    await client.close();
  });
});
