import { describe, expect, it } from 'vitest';
import { GatehouseError } from '../../../src/errors/gatehouse-error.js';
import type { Principal } from '../../../src/identity/principal.js';
import { createManualClock, type ManualClock } from '../../../src/ops/clock.js';
import { createVerificationCache } from '../../../src/tokens/cache.js';
import { createSecretVerifier } from '../../../src/tokens/secret-verifier.js';
import { principalFromClaims, rejectToken, type TokenVerifier } from '../../../src/tokens/verifier.js';
import {
  base64url,
  expectGatehouseError,
  expectRejection,
  hmacKey,
  seconds,
  signJwt,
  tamperPayload,
  thrown,
} from './helpers.js';

const SECRET = 'a-shared-secret-that-is-long-enough-for-hs256';
const ISSUER = 'https://project.supabase.co/auth/v1';

/** Wraps a verifier and counts how often it really runs (each call is one signature check). */
function counted(verifier: TokenVerifier): TokenVerifier & { calls: number } {
  const wrapper = {
    name: verifier.name,
    issuer: verifier.issuer,
    calls: 0,
    verify(token: string): Promise<Principal> {
      wrapper.calls += 1;
      return verifier.verify(token);
    },
  };
  return wrapper;
}

/** A verifier with a scripted answer, for routing tests. */
function scripted(
  name: string,
  issuer: string | undefined,
  answer: (token: string) => Promise<Principal>,
): TokenVerifier & { calls: number } {
  return counted({ name, issuer, verify: answer });
}

/** An unsigned-looking token that only carries claims for routing (scripted verifiers never check it). */
function routingToken(claims: Record<string, unknown>): string {
  return `${base64url({ alg: 'HS256' })}.${base64url(claims)}.c2ln`;
}

function principalFor(token: string, name: string): Principal {
  const claims = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as Record<
    string,
    unknown
  >;
  return principalFromClaims(claims, name, { fallbackIssuer: 'urn:test' });
}

function secretSetup(options: { maxEntries?: number; maxTtlMs?: number; tolerance?: number } = {}) {
  const clock: ManualClock = createManualClock();
  const verifier = counted(
    createSecretVerifier({
      name: 'supabase',
      secret: SECRET,
      issuer: ISSUER,
      audience: 'authenticated',
      clockToleranceSeconds: options.tolerance ?? 0,
      clock,
    }),
  );
  const cache = createVerificationCache({
    verifiers: [verifier],
    maxEntries: options.maxEntries ?? 100,
    maxTtlMs: options.maxTtlMs ?? 300_000,
    clock,
  });
  const now = seconds(clock.now());
  const token = (extra: Record<string, unknown> = {}) =>
    signJwt(
      { iss: ISSUER, aud: 'authenticated', sub: 'user-1', exp: now + 3600, ...extra },
      hmacKey(SECRET),
      {
        alg: 'HS256',
      },
    );
  return { clock, verifier, cache, now, token };
}

function deferred<T>() {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

describe('createVerificationCache', () => {
  describe('caching', () => {
    it('answers a second verify from the cache without running the verifier', async () => {
      const { cache, verifier, token } = secretSetup();
      const jwt = await token();
      const first = await cache.verify(jwt);
      const second = await cache.verify(jwt);
      expect(first.cacheHit).toBe(false);
      expect(second.cacheHit).toBe(true);
      expect(second.principal).toBe(first.principal);
      expect(verifier.calls).toBe(1);
      expect(cache.stats()).toEqual({ hits: 1, misses: 1, coalesced: 0, size: 1 });
    });

    it('never returns an entry at or after the token exp', async () => {
      const { cache, verifier, token, clock, now } = secretSetup({ maxTtlMs: 3_600_000 });
      const jwt = await token({ exp: now + 10 });
      await cache.verify(jwt);
      clock.advance(9_999);
      expect((await cache.verify(jwt)).cacheHit).toBe(true);
      clock.advance(1);
      await expectRejection(cache.verify(jwt), 'token_expired');
      expect(verifier.calls).toBe(2);
      expect(cache.stats().size).toBe(0);
    });

    it('never keeps an entry longer than maxTtlMs, even for a long-lived token', async () => {
      const { cache, verifier, token, clock } = secretSetup({ maxTtlMs: 1_000 });
      const jwt = await token();
      await cache.verify(jwt);
      clock.advance(999);
      expect((await cache.verify(jwt)).cacheHit).toBe(true);
      clock.advance(1);
      expect((await cache.verify(jwt)).cacheHit).toBe(false);
      expect(verifier.calls).toBe(2);
    });

    it('does not store a token accepted only thanks to the clock tolerance', async () => {
      const { cache, verifier, token, now } = secretSetup({ tolerance: 5 });
      const jwt = await token({ exp: now - 2 });
      await cache.verify(jwt);
      expect(cache.stats().size).toBe(0);
      expect((await cache.verify(jwt)).cacheHit).toBe(false);
      expect(verifier.calls).toBe(2);
    });

    it('holds at most maxEntries, evicting the least recently used', async () => {
      const { cache, verifier, token } = secretSetup({ maxEntries: 2 });
      const [a, b, c] = await Promise.all([token({ sub: 'a' }), token({ sub: 'b' }), token({ sub: 'c' })]);
      await cache.verify(a);
      await cache.verify(b);
      expect((await cache.verify(a)).cacheHit).toBe(true); // a is now the most recently used
      await cache.verify(c); // evicts b
      expect(cache.stats().size).toBe(2);
      expect(verifier.calls).toBe(3);

      expect((await cache.verify(a)).cacheHit).toBe(true);
      expect((await cache.verify(c)).cacheHit).toBe(true);
      expect((await cache.verify(b)).cacheHit).toBe(false);
      expect(verifier.calls).toBe(4);
      expect(cache.stats().size).toBe(2);
    });

    it('with maxEntries 0 caches nothing', async () => {
      const { cache, verifier, token } = secretSetup({ maxEntries: 0 });
      const jwt = await token();
      await cache.verify(jwt);
      const second = await cache.verify(jwt);
      expect(second.cacheHit).toBe(false);
      expect(verifier.calls).toBe(2);
      expect(cache.stats().size).toBe(0);
    });

    it('does not cache failures', async () => {
      const { cache, verifier, token, clock, now } = secretSetup();
      const jwt = await token({ nbf: now + 60 });
      await expectRejection(cache.verify(jwt), 'not_yet_valid');
      expect(cache.stats().size).toBe(0);
      clock.advance(60_000);
      const result = await cache.verify(jwt);
      expect(result.principal.subject).toBe('user-1');
      expect(verifier.calls).toBe(2);
    });

    it('keys entries by the whole token: a tampered copy is verified, not served from cache', async () => {
      const { cache, verifier, token } = secretSetup();
      const jwt = await token();
      await cache.verify(jwt);
      const tampered = tamperPayload(jwt, (claims) => {
        claims.role = 'service_role';
      });
      await expectRejection(cache.verify(tampered), 'bad_signature');
      expect(verifier.calls).toBe(2);
    });

    it('clear() drops every entry', async () => {
      const { cache, verifier, token } = secretSetup();
      const jwt = await token();
      await cache.verify(jwt);
      cache.clear();
      expect(cache.stats().size).toBe(0);
      expect((await cache.verify(jwt)).cacheHit).toBe(false);
      expect(verifier.calls).toBe(2);
    });

    it('refuses invalid limits at construction', () => {
      const clock = createManualClock();
      for (const [maxEntries, maxTtlMs] of [
        [-1, 1000],
        [1.5, 1000],
        [10, 0],
        [10, Number.NaN],
      ] as const) {
        expect(
          thrown(() => createVerificationCache({ verifiers: [], maxEntries, maxTtlMs, clock })),
        ).toMatchObject({
          code: 'ERR_CONFIG_INVALID',
        });
      }
    });
  });

  describe('coalescing', () => {
    it('runs one verification for N parallel first calls of the same token', async () => {
      const { cache, verifier, token } = secretSetup();
      const jwt = await token();
      const results = await Promise.all(Array.from({ length: 10 }, () => cache.verify(jwt)));
      expect(verifier.calls).toBe(1);
      expect(new Set(results.map((result) => result.principal)).size).toBe(1);
      expect(cache.stats()).toMatchObject({ misses: 1, coalesced: 9, hits: 0, size: 1 });
    });

    it('shares a failure with every waiting caller, then verifies afresh', async () => {
      const { cache, verifier, token, now } = secretSetup();
      const jwt = await token({ aud: 'anon', exp: now + 60 });
      await Promise.all(
        Array.from({ length: 4 }, () => expectRejection(cache.verify(jwt), 'wrong_audience')),
      );
      expect(verifier.calls).toBe(1);
      await expectRejection(cache.verify(jwt), 'wrong_audience');
      expect(verifier.calls).toBe(2);
    });

    it('does not store a result that was in flight when clear() was called', async () => {
      const gate = deferred<Principal>();
      const verifier = scripted('slow', 'https://idp', () => gate.promise);
      const clock = createManualClock();
      const cache = createVerificationCache({
        verifiers: [verifier],
        maxEntries: 10,
        maxTtlMs: 60_000,
        clock,
      });
      const jwt = routingToken({ iss: 'https://idp', sub: 's', exp: seconds(clock.now()) + 60 });
      const pending = cache.verify(jwt);
      cache.clear();
      gate.resolve(principalFor(jwt, 'slow'));
      await pending;
      expect(cache.stats().size).toBe(0);
    });

    it('does not coalesce different tokens', async () => {
      const { cache, verifier, token } = secretSetup();
      const [a, b] = await Promise.all([token({ sub: 'a' }), token({ sub: 'b' })]);
      const [ra, rb] = await Promise.all([cache.verify(a), cache.verify(b)]);
      expect(ra.principal.subject).toBe('a');
      expect(rb.principal.subject).toBe('b');
      expect(verifier.calls).toBe(2);
    });
  });

  describe('routing', () => {
    function routingSetup(verifiers: TokenVerifier[]) {
      const clock = createManualClock();
      const cache = createVerificationCache({ verifiers, maxEntries: 10, maxTtlMs: 60_000, clock });
      const exp = seconds(clock.now()) + 600;
      return { cache, exp };
    }
    const accept = (name: string) => async (token: string) => principalFor(token, name);
    const refuse = (reason: Parameters<typeof rejectToken>[0]) => async (): Promise<Principal> => {
      throw rejectToken(reason, 'scripted');
    };

    it('sends a token only to the verifier whose issuer equals its iss exactly', async () => {
      const a = scripted('a', 'https://a.example/', accept('a'));
      const b = scripted('b', 'https://b.example', accept('b'));
      const legacy = scripted('legacy', undefined, accept('legacy'));
      const { cache, exp } = routingSetup([a, b, legacy]);
      const result = await cache.verify(routingToken({ iss: 'https://b.example', sub: 's', exp }));
      expect(result.principal.verifier).toBe('b');
      expect([a.calls, b.calls, legacy.calls]).toEqual([0, 1, 0]);
    });

    it('treats a trailing slash as another issuer', async () => {
      const a = scripted('a', 'https://a.example/', accept('a'));
      const { cache, exp } = routingSetup([a]);
      await expectRejection(
        cache.verify(routingToken({ iss: 'https://a.example', sub: 's', exp })),
        'unknown_issuer',
      );
      expect(a.calls).toBe(0);
    });

    it('does not fall back to legacy verifiers when an issuer matched but rejected the token', async () => {
      const a = scripted('a', 'https://a.example', refuse('bad_signature'));
      const legacy = scripted('legacy', undefined, accept('legacy'));
      const { cache, exp } = routingSetup([a, legacy]);
      await expectRejection(
        cache.verify(routingToken({ iss: 'https://a.example', sub: 's', exp })),
        'bad_signature',
      );
      expect(legacy.calls).toBe(0);
    });

    it('tries legacy verifiers (no issuer) in order when no issuer matched, or the token has no iss', async () => {
      const a = scripted('a', 'https://a.example', accept('a'));
      const first = scripted('first', undefined, refuse('bad_signature'));
      const second = scripted('second', undefined, accept('second'));
      const { cache, exp } = routingSetup([a, first, second]);
      const withOtherIss = await cache.verify(routingToken({ iss: 'https://legacy.example', sub: 's', exp }));
      expect(withOtherIss.principal.verifier).toBe('second');
      const withoutIss = await cache.verify(routingToken({ sub: 's2', exp }));
      expect(withoutIss.principal.verifier).toBe('second');
      expect([a.calls, first.calls, second.calls]).toEqual([0, 2, 2]);
    });

    it('rejects with unknown_issuer, running no verifier, when nothing can verify', async () => {
      const a = scripted('a', 'https://a.example', accept('a'));
      const { cache, exp } = routingSetup([a]);
      await expectRejection(
        cache.verify(routingToken({ iss: 'https://evil.example', sub: 's', exp })),
        'unknown_issuer',
      );
      await expectRejection(cache.verify(routingToken({ sub: 's', exp })), 'unknown_issuer');
      await expectRejection(cache.verify(routingToken({ iss: 42, sub: 's', exp })), 'unknown_issuer');
      expect(a.calls).toBe(0);
    });

    it.each([
      ['garbage', 'not a token'],
      ['payload not base64url JSON', 'eyJhbGciOiJIUzI1NiJ9.!!!.sig'],
      ['JWE', 'a.b.c.d.e'],
      ['empty', ''],
    ])('rejects %s as malformed before routing', async (_label, token) => {
      const legacy = scripted('legacy', undefined, accept('legacy'));
      const { cache } = routingSetup([legacy]);
      await expectRejection(cache.verify(token), 'malformed');
      expect(legacy.calls).toBe(0);
    });

    it('tries every verifier for one issuer: an HS256 legacy secret and a JWKS side by side (Supabase migration)', async () => {
      const jwks = scripted('jwks', ISSUER, refuse('alg_not_allowed'));
      const clock = createManualClock();
      const hs256 = counted(
        createSecretVerifier({
          name: 'hs256',
          secret: SECRET,
          issuer: ISSUER,
          audience: 'authenticated',
          clockToleranceSeconds: 0,
          clock,
        }),
      );
      const cache = createVerificationCache({
        verifiers: [jwks, hs256],
        maxEntries: 10,
        maxTtlMs: 60_000,
        clock,
      });
      const jwt = await signJwt(
        { iss: ISSUER, aud: 'authenticated', sub: 'u', exp: seconds(clock.now()) + 60 },
        hmacKey(SECRET),
        { alg: 'HS256' },
      );
      expect((await cache.verify(jwt)).principal.verifier).toBe('hs256');
      expect([jwks.calls, hs256.calls]).toEqual([1, 1]);
    });

    it('reports the most telling rejection when every candidate refuses', async () => {
      const first = scripted('first', 'https://a.example', refuse('alg_not_allowed'));
      const second = scripted('second', 'https://a.example', refuse('wrong_audience'));
      const third = scripted('third', 'https://a.example', refuse('alg_not_allowed'));
      const { cache, exp } = routingSetup([first, second, third]);
      await expectRejection(
        cache.verify(routingToken({ iss: 'https://a.example', sub: 's', exp })),
        'wrong_audience',
      );
    });

    it('fails closed with ERR_JWKS_UNAVAILABLE when a candidate could not fetch its keys and none accepted', async () => {
      const unavailable = scripted('down', 'https://a.example', async () => {
        throw new GatehouseError('ERR_JWKS_UNAVAILABLE', 'down');
      });
      const refusing = scripted('other', 'https://a.example', refuse('bad_signature'));
      const { cache, exp } = routingSetup([unavailable, refusing]);
      await expectGatehouseError(
        cache.verify(routingToken({ iss: 'https://a.example', sub: 's', exp })),
        'ERR_JWKS_UNAVAILABLE',
      );
      expect(refusing.calls).toBe(1);
    });

    it('accepts when another candidate for the issuer verifies despite one being unavailable', async () => {
      const unavailable = scripted('down', 'https://a.example', async () => {
        throw new GatehouseError('ERR_JWKS_UNAVAILABLE', 'down');
      });
      const ok = scripted('ok', 'https://a.example', accept('ok'));
      const { cache, exp } = routingSetup([unavailable, ok]);
      const result = await cache.verify(routingToken({ iss: 'https://a.example', sub: 's', exp }));
      expect(result.principal.verifier).toBe('ok');
    });

    it('lets an unexpected error through unchanged and stops there', async () => {
      const bug = new TypeError('bug');
      const broken = scripted('broken', 'https://a.example', async () => {
        throw bug;
      });
      const ok = scripted('ok', 'https://a.example', accept('ok'));
      const { cache, exp } = routingSetup([broken, ok]);
      await expect(cache.verify(routingToken({ iss: 'https://a.example', sub: 's', exp }))).rejects.toBe(bug);
      expect(ok.calls).toBe(0);
    });
  });
});
