import { describe, expect, it } from 'vitest';
import * as api from '../../src/index.js';

describe('public API', () => {
  it('exports exactly the named runtime values', () => {
    expect(Object.keys(api).sort()).toMatchInlineSnapshot(`
      [
        "GatehouseError",
        "OAuthError",
        "applyPostgresAuthSchema",
        "configSchema",
        "createAudienceTokenMinter",
        "createCredentialCache",
        "createGatehouse",
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
        "createSupabaseTokenMinter",
        "createTokenSigner",
        "createVerificationCache",
        "currentContext",
        "currentPrincipal",
        "describeSecret",
        "gatewayUrls",
        "isGatehouseError",
        "loadConfig",
        "principalKey",
        "runWithContext",
        "serveGateway",
        "supabaseMinterFromConfig",
        "systemClock",
        "withServiceRole",
        "withUserContext",
      ]
    `);
  });
});
