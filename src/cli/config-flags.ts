import type { Command } from 'commander';
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

/**
 * Declares the flags that decide which gateway a command is about, identically on `serve`, `doctor` and
 * `token`: with the same `-c/--config` (or `GATEHOUSE_CONFIG`), environment and flags, each resolves the
 * same public URL, issuer and audience as the server it follows. `upstream` adds the upstream flags
 * (`serve` runs the upstream, `doctor` checks it).
 */
export function addConfigFlags(command: Command, options: { upstream: boolean }): Command {
  command
    .option('-c, --config <file>', 'JSON (or JSONC) config file (default: $GATEHOUSE_CONFIG)')
    .option('--host <host>', 'interface the gateway binds (default 127.0.0.1)')
    .option('-p, --port <port>', 'port the gateway binds (default 8787)')
    .option('--public-url <url>', 'base URL clients use to reach Gatehouse')
    .option('--data-dir <dir>', 'where the database and signing keys live (default ./.gatehouse)');
  if (options.upstream) {
    command
      .option('--upstream-command <command>', 'stdio MCP server to run, one process per session')
      .option('--upstream-url <url>', 'Streamable HTTP MCP server to relay to');
  }
  return command;
}

/** The CLI is the one place that hands the real environment to the loader. */
export function loadCliConfig(flags: CliConfigFlags): GatehouseConfig {
  const overrides: Record<string, unknown> = {};
  const server: Record<string, unknown> = {};
  if (flags.host !== undefined) server.host = flags.host;
  if (flags.port !== undefined) {
    // A typo stays visible (`server.port: expected number`) instead of becoming port 0 or NaN.
    server.port = /^\d+$/.test(flags.port) ? Number(flags.port) : flags.port;
  }
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
