import type { GatehouseConfig } from '../config/schema.js';
import { createSealer } from '../crypto/seal.js';
import { isGatehouseError } from '../errors/gatehouse-error.js';
import type { Clock } from '../ops/clock.js';
import type { SigningKeyStore, Stores } from '../stores/ports.js';
import { createKeyStore, type KeyStore } from '../tokens/keys.js';
import type { DoctorCheck } from './check.js';

/** Marks the point where `createKeyStore` would write: the doctor never changes the deployment. */
class WouldWrite extends Error {}

function readOnly(store: SigningKeyStore): SigningKeyStore {
  return {
    list: (now) => store.list(now),
    create: () => Promise.reject(new WouldWrite()),
    deleteExpired: () => Promise.resolve(0),
  };
}

/**
 * `signingKeys`: the stored signing keys, opened with the secret key as the gateway opens them, but
 * never created or rotated. Returns the key store for the token check.
 */
export async function signingKeysCheck(
  stores: Stores,
  secretKey: Uint8Array,
  config: GatehouseConfig,
  clock: Clock,
): Promise<{ check: DoctorCheck; keys?: KeyStore }> {
  try {
    const records = await stores.signingKeys.list(clock.now());
    const keys = await createKeyStore({
      store: readOnly(stores.signingKeys),
      sealer: createSealer([secretKey]),
      clock,
      rotationMs: config.authorizationServer.signingKeyRotationSeconds * 1000,
    });
    const list = records.map((record) => ({
      kid: record.kid,
      alg: record.alg,
      createdAt: new Date(record.createdAt).toISOString(),
      retiresAt: new Date(record.retiresAt).toISOString(),
    }));
    const current = keys.describe();
    return {
      check: {
        id: 'signingKeys',
        status: 'ok',
        summary: `${list.length} key(s); signing with ${current.kid} (retires ${current.retiresAt})`,
        details: { keys: list },
      },
      keys,
    };
  } catch (error) {
    if (error instanceof WouldWrite) {
      return {
        check: {
          id: 'signingKeys',
          status: 'warn',
          summary: 'no current signing key (gatehouse serve generates one on start)',
        },
      };
    }
    if (isGatehouseError(error, 'ERR_KEY_INVALID')) {
      return {
        check: {
          id: 'signingKeys',
          status: 'fail',
          summary: error.message,
          details: { reason: 'sealed_with_other_key' },
          hints: [
            'the stored keys were sealed with another secret key: compare secret-key fingerprints across instances with --expect-fingerprint secretKey=<fingerprint>',
          ],
        },
      };
    }
    return {
      check: {
        id: 'signingKeys',
        status: 'fail',
        summary: `cannot load the signing keys: ${error instanceof Error ? error.message : String(error)}`,
        details: { reason: 'unreadable' },
      },
    };
  }
}
