import { afterEach, describe, expect, it } from 'vitest';
import { createInterceptorChain } from '../../../src/bridge/interceptors.js';
import { createStatelessBridge, type StatelessBridge } from '../../../src/bridge/stateless.js';
import { createUpstreamConnector } from '../../../src/bridge/upstream.js';
import { bundledDemoUpstream } from '../../../src/demo/bundled.js';
import type { Principal } from '../../../src/identity/principal.js';
import { systemClock } from '../../../src/ops/clock.js';
import { silentEvents } from '../../../src/ops/events.js';
import { silentLogger } from '../../../src/ops/logger.js';

const VERSION = '2026-07-28';

function principal(subject: string): Principal {
  return {
    subject,
    issuer: 'https://issuer.test',
    scopes: [],
    claims: {},
    expiresAt: 4_000_000_000,
    verifier: 'test',
  };
}

function whoamiRequest(id: number): { request: Request; body: Record<string, unknown> } {
  const body = {
    jsonrpc: '2.0',
    id,
    method: 'tools/call',
    params: {
      name: 'whoami',
      arguments: {},
      _meta: {
        'io.modelcontextprotocol/protocolVersion': VERSION,
        'io.modelcontextprotocol/clientInfo': { name: 'test', version: '1' },
        'io.modelcontextprotocol/clientCapabilities': {},
      },
    },
  };
  const request = new Request('http://127.0.0.1/mcp', {
    method: 'POST',
    headers: {
      accept: 'application/json, text/event-stream',
      'content-type': 'application/json',
      'mcp-protocol-version': VERSION,
      'mcp-method': 'tools/call',
      'mcp-name': 'whoami',
    },
    body: JSON.stringify(body),
  });
  return { request, body };
}

async function whoami(
  bridge: StatelessBridge,
  user: Principal,
  id: number,
): Promise<{ userId: string; pid: number }> {
  const { request, body } = whoamiRequest(id);
  const response = await bridge.handle(request, body, user);
  const text = await response.text();
  const json = text.startsWith('{')
    ? text
    : (
        text
          .split('\n')
          .filter((l) => l.startsWith('data:'))
          .at(-1) ?? ''
      ).slice(5);
  const message = JSON.parse(json) as { result: { content: Array<{ text: string }> } };
  return JSON.parse(message.result.content[0]?.text ?? '{}');
}

describe('stateless (2026-07-28) bridge', () => {
  let bridge: StatelessBridge | undefined;
  afterEach(async () => {
    await bridge?.close();
  });

  function makeBridge(maxRequestsPerConnection: number): StatelessBridge {
    const connector = createUpstreamConnector({
      upstream: bundledDemoUpstream(),
      signer: { sign: async () => 'unused' },
      clock: systemClock,
      logger: silentLogger,
    });
    bridge = createStatelessBridge({
      connector,
      chain: createInterceptorChain([]),
      timeouts: { startMs: 10_000 },
      events: silentEvents,
      clock: systemClock,
      logger: silentLogger,
      idleMs: 60_000,
      maxBodyBytes: 1 << 20,
      maxRequestsPerConnection,
    });
    return bridge;
  }

  it('gives each user their own upstream process and reuses it', async () => {
    const b = makeBridge(1000);
    const alice1 = await whoami(b, principal('alice'), 1);
    const bob = await whoami(b, principal('bob'), 2);
    const alice2 = await whoami(b, principal('alice'), 3);
    expect(alice1.userId).toBe('alice');
    expect(bob.userId).toBe('bob');
    expect(alice2.pid).toBe(alice1.pid);
    expect(bob.pid).not.toBe(alice1.pid);
    expect(b.connectionsOpened()).toBe(2);
  });

  it('retires a connection after maxRequestsPerConnection and keeps serving on a fresh one', async () => {
    const b = makeBridge(3);
    const pids: number[] = [];
    for (let i = 0; i < 7; i++) pids.push((await whoami(b, principal('alice'), i)).pid);
    expect(new Set(pids.slice(0, 3)).size).toBe(1);
    expect(pids[3]).not.toBe(pids[0]);
    expect(b.connectionsOpened()).toBe(3);
    expect(b.connectedUsers()).toBe(1);
  });
});
