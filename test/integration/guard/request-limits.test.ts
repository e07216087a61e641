import { afterEach, describe, expect, it } from 'vitest';
import type { GatehouseConfigInput } from '../../../src/config/schema.js';
import type { GatehouseEvent } from '../../../src/ops/events.js';
import { createMemoryStores } from '../../../src/stores/memory/index.js';
import type { Stores } from '../../../src/stores/ports.js';
import { fetchFrom } from '../../helpers/from-address.js';
import { startTestGateway, type TestGateway } from '../../helpers/gateway.js';
import { ACCEPT, INIT } from '../../helpers/mcp-http.js';

describe('MCP request limits (limits.*)', () => {
  let gw: TestGateway | undefined;
  afterEach(async () => {
    await gw?.close();
    gw = undefined;
  });

  async function start(limits: GatehouseConfigInput['limits'], stores?: Stores) {
    gw = await startTestGateway(
      { store: { kind: 'memory' }, limits },
      stores === undefined ? {} : { stores },
    );
    const events: GatehouseEvent[] = [];
    gw.gateway.events.subscribe((event) => events.push(event));
    return { running: gw, events };
  }

  const call = (running: TestGateway, token: string, from = '127.0.0.1') =>
    fetchFrom(from)(running.mcpUrl, {
      method: 'POST',
      headers: { accept: ACCEPT, 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify(INIT),
    });

  const sign = (running: TestGateway, subject: string, clientId?: string) =>
    running.gateway.signer.sign({
      subject,
      audience: running.gateway.urls.resource,
      expiresInSeconds: 600,
      claims: { scope: '', ...(clientId !== undefined && { client_id: clientId }) },
    });

  it('refuses a user over their limit with 429 and Retry-After, and only that user', async () => {
    const { running, events } = await start({ requestsPerUserPerMinute: 3 });
    const alice = await sign(running, 'alice');
    for (let i = 0; i < 3; i++) expect((await call(running, alice)).status).toBe(200);

    const refused = await call(running, alice);
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect((await call(running, await sign(running, 'bob'))).status).toBe(200);
    expect(events).toContainEqual(
      expect.objectContaining({ type: 'ratelimit.rejected', limit: 'requests-user' }),
    );
  });

  it('counts an address before the token is checked, so bad tokens are turned away too', async () => {
    const { running, events } = await start({ requestsPerAddressPerMinute: 2 });
    expect((await call(running, 'not-a-token', '127.0.0.2')).status).toBe(401);
    expect((await call(running, 'not-a-token', '127.0.0.2')).status).toBe(401);

    const good = await sign(running, 'alice');
    expect((await call(running, good, '127.0.0.2')).status).toBe(429);
    expect((await call(running, good, '127.0.0.3')).status).toBe(200);
    expect(events).toContainEqual(
      expect.objectContaining({ type: 'ratelimit.rejected', limit: 'requests-address', ip: '127.0.0.2' }),
    );
  });

  it('counts every user of one OAuth client together, and tokens without a client not at all', async () => {
    const { running } = await start({ requestsPerClientPerMinute: 2 });
    expect((await call(running, await sign(running, 'alice', 'shared-app'))).status).toBe(200);
    expect((await call(running, await sign(running, 'bob', 'shared-app'))).status).toBe(200);
    expect((await call(running, await sign(running, 'carol', 'shared-app'))).status).toBe(429);
    expect((await call(running, await sign(running, 'carol', 'other-app'))).status).toBe(200);
    const noClient = await sign(running, 'dave');
    for (let i = 0; i < 3; i++) expect((await call(running, noClient)).status).toBe(200);
  });

  it('fails closed with 503 when the limiter cannot answer', async () => {
    const memory = createMemoryStores();
    const broken: Stores = {
      ...memory,
      rateLimiter: () => ({
        consume: () => Promise.reject(new Error('connection refused')),
      }),
    };
    const { running } = await start({ requestsPerUserPerMinute: 100 }, broken);
    const response = await call(running, await sign(running, 'alice'));

    expect(response.status).toBe(503);
    await memory.close();
  });
});
