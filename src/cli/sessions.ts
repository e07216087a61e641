import type { Command } from 'commander';
import type { AdminSession } from '../admin/service.js';
import {
  addListCommand,
  commandGroup,
  count,
  formatTable,
  type JsonFlags,
  shortTime,
  UsageError,
  withAdmin,
  withConfigFlags,
} from './admin-command.js';

interface EndFlags extends JsonFlags {
  user?: string;
}

/**
 * `gatehouse sessions …`: the live MCP sessions in the configured store, and ending them. Exit codes: 0
 * done, 1 not found, 2 usage or configuration error.
 */
export function registerSessions(program: Command): void {
  const sessions = commandGroup(program, 'sessions', 'see and end live MCP sessions');

  addListCommand(sessions, {
    description: 'list live sessions, oldest first',
    user: "only this local account's sessions",
    list: (service, query) => service.sessions.list(query),
    table,
  });

  withConfigFlags(
    sessions
      .command('end')
      .description(
        'end one session (its next request gets 404 and its upstream is released), or every session of one account',
      )
      .argument('[id]', 'the session id (Mcp-Session-Id), as `gatehouse sessions list` shows it')
      .option('--user <username>', 'end every live session of this local account, leaving its grants alone'),
  ).action((id: string | undefined, flags: EndFlags) =>
    withAdmin(flags, async ({ service, acted }) => {
      if ((id === undefined) === (flags.user === undefined)) {
        throw new UsageError('give either a session id or --user <username>');
      }
      if (flags.user !== undefined) {
        const ended = await service.sessions.endForUser(flags.user);
        acted('session.end.all', flags.user);
        process.stdout.write(`ended ${count(ended, 'live session', 'live sessions')} of ${flags.user}\n`);
        return;
      }
      const session = await service.sessions.end(id as string);
      acted('session.end', session.id);
      process.stdout.write(
        `ended session ${session.id}${session.username === undefined ? '' : ` of ${session.username}`}\n`,
      );
    }),
  );
}

function table(list: readonly AdminSession[]): string {
  if (list.length === 0) return 'no live sessions\n';
  return formatTable(
    ['ID', 'USER', 'TRANSPORT', 'CLIENT', 'CREATED', 'LAST SEEN', 'EXPIRES'],
    list.map((session) => [
      session.id,
      session.username ?? session.principal,
      session.transport,
      session.client ?? '-',
      shortTime(session.createdAt),
      shortTime(session.lastSeenAt),
      shortTime(session.expiresAt),
    ]),
  );
}
