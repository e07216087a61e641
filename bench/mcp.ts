/** The stateless MCP revision the benchmark speaks: no `initialize`, no session, one POST per call. */
export const BENCH_PROTOCOL_VERSION = '2026-07-28';

const CLIENT_INFO = { name: 'gatehouse-bench', version: '0.0.0' };

export interface EchoCallOptions {
  /** Sent as `Authorization: Bearer <token>`; omitted for the direct (no-auth) baseline. */
  token?: string | undefined;
  /** JSON-RPC id. */
  id: number;
  signal: AbortSignal;
}

/**
 * Calls the `echo` tool with one raw JSON-RPC POST shaped exactly as the SDK v2 client shapes it when
 * pinned to 2026-07-28 (captured from `Client` with `versionNegotiation: { mode: { pin: '2026-07-28' } }`):
 * the per-request `_meta` envelope (protocol version, client info, capabilities) plus the
 * `Mcp-Protocol-Version`, `Mcp-Method` and `Mcp-Name` headers. Rejects unless the answer is HTTP 200
 * carrying a JSON-RPC result with the echoed text.
 */
export async function callEcho(url: string, options: EchoCallOptions): Promise<void> {
  const text = `ping-${options.id}`;
  const headers: Record<string, string> = {
    accept: 'application/json, text/event-stream',
    'content-type': 'application/json',
    'mcp-protocol-version': BENCH_PROTOCOL_VERSION,
    'mcp-method': 'tools/call',
    'mcp-name': 'echo',
  };
  if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
  const response = await fetch(url, {
    method: 'POST',
    headers,
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: options.id,
      method: 'tools/call',
      params: {
        name: 'echo',
        arguments: { text },
        _meta: {
          'io.modelcontextprotocol/protocolVersion': BENCH_PROTOCOL_VERSION,
          'io.modelcontextprotocol/clientInfo': CLIENT_INFO,
          'io.modelcontextprotocol/clientCapabilities': {},
        },
      },
    }),
    signal: options.signal,
  });
  const body = await response.text();
  if (response.status !== 200) throw new Error(`HTTP ${response.status}: ${body.slice(0, 200)}`);
  const message = parseJsonRpc(body, response.headers.get('content-type'));
  const content = (message.result as { content?: Array<{ text?: unknown }> } | undefined)?.content;
  if (message.id !== options.id || content?.[0]?.text !== text) {
    throw new Error(`unexpected answer: ${body.slice(0, 200)}`);
  }
}

interface JsonRpcAnswer {
  id?: unknown;
  result?: unknown;
  error?: unknown;
}

/** Reads a JSON answer, or the last `data:` line of an SSE answer (a server may choose either). */
function parseJsonRpc(body: string, contentType: string | null): JsonRpcAnswer {
  let json = body;
  if (contentType?.startsWith('text/event-stream')) {
    const data = body
      .split('\n')
      .filter((line) => line.startsWith('data:'))
      .at(-1);
    if (data === undefined) throw new Error('SSE answer without data');
    json = data.slice('data:'.length);
  }
  const message = JSON.parse(json) as JsonRpcAnswer;
  if (message.error !== undefined) throw new Error(`JSON-RPC error: ${JSON.stringify(message.error)}`);
  return message;
}
