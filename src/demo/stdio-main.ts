/**
 * The demo notes server as a stdio child: the default upstream Gatehouse spawns, one child per
 * session. Identity comes from the `GATEHOUSE_*` environment variables; stdout carries only MCP, and
 * every diagnostic goes to stderr.
 *
 *   GATEHOUSE_USER_ID=alice node --import tsx src/demo/stdio-main.ts
 *
 * Set `GATEHOUSE_DEMO_NOTES_DIR` to keep each user's notes on disk across sessions.
 */
import { serveStdio } from '@modelcontextprotocol/server/stdio';
import { createLogger } from '../ops/logger.js';
import { createFileNotesBook } from './file-notes-book.js';
import { identityFromEnv } from './identity.js';
import { createNotesServer } from './notes.js';
import { createMemoryNotesBook } from './notes-book.js';

const NOTES_DIR_ENV = 'GATEHOUSE_DEMO_NOTES_DIR';

const log = createLogger({
  level: process.env.GATEHOUSE_DEMO_LOG_LEVEL ?? 'info',
  destination: process.stderr,
});
const identity = identityFromEnv(process.env);
const notesDirectory = process.env[NOTES_DIR_ENV]?.trim();
const notes = notesDirectory ? createFileNotesBook({ directory: notesDirectory }) : createMemoryNotesBook();

if (identity === undefined)
  log.warn('no GATEHOUSE_USER_ID set: every tool call will be refused as anonymous');
log.info({ userId: identity?.userId, persistent: Boolean(notesDirectory) }, 'demo notes server on stdio');

serveStdio(() => createNotesServer({ identity: () => identity, notes }), {
  onerror: (error) => log.error({ err: error }, 'stdio serving error'),
});
