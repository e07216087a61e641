import {
  isInitializeRequest,
  isJSONRPCErrorResponse,
  isJSONRPCRequest,
  isJSONRPCResultResponse,
  type JSONRPCMessage,
  type JSONRPCRequest,
  type RequestId,
} from '@modelcontextprotocol/server';
import type { Logger } from '../ops/logger.js';
import type { Diagnostics, DiagnosticsCaller } from './tools.js';

/** JSON-RPC "method not found": what an upstream without tools answers to `tools/list`. */
const METHOD_NOT_FOUND = -32601;

/**
 * Puts the `gatehouse_*` tools into one verbatim relay (a 2025-era session, a WebSocket, a legacy SSE
 * stream): their calls are answered by Gatehouse and never forwarded, and the upstream's answers to the
 * client's `initialize` and `tools/list` are rewritten so the client sees the tools — also when the
 * upstream itself has none (no `tools` capability, `tools/list` unknown to it).
 */
export interface DiagnosticsInterceptor {
  /**
   * A message from the client. For a diagnostics call, the answer to send back (the message must not be
   * forwarded); otherwise `undefined` (forward it), after noting which answers to rewrite.
   */
  fromClient(message: JSONRPCMessage, caller: DiagnosticsCaller): Promise<JSONRPCMessage> | undefined;
  /** A message from the upstream, rewritten when it answers the client's `initialize` or `tools/list`. */
  fromUpstream(message: JSONRPCMessage): JSONRPCMessage;
}

/** One per relayed connection: it remembers request ids of that connection only. */
export function createDiagnosticsInterceptor(
  diagnostics: Diagnostics,
  logger: Logger,
): DiagnosticsInterceptor {
  const toolLists = new Set<RequestId>();
  const initializes = new Set<RequestId>();

  async function answer(request: JSONRPCRequest, caller: DiagnosticsCaller): Promise<JSONRPCMessage> {
    try {
      const params = request.params as { name: string; arguments?: unknown };
      const result = await diagnostics.call(params.name, params.arguments, caller);
      return { jsonrpc: '2.0', id: request.id, result };
    } catch (error) {
      // The cause is logged, never sent: it could quote the input.
      logger.warn({ err: error, sessionId: caller.sessionId }, 'diagnostics tool failed');
      return { jsonrpc: '2.0', id: request.id, error: { code: -32603, message: 'diagnostics tool failed' } };
    }
  }

  return {
    fromClient(message, caller) {
      if (!isJSONRPCRequest(message)) return undefined;
      if (message.method === 'tools/call' && diagnostics.handles(message.params?.name)) {
        return answer(message, caller);
      }
      if (message.method === 'tools/list') toolLists.add(message.id);
      else if (isInitializeRequest(message)) initializes.add(message.id);
      return undefined;
    },
    fromUpstream(message) {
      if (isJSONRPCResultResponse(message)) {
        if (toolLists.delete(message.id)) {
          return { ...message, result: diagnostics.appendTools(message.result) as typeof message.result };
        }
        if (initializes.delete(message.id)) return withToolsCapability(message);
        return message;
      }
      if (isJSONRPCErrorResponse(message) && message.id !== undefined) {
        initializes.delete(message.id);
        // An upstream without tools does not know `tools/list`; the client was told there are tools.
        if (toolLists.delete(message.id) && message.error.code === METHOD_NOT_FOUND) {
          return { jsonrpc: '2.0', id: message.id, result: { tools: [...diagnostics.tools] } };
        }
      }
      return message;
    },
  };
}

function withToolsCapability(message: JSONRPCMessage & { result: Record<string, unknown> }): JSONRPCMessage {
  const capabilities = message.result.capabilities;
  if (typeof capabilities !== 'object' || capabilities === null) return message;
  const declared = capabilities as Record<string, unknown>;
  if (declared.tools !== undefined) return message;
  return { ...message, result: { ...message.result, capabilities: { ...declared, tools: {} } } };
}
