import { describe, expect, it } from 'vitest';
import * as api from '../../src/index.js';

describe('public API', () => {
  it('exports exactly the named runtime values', () => {
    expect(Object.keys(api).sort()).toMatchInlineSnapshot(`
      [
        "GatehouseError",
        "OAuthError",
        "configSchema",
        "createGateway",
        "createJwksVerifier",
        "createKeyStore",
        "createLocalVerifier",
        "createLogger",
        "createManualClock",
        "createMemoryStores",
        "createSecretVerifier",
        "createSessionManager",
        "createSqliteStores",
        "createTokenSigner",
        "createVerificationCache",
        "describeSecret",
        "gatewayUrls",
        "isGatehouseError",
        "loadConfig",
        "principalKey",
        "serveGateway",
        "systemClock",
      ]
    `);
  });
});
