import { describe, expect, it } from 'vitest';
import { isGatehouseError } from '../../../src/errors/gatehouse-error.js';
import {
  checkPasswordPolicy,
  DEFAULT_SCRYPT_PARAMS,
  dummyVerify,
  hashPassword,
  needsRehash,
  PASSWORD_MAX_LENGTH,
  PASSWORD_MIN_LENGTH,
  parsePasswordHash,
  resolveScryptParams,
  verifyPassword,
} from '../../../src/identity/password.js';

/** 1 MiB, about a millisecond: keeps the suite fast. Production hashes use DEFAULT_SCRYPT_PARAMS. */
const CHEAP = { params: { ln: 10, r: 8, p: 1 } };

function codeOf(action: () => unknown): string | undefined {
  try {
    action();
  } catch (error) {
    return isGatehouseError(error) ? error.code : `not a GatehouseError: ${String(error)}`;
  }
  return undefined;
}

async function asyncCodeOf(action: () => Promise<unknown>): Promise<string | undefined> {
  try {
    await action();
  } catch (error) {
    return isGatehouseError(error) ? error.code : `not a GatehouseError: ${String(error)}`;
  }
  return undefined;
}

function policyReason(password: string): unknown {
  try {
    checkPasswordPolicy(password);
  } catch (error) {
    if (isGatehouseError(error, 'ERR_PASSWORD_POLICY')) return error.details?.reason;
    throw error;
  }
  return 'accepted';
}

/** Replaces one base64 character of the hash part with a different one. */
function flipHashCharacter(stored: string): string {
  const index = stored.length - 5;
  const replacement = stored[index] === 'A' ? 'B' : 'A';
  return `${stored.slice(0, index)}${replacement}${stored.slice(index + 1)}`;
}

describe('hashPassword / verifyPassword', () => {
  it('round-trips, and refuses a wrong password', async () => {
    const stored = await hashPassword('correct horse battery staple', CHEAP);
    expect(stored).toMatch(/^\$scrypt\$ln=10,r=8,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$/);
    expect(await verifyPassword('correct horse battery staple', stored)).toBe(true);
    expect(await verifyPassword('correct horse battery stapl', stored)).toBe(false);
    expect(await verifyPassword('Correct horse battery staple', stored)).toBe(false);
    expect(await verifyPassword('', stored)).toBe(false);
  });

  it('salts every hash', async () => {
    const first = await hashPassword('same password', CHEAP);
    const second = await hashPassword('same password', CHEAP);
    expect(first).not.toBe(second);
    expect(parsePasswordHash(first).salt.equals(parsePasswordHash(second).salt)).toBe(false);
  });

  it('refuses a hash whose digest or salt was altered', async () => {
    const stored = await hashPassword('correct horse battery staple', CHEAP);
    expect(await verifyPassword('correct horse battery staple', flipHashCharacter(stored))).toBe(false);
    const parts = stored.split('$');
    const salt = parts[3] as string;
    parts[3] = `${salt[0] === 'A' ? 'B' : 'A'}${salt.slice(1)}`;
    expect(await verifyPassword('correct horse battery staple', parts.join('$'))).toBe(false);
  });

  it('reads the parameters from the stored string, so hashes made with other parameters still verify', async () => {
    const stored = await hashPassword('correct horse battery staple', { params: { ln: 11, r: 4, p: 2 } });
    const parsed = parsePasswordHash(stored);
    expect(parsed.algorithm).toBe('scrypt');
    expect(parsed.params).toEqual({ ln: 11, r: 4, p: 2 });
    expect(parsed.salt).toHaveLength(16);
    expect(parsed.hash).toHaveLength(32);
    expect(await verifyPassword('correct horse battery staple', stored)).toBe(true);
    // The parameters are part of what is verified: the same digest under other parameters fails.
    const relabelled = stored.replace('ln=11,r=4,p=2', 'ln=10,r=4,p=2');
    expect(await verifyPassword('correct horse battery staple', relabelled)).toBe(false);
  });

  it('throws ERR_PASSWORD_HASH_INVALID for unknown algorithms and malformed strings', async () => {
    const stored = await hashPassword('correct horse battery staple', CHEAP);
    const unreadable = [
      '$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaA',
      '$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW',
      '',
      'plaintext-password',
      stored.slice(0, -3),
      stored.replace('$scrypt$', '$SCRYPT$'),
      stored.replace('ln=10', 'ln=x'),
      stored.replace(',p=1', ''),
      `${stored}=`,
      `${stored}$extra`,
      stored.replace('ln=10', 'ln=30'),
      stored.replace('r=8', 'r=99'),
    ];
    for (const value of unreadable) {
      expect(await asyncCodeOf(() => verifyPassword('correct horse battery staple', value)), value).toBe(
        'ERR_PASSWORD_HASH_INVALID',
      );
    }
    expect(codeOf(() => parsePasswordHash(unreadable[0] as string))).toBe('ERR_PASSWORD_HASH_INVALID');
  });

  it('treats NFKC-equivalent passwords as the same password', async () => {
    const pairs: Array<[string, string]> = [
      ['caf\u00e9 au lait', 'cafe\u0301 au lait'], // precomposed é vs e + combining acute
      ['\uff50\uff41\uff53\uff53\uff57\uff4f\uff52\uff44', 'password'], // full-width letters
      ['\ufb01nancial-2026', 'financial-2026'], // the ﬁ ligature
    ];
    for (const [stored, typed] of pairs) {
      expect(await verifyPassword(typed, await hashPassword(stored, CHEAP))).toBe(true);
    }
    expect(await verifyPassword('cafe au lait', await hashPassword('caf\u00e9 au lait', CHEAP))).toBe(false);
  });

  it('dummyVerify resolves false', async () => {
    expect(await dummyVerify('anything at all', CHEAP)).toBe(false);
  });

  it('defaults to the OWASP scrypt parameters, N = 2^17, r = 8, p = 1', async () => {
    expect(DEFAULT_SCRYPT_PARAMS).toEqual({ ln: 17, r: 8, p: 1 });
    const stored = await hashPassword('correct horse battery staple');
    expect(parsePasswordHash(stored).params).toEqual({ ln: 17, r: 8, p: 1 });
    expect(stored.startsWith('$scrypt$ln=17,r=8,p=1$')).toBe(true);
    expect(needsRehash(stored)).toBe(false);
  });

  it('refuses parameters it cannot or should not run', () => {
    for (const params of [
      { ln: 0, r: 8, p: 1 },
      { ln: 21, r: 8, p: 1 },
      { ln: 10.5, r: 8, p: 1 },
      { ln: 10, r: 0, p: 1 },
      { ln: 10, r: 8, p: 0 },
      { ln: 20, r: 16, p: 1 }, // 2 GiB
    ]) {
      expect(() => resolveScryptParams({ params }), JSON.stringify(params)).toThrow(RangeError);
    }
  });
});

describe('needsRehash', () => {
  it('flags hashes weaker than the target, in any parameter', async () => {
    const cheap = await hashPassword('correct horse battery staple', CHEAP);
    expect(needsRehash(cheap)).toBe(true);
    expect(needsRehash(cheap, CHEAP)).toBe(false);
    expect(needsRehash(cheap, { params: { ln: 11, r: 8, p: 1 } })).toBe(true);
    expect(needsRehash(cheap, { params: { ln: 10, r: 16, p: 1 } })).toBe(true);
    expect(needsRehash(cheap, { params: { ln: 10, r: 8, p: 2 } })).toBe(true);
    // Stronger than the target is left alone: never downgrade.
    expect(needsRehash(cheap, { params: { ln: 9, r: 8, p: 1 } })).toBe(false);
  });

  it('flags unreadable hashes', () => {
    expect(needsRehash('$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW', CHEAP)).toBe(true);
    expect(needsRehash('garbage', CHEAP)).toBe(true);
  });
});

describe('checkPasswordPolicy (NIST SP 800-63B)', () => {
  it('wants at least 8 characters and at most 1024, and nothing else', () => {
    expect(PASSWORD_MIN_LENGTH).toBe(8);
    expect(PASSWORD_MAX_LENGTH).toBe(1024);
    expect(policyReason('')).toBe('too_short');
    expect(policyReason('1234567')).toBe('too_short');
    expect(policyReason('12345678')).toBe('accepted');
    expect(policyReason('aaaaaaaa')).toBe('accepted'); // no composition rules
    expect(policyReason('        ')).toBe('accepted'); // spaces are characters
    expect(policyReason('x'.repeat(1024))).toBe('accepted');
    expect(policyReason('x'.repeat(1025))).toBe('too_long');
  });

  it('counts code points after NFKC, not UTF-16 units', () => {
    expect(policyReason('🔑🔑🔑🔑')).toBe('too_short'); // 8 UTF-16 units, 4 characters
    expect(policyReason('🔑🔑🔑🔑🔑🔑🔑🔑')).toBe('accepted');
    expect(policyReason('e\u0301'.repeat(4))).toBe('too_short'); // 8 code points, 4 after NFKC
    expect(policyReason('\ufb03\ufb03\ufb03')).toBe('accepted'); // each ﬃ becomes "ffi": 9 characters
  });

  it('refuses text that has no UTF-8 form', () => {
    expect(policyReason('abcdefgh\ud800')).toBe('malformed');
  });

  it('throws ERR_PASSWORD_POLICY', () => {
    expect(codeOf(() => checkPasswordPolicy('short'))).toBe('ERR_PASSWORD_POLICY');
  });
});
