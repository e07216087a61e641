import { describe, expect, expectTypeOf, it } from 'vitest';
import type {
  DoctorCheck,
  DoctorOptions,
  DoctorReport,
  DoctorStatus,
  ProductionIssue,
  ProductionRefusal,
} from '../../src/index.js';
import * as api from '../../src/index.js';

describe('public API', () => {
  it('exports exactly the named runtime values', () => {
    expect(Object.keys(api).sort()).toMatchInlineSnapshot(`
      [
        "GatehouseError",
        "OAuthError",
        "PRODUCTION_REFUSALS",
        "applyPostgresAuthSchema",
        "assertProductionReady",
        "combineCredentialBrokers",
        "configSchema",
        "createAudienceTokenMinter",
        "createCredentialCache",
        "createEventBus",
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
        "productionIssues",
        "runDoctor",
        "runWithContext",
        "serveGateway",
        "supabaseCredentialBroker",
        "supabaseMinterFromConfig",
        "systemClock",
        "withServiceRole",
        "withUserContext",
      ]
    `);
  });

  // Checked by the typecheck (tests included): an embedder names these types to read a doctor report.
  it('exports the doctor and production-check types with the functions that use them', () => {
    expectTypeOf(api.runDoctor).parameter(1).toEqualTypeOf<DoctorOptions | undefined>();
    expectTypeOf(api.runDoctor).returns.resolves.toEqualTypeOf<DoctorReport>();
    expectTypeOf<DoctorReport['checks'][number]>().toEqualTypeOf<DoctorCheck>();
    expectTypeOf<DoctorCheck['status']>().toEqualTypeOf<DoctorStatus>();
    expectTypeOf(api.productionIssues).returns.toEqualTypeOf<ProductionIssue[]>();
    expectTypeOf<ProductionIssue['code']>().toEqualTypeOf<ProductionRefusal>();
    expect([...api.PRODUCTION_REFUSALS]).toContain('dev_tokens');
  });
});
