import { afterEach, describe, expect, it } from 'vitest';
import { createEventBus, type GatehouseEvent } from '../../src/ops/events.js';
import { silentLogger } from '../../src/ops/logger.js';
import { fetchFrom } from '../helpers/from-address.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { authorizeUrl, pkce, signIn } from '../helpers/oauth.js';
import { connectRaw, type Refusal } from '../helpers/websocket.js';

// Two machines on one host: every gateway below listens on 127.0.0.1, and these clients connect from
// two different loopback source addresses, so the gateway sees two different TCP peers.
const ATTACKER = '127.0.0.2';
const USER = '127.0.0.3';
const PASSWORD = 'correct horse battery staple';
const REDIRECT = 'http://127.0.0.1:53682/callback';

describe('the client address is read once at the edge, over a real socket', () => {
  let gw: TestGateway | undefined;
  const events: GatehouseEvent[] = [];
  afterEach(async () => {
    await gw?.close();
    gw = undefined;
    events.length = 0;
  });

  async function start(input: Parameters<typeof startTestGateway>[0]) {
    const bus = createEventBus(silentLogger);
    bus.subscribe((event) => events.push(event));
    gw = await startTestGateway(input, { events: bus });
    return gw;
  }

  const register = (from: typeof fetch, base: string, headers: Record<string, string> = {}) =>
    from(`${base}/oauth/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify({ redirect_uris: [REDIRECT], token_endpoint_auth_method: 'none' }),
    });

  it('limits registrations per client address, not server-wide', async () => {
    const { gateway } = await start({ authorizationServer: { dynamicRegistration: { perIpPerHour: 3 } } });
    const base = gateway.urls.publicUrl;
    for (let i = 0; i < 3; i++) expect((await register(fetchFrom(ATTACKER), base)).status).toBe(201);
    const refused = await register(fetchFrom(ATTACKER), base);
    expect(refused.status).toBe(429);
    expect(refused.headers.get('retry-after')).toMatch(/^\d+$/);
    // Another machine registers as if nothing happened.
    expect((await register(fetchFrom(USER), base)).status).toBe(201);
  });

  it('an attacker failing sign-ins at one address cannot lock the user out at another; audit lines carry the address', async () => {
    const { gateway } = await start({
      authorizationServer: { loginThrottle: { perUsernameAndAddress: 3, perAddress: 50 } },
    });
    await gateway.authorizationServer?.accounts?.add({ username: 'alice', password: PASSWORD });
    const base = gateway.urls.publicUrl;
    const client = (await (await register(fetch, base)).json()) as { client_id: string };
    const authorize = () =>
      authorizeUrl(base, {
        clientId: client.client_id,
        redirectUri: REDIRECT,
        challenge: pkce().challenge,
        resource: gateway.urls.resource,
      });
    // The attacker burns through alice's budget — at the attacker's address.
    for (let i = 0; i < 3; i++) {
      await expect(
        signIn(authorize(), { username: 'alice', password: `guess ${i}`, fetch: fetchFrom(ATTACKER) }),
      ).rejects.toThrow(/sign-in refused \(401\)/);
    }
    await expect(
      signIn(authorize(), { username: 'alice', password: PASSWORD, fetch: fetchFrom(ATTACKER) }),
    ).rejects.toThrow(/sign-in refused \(429\)/);
    // Alice, at her own address, signs in at once.
    const signedIn = await signIn(authorize(), {
      username: 'alice',
      password: PASSWORD,
      fetch: fetchFrom(USER),
    });
    expect(signedIn.callback.searchParams.get('code')).toBeTruthy();

    const logins = events.filter((event) => event.type === 'login');
    expect(logins.map((event) => (event.type === 'login' ? event.ip : undefined))).toEqual([
      ATTACKER,
      ATTACKER,
      ATTACKER,
      ATTACKER,
      USER,
    ]);
  });

  it('limits WebSocket upgrades per client address', async () => {
    const running = await start({ websocket: { connectPerIpPerMinute: 2 } });
    const token = await running.token('alice');
    const open = [
      await connectRaw(running, { token, localAddress: ATTACKER }),
      await connectRaw(running, { token, localAddress: ATTACKER }),
    ];
    const refused = (await connectRaw(running, { token, localAddress: ATTACKER }).then(
      () => undefined,
      (error: Refusal) => error,
    )) as Refusal;
    expect(refused.status).toBe(429);
    const other = await connectRaw(running, { token, localAddress: USER });
    for (const client of [...open, other]) await client.close();
  });

  it('believes X-Forwarded-For only from a trusted proxy, and then the rightmost untrusted hop', async () => {
    const { gateway } = await start({
      server: { trustedProxies: [`${ATTACKER}/32`, '10.0.0.0/8'] },
      authorizationServer: { dynamicRegistration: { perIpPerHour: 1 } },
    });
    const base = gateway.urls.publicUrl;
    const viaProxy = fetchFrom(ATTACKER);
    // Through the trusted proxy: the client is the rightmost hop that is not a trusted proxy, however
    // much the client wrote to the left of it.
    expect(
      (await register(viaProxy, base, { 'x-forwarded-for': '6.6.6.6, 203.0.113.7, 10.1.1.1' })).status,
    ).toBe(201);
    expect((await register(viaProxy, base, { 'x-forwarded-for': '1.2.3.4, 203.0.113.7' })).status).toBe(429);
    expect((await register(viaProxy, base, { 'x-forwarded-for': '203.0.113.8' })).status).toBe(201);
    // From a peer that is not a trusted proxy the header is ignored: it counts as itself.
    const direct = fetchFrom(USER);
    expect((await register(direct, base, { 'x-forwarded-for': '198.51.100.1' })).status).toBe(201);
    expect((await register(direct, base, { 'x-forwarded-for': '198.51.100.2' })).status).toBe(429);
  });
});
