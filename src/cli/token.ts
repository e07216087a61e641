import { randomBytes } from 'node:crypto';
import type { Command } from 'commander';
import { decodeJwt } from 'jose';
import type { GatehouseConfig } from '../config/schema.js';
import { gatewayUrls } from '../config/urls.js';
import { GatehouseError } from '../errors/gatehouse-error.js';
import { systemClock } from '../ops/clock.js';
import { openStores } from '../stores/open.js';
import { DEVELOPMENT_TOKEN_CLAIM } from '../tokens/local-verifier.js';
import { openDeploymentKeys } from '../tokens/open-keys.js';
import { announceRevocations } from '../tokens/revocation.js';
import { createTokenSigner } from '../tokens/sign.js';
import { addConfigFlags, type CliConfigFlags, loadCliConfig } from './config-flags.js';

/** Lifetime of a development token unless `--ttl` says otherwise, in seconds: 15 minutes. */
export const DEV_TOKEN_DEFAULT_TTL_SECONDS = 15 * 60;
/** Longest `--ttl`, in seconds (one day); a revocation by bare `jti` is kept this long. */
export const DEV_TOKEN_MAX_TTL_SECONDS = 24 * 60 * 60;

interface TokenFlags extends CliConfigFlags {
  user?: string;
  email?: string;
  scope?: string;
  ttl: string;
}

export function registerToken(program: Command): void {
  const command = program
    .command('token')
    .description(
      'DEVELOPMENT ONLY: mint a short-lived access token for a named user with this gateway’s own key; `token revoke <token|jti>` revokes one',
    )
    .argument('[action]', '"revoke" to revoke a token instead of minting one')
    .argument('[target]', 'with revoke: the token, or its jti')
    .option('-u, --user <id>', 'subject (sub) of the token')
    .option('--email <email>', 'email claim')
    .option('--scope <scopes>', 'space-separated scopes')
    .option(
      '--ttl <seconds>',
      `lifetime in seconds, at most ${DEV_TOKEN_MAX_TTL_SECONDS}`,
      String(DEV_TOKEN_DEFAULT_TTL_SECONDS),
    );
  // The same flags as `serve`, so the token's issuer and audience are the running server's.
  addConfigFlags(command, { upstream: false }).action(
    async (action: string | undefined, target: string | undefined, flags: TokenFlags) => {
      if (action === undefined) return mint(flags);
      if (action !== 'revoke' || target === undefined) {
        throw new GatehouseError(
          'ERR_BAD_REQUEST',
          'usage: gatehouse token --user <id> | gatehouse token revoke <token|jti>',
        );
      }
      return revoke(target, flags);
    },
  );
}

async function mint(flags: TokenFlags): Promise<void> {
  if (flags.user === undefined) {
    throw new GatehouseError('ERR_BAD_REQUEST', '--user <id> is required to mint a token');
  }
  const config = loadCliConfig(flags);
  if (config.mode !== 'development' || config.auth.devTokens === false) {
    throw new GatehouseError(
      'ERR_CONFIG_INVALID',
      `development tokens are disabled (${config.mode === 'development' ? 'auth.devTokens is false' : 'production mode'}); sign users in through an identity provider`,
    );
  }
  const ttl = Number(flags.ttl);
  if (!Number.isInteger(ttl) || ttl <= 0 || ttl > DEV_TOKEN_MAX_TTL_SECONDS) {
    throw new GatehouseError(
      'ERR_BAD_REQUEST',
      `--ttl must be a whole number of seconds between 1 and ${DEV_TOKEN_MAX_TTL_SECONDS}`,
    );
  }
  if (config.store.kind === 'memory') {
    throw new GatehouseError('ERR_CONFIG_INVALID', 'the memory store keeps no signing key to mint with');
  }
  const urls = gatewayUrls(config);
  const jti = randomBytes(16).toString('base64url');
  const stores = await openStores(config);
  let token: string;
  try {
    const { keys } = await openDeploymentKeys(config, stores, systemClock);
    keys.close();
    const signer = createTokenSigner({ keys, issuer: urls.issuer, clock: systemClock });
    token = await signer.sign({
      subject: flags.user,
      audience: urls.resource,
      expiresInSeconds: ttl,
      jti,
      claims: {
        ...(flags.email === undefined ? {} : { email: flags.email }),
        scope: flags.scope ?? config.auth.requiredScopes.join(' '),
        [DEVELOPMENT_TOKEN_CLAIM]: true,
      },
    });
  } finally {
    await stores.close();
  }
  process.stderr.write(
    [
      `development token for ${flags.user}, audience ${urls.resource}, expires in ${ttl}s (jti ${jti})`,
      `revoke it with: gatehouse token revoke ${jti}`,
      '',
    ].join('\n'),
  );
  process.stdout.write(`${token}\n`);
}

/**
 * Writes a `jti` revocation into the configured store, where the gateway reads it. Kept until the token
 * expires (its `exp`, when the token itself is given; the longest `--ttl` for a bare `jti`), plus the
 * clock tolerance the gateway allows.
 */
async function revoke(target: string, flags: TokenFlags): Promise<void> {
  const config = loadCliConfig(flags);
  if (config.store.kind === 'memory') {
    throw new GatehouseError(
      'ERR_CONFIG_INVALID',
      'the memory store keeps no revocations another process can read',
    );
  }
  const now = systemClock.now();
  const revocation = revocationOf(target, config, now);
  const stores = await openStores(config);
  try {
    await stores.revocations.add({
      kind: 'jti',
      id: revocation.jti,
      revokedAt: now,
      expiresAt: revocation.expiresAt,
    });
    await announceRevocations(stores.bus);
  } finally {
    await stores.close();
  }
  const issuer = gatewayUrls(config).issuer;
  const lines = [`revoked jti ${revocation.jti} until ${new Date(revocation.expiresAt).toISOString()}`];
  if (revocation.issuer !== undefined && revocation.issuer !== issuer) {
    lines.push(`note: the token names issuer ${revocation.issuer}, not this gateway's ${issuer}`);
  }
  process.stderr.write(`${lines.join('\n')}\n`);
}

function revocationOf(
  target: string,
  config: GatehouseConfig,
  now: number,
): { jti: string; expiresAt: number; issuer?: string } {
  const toleranceMs = config.auth.clockToleranceSeconds * 1000;
  if (!target.includes('.')) {
    return { jti: target, expiresAt: now + DEV_TOKEN_MAX_TTL_SECONDS * 1000 + toleranceMs };
  }
  let claims: ReturnType<typeof decodeJwt>;
  try {
    claims = decodeJwt(target);
  } catch {
    throw new GatehouseError('ERR_BAD_REQUEST', 'not a token (a JWT) nor a jti');
  }
  if (typeof claims.jti !== 'string' || claims.jti === '') {
    throw new GatehouseError('ERR_BAD_REQUEST', 'the token has no jti, so it cannot be revoked on its own');
  }
  const expiresAt =
    typeof claims.exp === 'number'
      ? claims.exp * 1000 + toleranceMs
      : now + DEV_TOKEN_MAX_TTL_SECONDS * 1000 + toleranceMs;
  return { jti: claims.jti, expiresAt, ...(typeof claims.iss === 'string' && { issuer: claims.iss }) };
}
