import type { GatehouseConfig } from '../config/schema.js';
import { createSealer, type Sealer } from '../crypto/seal.js';
import { loadSecretKey, type SecretKey } from '../crypto/secret-key.js';
import type { Clock } from '../ops/clock.js';
import type { Stores } from '../stores/ports.js';
import { createKeyStore, type KeyStore } from './keys.js';

export interface DeploymentKeys {
  /** Where the at-rest secret key came from (never the key). */
  readonly secretKeySource: SecretKey['source'];
  /** Seals secrets at rest with the deployment's secret key. */
  readonly sealer: Sealer;
  readonly keys: KeyStore;
}

/**
 * The deployment's secret key and signing keys, as the configuration says: the configured secret key, or
 * the one generated under `dataDir` (in memory for the memory store; several instances on a shared store
 * must configure the same one), and the signing keys in
 * `stores.signingKeys`, sealed with it. The gateway and `gatehouse token` open them the same way.
 */
export async function openDeploymentKeys(
  config: GatehouseConfig,
  stores: Pick<Stores, 'signingKeys' | 'bus'>,
  clock: Clock,
): Promise<DeploymentKeys> {
  const secretKey = loadSecretKey({
    configured: config.authorizationServer.secretKey,
    dataDir: config.store.kind === 'memory' ? undefined : config.dataDir,
  });
  const sealer = createSealer([secretKey.key]);
  const keys = await createKeyStore({
    store: stores.signingKeys,
    sealer,
    clock,
    rotationMs: config.authorizationServer.signingKeyRotationSeconds * 1000,
    bus: stores.bus,
  });
  return { secretKeySource: secretKey.source, sealer, keys };
}
