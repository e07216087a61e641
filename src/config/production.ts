import { GatehouseError } from '../errors/gatehouse-error.js';
import type { GatehouseConfig } from './schema.js';

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
] as const;

export type ProductionRefusal = (typeof PRODUCTION_REFUSALS)[number];

/** One reason a production start is refused. Never carries a secret value. */
export interface ProductionIssue {
  readonly code: ProductionRefusal;
  /** Dotted path of the offending field. */
  readonly path: string;
  readonly message: string;
}

/**
 * Published development secrets: the Supabase CLI's local JWT secret and the one in Supabase's
 * self-hosting `.env.example`. A token signed with either can be forged by anyone who read the docs.
 */
const KNOWN_DEVELOPMENT_SECRETS: readonly string[] = [
  'super-secret-jwt-token-with-at-least-32-characters-long',
  'your-super-secret-jwt-token-with-at-least-32-characters-long',
];

/** Fewer distinct characters than this in a shared secret means it was typed, not generated. */
const MIN_DISTINCT_CHARACTERS = 8;

/** Stores that several instances share; their secret key cannot be generated per instance. */
const PER_INSTANCE_STORES: readonly string[] = ['sqlite', 'memory'];

/**
 * What is wrong with a shared secret for production use, or `undefined` when nothing is: a published
 * development value (`dev_secret`), or shorter than 32 bytes / fewer than 8 distinct characters
 * (`weak_secret`, e.g. `aaaa…` or `abab…`).
 */
export function secretWeakness(secret: string): 'dev_secret' | 'weak_secret' | undefined {
  if (KNOWN_DEVELOPMENT_SECRETS.includes(secret)) return 'dev_secret';
  if (Buffer.byteLength(secret, 'utf8') < 32) return 'weak_secret';
  if (new Set(secret).size < MIN_DISTINCT_CHARACTERS) return 'weak_secret';
  return undefined;
}

/** True for `localhost`, `*.localhost`, `127.0.0.0/8` and `::1`: hosts only this machine reaches. */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  return (
    host === 'localhost' || host.endsWith('.localhost') || host === '::1' || /^127(\.\d{1,3}){3}$/.test(host)
  );
}

/**
 * Every reason the configuration would be refused in production, whatever its `mode` (so
 * `gatehouse doctor` can warn in development). Empty when it is fit.
 *
 * @example
 * const issues = productionIssues(config); // [{ code: 'dev_tokens', path: 'auth.devTokens', … }]
 */
export function productionIssues(config: GatehouseConfig): ProductionIssue[] {
  const issues: ProductionIssue[] = [];
  if (config.auth.devTokens === true) {
    issues.push({
      code: 'dev_tokens',
      path: 'auth.devTokens',
      message: 'development tokens let anyone with the data directory mint tokens for any user; remove it',
    });
  }
  config.auth.verifiers.forEach((verifier, index) => {
    if (verifier.kind !== 'hs256' || verifier.secret === undefined) return;
    const weakness = secretWeakness(verifier.secret);
    if (weakness === undefined) return;
    issues.push({
      code: weakness,
      path: `auth.verifiers[${index}].secret`,
      message:
        weakness === 'dev_secret'
          ? `the HS256 secret of verifier "${verifier.name}" is a published development secret; use the project's own`
          : `the HS256 secret of verifier "${verifier.name}" is too weak (under 32 bytes or under ${MIN_DISTINCT_CHARACTERS} distinct characters)`,
    });
  });
  const supabase = config.downstream.supabase;
  const mintingSecretWeakness = supabase?.secret === undefined ? undefined : secretWeakness(supabase.secret);
  if (mintingSecretWeakness !== undefined) {
    issues.push({
      code: mintingSecretWeakness,
      path: 'downstream.supabase.secret',
      message:
        mintingSecretWeakness === 'dev_secret'
          ? "the Supabase JWT secret tokens are minted with is a published development secret; use the project's own"
          : `the Supabase JWT secret tokens are minted with is too weak (under 32 bytes or under ${MIN_DISTINCT_CHARACTERS} distinct characters)`,
    });
  }
  const secretKey = config.authorizationServer.secretKey;
  if (secretKey !== undefined) {
    const bytes = Buffer.from(secretKey.trim(), 'base64url');
    if (new Set(bytes).size < MIN_DISTINCT_CHARACTERS) {
      issues.push({
        code: 'weak_secret_key',
        path: 'authorizationServer.secretKey',
        message:
          'the secret key is not random (too few distinct bytes); generate one with `openssl rand -base64 32`',
      });
    }
  }
  if (config.authorizationServer.clientIdMetadataDocuments.allowPrivateNetworks) {
    issues.push({
      code: 'private_network_metadata',
      path: 'authorizationServer.clientIdMetadataDocuments.allowPrivateNetworks',
      message:
        'lets anyone who can name a client_id URL reach services behind the firewall; development only',
    });
  }
  const publicUrl = publicUrlOf(config);
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
  if (
    !PER_INSTANCE_STORES.includes(config.store.kind) &&
    config.authorizationServer.enabled &&
    config.authorizationServer.secretKey === undefined
  ) {
    issues.push({
      code: 'shared_store_secret_key',
      path: 'authorizationServer.secretKey',
      message: `the ${config.store.kind} store is shared between instances; set secretKey (or secretKeyFile) so they all open its sealed keys`,
    });
  }
  return issues;
}

/**
 * Refuses to start in `mode: production` with a development setting: throws `ERR_CONFIG_INVALID` whose
 * message names every reason and whose `details.issues` lists `{ code, path, message }`. Does nothing in
 * development mode. `gatehouse serve` calls it at start-up; an embedder calls it before serving.
 *
 * @example
 * const config = loadConfig({ env: process.env });
 * assertProductionReady(config); // throws ERR_CONFIG_INVALID in production mode with `auth.devTokens: true`
 */
export function assertProductionReady(config: GatehouseConfig): void {
  if (config.mode !== 'production') return;
  const issues = productionIssues(config);
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

function publicUrlOf(config: GatehouseConfig): URL {
  if (config.server.publicUrl !== undefined) return new URL(config.server.publicUrl);
  const host = config.server.host.includes(':') ? `[${config.server.host}]` : config.server.host;
  return new URL(`http://${host}:${config.server.port}`);
}
