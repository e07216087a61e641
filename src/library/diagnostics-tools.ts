import type { CallToolResult, ToolAnnotations } from '@modelcontextprotocol/server';
import { z } from 'zod';
import { createDiagnostics, type Diagnostics, type DiagnosticsCaller } from '../diagnostics/tools.js';
import { currentContext, currentPrincipal } from '../downstream/context.js';
import type { Gateway } from '../edge/gateway.js';
import { principalKey } from '../identity/principal.js';
import type { Clock } from '../ops/clock.js';
import type { SessionManager } from '../sessions/manager.js';
import type { SessionOwners } from './session-owners.js';

/**
 * An MCP server with the SDK's `registerTool(name, config, handler)`: `McpServer` from
 * `@modelcontextprotocol/server` (v2) or from `@modelcontextprotocol/sdk/server/mcp.js` (v1).
 */
export interface DiagnosticsToolHost {
  registerTool(name: string, config: DiagnosticsToolConfig, handler: DiagnosticsToolHandler): unknown;
}

/** What each diagnostics tool is registered with; `inputSchema` is a zod object both SDKs accept. */
export interface DiagnosticsToolConfig {
  description?: string;
  inputSchema?: z.ZodObject<{ token: z.ZodString }>;
  annotations?: ToolAnnotations;
}

/** The handler takes the caller from Gatehouse's request context, never from the SDK's arguments. */
export type DiagnosticsToolHandler = (args: { token: string }) => Promise<DiagnosticsToolResult>;

/** A `CallToolResult` as both SDKs type it: the diagnostics answer in text and structured content. */
export interface DiagnosticsToolResult {
  [key: string]: unknown;
  content: { type: 'text'; text: string }[];
  structuredContent?: Record<string, unknown>;
  isError?: boolean;
}

// The gateway advertises these as JSON Schema; the SDKs take zod and derive the same schema from it.
const INPUT_SCHEMAS: Readonly<Record<string, DiagnosticsToolConfig['inputSchema']>> = {
  gatehouse_validate_token: z.object({ token: z.string().describe('The JWT to check') }),
};

/**
 * The gateway's diagnostics, wired to library mode's state: the same verifiers (and revocation check) as
 * requests behind a cache that stores nothing, the MCP sessions the in-process server issued to this user,
 * and the brokered credentials, which library mode caches per user rather than per session.
 */
export function createLibraryDiagnostics(gateway: Gateway, owners: SessionOwners, clock: Clock): Diagnostics {
  const { config } = gateway;
  // Diagnostics reads sessions through `list` only; the in-process server's sessions are the bindings.
  const sessions: SessionManager = {
    ...gateway.sessions,
    list: async (principal) =>
      owners.list(principalKey(principal)).map((owned) => ({
        ...owned,
        principalKey: principalKey(principal),
        kind: 'streamable-http' as const,
        lastSeenAt: owned.lastUsedAt,
        idleTimeoutMs: config.sessions.idleTimeoutMs,
        version: 1,
        data: {},
      })),
  };
  const { credentials } = gateway;
  return createDiagnostics({
    validator: gateway.tokenValidator,
    sessions,
    verificationStats: () => gateway.verification.stats(),
    requiredScopes: config.auth.requiredScopes,
    credentials:
      credentials === undefined
        ? undefined
        : { ...credentials, describe: (principal) => credentials.describe(principal, undefined) },
    clock,
  });
}

/** Registers each of `diagnostics.tools` on `server`, answered by {@link Diagnostics.call} for the caller. */
export function registerDiagnosticsTools(server: DiagnosticsToolHost, diagnostics: Diagnostics): void {
  for (const tool of diagnostics.tools) {
    const inputSchema = INPUT_SCHEMAS[tool.name];
    server.registerTool(
      tool.name,
      {
        ...(tool.description !== undefined && { description: tool.description }),
        ...(inputSchema !== undefined && { inputSchema }),
        ...(tool.annotations !== undefined && { annotations: tool.annotations }),
      },
      // Without an input schema the SDK passes its own context first: never read as arguments.
      async (args) =>
        toToolResult(await diagnostics.call(tool.name, inputSchema === undefined ? {} : args, caller())),
    );
  }
}

function toToolResult(result: CallToolResult): DiagnosticsToolResult {
  return {
    content: result.content.flatMap((block) =>
      block.type === 'text' ? [{ type: 'text', text: block.text }] : [],
    ),
    ...(typeof result.structuredContent === 'object' &&
      result.structuredContent !== null && {
        structuredContent: result.structuredContent as Record<string, unknown>,
      }),
    ...(result.isError !== undefined && { isError: result.isError }),
  };
}

function caller(): DiagnosticsCaller {
  const principal = currentPrincipal();
  const context = currentContext();
  return { principal, cacheHit: context?.cacheHit ?? false, sessionId: context?.session?.id };
}
