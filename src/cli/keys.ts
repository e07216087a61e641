import type { Command } from 'commander';
import type { AdminSigningKey } from '../admin/service.js';
import {
  commandGroup,
  formatTable,
  type JsonFlags,
  printJson,
  shortTime,
  withAdmin,
  withConfigFlags,
} from './admin-command.js';
import type { CliConfigFlags } from './config-flags.js';

/**
 * `gatehouse keys …`: the authorization server's signing keys (public parts only), and rotating them.
 * Exit codes: 0 done, 1 refused, 2 usage or configuration error.
 */
export function registerKeys(program: Command): void {
  const keys = commandGroup(program, 'keys', "see and rotate the authorization server's signing keys");

  withConfigFlags(
    keys
      .command('list')
      .description('list the published signing keys, newest first (never their private parts)')
      .option('--json', 'print a JSON array instead of a table'),
  ).action((flags: JsonFlags) =>
    withAdmin(flags, async ({ service }) => {
      const list = await service.keys.list();
      if (flags.json === true) printJson(list);
      else process.stdout.write(table(list));
    }),
  );

  withConfigFlags(
    keys
      .command('rotate')
      .description(
        'generate the next signing key now; the previous keys keep verifying the tokens they signed until those expire',
      ),
  ).action((flags: CliConfigFlags) =>
    withAdmin(
      flags,
      async ({ service, acted }) => {
        const key = await service.keys.rotate();
        acted('keys.rotate', key.kid);
        process.stdout.write(
          `generated signing key ${key.kid}; running gateways sign with it once they reload their keys (at once on a shared store's bus, otherwise within a minute)\n`,
        );
      },
      { keys: true },
    ),
  );
}

function table(list: readonly AdminSigningKey[]): string {
  if (list.length === 0) return 'no signing keys yet (the gateway generates the first when it starts)\n';
  return formatTable(
    ['KID', 'ALG', 'STATE', 'CREATED', 'RETIRES', 'EXPIRES'],
    list.map((key) => [
      key.kid,
      key.alg,
      key.state,
      shortTime(key.createdAt),
      shortTime(key.retiresAt),
      shortTime(key.expiresAt),
    ]),
  );
}
