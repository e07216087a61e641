import { existsSync } from 'node:fs';
import { localFiles, octalMode, secretKeyPath } from '../config/local-files.js';
import { localFileIssues } from '../config/production.js';
import type { GatehouseConfig } from '../config/schema.js';
import { describeSecret } from '../crypto/fingerprint.js';
import { loadSecretKey } from '../crypto/secret-key.js';
import type { DescribedSecret, DoctorCheck } from './check.js';

/**
 * `secretKey`: the key that seals the signing keys and upstream tokens, by length and fingerprint, and
 * who besides the owner may open its file. A copy lets its reader forge Gatehouse's tokens and act
 * upstream as any user, so an exposed file is what production refuses to start with (a failure in
 * production mode, as ssh refuses a readable private key; a warning in development, where a checkout's
 * umask often leaves files 0644). Never generates the key.
 */
export function secretKeyCheck(config: GatehouseConfig): {
  check: DoctorCheck;
  key?: Uint8Array;
  described?: DescribedSecret;
} {
  const configured = config.authorizationServer.secretKey;
  const file = secretKeyPath(config);
  if (configured === undefined && file === undefined) {
    return {
      check: {
        id: 'secretKey',
        status: 'warn',
        summary: 'ephemeral: a new secret key every start (memory store)',
      },
    };
  }
  if (file !== undefined && !existsSync(file)) {
    return {
      check: {
        id: 'secretKey',
        status: 'warn',
        summary: `not generated yet (gatehouse serve writes ${file})`,
      },
    };
  }
  let loaded: ReturnType<typeof loadSecretKey>;
  try {
    loaded = loadSecretKey({ configured, dataDir: config.dataDir });
  } catch (error) {
    return {
      check: {
        id: 'secretKey',
        status: 'fail',
        summary: error instanceof Error ? error.message : 'the secret key cannot be read',
        details: { reason: 'unreadable' },
      },
    };
  }
  const described = describeSecret(loaded.key);
  const base = `${file === undefined ? 'configured' : `file ${file}`}: ${described.length} bytes, ${described.fingerprint}`;
  const keyFile = localFiles(config).find((local) => local.role === 'secretKey');
  const exposed = keyFile !== undefined && localFileIssues([keyFile]).length > 0;
  const production = config.mode === 'production';
  const mode = keyFile?.mode;
  return {
    check: {
      id: 'secretKey',
      status: !exposed ? 'ok' : production ? 'fail' : 'warn',
      summary:
        !exposed || mode === undefined
          ? base
          : `${base}; mode ${octalMode(mode)} opens it to ${keyFile.openTo.join(' and ')}, who could read it and unseal the signing keys and upstream tokens${production ? '' : ' (a failure in production mode)'}`,
      details: {
        source: loaded.source,
        ...described,
        ...(mode !== undefined && { fileMode: octalMode(mode) }),
        ...(exposed && { reason: 'file_exposed', exposedTo: keyFile.openTo }),
      },
      ...(exposed && { hints: [`chmod 600 ${keyFile.path}`] }),
    },
    key: loaded.key,
    described,
  };
}
