import { loadConfig } from '../config/load.js';
import type { GatehouseConfig, GatehouseConfigInput } from '../config/schema.js';
import { splitCommand } from './split-command.js';

/** Flags shared by the commands that read the configuration. */
export interface CliConfigFlags {
  config?: string;
  host?: string;
  port?: string;
  publicUrl?: string;
  upstreamCommand?: string;
  upstreamUrl?: string;
  dataDir?: string;
}

/** The CLI is the one place that hands the real environment to the loader. */
export function loadCliConfig(flags: CliConfigFlags): GatehouseConfig {
  const overrides: Record<string, unknown> = {};
  const server: Record<string, unknown> = {};
  if (flags.host !== undefined) server.host = flags.host;
  if (flags.port !== undefined) server.port = Number(flags.port);
  if (flags.publicUrl !== undefined) server.publicUrl = flags.publicUrl;
  if (Object.keys(server).length > 0) overrides.server = server;
  if (flags.dataDir !== undefined) overrides.dataDir = flags.dataDir;
  if (flags.upstreamCommand !== undefined && flags.upstreamUrl !== undefined) {
    throw new Error('use either --upstream-command or --upstream-url, not both');
  }
  if (flags.upstreamCommand !== undefined) {
    const [command, ...args] = splitCommand(flags.upstreamCommand);
    if (command === undefined) throw new Error('--upstream-command is empty');
    overrides.upstream = { kind: 'stdio', command, args };
  }
  if (flags.upstreamUrl !== undefined) overrides.upstream = { kind: 'http', url: flags.upstreamUrl };
  return loadConfig({
    ...(flags.config === undefined ? {} : { file: flags.config }),
    env: process.env,
    overrides: overrides as GatehouseConfigInput,
  });
}
