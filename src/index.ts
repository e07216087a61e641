/** Gatehouse's public API. Every export is listed by name; `test/unit/index.test.ts` pins the list. */

export { type LoadConfigOptions, loadConfig } from './config/load.js';
export {
  assertProductionReady,
  PRODUCTION_REFUSALS,
  type ProductionIssue,
  type ProductionRefusal,
  productionIssues,
} from './config/production.js';
export {
  configSchema,
  type GatehouseConfig,
  type GatehouseConfigInput,
  type UpstreamConfig,
  type VerifierConfig,
} from './config/schema.js';
export { describeSecret } from './crypto/fingerprint.js';
export {
  type DoctorCheck,
  type DoctorOptions,
  type DoctorReport,
  type DoctorStatus,
  runDoctor,
} from './doctor/doctor.js';
export {
  currentContext,
  currentPrincipal,
  type GatehouseContext,
  type GatehouseSessionRef,
  runWithContext,
} from './downstream/context.js';
export {
  type BrokeredCredentials,
  type CredentialBroker,
  type CredentialCache,
  type CredentialCacheState,
  combineCredentialBrokers,
  createCredentialCache,
} from './downstream/credential-broker.js';
export {
  type AudienceTokenMinter,
  type AudienceTokenMinterOptions,
  type AudienceTokenOptions,
  createAudienceTokenMinter,
  createSupabaseTokenMinter,
  type MintedToken,
  type SupabaseMintOptions,
  type SupabaseTokenMinter,
  type SupabaseTokenMinterOptions,
  supabaseCredentialBroker,
  supabaseMinterFromConfig,
} from './downstream/minted-token.js';
export {
  applyPostgresAuthSchema,
  type PostgresAuthSchemaResult,
} from './downstream/postgres-auth-schema.js';
export {
  type RlsClaims,
  type ServiceRoleOptions,
  type UserContextOptions,
  withServiceRole,
  withUserContext,
} from './downstream/postgres-rls.js';
export type { PostgresConnection } from './downstream/postgres-transaction.js';
export {
  createGateway,
  type Gateway,
  type GatewayDeps,
  type GatewayUrls,
  gatewayUrls,
} from './edge/gateway.js';
export { type RunningGateway, serveGateway } from './edge/serve.js';
export {
  GatehouseError,
  type GatehouseErrorCode,
  isGatehouseError,
  type UpstreamFailureReason,
} from './errors/gatehouse-error.js';
export { OAuthError, type OAuthErrorCode } from './errors/oauth-error.js';
export { type Principal, principalKey } from './identity/principal.js';
export type { DiagnosticsToolHost } from './library/diagnostics-tools.js';
export {
  type CreateGatehouseOptions,
  createGatehouse,
  type Gatehouse,
  type McpFetchHandler,
  type NodeMiddleware,
} from './library/protect.js';
export { type Clock, createManualClock, systemClock } from './ops/clock.js';
export {
  type AuthEvent,
  createEventBus,
  type EventBus,
  type GatehouseEvent,
  type GatehouseEventType,
  type SessionEndReason,
} from './ops/events.js';
export { createLogger, type Logger } from './ops/logger.js';
export { createSessionManager, type SessionManager } from './sessions/manager.js';
export { createMemoryStores } from './stores/memory/index.js';
export type { SessionRecord, SessionStore, Stores } from './stores/ports.js';
export { createSqliteStores } from './stores/sqlite/index.js';
export { createVerificationCache, type VerificationCache } from './tokens/cache.js';
export { createJwksVerifier } from './tokens/jwks-verifier.js';
export { createKeyStore, type KeyStore } from './tokens/keys.js';
export { createLocalVerifier } from './tokens/local-verifier.js';
export { createSecretVerifier } from './tokens/secret-verifier.js';
export { createTokenSigner, type TokenSigner } from './tokens/sign.js';
export type { TokenVerifier } from './tokens/verifier.js';
