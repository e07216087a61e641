import { setTimeout as sleep } from 'node:timers/promises';
import {
  acceptedContent,
  type CallToolResult,
  CLIENT_CAPABILITIES_META_KEY,
  type ClientCapabilities,
  type InputRequiredResult,
  inputRequired,
  inputResponse,
  McpServer,
  type ServerContext,
} from '@modelcontextprotocol/server';
import { z } from 'zod';
import type { DemoIdentity } from './identity.js';
import { type NotesBook, NotesFullError } from './notes-book.js';

/** Name and version the demo server reports in `initialize` / `server/discover`. */
export const NOTES_SERVER_INFO = { name: 'gatehouse-demo-notes', version: '0.1.0' } as const;

/**
 * Stable codes carried in `structuredContent.error` of every error result the demo's tools return,
 * so callers (and tests) branch on a code rather than on message text.
 */
export type NotesToolErrorCode = 'anonymous' | 'elicitation_unsupported' | 'invalid_answer' | 'notes_full';

/**
 * Resolves the caller for one tool call. Called on every call, with that call's context, so an HTTP
 * server can read the identity of the token that came with *this* request (`ctx.http.authInfo`)
 * rather than one captured when a session started; a stdio child ignores the context and returns
 * the identity it was spawned with. `undefined` means anonymous: every tool then refuses.
 */
export type IdentityResolver = (ctx: ServerContext) => DemoIdentity | undefined;

export interface NotesServerOptions {
  identity: IdentityResolver;
  notes: NotesBook;
}

const NoteInput = z.object({ text: z.string().min(1).max(2000).describe('The note to remember') });
const CountInput = z.object({
  to: z.number().int().min(1).max(20).describe('Count from 1 up to this number'),
  delayMs: z.number().int().min(0).max(1000).default(10).describe('Pause before each step, in milliseconds'),
});
const NameAnswer = z.object({ name: z.string().min(1).max(200).describe('Your name') });

/**
 * Builds the demo notes server: one fresh `McpServer` per call, so it can back both serving
 * entries of SDK v2 — `serveStdio(() => createNotesServer(...))` for a stdio child and
 * `createMcpHandler(() => createNotesServer(...))` for HTTP — and both protocol eras (2025-era
 * `initialize` sessions and the stateless 2026-07-28 revision) from one definition of the tools.
 *
 * Tools: `whoami`, `notes_add`, `notes_list`, `count_slowly` (progress and log notifications tied to
 * the request) and `ask_name` (asks the client for a name through form elicitation). Each tool acts
 * for the caller the {@link IdentityResolver} returns and refuses anonymous callers with an error
 * result whose `structuredContent.error` is `'anonymous'`; there is no shared fallback identity.
 *
 * @example
 * ```ts
 * import { serveStdio } from '@modelcontextprotocol/server/stdio';
 *
 * const notes = createMemoryNotesBook();
 * const identity = identityFromEnv(process.env);
 * serveStdio(() => createNotesServer({ identity: () => identity, notes }));
 * ```
 */
export function createNotesServer(options: NotesServerOptions): McpServer {
  const { identity, notes } = options;
  const server = new McpServer(NOTES_SERVER_INFO, {
    capabilities: { logging: {} },
    instructions: 'Per-user notes behind Gatehouse. Every tool acts for the signed-in caller only.',
  });

  server.registerTool(
    'whoami',
    { description: 'Who Gatehouse says you are', annotations: { readOnlyHint: true } },
    async (ctx) => {
      const caller = identity(ctx);
      if (caller === undefined) return anonymous();
      const view = {
        userId: caller.userId,
        email: caller.email ?? null,
        scopes: [...caller.scopes],
        issuer: caller.issuer ?? null,
        sessionId: caller.sessionId ?? null,
        // Which process serves you: behind Gatehouse each stdio session has its own.
        pid: process.pid,
      };
      return { content: [{ type: 'text', text: JSON.stringify(view) }] };
    },
  );

  server.registerTool(
    'notes_add',
    { description: 'Add a note to your own notes; returns how many you have', inputSchema: NoteInput },
    async ({ text }, ctx) => {
      const caller = identity(ctx);
      if (caller === undefined) return anonymous();
      try {
        const count = await notes.add(caller.userId, text);
        return { content: [{ type: 'text', text: String(count) }], structuredContent: { count } };
      } catch (error) {
        if (error instanceof NotesFullError) return toolError('notes_full', error.message);
        throw error;
      }
    },
  );

  server.registerTool(
    'notes_list',
    { description: 'List your own notes, oldest first', annotations: { readOnlyHint: true } },
    async (ctx) => {
      const caller = identity(ctx);
      if (caller === undefined) return anonymous();
      const list = await notes.list(caller.userId);
      return {
        content: [{ type: 'text', text: JSON.stringify(list) }],
        structuredContent: { notes: [...list] },
      };
    },
  );

  server.registerTool(
    'count_slowly',
    {
      description: 'Count to N, sending a progress and a log notification at every step',
      inputSchema: CountInput,
      annotations: { readOnlyHint: true },
    },
    async ({ to, delayMs }, ctx) => {
      if (identity(ctx) === undefined) return anonymous();
      const progressToken = ctx.mcpReq._meta?.progressToken;
      for (let step = 1; step <= to; step++) {
        await sleep(delayMs, undefined, { signal: ctx.mcpReq.signal });
        if (progressToken !== undefined) {
          await ctx.mcpReq.notify({
            method: 'notifications/progress',
            params: { progressToken, progress: step, total: to, message: `counted ${step}` },
          });
        }
        await ctx.mcpReq.log('info', { step, of: to }, 'count_slowly');
      }
      return { content: [{ type: 'text', text: `counted to ${to}` }] };
    },
  );

  server.registerTool(
    'ask_name',
    { description: 'Ask you for your name (form elicitation) and greet you' },
    async (ctx): Promise<CallToolResult | InputRequiredResult> => {
      if (identity(ctx) === undefined) return anonymous();
      const answer = inputResponse(ctx.mcpReq.inputResponses, 'name');
      if (answer.kind === 'elicit') {
        if (answer.action !== 'accept') return { content: [{ type: 'text', text: 'declined' }] };
        const accepted = acceptedContent(ctx.mcpReq.inputResponses, 'name', NameAnswer);
        if (accepted === undefined) return toolError('invalid_answer', 'the answer did not contain a name');
        return { content: [{ type: 'text', text: `hello ${accepted.name}` }] };
      }
      if (!declaresFormElicitation(clientCapabilities(server, ctx))) {
        return toolError('elicitation_unsupported', 'the client did not declare the elicitation capability');
      }
      // One handler for both eras: on 2026-07-28 the client answers `input_required` and retries; on a
      // 2025-era session the SDK's legacy shim sends a real `elicitation/create` and re-enters here.
      return inputRequired({
        inputRequests: {
          name: inputRequired.elicit({
            mode: 'form',
            message: 'What is your name?',
            requestedSchema: NameAnswer,
          }),
        },
      });
    },
  );

  return server;
}

/**
 * The capabilities the client declared for this request: the request's own `_meta` envelope on the
 * 2026-07-28 revision, the `initialize`-declared ones on a 2025-era session. A stateless 2025-era
 * HTTP request has neither, so elicitation is refused there rather than attempted.
 */
function clientCapabilities(server: McpServer, ctx: ServerContext): ClientCapabilities | undefined {
  const envelope = ctx.mcpReq.envelope as Record<string, unknown> | undefined;
  const fromEnvelope = envelope?.[CLIENT_CAPABILITIES_META_KEY];
  if (fromEnvelope !== undefined) return fromEnvelope as ClientCapabilities;
  return server.server.getClientCapabilities();
}

/** An empty `elicitation: {}` means form mode (the pre-mode rule of the 2025-06-18 revision). */
function declaresFormElicitation(capabilities: ClientCapabilities | undefined): boolean {
  const elicitation = capabilities?.elicitation;
  if (elicitation === undefined) return false;
  const modes = elicitation as { form?: unknown; url?: unknown };
  return modes.form !== undefined || modes.url === undefined;
}

function anonymous(): CallToolResult {
  return toolError('anonymous', 'anonymous caller: this demo serves signed-in Gatehouse users only');
}

function toolError(code: NotesToolErrorCode, message: string): CallToolResult {
  return { isError: true, content: [{ type: 'text', text: message }], structuredContent: { error: code } };
}
