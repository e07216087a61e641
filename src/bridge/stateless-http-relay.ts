import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import {
  isJSONRPCErrorResponse,
  isJSONRPCRequest,
  isJSONRPCResultResponse,
  type JSONRPCMessage,
  type JSONRPCRequest,
} from '@modelcontextprotocol/server';
import type { Logger } from '../ops/logger.js';
import type { Tracing } from '../ops/tracing.js';
import { toAnswer, toMessage } from './connection.js';
import type { CallAnswer, CallContext, InterceptorChain } from './interceptors.js';
import { traceRequest } from './request-trace.js';
import type { HttpUpstreamTarget } from './upstream.js';
import { upstreamFailureReason, upstreamRpcError } from './upstream-failure.js';

export interface StatelessHttpRelayOptions {
  readonly target: HttpUpstreamTarget;
  readonly chain: InterceptorChain;
  readonly tracing: Tracing;
  /** How long one request may wait for its final answer; absent: no limit. */
  readonly requestMs?: number | undefined;
  /** Largest upstream JSON answer read into memory, in bytes (SSE streams are never buffered whole). */
  readonly maxAnswerBytes: number;
  readonly logger: Logger;
}

/**
 * Relays 2026-07-28 requests to an HTTP upstream that speaks the same revision, as HTTP: the client's body
 * (envelope, `inputResponses`, `requestState` and all) and its MCP headers go upstream as they came, with
 * the caller's credential swapped for a minted one; the upstream's status, MCP headers and stream come back
 * event for event (ids and `retry` included). Only the final answer to the request is opened, for the
 * interceptor chain; every other event passes through as the upstream wrote it.
 */
export interface StatelessHttpRelay {
  /** `token` mints the caller's upstream credential (see {@link HttpUpstreamTarget.tokens}). */
  relay(
    request: Request,
    message: JSONRPCMessage,
    call: CallContext,
    token: () => Promise<string>,
  ): Promise<Response>;
  close(): void;
}

/** Client request headers the upstream needs to serve the revision (everything else stays at the gateway). */
const FORWARDED_REQUEST_HEADERS = ['accept', 'content-type', 'last-event-id', 'traceparent', 'tracestate'];
/** Upstream answer headers the client sees, besides every `mcp-*` header. */
const RETURNED_RESPONSE_HEADERS = ['content-type', 'cache-control', 'x-accel-buffering'];

export function createStatelessHttpRelay(options: StatelessHttpRelayOptions): StatelessHttpRelay {
  const { target, chain, logger } = options;
  const agent =
    target.url.protocol === 'https:'
      ? new https.Agent({ keepAlive: true, maxSockets: 256 })
      : new http.Agent({ keepAlive: true, maxSockets: 256 });
  const client = target.url.protocol === 'https:' ? https : http;
  function upstreamHeaders(request: Request, body: string, token: string): http.OutgoingHttpHeaders {
    const headers: http.OutgoingHttpHeaders = { ...target.headers };
    for (const name of FORWARDED_REQUEST_HEADERS) {
      const value = request.headers.get(name);
      if (value !== null) headers[name] = value;
    }
    request.headers.forEach((value, name) => {
      if (name.startsWith('mcp-')) headers[name] = value;
    });
    headers.authorization = `Bearer ${token}`;
    headers['content-length'] = Buffer.byteLength(body);
    return headers;
  }

  /** `headers` carrying the active span's context (the upstream request's span) while tracing is on. */
  function traced(headers: http.OutgoingHttpHeaders): http.OutgoingHttpHeaders {
    const carrier = options.tracing.carrier(options.tracing.activeSpan());
    if (carrier === undefined) return headers;
    const { tracestate: _client, ...rest } = headers;
    return {
      ...rest,
      traceparent: carrier.traceparent,
      ...(carrier.tracestate !== undefined && { tracestate: carrier.tracestate }),
    };
  }

  function send(
    headers: http.OutgoingHttpHeaders,
    body: string,
    signal: AbortSignal,
  ): Promise<IncomingMessage> {
    return new Promise((resolve, reject) => {
      const outgoing = client.request(target.url, { method: 'POST', headers, agent, signal }, resolve);
      outgoing.on('error', reject);
      outgoing.end(body);
    });
  }

  async function relayRequest(
    request: Request,
    message: JSONRPCRequest,
    call: CallContext,
    tokenFor: () => Promise<string>,
  ): Promise<Response> {
    const trace = traceRequest(options.tracing, message, call, 'http');
    return trace.run(async () => {
      let answered: CallAnswer | undefined;
      try {
        answered = await chain.request(message, call);
      } catch (error) {
        trace.end({ failure: error });
        throw error;
      }
      if (answered !== undefined) {
        trace.end(answered);
        return jsonAnswer(message, answered, 200);
      }
      trace.forward();
      const params = trace.params(message.params);
      const body = JSON.stringify(params === message.params ? message : { ...message, params });
      const finish = (answer: CallAnswer): CallAnswer => {
        const final = chain.response(message, withResultType(answer), call);
        trace.end(final);
        return final;
      };
      const fail = (error: unknown): Response => {
        const reason = upstreamFailureReason(error, false, 'http');
        logger.debug(
          { err: error, user: call.principal.subject, reason },
          'stateless request failed upstream',
        );
        return jsonAnswer(message, finish({ error: upstreamRpcError(reason) }), 200);
      };

      const aborter = new AbortController();
      const onClientGone = () => aborter.abort();
      request.signal.addEventListener('abort', onClientGone, { once: true });
      let timedOut = false;
      // A subscription stream is meant to stay open: only requests wait for an answer.
      const deadline =
        options.requestMs === undefined || message.method === 'subscriptions/listen'
          ? undefined
          : setTimeout(() => {
              timedOut = true;
              aborter.abort();
            }, options.requestMs);
      const settle = () => {
        clearTimeout(deadline);
        request.signal.removeEventListener('abort', onClientGone);
      };

      let upstream: IncomingMessage;
      try {
        const token = await tokenFor();
        upstream = await trace.sending(() =>
          send(traced(upstreamHeaders(request, body, token)), body, aborter.signal),
        );
      } catch (error) {
        settle();
        if (timedOut)
          return jsonAnswer(message, finish({ error: upstreamRpcError('upstream_timeout') }), 200);
        return fail(error);
      }
      const status = upstream.statusCode ?? 502;
      const contentType = upstream.headers['content-type'] ?? '';
      if (status === 401 || status === 403) {
        upstream.resume();
        settle();
        return jsonAnswer(message, finish({ error: upstreamRpcError('upstream_rejected') }), 200);
      }
      const framing: Framing = contentType.startsWith('text/event-stream') ? SSE : JSON_LINES;
      try {
        const answer = await relayedAnswer(upstream, message, framing, finish, options.maxAnswerBytes);
        if (answer.body === undefined) settle();
        const headers = returnedHeaders(upstream);
        if (answer.body === undefined) {
          return new Response(answer.text, { status, headers });
        }
        return new Response(
          answer.body(settle, () => timedOut),
          { status, headers },
        );
      } catch (error) {
        settle();
        if (timedOut)
          return jsonAnswer(message, finish({ error: upstreamRpcError('upstream_timeout') }), 200);
        return fail(error instanceof SyntaxError ? new SyntaxError('not JSON-RPC') : error);
      }
    });
  }

  return {
    async relay(request, message, call, token) {
      if (isJSONRPCRequest(message)) return relayRequest(request, message, call, token);
      // A notification (`notifications/cancelled`) or a stray response: forwarded, its status returned.
      const body = JSON.stringify(message);
      try {
        const upstream = await send(upstreamHeaders(request, body, await token()), body, request.signal);
        upstream.resume();
        return new Response(null, { status: upstream.statusCode ?? 502 });
      } catch (error) {
        logger.debug({ err: error }, 'could not forward a notification upstream');
        return new Response(null, { status: 502 });
      }
    },
    close() {
      agent.destroy();
    },
  };
}

/** 2025-shaped upstreams leave `resultType` out; a 2026-07-28 client is owed it on every result. */
function withResultType(answer: CallAnswer): CallAnswer {
  if (!('result' in answer) || typeof answer.result.resultType === 'string') return answer;
  return { result: { ...answer.result, resultType: 'complete' } };
}

function isAnswerTo(message: unknown, request: JSONRPCRequest): message is JSONRPCMessage {
  return (
    (isJSONRPCResultResponse(message) || isJSONRPCErrorResponse(message)) &&
    (message as { id: unknown }).id === request.id
  );
}

function jsonAnswer(
  request: JSONRPCRequest,
  answer: CallAnswer,
  status: number,
  headers: Headers = new Headers(),
): Response {
  headers.set('content-type', 'application/json');
  return new Response(JSON.stringify(toMessage(request.id, answer)), { status, headers });
}

function returnedHeaders(upstream: IncomingMessage): Headers {
  const headers = new Headers();
  for (const [name, value] of Object.entries(upstream.headers)) {
    if (value === undefined) continue;
    if (RETURNED_RESPONSE_HEADERS.includes(name) || name.startsWith('mcp-')) {
      headers.set(name, Array.isArray(value) ? value.join(', ') : value);
    }
  }
  return headers;
}

/** How an upstream answer body is cut into messages: SSE events, or JSON (one per line when streamed). */
interface Framing {
  /** The separator after one unit (an event's blank line, a line's end). */
  readonly separator: RegExp;
  /** The JSON-RPC text of one unit, or `undefined` when it carries none (a priming event, a comment). */
  data(unit: string): string | undefined;
  /** `unit` with its JSON-RPC text replaced, everything else (event id, event name, retry) kept. */
  replace(unit: string, json: string): string;
}

const SSE: Framing = {
  separator: /(\r\n|\r|\n)(\r\n|\r|\n)/g,
  data(unit) {
    const lines = unit.split(/\r\n|\r|\n/).filter((line) => line.startsWith('data:'));
    if (lines.length === 0) return undefined;
    return lines.map((line) => line.slice(line.startsWith('data: ') ? 6 : 5)).join('\n');
  },
  replace(unit, json) {
    const kept = unit.split(/\r\n|\r|\n/).filter((line) => !line.startsWith('data:'));
    return [...kept, `data: ${json}`].join('\n');
  },
};

const JSON_LINES: Framing = {
  separator: /\r?\n/g,
  data: (unit) => (unit.trim() === '' ? undefined : unit),
  replace: (_unit, json) => json,
};

/**
 * The upstream's answer, read up to the first whole unit. A body that ends there (the usual single JSON
 * answer, pretty-printed or not) is answered whole, rewritten by `finish`; anything longer streams unit by
 * unit, the final answer rewritten in place and every other unit copied as the upstream wrote it. A body
 * whose first unit is neither JSON-RPC nor SSE framing is refused as not MCP.
 */
async function relayedAnswer(
  upstream: IncomingMessage,
  request: JSONRPCRequest,
  framing: Framing,
  finish: (answer: CallAnswer) => CallAnswer,
  maxBytes: number,
): Promise<{
  readonly text?: string;
  readonly body?: (settle: () => void, timedOut: () => boolean) => ReadableStream<Uint8Array>;
}> {
  const chunks = upstream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const decoder = new TextDecoder();
  let pending = '';
  let ended = false;
  /** Reads the next chunk into `pending`; `bounded`: the part read so far must fit in memory. */
  const readMore = async (bounded: boolean): Promise<void> => {
    const next = await chunks.next();
    if (next.done) {
      pending += decoder.decode();
      ended = true;
    } else {
      pending += decoder.decode(next.value, { stream: true });
    }
    if (bounded && pending.length > maxBytes) {
      upstream.destroy();
      throw new Error(`the upstream answer exceeds ${maxBytes} bytes`);
    }
  };
  while (!ended && !hasSeparator(pending, framing)) await readMore(true);
  let answered = false;
  const rewrite = (unit: string): string => {
    if (answered) return unit;
    const data = framing.data(unit);
    if (data === undefined) return unit;
    let parsed: unknown;
    try {
      parsed = JSON.parse(data);
    } catch {
      return unit;
    }
    if (!isAnswerTo(parsed, request)) return unit;
    answered = true;
    return framing.replace(unit, JSON.stringify(toMessage(request.id, finish(toAnswer(parsed)))));
  };
  if (ended && framing === JSON_LINES) {
    const parsed: unknown = JSON.parse(pending);
    if (!isAnswerTo(parsed, request)) throw new SyntaxError('the upstream answered another request');
    answered = true;
    return { text: JSON.stringify(toMessage(request.id, finish(toAnswer(parsed)))) };
  }
  if (framing === JSON_LINES) {
    // Only newline-delimited messages stream; a first line that is not JSON means one multi-line answer.
    const firstLine = pending.slice(0, pending.search(/\r?\n/));
    if (firstLine.trim() !== '' && !parsesAsJson(firstLine)) {
      while (!ended) await readMore(true);
      const parsed: unknown = JSON.parse(pending);
      if (!isAnswerTo(parsed, request)) throw new SyntaxError('the upstream answered another request');
      return { text: JSON.stringify(toMessage(request.id, finish(toAnswer(parsed)))) };
    }
  }
  const encoder = new TextEncoder();
  return {
    body: (settle, timedOut) => {
      let over = false;
      return new ReadableStream<Uint8Array>({
        async pull(controller) {
          const emitUnits = (final: boolean) => {
            framing.separator.lastIndex = 0;
            let start = 0;
            let out = '';
            for (let m = framing.separator.exec(pending); m !== null; m = framing.separator.exec(pending)) {
              out += rewrite(pending.slice(start, m.index)) + m[0];
              start = m.index + m[0].length;
            }
            pending = pending.slice(start);
            if (final && pending.length > 0) {
              out += rewrite(pending);
              pending = '';
            }
            if (out.length > 0) controller.enqueue(encoder.encode(out));
          };
          const end = () => {
            over = true;
            settle();
            controller.close();
          };
          if (ended) {
            emitUnits(true);
            end();
            return;
          }
          emitUnits(false);
          try {
            await readMore(false);
          } catch (error) {
            if (over) return;
            emitUnits(true);
            if (!answered) {
              const reason = timedOut() ? 'upstream_timeout' : upstreamFailureReason(error, false, 'http');
              const json = JSON.stringify(toMessage(request.id, finish({ error: upstreamRpcError(reason) })));
              answered = true;
              controller.enqueue(
                encoder.encode(framing === SSE ? `event: message\ndata: ${json}\n\n` : `${json}\n`),
              );
            }
            end();
          }
        },
        cancel() {
          over = true;
          settle();
          upstream.destroy();
        },
      });
    },
  };
}

function hasSeparator(text: string, framing: Framing): boolean {
  framing.separator.lastIndex = 0;
  return framing.separator.test(text);
}

function parsesAsJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}
