import { describe, expect, it } from 'vitest';
import { identityFromEnv, splitScopes } from '../../../src/demo/identity.js';

describe('identityFromEnv', () => {
  it('reads every GATEHOUSE_* variable', () => {
    expect(
      identityFromEnv({
        GATEHOUSE_USER_ID: 'user-1',
        GATEHOUSE_USER_EMAIL: 'u@example.com',
        GATEHOUSE_SCOPES: 'a  b c',
        GATEHOUSE_ISSUER: 'https://gatehouse.test',
        GATEHOUSE_SESSION_ID: 'sess-1',
      }),
    ).toEqual({
      userId: 'user-1',
      email: 'u@example.com',
      scopes: ['a', 'b', 'c'],
      issuer: 'https://gatehouse.test',
      sessionId: 'sess-1',
    });
  });

  it('leaves out optional variables that are unset or blank', () => {
    expect(identityFromEnv({ GATEHOUSE_USER_ID: 'user-1', GATEHOUSE_USER_EMAIL: ' ' })).toEqual({
      userId: 'user-1',
      scopes: [],
    });
  });

  it.each([
    {},
    { GATEHOUSE_USER_ID: '' },
    { GATEHOUSE_USER_ID: '   ' },
    { GATEHOUSE_USER_EMAIL: 'x@example.com' },
  ])('is anonymous without a user id: %j', (env) => {
    expect(identityFromEnv(env)).toBeUndefined();
  });
});

describe('splitScopes', () => {
  it('splits on spaces and drops empty entries', () => {
    expect(splitScopes(' read  write ')).toEqual(['read', 'write']);
    expect(splitScopes(undefined)).toEqual([]);
  });
});
