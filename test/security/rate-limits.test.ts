import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSafeFetch } from '../../src/net/safe-fetch.js';
import { fetchFrom } from '../helpers/from-address.js';
import type { TestGateway } from '../helpers/gateway.js';
import { connectRaw } from '../helpers/websocket.js';
import { type DocumentHost, startDocumentHost } from './helpers/document-host.js';
import { type EventLog, startRecorded } from './helpers/harness.js';
import { authorizeUrl, oauthError, pkce, REDIRECT, registerClient } from './helpers/oauth-client.js';

/**
 * Finding 8 and the other per-address limits: floods of authorization requests, metadata-document
 * fetches, registrations and WebSocket upgrades are cut off with 429 and `Retry-After`, reported as
 * `ratelimit.rejected`, without shutting out anyone else.
 */

/** Sends up to `max` requests, stopping at the first 429; returns how many went out and that answer. */
async function floodUntil429(
  send: (index: number) => Promise<Response>,
  max: number,
): Promise<{ sent: number; refusal: Response | undefined }> {
  for (let index = 0; index < max; index += 1) {
    const response = await send(index);
    if (response.status === 429) return { sent: index + 1, refusal: response };
    await response.text();
  }
  return { sent: max, refusal: undefined };
}

describe('per-address and per-host limits', () => {
  let gw: TestGateway;
  let log: EventLog;
  let host: DocumentHost;
  let clientId: string;
  beforeAll(async () => {
    host = await startDocumentHost();
    ({ gw, log } = await startRecorded(
      {
        store: { kind: 'memory' },
        authorizationServer: {
          clientIdMetadataDocuments: { allowPrivateNetworks: true },
          dynamicRegistration: { perIpPerHour: 3 },
        },
        websocket: { connectPerIpPerMinute: 3 },
      },
      { cimdFetch: createSafeFetch({ allowPrivateNetworks: true, ca: host.ca }) },
    ));
    clientId = await registerClient(gw);
  });
  afterAll(async () => {
    await gw?.close();
    await host?.close();
  });

  it('/oauth/authorize: one address flooding it gets 429 with Retry-After; another address is served', async () => {
    log.clear();
    const flooder = fetchFrom('127.0.0.3');
    const { sent, refusal } = await floodUntil429(
      () => flooder(authorizeUrl(gw, clientId, pkce().challenge).href),
      600,
    );
    expect(refusal?.status).toBe(429);
    expect(sent).toBeLessThan(600);
    expect(Number(refusal?.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(log.of('ratelimit.rejected')).toEqual(
      expect.arrayContaining([expect.objectContaining({ limit: 'authorize', ip: '127.0.0.3' })]),
    );
    const other = await fetchFrom('127.0.0.4')(authorizeUrl(gw, clientId, pkce().challenge).href);
    expect(other.status).toBe(302);
  });

  it('metadata documents: one address naming ever new document URLs cannot make Gatehouse fetch them all', async () => {
    log.clear();
    const before = host.requests();
    const from = fetchFrom('127.0.0.5');
    const attempts = 150;
    let refused = 0;
    for (let index = 0; index < attempts; index += 1) {
      const documentId = host.serveClient(`/a/${index}.json`, {
        client_name: 'Flood',
        redirect_uris: [REDIRECT],
      });
      const response = await from(authorizeUrl(gw, documentId, pkce().challenge).href);
      if (response.status === 429) refused += 1;
      await response.text();
    }
    expect(refused).toBeGreaterThan(0);
    expect(host.requests() - before).toBeLessThan(attempts);
    expect(log.of('ratelimit.rejected').length).toBeGreaterThan(0);
  });

  it('metadata documents: many addresses cannot make Gatehouse hammer one host either', async () => {
    log.clear();
    const before = host.requests();
    const attempts = 200;
    for (let index = 0; index < attempts; index += 1) {
      const documentId = host.serveClient(`/b/${index}.json`, {
        client_name: 'Flood',
        redirect_uris: [REDIRECT],
      });
      // 40 addresses, 5 requests each: under any per-address limit.
      const response = await fetchFrom(`127.0.1.${10 + (index % 40)}`)(
        authorizeUrl(gw, documentId, pkce().challenge).href,
      );
      await response.text();
    }
    expect(host.requests() - before).toBeLessThan(attempts);
    expect(log.of('ratelimit.rejected').length).toBeGreaterThan(0);
  });

  it('dynamic registration: the fourth from one address in an hour is 429 temporarily_unavailable', async () => {
    const from = fetchFrom('127.0.0.6');
    const register = () =>
      from(`${gw.gateway.urls.publicUrl}/oauth/register`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ redirect_uris: [REDIRECT], token_endpoint_auth_method: 'none' }),
      });
    for (let index = 0; index < 3; index += 1) expect((await register()).status).toBe(201);
    const refused = await register();
    expect(refused.status).toBe(429);
    expect(await oauthError(refused)).toBe('temporarily_unavailable');
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    const elsewhere = await fetchFrom('127.0.0.7')(`${gw.gateway.urls.publicUrl}/oauth/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ redirect_uris: [REDIRECT], token_endpoint_auth_method: 'none' }),
    });
    expect(elsewhere.status).toBe(201);
  });

  it('the registration refusal is audited as ratelimit.rejected', async () => {
    log.clear();
    const from = fetchFrom('127.0.0.8');
    for (let index = 0; index < 4; index += 1) {
      await (
        await from(`${gw.gateway.urls.publicUrl}/oauth/register`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ redirect_uris: [REDIRECT], token_endpoint_auth_method: 'none' }),
        })
      ).text();
    }
    expect(log.of('ratelimit.rejected')).toMatchObject([{ limit: 'registration', ip: '127.0.0.8' }]);
  });

  it('WebSocket upgrades per address: 429 ERR_RATE_LIMITED past the limit, audited', async () => {
    log.clear();
    const token = await gw.token('alice');
    const open = [];
    for (let index = 0; index < 3; index += 1)
      open.push(await connectRaw(gw, { token, localAddress: '127.0.0.9' }));
    const refusal = await connectRaw(gw, { token, localAddress: '127.0.0.9' }).then(
      () => undefined,
      (e: unknown) => e as { status: number; body: string; headers: Record<string, string> },
    );
    expect(refusal?.status).toBe(429);
    expect(JSON.parse(refusal?.body ?? '{}').error?.data?.code).toBe('ERR_RATE_LIMITED');
    expect(Number(refusal?.headers['retry-after'])).toBeGreaterThan(0);
    expect(log.of('ratelimit.rejected')).toMatchObject([{ limit: 'ws-connect-ip', ip: '127.0.0.9' }]);
    for (const socket of open) await socket.close();
  });
});
