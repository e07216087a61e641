import type { GatehouseConfigInput } from '../../../src/config/schema.js';
import type { GatewayDeps } from '../../../src/edge/gateway.js';
import {
  createEventBus,
  type EventBus,
  type GatehouseEvent,
  type GatehouseEventType,
} from '../../../src/ops/events.js';
import { silentLogger } from '../../../src/ops/logger.js';
import type { SessionRecord } from '../../../src/stores/ports.js';
import { startTestGateway, type TestGateway } from '../../helpers/gateway.js';

/**
 * The battery's view of a running gateway: every event it emitted (the audit trail), and the few
 * requests each attack is made of. Attacks go over real sockets unless a test says otherwise.
 */

export { ACCEPT } from '../../helpers/mcp-http.js';

import { ACCEPT } from '../../helpers/mcp-http.js';
export const PROTOCOL_2025 = '2025-11-25';
export const PROTOCOL_2026 = '2026-07-28';

/** The events of type `T` (the authorization server's events share one shape with a union of types). */
export type EventOf<T extends GatehouseEventType> = GatehouseEvent extends infer E
  ? E extends { type: infer U }
    ? T extends U
      ? E & { type: T }
      : never
    : never
  : never;

/** Every event a gateway emitted, in order. */
export interface EventLog {
  readonly bus: EventBus;
  readonly all: GatehouseEvent[];
  of<T extends GatehouseEventType>(type: T): EventOf<T>[];
  clear(): void;
}

export function recordEvents(): EventLog {
  const bus = createEventBus(silentLogger);
  const all: GatehouseEvent[] = [];
  bus.subscribe((event) => all.push(event));
  return {
    bus,
    all,
    of: <T extends GatehouseEventType>(type: T) =>
      all.filter((event): event is EventOf<T> => event.type === type),
    clear: () => {
      all.length = 0;
    },
  };
}

/** A test gateway whose events are recorded. */
export async function startRecorded(
  input: GatehouseConfigInput = {},
  deps: GatewayDeps = {},
): Promise<{ gw: TestGateway; log: EventLog }> {
  const log = recordEvents();
  const gw = await startTestGateway(input, { ...deps, events: log.bus });
  return { gw, log };
}

export const INIT = {
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: {
    protocolVersion: PROTOCOL_2025,
    capabilities: {},
    clientInfo: { name: 'attacker', version: '1' },
  },
} as const;

/** A stateless (2026-07-28) request: no session, version and client in `_meta`. */
export function statelessRequest(method: string, params: Record<string, unknown> = {}, id = 7) {
  return {
    jsonrpc: '2.0',
    id,
    method,
    params: {
      ...params,
      _meta: {
        'io.modelcontextprotocol/protocolVersion': PROTOCOL_2026,
        'io.modelcontextprotocol/clientCapabilities': {},
        'io.modelcontextprotocol/clientInfo': { name: 'attacker', version: '1' },
      },
    },
  };
}

export interface McpRequestOptions {
  readonly sessionId?: string;
  readonly headers?: Record<string, string>;
  readonly method?: string;
  /** Send this text as the body instead of `JSON.stringify(body)`. */
  readonly raw?: string;
}

/** One request to the MCP endpoint, as any client would send it (`authorization` omitted when `token` is). */
export function mcpRequest(
  gw: TestGateway,
  token: string | undefined,
  body: unknown,
  options: McpRequestOptions = {},
): Promise<Response> {
  const method = options.method ?? 'POST';
  const stateless =
    typeof body === 'object' &&
    body !== null &&
    '_meta' in ((body as { params?: object }).params ?? {}) &&
    (body as { method?: unknown }).method !== undefined;
  return fetch(gw.mcpUrl, {
    method,
    headers: {
      accept: ACCEPT,
      ...(method === 'POST' && { 'content-type': 'application/json' }),
      ...(token !== undefined && { authorization: `Bearer ${token}` }),
      ...(options.sessionId !== undefined && { 'mcp-session-id': options.sessionId }),
      ...(stateless && statelessHeaders(body as { method: unknown; params?: { name?: unknown } })),
      ...options.headers,
    },
    ...(method === 'POST' && { body: options.raw ?? JSON.stringify(body) }),
  });
}

/** The 2026-07-28 headers that must agree with the body (`Mcp-Method`, and `Mcp-Name` for named methods). */
function statelessHeaders(body: { method: unknown; params?: { name?: unknown } }): Record<string, string> {
  const name = body.params?.name;
  return {
    'mcp-protocol-version': PROTOCOL_2026,
    'mcp-method': String(body.method),
    ...(typeof name === 'string' && { 'mcp-name': name }),
  };
}

export interface RpcAnswer {
  readonly id?: unknown;
  readonly result?: Record<string, unknown>;
  readonly error?: { code: number; message: string; data?: { code?: string; reason?: string } };
}

/** The JSON-RPC answer of a response, whether sent as JSON or as the first SSE `data:` line. */
export async function rpcOf(response: Response): Promise<RpcAnswer> {
  const text = await response.text();
  const line = text.split('\n').find((l) => l.startsWith('data: '));
  return JSON.parse(line === undefined ? text : line.slice(6)) as RpcAnswer;
}

/** The text of a tool result. */
export function toolText(answer: RpcAnswer): string {
  const content = (answer.result?.content ?? []) as Array<{ text?: string }>;
  return content.map((item) => item.text ?? '').join('');
}

/** Opens a 2025-era session (initialize + initialized) and returns its id. */
export async function openSession(gw: TestGateway, token: string): Promise<string> {
  const opened = await mcpRequest(gw, token, INIT);
  if (opened.status !== 200) throw new Error(`initialize answered ${opened.status}: ${await opened.text()}`);
  await opened.text();
  const sessionId = opened.headers.get('mcp-session-id');
  if (sessionId === null) throw new Error('no session id');
  const initialized = await mcpRequest(
    gw,
    token,
    { jsonrpc: '2.0', method: 'notifications/initialized' },
    { sessionId },
  );
  await initialized.text();
  return sessionId;
}

/** Calls a tool in a 2025-era session. */
export async function callTool(
  gw: TestGateway,
  token: string,
  sessionId: string,
  name: string,
  args: Record<string, unknown> = {},
  id = 2,
): Promise<{ status: number; answer: RpcAnswer }> {
  const response = await mcpRequest(
    gw,
    token,
    { jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args } },
    { sessionId },
  );
  return { status: response.status, answer: await rpcOf(response) };
}

/** The live sessions of a Gatehouse-issued subject. */
export function sessionsOf(gw: TestGateway, subject: string): Promise<SessionRecord[]> {
  return gw.gateway.sessions.list({
    subject,
    issuer: gw.gateway.urls.issuer,
    scopes: [],
    claims: {},
    expiresAt: 0,
    verifier: 'gatehouse',
  });
}

/** The `error="…"` of a `WWW-Authenticate: Bearer` challenge. */
export function challengeError(response: Response): string | undefined {
  return /error="([^"]+)"/.exec(response.headers.get('www-authenticate') ?? '')?.[1];
}

/** A legacy (2024-11-05) SSE stream: its session's POST path, and its events one at a time. */
export interface LegacyStream {
  readonly messagesPath: string;
  readonly sessionId: string;
  next(): Promise<{ event: string; data: string } | undefined>;
  close(): Promise<void>;
}

/** Opens `GET /sse` with `token` and reads the `endpoint` event. */
export async function openLegacyStream(gw: TestGateway, token: string): Promise<LegacyStream> {
  const controller = new AbortController();
  const response = await fetch(new URL(gw.gateway.config.legacySse.ssePath, gw.gateway.urls.publicUrl), {
    headers: { accept: 'text/event-stream', authorization: `Bearer ${token}` },
    signal: controller.signal,
  });
  if (response.status !== 200 || response.body === null) {
    throw new Error(`GET /sse answered ${response.status}`);
  }
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  const next = async (): Promise<{ event: string; data: string } | undefined> => {
    for (;;) {
      const end = buffer.indexOf('\n\n');
      if (end >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        if (block.startsWith(':')) continue;
        const event = /^event: (.*)$/m.exec(block)?.[1] ?? 'message';
        const data = [...block.matchAll(/^data: (.*)$/gm)].map((m) => m[1]).join('\n');
        return { event, data };
      }
      const chunk = await reader.read().catch(() => ({ done: true as const, value: undefined }));
      if (chunk.done) return undefined;
      buffer += decoder.decode(chunk.value, { stream: true });
    }
  };
  const endpoint = await next();
  if (endpoint?.event !== 'endpoint') throw new Error('no endpoint event');
  const sessionId = new URL(endpoint.data, gw.gateway.urls.publicUrl).searchParams.get('sessionId') ?? '';
  return {
    messagesPath: endpoint.data,
    sessionId,
    next,
    close: async () => {
      controller.abort();
      await reader.cancel().catch(() => undefined);
    },
  };
}

/** `POST /messages?sessionId=…` of a legacy stream. */
export function legacyPost(
  gw: TestGateway,
  path: string,
  token: string,
  body: unknown | string,
): Promise<Response> {
  return fetch(new URL(path, gw.gateway.urls.publicUrl), {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}
