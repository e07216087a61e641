import { GatehouseError } from '../errors/gatehouse-error.js';
import { type FileModeReader, type LocalFile, localFiles, octalMode } from './local-files.js';
import type { GatehouseConfig } from './schema.js';
import { secretWeakness } from './secret-strength.js';
import { gatewayUrls } from './urls.js';

/** Why a configuration is not fit for `mode: production`. Tests and `gatehouse doctor` use these codes. */
export const PRODUCTION_REFUSALS = [
  'dev_tokens',
  'dev_secret',
  'weak_secret',
  'weak_secret_key',
  'private_network_metadata',
  'insecure_public_url',
  'memory_store',
  'shared_store_secret_key',
  'secret_key_exposed',
  'data_dir_writable',
  'store_writable',
] as const;

export type ProductionRefusal = (typeof PRODUCTION_REFUSALS)[number];

/** One reason a production start is refused. Never carries a secret value. */
export interface ProductionIssue {
  readonly code: ProductionRefusal;
  /** Dotted path of the offending field. */
  readonly path: string;
  readonly message: string;
  /** The file on disk at fault, for the file checks (`secret_key_exposed`, …). */
  readonly file?: string;
}

export interface ProductionCheckOptions {
  /** Reads permission bits of the deployment's files. Default: `fs.statSync`. */
  readonly fileMode?: FileModeReader | undefined;
}

/** Stores that several instances share; their secret key cannot be generated per instance. */
const PER_INSTANCE_STORES: readonly string[] = ['sqlite', 'memory'];

/** Shortest registration access token production accepts, in bytes: the schema's floor (it is compared online). */
const MIN_INITIAL_ACCESS_TOKEN_BYTES = 16;

/** True for `localhost`, `*.localhost`, `127.0.0.0/8` and `::1`: hosts only this machine reaches. */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  return (
    host === 'localhost' || host.endsWith('.localhost') || host === '::1' || /^127(\.\d{1,3}){3}$/.test(host)
  );
}

/**
 * Every reason the configuration would be refused in production, whatever its `mode` (so
 * `gatehouse doctor` can warn in development): development settings, published or guessable secrets
 * (every HS256 secret Gatehouse verifies or mints with, the secret key, client secrets, the registration
 * access token, the admin API token), and local files others may use (see {@link localFileIssues}). Empty
 * when it is fit.
 *
 * @example
 * const issues = productionIssues(config); // [{ code: 'dev_tokens', path: 'auth.devTokens', … }]
 */
export function productionIssues(
  config: GatehouseConfig,
  options: ProductionCheckOptions = {},
): ProductionIssue[] {
  const issues: ProductionIssue[] = [];
  if (config.auth.devTokens === true) {
    issues.push({
      code: 'dev_tokens',
      path: 'auth.devTokens',
      message: 'development tokens let anyone with the data directory mint tokens for any user; remove it',
    });
  }
  const secret = (path: string, what: string, value: string, minBytes?: number): void => {
    const weakness = secretWeakness(value, { minBytes });
    if (weakness === undefined) return;
    issues.push({
      code: weakness,
      path,
      message:
        weakness === 'dev_secret'
          ? `${what} is a published secret (documentation or tutorial default); anyone can forge with it: generate one (openssl rand -base64 32)`
          : `${what} is guessable (short, few distinct characters, repeated or sequential); generate one (openssl rand -base64 32)`,
    });
  };
  config.auth.verifiers.forEach((verifier, index) => {
    if (verifier.kind !== 'hs256') return;
    secret(
      `auth.verifiers[${index}].secret`,
      `the HS256 secret of verifier "${verifier.name}"`,
      verifier.secret,
    );
  });
  const supabase = config.downstream.supabase;
  if (supabase?.secret !== undefined) {
    secret('downstream.supabase.secret', 'the Supabase JWT secret tokens are minted with', supabase.secret);
  }
  const server = config.authorizationServer;
  if (server.secretKey !== undefined) {
    const key = Buffer.from(server.secretKey.trim(), 'base64url');
    if (secretWeakness(new Uint8Array(key)) !== undefined) {
      issues.push({
        code: 'weak_secret_key',
        path: 'authorizationServer.secretKey',
        message: 'the secret key is not random; generate one with `openssl rand -base64 32`',
      });
    }
  }
  server.clients.forEach((client, index) => {
    if (client.clientSecret === undefined) return;
    secret(
      `authorizationServer.clients[${index}].clientSecret`,
      `the secret of client "${client.clientId}"`,
      client.clientSecret,
    );
  });
  const initialAccessToken = server.dynamicRegistration.initialAccessToken;
  if (initialAccessToken !== undefined) {
    secret(
      'authorizationServer.dynamicRegistration.initialAccessToken',
      'the registration access token',
      initialAccessToken,
      MIN_INITIAL_ACCESS_TOKEN_BYTES,
    );
  }
  if (config.admin.apiToken !== undefined) {
    secret('admin.apiToken', 'the admin API token', config.admin.apiToken);
  }
  if (server.clientIdMetadataDocuments.allowPrivateNetworks) {
    issues.push({
      code: 'private_network_metadata',
      path: 'authorizationServer.clientIdMetadataDocuments.allowPrivateNetworks',
      message:
        'lets anyone who can name a client_id URL reach services behind the firewall; development only',
    });
  }
  const publicUrl = new URL(gatewayUrls(config).publicUrl);
  if (publicUrl.protocol !== 'https:' && !isLoopbackHost(publicUrl.hostname)) {
    issues.push({
      code: 'insecure_public_url',
      path: 'server.publicUrl',
      message: `${publicUrl.origin} is not https; tokens and sign-in pages must not travel in clear text (http is accepted only on loopback hosts)`,
    });
  }
  if (config.store.kind === 'memory') {
    issues.push({
      code: 'memory_store',
      path: 'store.kind',
      message:
        'the memory store loses every user, grant, session and signing key on restart, and its secret key is ephemeral',
    });
  }
  if (!PER_INSTANCE_STORES.includes(config.store.kind) && server.enabled && server.secretKey === undefined) {
    issues.push({
      code: 'shared_store_secret_key',
      path: 'authorizationServer.secretKey',
      message: `the ${config.store.kind} store is shared between instances; set secretKey (or secretKeyFile) so they all open its sealed keys`,
    });
  }
  issues.push(...localFileIssues(localFiles(config, options.fileMode)));
  return issues;
}

/**
 * What production refuses in the files a deployment keeps on this machine: a secret key file any other
 * account may open (it unseals every signing key and upstream token, so its reader forges tokens — ssh
 * refuses a readable private key for the same reason), and a data directory or database others may write
 * (they could put their own key or accounts in place). A database others may only read is not refused:
 * what it holds is hashed or sealed. `gatehouse doctor` fails exactly these.
 */
export function localFileIssues(files: readonly LocalFile[]): ProductionIssue[] {
  const issues: ProductionIssue[] = [];
  for (const file of files) {
    const mode = file.mode === undefined ? '' : ` (${octalMode(file.mode)})`;
    if (file.role === 'secretKey' && file.openTo.length > 0) {
      issues.push({
        code: 'secret_key_exposed',
        path: 'dataDir',
        file: file.path,
        message: `the secret key file ${file.path} is open to ${file.openTo.join(' and ')}${mode}: chmod 600 it`,
      });
    } else if (file.role === 'dataDir' && file.writableBy.length > 0) {
      issues.push({
        code: 'data_dir_writable',
        path: 'dataDir',
        file: file.path,
        message: `the data directory ${file.path} is writable by ${file.writableBy.join(' and ')}${mode}, who could replace the secret key or database: chmod 700 it`,
      });
    } else if (file.role === 'database' && file.writableBy.length > 0) {
      issues.push({
        code: 'store_writable',
        path: 'store.path',
        file: file.path,
        message: `the database ${file.path} is writable by ${file.writableBy.join(' and ')}${mode}, who could add accounts, clients or grants: chmod 600 it`,
      });
    }
  }
  return issues;
}

/**
 * True when the process runs with `NODE_ENV=production` but the configuration says `mode: development`
 * explicitly (`loadConfig` turns `NODE_ENV=production` into production mode otherwise): `gatehouse serve`
 * and `gatehouse doctor` say so loudly.
 */
export function isDevelopmentUnderProductionEnv(
  config: Pick<GatehouseConfig, 'mode'>,
  env: Readonly<Record<string, string | undefined>>,
): boolean {
  return config.mode === 'development' && env.NODE_ENV === 'production';
}

/**
 * Refuses to start in `mode: production` with a development setting, a published or guessable secret, or
 * a local file others may use — exactly what `gatehouse doctor` fails: throws `ERR_CONFIG_INVALID` whose
 * message names every reason and whose `details.issues` lists `{ code, path, message }`. Does nothing in
 * development mode. `createGateway` calls it at start-up; an embedder calls it before serving.
 *
 * @example
 * const config = loadConfig({ env: process.env });
 * assertProductionReady(config); // throws ERR_CONFIG_INVALID in production mode with `auth.devTokens: true`
 */
export function assertProductionReady(config: GatehouseConfig, options: ProductionCheckOptions = {}): void {
  if (config.mode !== 'production') return;
  const issues = productionIssues(config, options);
  if (issues.length === 0) return;
  const lines = issues.map((issue) => `${issue.path}: ${issue.message} (${issue.code})`);
  throw new GatehouseError(
    'ERR_CONFIG_INVALID',
    [
      `Refusing to start in production mode (${issues.length} ${issues.length === 1 ? 'problem' : 'problems'}):`,
      ...lines,
    ].join('\n'),
    { details: { issues: issues.map((issue) => ({ ...issue, source: 'production' })) } },
  );
}
