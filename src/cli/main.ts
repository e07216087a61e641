import { Command } from 'commander';
import { isGatehouseError } from '../errors/gatehouse-error.js';
import { registerAudit } from './audit.js';
import { registerClients } from './clients.js';
import { registerDoctor } from './doctor.js';
import { registerGrants } from './grants.js';
import { registerInit } from './init.js';
import { registerKeys } from './keys.js';
import { registerMigrate } from './migrate.js';
import { registerServe } from './serve.js';
import { registerSessions } from './sessions.js';
import { registerToken } from './token.js';
import { registerUsers } from './users.js';

/** The `gatehouse` command: a thin shell over the library. */
export async function main(argv: readonly string[]): Promise<void> {
  const program = new Command();
  program.name('gatehouse').description('The multi-user front door for MCP servers').showHelpAfterError();
  registerServe(program);
  registerInit(program);
  registerToken(program);
  registerUsers(program);
  registerSessions(program);
  registerGrants(program);
  registerClients(program);
  registerKeys(program);
  registerAudit(program);
  registerDoctor(program);
  registerMigrate(program);
  try {
    await program.parseAsync([...argv]);
  } catch (error) {
    if (isGatehouseError(error, 'ERR_CONFIG_INVALID')) {
      process.stderr.write(`gatehouse: invalid configuration\n${error.message}\n`);
      process.exitCode = 2;
      return;
    }
    throw error;
  }
}
