/** Gatehouse's public API. Every export is listed by name; `test/unit/index.test.ts` pins the list. */
export { createGateway, type Gateway, type GatewayDeps, type GatewayUrls, gatewayUrls } from './app.js';
export { type LoadConfigOptions, loadConfig } from './config/load.js';
export {
  configSchema,
  type GatehouseConfig,
  type GatehouseConfigInput,
  type UpstreamConfig,
  type VerifierConfig,
} from './config/schema.js';
export { GatehouseError, type GatehouseErrorCode, isGatehouseError } from './errors/gatehouse-error.js';
export { OAuthError, type OAuthErrorCode } from './errors/oauth-error.js';
export { type Principal, principalKey } from './identity/principal.js';
export { type Clock, createManualClock, systemClock } from './ops/clock.js';
export { createLogger, type Logger } from './ops/logger.js';
export { type RunningGateway, serveGateway } from './server.js';
export { createSessionManager, type SessionManager } from './sessions/manager.js';
export { createMemoryStores } from './stores/memory/index.js';
export type { SessionRecord, SessionStore, Stores } from './stores/ports.js';
export { createSqliteStores } from './stores/sqlite/index.js';
export { createVerificationCache, type VerificationCache } from './tokens/cache.js';
export { describeSecret } from './tokens/fingerprint.js';
export { createJwksVerifier } from './tokens/jwks-verifier.js';
export { createKeyStore, type KeyStore } from './tokens/keys.js';
export { createLocalVerifier } from './tokens/local-verifier.js';
export { createSecretVerifier } from './tokens/secret-verifier.js';
export { createTokenSigner, type TokenSigner } from './tokens/sign.js';
export type { TokenVerifier } from './tokens/verifier.js';
