import { describe, expect, it } from 'vitest';
import {
  type CredentialBroker,
  combineCredentialBrokers,
} from '../../../src/downstream/credential-broker.js';
import type { Principal } from '../../../src/identity/principal.js';

const alice: Principal = {
  subject: 'alice',
  issuer: 'https://issuer.test/',
  scopes: [],
  claims: {},
  expiresAt: 0,
  verifier: 'test',
};

describe('combineCredentialBrokers', () => {
  it('merges env and values, a later broker winning a name, and keeps the earliest expiry', async () => {
    const cloud: CredentialBroker = async (principal) => ({
      env: { CLOUD: `cloud-${principal.subject}`, SHARED: 'first' },
      values: { cloud: 1 },
      expiresAt: 5_000,
    });
    const supabase: CredentialBroker = async () => ({
      env: { SUPABASE_ACCESS_TOKEN: 'jwt', SHARED: 'second' },
      values: { supabaseAccessToken: 'jwt' },
      expiresAt: 3_000,
    });
    const never: CredentialBroker = async () => ({ env: { STATIC: 'x' } });
    const combined = combineCredentialBrokers([cloud, supabase, never]);
    expect(await combined(alice, { id: 's1' })).toEqual({
      env: { CLOUD: 'cloud-alice', SHARED: 'second', SUPABASE_ACCESS_TOKEN: 'jwt', STATIC: 'x' },
      values: { cloud: 1, supabaseAccessToken: 'jwt' },
      expiresAt: 3_000,
    });
    expect((await combineCredentialBrokers([never])(alice, undefined)).expiresAt).toBeUndefined();
  });

  it('fails as a whole when one broker fails (an upstream never starts with part of its credentials)', async () => {
    const ok: CredentialBroker = async () => ({ env: { A: 'a' } });
    const failing: CredentialBroker = async () => {
      throw new Error('sts unavailable');
    };
    await expect(combineCredentialBrokers([ok, failing])(alice, undefined)).rejects.toThrow(
      'sts unavailable',
    );
  });

  it('passes a single broker through unchanged', () => {
    const only: CredentialBroker = async () => ({});
    expect(combineCredentialBrokers([only])).toBe(only);
  });
});
