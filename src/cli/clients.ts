import type { Command } from 'commander';
import type { AdminClient } from '../admin/service.js';
import {
  addListCommand,
  commandGroup,
  count,
  formatTable,
  type JsonFlags,
  printJson,
  shortTime,
  withAdmin,
  withConfigFlags,
} from './admin-command.js';
import type { CliConfigFlags } from './config-flags.js';

/**
 * `gatehouse clients …`: the dynamically registered OAuth clients (configured clients live in the config
 * file, metadata-document clients are fetched, neither is stored). Exit codes: 0 done, 1 not found, 2
 * usage or configuration error.
 */
export function registerClients(program: Command): void {
  const clients = commandGroup(program, 'clients', 'see, approve and remove registered OAuth clients');

  addListCommand(clients, {
    description: 'list registered clients, oldest first',
    list: (service, query) => service.clients.list(query),
    table,
  });

  withConfigFlags(
    clients
      .command('show')
      .description('show one registered client')
      .argument('<client_id>', 'the client id')
      .option('--json', 'print JSON instead of text'),
  ).action((clientId: string, flags: JsonFlags) =>
    withAdmin(flags, async ({ service }) => {
      const client = await service.clients.show(clientId);
      if (flags.json === true) printJson(client);
      else process.stdout.write(describe(client));
    }),
  );

  withConfigFlags(
    clients
      .command('approve')
      .description(
        'approve a registered client, so users can authorize it (authorizationServer.dynamicRegistration.requireApproval)',
      )
      .argument('<client_id>', 'the client id'),
  ).action((clientId: string, flags: CliConfigFlags) =>
    withAdmin(flags, async ({ service, acted }) => {
      const client = await service.clients.approve(clientId);
      acted('client.approve', client.clientId);
      process.stdout.write(`approved client ${client.clientId}${named(client)}\n`);
    }),
  );

  withConfigFlags(
    clients
      .command('remove')
      .description('delete a registration and revoke every grant issued to it')
      .argument('<client_id>', 'the client id'),
  ).action((clientId: string, flags: CliConfigFlags) =>
    withAdmin(flags, async ({ service, acted }) => {
      const { client, grantsRevoked } = await service.clients.remove(clientId);
      acted('client.remove', client.clientId);
      process.stdout.write(
        `removed client ${client.clientId}${named(client)}; ${count(grantsRevoked, 'grant', 'grants')} revoked\n`,
      );
    }),
  );
}

const named = (client: AdminClient): string =>
  client.clientName === undefined ? '' : ` (${JSON.stringify(client.clientName)})`;

function table(list: readonly AdminClient[]): string {
  if (list.length === 0) return 'no registered clients\n';
  return formatTable(
    ['CLIENT ID', 'NAME', 'AUTH', 'APPROVED', 'CREATED', 'REDIRECT URIS'],
    list.map((client) => [
      client.clientId,
      client.clientName ?? '-',
      client.tokenEndpointAuthMethod,
      client.approvedAt === undefined ? 'no' : shortTime(client.approvedAt),
      shortTime(client.createdAt),
      client.redirectUris.join(' '),
    ]),
  );
}

function describe(client: AdminClient): string {
  const lines: Array<[string, string]> = [
    ['client id', client.clientId],
    ['name', client.clientName ?? '-'],
    ['client uri', client.clientUri ?? '-'],
    ['redirect uris', client.redirectUris.join(' ')],
    ['grant types', client.grantTypes.join(' ')],
    ['authentication', client.tokenEndpointAuthMethod],
    ['application type', client.applicationType],
    ['registered', shortTime(client.createdAt)],
    ['expires', client.expiresAt === undefined ? 'never' : shortTime(client.expiresAt)],
    ['approved', client.approvedAt === undefined ? 'no' : shortTime(client.approvedAt)],
  ];
  const width = Math.max(...lines.map(([label]) => label.length)) + 1;
  return lines.map(([label, value]) => `${`${label}:`.padEnd(width)} ${value}\n`).join('');
}
