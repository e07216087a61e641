import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetchFrom } from '../helpers/from-address.js';
import type { TestGateway } from '../helpers/gateway.js';
import { freePort } from '../helpers/late-server.js';
import { CookieJar } from '../helpers/oauth.js';
import { type ChaosUpstream, startChaosUpstream } from './helpers/chaos-upstream.js';
import {
  callTool,
  challengeError,
  type EventLog,
  mcpRequest,
  openSession,
  rpcOf,
  startRecorded,
  statelessRequest,
  toolText,
} from './helpers/harness.js';
import {
  addAccount,
  oauthError,
  oauthPost,
  refresh,
  registerClient,
  signInAndRedeem,
  type Tokens,
} from './helpers/oauth-client.js';

/**
 * A bounded soak: many users at once mixing sign-ins, refreshes, tool calls (both protocol eras) and
 * revocations against one gateway on SQLite, for GATEHOUSE_SOAK_SECONDS (30 s in `npm test`; the bench
 * runs 300). Every revoked credential is tried right after its revocation returns and must be refused
 * then; nothing else may fail; the heap and the live state stay flat.
 */

const SOAK_SECONDS = Number(process.env.GATEHOUSE_SOAK_SECONDS ?? 30);
const USERS = 8;

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
function heapMb(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed / 1024 / 1024;
}

/** A small seeded generator, so each worker's mix is the same from run to run. */
function random(seed: number): () => number {
  let state = seed >>> 0 || 1;
  return () => {
    state = (state * 1_664_525 + 1_013_904_223) >>> 0;
    return state / 2 ** 32;
  };
}

interface Tally {
  signIns: number;
  refreshes: number;
  calls: number;
  accessRevocations: number;
  grantRevocations: number;
  revokedRefused: number;
  errors: string[];
}

describe(`soak: ${USERS} users for ${SOAK_SECONDS} s`, () => {
  let gw: TestGateway;
  let log: EventLog;
  let upstream: ChaosUpstream;
  beforeAll(async () => {
    const port = await freePort();
    upstream = await startChaosUpstream({ port: await freePort(), gatewayUrl: `http://127.0.0.1:${port}` });
    ({ gw, log } = await startRecorded({
      server: { port },
      upstream: { kind: 'http', url: upstream.url },
      authorizationServer: { dynamicRegistration: { perIpPerHour: 100_000 } },
    }));
    for (let index = 0; index < USERS; index += 1) await addAccount(gw, `soak${index}`);
  }, 60_000);
  afterAll(async () => {
    await gw?.close();
    await upstream?.close();
  });

  async function refused(accessToken: string): Promise<boolean> {
    const response = await mcpRequest(gw, accessToken, statelessRequest('tools/list'));
    await response.text();
    return response.status === 401 && challengeError(response) === 'invalid_token';
  }

  async function worker(index: number, deadline: number, tally: Tally): Promise<void> {
    const username = `soak${index}`;
    const next = random(index + 1);
    const clientId = await registerClient(gw);
    let jar = new CookieJar();
    let tokens: Tokens;
    let sessionId: string;
    let userId: string | undefined;
    const fail = (what: string) => tally.errors.push(`${username}: ${what}`);

    const signInAgain = async (freshBrowser: boolean) => {
      if (freshBrowser) jar = new CookieJar();
      // Each user signs in from a machine of their own (the authorization endpoint limits per address).
      const signedIn = await signInAndRedeem(gw, {
        username,
        clientId,
        jar,
        fetch: fetchFrom(`127.0.0.${20 + index}`),
      });
      jar = signedIn.jar;
      tokens = signedIn.tokens;
      sessionId = await openSession(gw, tokens.access_token);
      tally.signIns += 1;
    };
    await signInAgain(true);

    while (Date.now() < deadline) {
      const roll = next();
      try {
        if (roll < 0.55) {
          const stateless = roll < 0.3;
          const answer = stateless
            ? await rpcOf(
                await mcpRequest(
                  gw,
                  tokens!.access_token,
                  statelessRequest('tools/call', { name: 'whoami', arguments: {} }),
                ),
              )
            : (await callTool(gw, tokens!.access_token, sessionId!, 'whoami')).answer;
          const who = JSON.parse(toolText(answer) || '{}') as { userId?: string };
          userId ??= who.userId;
          if (who.userId === undefined || who.userId !== userId)
            fail(`whoami answered ${JSON.stringify(answer)}`);
          tally.calls += 1;
        } else if (roll < 0.8) {
          const response = await refresh(gw, clientId, tokens!.refresh_token);
          if (response.status !== 200) fail(`refresh answered ${response.status}`);
          else tokens = (await response.json()) as Tokens;
          tally.refreshes += 1;
        } else if (roll < 0.9) {
          const revoked = tokens!.access_token;
          const response = await oauthPost(
            gw,
            { client_id: clientId, token: revoked, token_type_hint: 'access_token' },
            { path: '/oauth/revoke' },
          );
          if (response.status !== 200) fail(`access revocation answered ${response.status}`);
          if (!(await refused(revoked))) fail('a revoked access token was admitted');
          else tally.revokedRefused += 1;
          tally.accessRevocations += 1;
          const renewed = await refresh(gw, clientId, tokens!.refresh_token);
          if (renewed.status !== 200) fail(`refresh after access revocation answered ${renewed.status}`);
          else tokens = (await renewed.json()) as Tokens;
          // The session that token opened ended with it (revoked access ends what it holds open): the
          // client re-initializes, as it would on the 404.
          sessionId = await openSession(gw, tokens!.access_token);
        } else {
          const held = tokens!;
          const response = await oauthPost(
            gw,
            { client_id: clientId, token: held.refresh_token },
            { path: '/oauth/revoke' },
          );
          if (response.status !== 200) fail(`grant revocation answered ${response.status}`);
          if (!(await refused(held.access_token))) fail("a revoked grant's access token was admitted");
          else tally.revokedRefused += 1;
          const again = await refresh(gw, clientId, held.refresh_token);
          if ((await oauthError(again)) !== 'invalid_grant')
            fail(`a revoked refresh token answered ${again.status}`);
          else tally.revokedRefused += 1;
          tally.grantRevocations += 1;
          // Back in: mostly the remembered browser (no password), sometimes a fresh one (password, scrypt).
          await signInAgain(roll > 0.97);
        }
      } catch (error) {
        fail(String(error));
      }
    }
  }

  it(
    'zero unexpected errors, every revoked credential refused at once, flat heap and bounded state',
    async () => {
      const tally: Tally = {
        signIns: 0,
        refreshes: 0,
        calls: 0,
        accessRevocations: 0,
        grantRevocations: 0,
        revokedRefused: 0,
        errors: [],
      };
      const started = Date.now();
      const deadline = started + SOAK_SECONDS * 1000;
      const samples: number[] = [];
      const sampler = setInterval(() => samples.push(heapMb()), Math.max(1_000, (SOAK_SECONDS * 1000) / 10));
      try {
        await Promise.all(Array.from({ length: USERS }, (_, index) => worker(index, deadline, tally)));
      } finally {
        clearInterval(sampler);
      }
      const elapsedS = (Date.now() - started) / 1000;

      expect(tally.errors.slice(0, 10)).toEqual([]);
      expect(elapsedS).toBeLessThan(SOAK_SECONDS + 20);
      expect(tally.calls).toBeGreaterThan(USERS * 5);
      expect(tally.refreshes).toBeGreaterThan(USERS);
      expect(tally.accessRevocations + tally.grantRevocations).toBeGreaterThan(USERS);
      expect(tally.revokedRefused).toBeGreaterThanOrEqual(
        tally.accessRevocations + 2 * tally.grantRevocations,
      );
      // Only revocations refused anyone; no upstream ever failed.
      expect(log.of('guard.refused').every((event) => event.reason === 'token_revoked')).toBe(true);
      expect(log.of('upstream.failed')).toEqual([]);
      expect(log.of('oauth.token.refresh_reuse')).toEqual([]);

      // Flat: after the first third (warm caches, JIT), the heap does not keep growing.
      const warm = samples.slice(Math.floor(samples.length / 3));
      const first = warm[0] ?? heapMb();
      const last = heapMb();
      expect(last - first).toBeLessThan(48);
      // Bounded: live state is capped per user, whatever the traffic.
      expect(gw.gateway.endpoint.liveRelays()).toBeLessThanOrEqual(
        USERS * gw.gateway.config.sessions.maxPerUser,
      );
      expect(gw.gateway.verification.stats().size).toBeLessThanOrEqual(
        gw.gateway.config.auth.cacheMaxEntries,
      );
    },
    (SOAK_SECONDS + 90) * 1000,
  );
});
