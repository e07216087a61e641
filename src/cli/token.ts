import type { Command } from 'commander';
import { GatehouseError } from '../errors/gatehouse-error.js';
import { systemClock } from '../ops/clock.js';
import { openStores } from '../stores/open.js';
import { openDeploymentKeys } from '../tokens/open-keys.js';
import { createTokenSigner } from '../tokens/sign.js';
import { type CliConfigFlags, loadCliConfig } from './config-flags.js';

interface TokenFlags extends CliConfigFlags {
  user: string;
  email?: string;
  scope?: string;
  ttl: string;
}

export function registerToken(program: Command): void {
  program
    .command('token')
    .description('DEVELOPMENT ONLY: mint an access token for a named user with this gateway’s own key')
    .requiredOption('-u, --user <id>', 'subject (sub) of the token')
    .option('--email <email>', 'email claim')
    .option('--scope <scopes>', 'space-separated scopes')
    .option('--ttl <seconds>', 'lifetime in seconds', '3600')
    .option('-c, --config <file>', 'JSON config file (default: $GATEHOUSE_CONFIG)')
    .option('--public-url <url>', 'base URL clients use to reach Gatehouse')
    .option('-p, --port <port>', 'port the gateway listens on')
    .option('--data-dir <dir>', 'where the signing keys live (default ./.gatehouse)')
    .action(async (flags: TokenFlags) => {
      const config = loadCliConfig(flags);
      const allowed = config.auth.devTokens ?? config.mode === 'development';
      if (!allowed) {
        throw new GatehouseError(
          'ERR_CONFIG_INVALID',
          'development tokens are disabled (production mode); sign users in through an identity provider',
        );
      }
      const ttl = Number(flags.ttl);
      if (!Number.isInteger(ttl) || ttl <= 0 || ttl > 86_400) {
        throw new GatehouseError(
          'ERR_BAD_REQUEST',
          '--ttl must be a whole number of seconds between 1 and 86400',
        );
      }
      if (config.store.kind === 'memory') {
        throw new GatehouseError('ERR_CONFIG_INVALID', 'the memory store keeps no signing key to mint with');
      }
      // Loaded here, not at the top: `app.js` pulls in the whole gateway.
      const { gatewayUrls } = await import('../app.js');
      const urls = gatewayUrls(config);
      const stores = openStores(config);
      let token: string;
      try {
        const { keys } = await openDeploymentKeys(config, stores, systemClock);
        const signer = createTokenSigner({ keys, issuer: urls.issuer, clock: systemClock });
        token = await signer.sign({
          subject: flags.user,
          audience: urls.resource,
          expiresInSeconds: ttl,
          claims: {
            ...(flags.email === undefined ? {} : { email: flags.email }),
            scope: flags.scope ?? config.auth.requiredScopes.join(' '),
            gatehouse_dev: true,
          },
        });
      } finally {
        await stores.close();
      }
      process.stderr.write(
        `development token for ${flags.user}, audience ${urls.resource}, expires in ${ttl}s\n`,
      );
      process.stdout.write(`${token}\n`);
    });
}
