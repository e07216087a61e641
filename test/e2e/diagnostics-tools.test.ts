import { randomBytes } from 'node:crypto';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { text } from '../helpers/mcp.js';

const HS_SECRET = `hs-secret-${randomBytes(24).toString('hex')}`;
const HS_ISSUER = 'https://project.supabase.test/auth/v1';
const SECRET_KEY = randomBytes(32).toString('base64url');
const ALICE = 'alice-diagnostics-user';
const BOB = 'bob-the-other-user';
const DIAGNOSTIC_TOOLS = ['gatehouse_sessions', 'gatehouse_validate_token', 'gatehouse_whoami'];
const ERAS = [
  { era: '2025', options: {} },
  { era: '2026-07-28', options: { versionNegotiation: { mode: { pin: '2026-07-28' as const } } } },
] as const;

function hsToken(claims: Record<string, unknown>, secret = HS_SECRET): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(secret));
}

async function connect(gw: TestGateway, token: string, options: Record<string, unknown>) {
  const client = new Client({ name: 'test', version: '1.0.0' }, options);
  const transport = new StreamableHTTPClientTransport(gw.mcpUrl, {
    authProvider: { token: async () => token },
  });
  await client.connect(transport);
  return { client, transport };
}

describe('diagnostics tools through real MCP clients', () => {
  let gw: TestGateway;
  /** Strings no diagnostics output may contain. */
  const forbidden: string[] = [];
  const outputs: string[] = [];
  let bobSessionId: string;
  let closeBob: () => Promise<void>;

  beforeAll(async () => {
    gw = await startTestGateway({
      store: { kind: 'memory' },
      diagnostics: { enabled: true },
      authorizationServer: { secretKey: SECRET_KEY },
      auth: {
        verifiers: [{ kind: 'hs256', name: 'supabase', secret: HS_SECRET, issuer: HS_ISSUER }],
      },
    });
    // Bob opens sessions first: nothing of his may show up in Alice's diagnostics.
    const bobToken = await gw.token(BOB, { scope: 'notes' });
    const bob = await connect(gw, bobToken, {});
    await bob.client.callTool({ name: 'whoami', arguments: {} });
    bobSessionId = bob.transport.sessionId as string;
    closeBob = () => bob.client.close();
    // The signing private key is a non-extractable CryptoKey: no code path can print it. The secrets that
    // are strings (the HS256 project secret, the at-rest secret key) are checked below.
    forbidden.push(HS_SECRET, SECRET_KEY, bobToken, BOB, bobSessionId, bobSessionId.slice(0, 8));
  });
  afterAll(async () => {
    await closeBob?.();
    await gw?.close();
  });

  async function call(client: Client, name: string, args: Record<string, unknown> = {}) {
    const result = await client.callTool({ name, arguments: args });
    const output = text(result);
    outputs.push(JSON.stringify(result));
    return { result, body: JSON.parse(output) as Record<string, unknown> };
  }

  for (const { era, options } of ERAS) {
    it(`${era}: lists the upstream's tools and the gatehouse_* tools, and answers them`, async () => {
      const token = await gw.token(ALICE, { scope: 'notes', email: 'alice@example.test' });
      forbidden.push(token);
      const { client, transport } = await connect(gw, token, options);
      if (era !== '2025') expect(client.getNegotiatedProtocolVersion()).toBe('2026-07-28');

      const names = (await client.listTools()).tools.map((tool) => tool.name);
      expect(names).toEqual(
        expect.arrayContaining(['whoami', 'notes_add', 'notes_list', ...DIAGNOSTIC_TOOLS]),
      );
      expect(names.filter((name) => name.startsWith('gatehouse_')).sort()).toEqual(DIAGNOSTIC_TOOLS);

      const { body: who } = await call(client, 'gatehouse_whoami');
      expect(who).toMatchObject({
        authScheme: 'Bearer',
        issuer: gw.gateway.urls.issuer,
        subject: ALICE,
        scopes: ['notes'],
        verifier: 'gatehouse',
        verificationCache: 'hit',
      });
      expect(Date.parse(who.tokenExpiresAt as string)).toBeGreaterThan(Date.now());
      expect(who.session === null).toBe(era !== '2025');

      // A valid token, checked without entering the request path's cache.
      const other = await gw.token(ALICE, { scope: 'notes', expiresInSeconds: 120 });
      forbidden.push(other);
      const cachedBefore = gw.gateway.verification.stats().size;
      const { body: valid } = await call(client, 'gatehouse_validate_token', { token: other });
      expect(valid).toMatchObject({ valid: true, verifier: 'gatehouse', claims: { sub: ALICE } });
      expect(gw.gateway.verification.stats().size).toBe(cachedBefore);

      const now = Math.floor(Date.now() / 1000);
      const expired = await hsToken({ iss: HS_ISSUER, aud: 'authenticated', sub: ALICE, exp: now - 600 });
      const forged = await hsToken(
        { iss: HS_ISSUER, aud: 'authenticated', sub: ALICE, exp: now + 600 },
        'not-the-project-secret-but-long-enough-to-sign',
      );
      forbidden.push(expired, forged);
      const { body: expiredAnswer } = await call(client, 'gatehouse_validate_token', { token: expired });
      expect(expiredAnswer).toMatchObject({ valid: false, reason: 'token_expired' });
      expect(expiredAnswer.unverifiedClaims).toMatchObject({ iss: HS_ISSUER, sub: ALICE, exp: now - 600 });
      const { body: forgedAnswer } = await call(client, 'gatehouse_validate_token', { token: forged });
      expect(forgedAnswer).toMatchObject({ valid: false, reason: 'bad_signature' });
      const { body: garbage } = await call(client, 'gatehouse_validate_token', { token: 'not-a-jwt' });
      expect(garbage).toMatchObject({ valid: false, reason: 'malformed' });
      const { result: missing } = await call(client, 'gatehouse_validate_token', {});
      expect(missing.isError).toBe(true);

      const { body: sessions } = await call(client, 'gatehouse_sessions');
      const listed = sessions.sessions as Array<Record<string, unknown>>;
      if (era === '2025') {
        expect(listed).toEqual([
          expect.objectContaining({
            idPrefix: (transport.sessionId as string).slice(0, 8),
            kind: 'streamable-http',
            current: true,
          }),
        ]);
        expect(outputs.join('\n')).not.toContain(transport.sessionId);
      } else {
        expect(listed).toEqual([]);
      }
      expect(sessions.verificationCache).toMatchObject({
        hits: expect.any(Number),
        size: expect.any(Number),
      });
      // Ended (DELETE), so the next era's caller has no live session left to list.
      if (era === '2025') await transport.terminateSession();
      await client.close();
    });
  }

  it("never reveals a token, a secret or another user's data", () => {
    expect(outputs.length).toBeGreaterThanOrEqual(14);
    const all = outputs.join('\n');
    for (const value of forbidden) expect(all).not.toContain(value);
  });
});

describe('diagnostics tools disabled (the default)', () => {
  it("are not listed, and calling one is the upstream's unknown-tool answer", async () => {
    const gw = await startTestGateway({ store: { kind: 'memory' } });
    try {
      for (const { options } of ERAS) {
        const { client } = await connect(gw, await gw.token(ALICE), options);
        const names = (await client.listTools()).tools.map((tool) => tool.name);
        expect(names).toContain('whoami');
        expect(names.some((name) => name.startsWith('gatehouse_'))).toBe(false);
        const answer = await client.callTool({ name: 'gatehouse_whoami', arguments: {} }).then(
          (result) => ({ isError: result.isError === true, output: text(result) }),
          (error: unknown) => ({ isError: true, output: String(error) }),
        );
        expect(answer.isError).toBe(true);
        expect(answer.output).toMatch(/gatehouse_whoami/);
        expect(answer.output).not.toContain('authScheme');
        await client.close();
      }
    } finally {
      await gw.close();
    }
  });
});
