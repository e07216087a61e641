import { fileURLToPath } from 'node:url';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CredentialBroker } from '../../src/downstream/credential-broker.js';
import type { Principal } from '../../src/identity/principal.js';
import { createManualClock } from '../../src/ops/clock.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { connectClient, text } from '../helpers/mcp.js';

const envEcho = fileURLToPath(new URL('../fixtures/env-echo-server.ts', import.meta.url));
const CREDENTIAL_TTL_MS = 60_000;

interface Echo {
  token: string | null;
  userId: string | null;
  sessionId: string | null;
  pid: number;
}

describe('credential broker (gateway mode, stdio upstream)', () => {
  const clock = createManualClock(Date.now());
  const calls: Array<{ subject: string; sessionId: string | undefined }> = [];
  const broker: CredentialBroker = async (principal, session) => {
    calls.push({ subject: principal.subject, sessionId: session?.id });
    const n = calls.filter((call) => call.subject === principal.subject).length;
    return {
      env: { DEMO_CLOUD_TOKEN: `cred-for-${principal.subject}-${n}` },
      values: { n },
      expiresAt: clock.now() + CREDENTIAL_TTL_MS,
    };
  };
  let gw: TestGateway;

  beforeAll(async () => {
    gw = await startTestGateway(
      {
        store: { kind: 'memory' },
        upstream: { kind: 'stdio', command: process.execPath, args: ['--import', 'tsx', envEcho] },
      },
      { clock, credentialBroker: broker },
    );
  });
  afterAll(async () => {
    await gw?.close();
  });

  async function connect(user: string, era: '2025' | '2026') {
    const token = await gw.token(user, { expiresInSeconds: 3600 });
    const { client, transport } = await connectClient(
      gw.mcpUrl,
      token,
      era === '2026' ? '2026-07-28' : '2025',
    );
    const echo = async (): Promise<Echo> =>
      JSON.parse(text(await client.callTool({ name: 'cloud_token', arguments: {} })));
    return { client, transport, echo };
  }

  const principalFor = (subject: string): Principal => ({
    subject,
    issuer: gw.gateway.urls.issuer,
    scopes: [],
    claims: {},
    expiresAt: 0,
    verifier: 'gatehouse',
  });
  const callsFor = (subject: string) => calls.filter((call) => call.subject === subject);

  it('gives each session its own user credentials, fetched once, refetched after expiry, dropped on DELETE', async () => {
    const alice = await connect('alice', '2025');
    const bob = await connect('bob', '2025');

    const first = await alice.echo();
    expect(first).toMatchObject({ token: 'cred-for-alice-1', userId: 'alice' });
    expect(first.sessionId).toBe(alice.transport.sessionId);
    expect(await alice.echo()).toMatchObject({ token: 'cred-for-alice-1', pid: first.pid });
    expect(callsFor('alice')).toEqual([{ subject: 'alice', sessionId: alice.transport.sessionId }]);

    // Never shared across users.
    expect(await bob.echo()).toMatchObject({ token: 'cred-for-bob-1', userId: 'bob' });
    expect(callsFor('bob')).toHaveLength(1);
    expect(gw.gateway.credentials?.size()).toBe(2);

    // Past expiry the old child (holding expired credentials) is replaced before the next call.
    clock.advance(CREDENTIAL_TTL_MS + 1);
    const renewed = await alice.echo();
    expect(renewed.token).toBe('cred-for-alice-2');
    expect(renewed.pid).not.toBe(first.pid);
    expect(callsFor('alice')).toHaveLength(2);
    expect(await alice.echo()).toMatchObject({ token: 'cred-for-alice-2', pid: renewed.pid });
    expect(callsFor('alice')).toHaveLength(2);

    // Ending the session (DELETE) drops its credentials.
    await alice.transport.terminateSession();
    expect(gw.gateway.credentials?.size()).toBe(1);
    await alice.client.close();
    await bob.client.close();
  });

  it('serves stateless (2026-07-28) requests from a per-user entry, not shared and cached', async () => {
    const carol = await connect('carol', '2026');
    const dave = await connect('dave', '2026');
    expect(await carol.echo()).toMatchObject({ token: 'cred-for-carol-1', userId: 'carol', sessionId: '' });
    expect(await carol.echo()).toMatchObject({ token: 'cred-for-carol-1' });
    expect(await dave.echo()).toMatchObject({ token: 'cred-for-dave-1', userId: 'dave' });
    expect(callsFor('carol')).toEqual([{ subject: 'carol', sessionId: undefined }]);

    clock.advance(CREDENTIAL_TTL_MS + 1);
    expect(await carol.echo()).toMatchObject({ token: 'cred-for-carol-2' });
    expect(callsFor('carol')).toHaveLength(2);
    await carol.client.close();
    await dave.client.close();
  });

  it('exposes the cached credentials to other code, only to their owner', async () => {
    const erin = await connect('erin', '2025');
    await erin.echo();
    const sessionId = erin.transport.sessionId as string;
    const credentials = gw.gateway.credentials;
    if (credentials === undefined) throw new Error('credentials expected');
    const principal = principalFor('erin');
    await expect(credentials.getCredentials(principal, sessionId)).resolves.toMatchObject({
      values: { n: 1 },
    });
    expect(callsFor('erin')).toHaveLength(1);
    await expect(credentials.getCredentials(principalFor('mallory'), sessionId)).rejects.toMatchObject({
      code: 'ERR_SESSION_NOT_FOUND',
    });
    await erin.transport.terminateSession();
    await erin.client.close();
  });
});

describe('credential broker failure', () => {
  it('fails closed: the upstream never starts without the credentials', async () => {
    const gw = await startTestGateway(
      {
        store: { kind: 'memory' },
        upstream: { kind: 'stdio', command: process.execPath, args: ['--import', 'tsx', envEcho] },
      },
      {
        credentialBroker: async () => {
          throw new Error('sts down');
        },
      },
    );
    try {
      const token = await gw.token('alice');
      const client = new Client({ name: 'test', version: '1.0.0' });
      const transport = new StreamableHTTPClientTransport(gw.mcpUrl, {
        authProvider: { token: async () => token },
      });
      await expect(client.connect(transport)).rejects.toThrow();
      expect(gw.gateway.credentials?.size()).toBe(0);
    } finally {
      await gw.close();
    }
  });
});
