import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { TSX_LOADER } from '../helpers/cli.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { connectRaw } from '../helpers/websocket.js';

const slowServer = fileURLToPath(new URL('../fixtures/slow-server.ts', import.meta.url));

describe('a drain with WebSocket clients', () => {
  const cleanup: Array<() => void | Promise<void>> = [];
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step();
  });

  it('lets a call in flight finish, refuses new calls on the socket, then closes it with 1001', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-drain-ws-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const gate = join(dir, 'release');
    const gw: TestGateway = await startTestGateway({
      store: { kind: 'memory' },
      upstream: {
        kind: 'stdio',
        command: process.execPath,
        args: ['--import', TSX_LOADER, slowServer],
        env: { SLOW_SERVER_DIR: dir },
      },
    });
    cleanup.push(() => gw.close());
    const client = await connectRaw(gw, { token: await gw.token('alice') });
    await client.initialize();
    const inFlight = client.request('tools/call', { name: 'slow', arguments: { gate } });
    await vi.waitFor(
      () => expect(readdirSync(dir).filter((name) => name.startsWith('started-'))).toHaveLength(1),
      { timeout: 20_000 },
    );

    const outcome = gw.shutdown(30_000);
    expect(gw.gateway.drain.draining).toBe(true);
    expect(gw.gateway.drain.callsInFlight).toBe(1);
    const refused = await client.request('tools/call', { name: 'slow', arguments: { ms: 1 } });
    expect(refused.error).toMatchObject({ data: { code: 'ERR_SHUTTING_DOWN' } });

    writeFileSync(gate, '');
    const answered = (await inFlight) as { result?: { content?: Array<{ text: string }> } };
    expect(answered.result?.content?.[0]?.text).toMatch(/^done 1 by \d+$/);
    expect(await outcome).toEqual({ complete: true, requests: [], upstreamCalls: 0 });
    expect((await client.closed).code).toBe(1001);
  }, 60_000);
});
