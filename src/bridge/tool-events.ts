import type { JSONRPCRequest } from '@modelcontextprotocol/server';
import { principalKey } from '../identity/principal.js';
import type { Clock } from '../ops/clock.js';
import type { EventBus } from '../ops/events.js';
import type { CallAnswer, Interceptor } from './interceptors.js';

/**
 * Reports every `tools/call` as a `tool.called` event (who, which tool, how long, how it ended), on every
 * transport. The arguments and the result are never part of the event. Put it first in the chain, so calls
 * another interceptor answers (diagnostics, policy) are reported too.
 */
export function createToolCallEvents(events: EventBus, clock: Clock): Interceptor {
  const started = new WeakMap<JSONRPCRequest, number>();
  return {
    request(request) {
      if (request.method === 'tools/call') started.set(request, clock.now());
      return undefined;
    },
    response(request, answer, call) {
      const at = started.get(request);
      if (at === undefined) return answer;
      started.delete(request);
      const tool = request.params?.name;
      events.emit({
        type: 'tool.called',
        principal: principalKey(call.principal),
        tool: typeof tool === 'string' ? tool : '',
        durationMs: Math.max(0, clock.now() - at),
        outcome: outcomeOf(answer),
        transport: call.transport,
        ...(call.sessionId !== undefined && { sessionId: call.sessionId }),
      });
      return answer;
    },
  };
}

function outcomeOf(answer: CallAnswer): 'success' | 'error' | 'failed' {
  if ('result' in answer) return answer.result.isError === true ? 'error' : 'success';
  const reason = (answer.error.data as { reason?: unknown } | undefined)?.reason;
  return typeof reason === 'string' && reason.startsWith('upstream_') ? 'failed' : 'error';
}
