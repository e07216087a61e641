import { writeFileSync } from 'node:fs';
import type { Command } from 'commander';

/** Where `gatehouse init` writes when neither `--config` nor `GATEHOUSE_CONFIG` names a file. */
export const DEFAULT_CONFIG_FILE = 'gatehouse.jsonc';

/**
 * The starter configuration: JSON with comments (the loader accepts comments and trailing commas). It
 * loads and validates as it is — the bundled demo upstream, SQLite under `.gatehouse`, the built-in
 * authorization server — and every value written is the default, so editing one line changes one thing.
 */
export const STARTER_CONFIG = `// Gatehouse configuration: JSON with comments. Every field is optional; the values written here are the
// defaults. Environment variables override the file (GATEHOUSE_SERVER__PORT=9000 sets server.port), and
// flags override both (--port 9000). Check it with: gatehouse doctor --config <this file>
{
  // "development" accepts development tokens and keys; "production" refuses anything unsafe.
  // NODE_ENV=production means production unless this says otherwise.
  "mode": "development",

  // Where the SQLite database and the signing keys live. Keep it, and back it up.
  "dataDir": ".gatehouse",

  "server": {
    // 127.0.0.1 exposes nothing beyond this machine; a container binds 0.0.0.0.
    "host": "127.0.0.1",
    "port": 8787,
    // The URL clients use, when it is not http://host:port (behind a reverse proxy, with TLS):
    // "publicUrl": "https://mcp.example.com",
    "mcpPath": "/mcp",
    // How long a shutdown (SIGTERM) may take to let requests in flight finish, in milliseconds.
    "shutdownTimeoutMs": 10000
  },

  // The MCP server behind the gateway. Without one, the bundled demo notes server runs.
  // A local (stdio) server, one process per session:
  // "upstream": { "kind": "stdio", "command": "node", "args": ["./my-server.js"] },
  // or a Streamable HTTP server, which receives a token minted for it (never the client's):
  // "upstream": { "kind": "http", "url": "http://127.0.0.1:8788/mcp" },

  // Sessions, accounts and keys. SQLite suits one instance; several share PostgreSQL or Redis:
  // "store": { "kind": "postgres", "urlFile": "/run/secrets/gatehouse-postgres-url" },
  "store": { "kind": "sqlite" },

  // The built-in OAuth authorization server with local accounts (gatehouse users add alice).
  "authorizationServer": { "enabled": true },

  "log": { "level": "info" }
}
`;

export function registerInit(program: Command): void {
  program
    .command('init')
    .description('write a commented starter config file; an existing file is never overwritten')
    .option(
      '-c, --config <file>',
      `where to write it (default: $GATEHOUSE_CONFIG, else ${DEFAULT_CONFIG_FILE})`,
    )
    .action((flags: { config?: string }) => {
      const file = flags.config ?? (process.env.GATEHOUSE_CONFIG || DEFAULT_CONFIG_FILE);
      try {
        // `wx`: created here or not at all, even if another process writes the same path meanwhile.
        writeFileSync(file, STARTER_CONFIG, { flag: 'wx', mode: 0o600 });
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        process.stderr.write(
          code === 'EEXIST'
            ? `gatehouse init: ${file} already exists; nothing was written. Edit it, or name another file with --config.\n`
            : `gatehouse init: cannot write ${file}${code === undefined ? '' : ` (${code})`}\n`,
        );
        process.exitCode = 1;
        return;
      }
      process.stdout.write(
        [
          `wrote ${file}`,
          `check it:  gatehouse doctor --config ${file}`,
          `run it:    gatehouse serve --config ${file}`,
          '',
        ].join('\n'),
      );
    });
}
