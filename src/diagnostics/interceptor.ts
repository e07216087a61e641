import { METHOD_NOT_FOUND } from '@modelcontextprotocol/server';
import type { Interceptor } from '../bridge/interceptors.js';
import type { Logger } from '../ops/logger.js';
import type { Diagnostics } from './tools.js';

/**
 * The `gatehouse_*` tools on the upstream connection, for every transport and era: their calls are
 * answered by Gatehouse and never forwarded, `tools/list` gains them on its last page, and a client is
 * told the server has tools even when the upstream itself has none (no `tools` capability, `tools/list`
 * unknown to it), so clients that check capabilities still see them.
 */
export function createDiagnosticsInterceptor(diagnostics: Diagnostics, logger: Logger): Interceptor {
  return {
    async request(request, call) {
      const name = request.params?.name;
      if (request.method !== 'tools/call' || !diagnostics.handles(name)) return undefined;
      try {
        const result = await diagnostics.call(name as string, request.params?.arguments, call);
        return { result: result as Record<string, unknown> };
      } catch (error) {
        // The cause is logged, never sent: it could quote the input.
        logger.warn({ err: error, sessionId: call.sessionId }, 'diagnostics tool failed');
        return { error: { code: -32603, message: 'diagnostics tool failed' } };
      }
    },
    response(request, answer) {
      if (request.method !== 'tools/list') return answer;
      if ('result' in answer)
        return { result: diagnostics.appendTools(answer.result) as Record<string, unknown> };
      // An upstream without tools answers `tools/list` with "method not found".
      return answer.error.code === METHOD_NOT_FOUND ? { result: { tools: [...diagnostics.tools] } } : answer;
    },
    capabilities(capabilities) {
      return capabilities.tools === undefined ? { ...capabilities, tools: {} } : capabilities;
    },
  };
}
