import type { Command } from 'commander';
import { GatehouseError } from '../errors/gatehouse-error.js';
import { describeStores, openStores } from '../stores/open.js';
import { type CliConfigFlags, loadCliConfig } from './config-flags.js';

/**
 * `gatehouse migrate`: brings the configured store's schema up to date and exits — what `serve` also does
 * at start (PostgreSQL under an advisory lock, so instances starting together never race), for operators
 * who migrate before they roll out. Exit codes: 0 up to date, 1 the store failed, 2 configuration error.
 */
export function registerMigrate(program: Command): void {
  program
    .command('migrate')
    .description('bring the configured store (SQLite or PostgreSQL) up to the current schema, then exit')
    .option('-c, --config <file>', 'JSON config file (default: $GATEHOUSE_CONFIG)')
    .option('--data-dir <dir>', 'where the SQLite database lives (default ./.gatehouse)')
    .action(async (flags: CliConfigFlags) => {
      const config = loadCliConfig(flags);
      const store = describeStores(config);
      if (config.store.kind === 'memory' || config.store.kind === 'redis') {
        process.stdout.write(`the ${store.kind} store has no schema: nothing to migrate\n`);
        return;
      }
      try {
        const stores = await openStores(config);
        await stores.close();
      } catch (error) {
        if (!(error instanceof GatehouseError) || error.code === 'ERR_CONFIG_INVALID') throw error;
        process.stderr.write(`gatehouse migrate: ${error.message}\n`);
        process.exitCode = 1;
        return;
      }
      process.stdout.write(`${store.kind} store at ${store.location ?? '(unknown)'}: schema up to date\n`);
    });
}
