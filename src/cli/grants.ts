import type { Command } from 'commander';
import type { AdminGrant } from '../admin/service.js';
import {
  addListCommand,
  commandGroup,
  formatTable,
  shortTime,
  withAdmin,
  withConfigFlags,
} from './admin-command.js';
import type { CliConfigFlags } from './config-flags.js';

/**
 * `gatehouse grants …`: the grants (a user's authorization of one client, and its refresh tokens), and
 * revoking them. Exit codes: 0 done, 1 not found, 2 usage or configuration error.
 */
export function registerGrants(program: Command): void {
  const grants = commandGroup(
    program,
    'grants',
    'see and revoke what users authorized their MCP clients to do',
  );

  addListCommand(grants, {
    description: 'list grants not yet expired, oldest first (with --user: only the live ones)',
    user: "only this local account's live grants",
    list: (service, query) => service.grants.list(query),
    table,
  });

  withConfigFlags(
    grants
      .command('revoke')
      .description(
        'revoke one grant: its refresh token gets invalid_grant and its access tokens are refused from now on',
      )
      .argument('<id>', 'the grant id, as `gatehouse grants list` shows it'),
  ).action((id: string, flags: CliConfigFlags) =>
    withAdmin(flags, async ({ service, acted }) => {
      const grant = await service.grants.revoke(id);
      acted('grant.revoke', grant.id);
      const who = grant.username ?? grant.principal;
      process.stdout.write(
        `revoked grant ${grant.id} (${who}, client ${grant.clientName ?? grant.clientId})\n`,
      );
    }),
  );
}

function table(list: readonly AdminGrant[]): string {
  if (list.length === 0) return 'no grants\n';
  return formatTable(
    ['ID', 'USER', 'CLIENT', 'SCOPES', 'STATE', 'CREATED', 'EXPIRES'],
    list.map((grant) => [
      grant.id,
      grant.username ?? grant.principal,
      grant.clientName === undefined ? grant.clientId : `${grant.clientName} (${grant.clientId})`,
      grant.scopes.length === 0 ? '-' : grant.scopes.join(' '),
      grant.revokedAt === undefined ? 'active' : 'revoked',
      shortTime(grant.createdAt),
      shortTime(grant.expiresAt),
    ]),
  );
}
