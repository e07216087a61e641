/** What a Streamable HTTP client accepts: JSON or an SSE stream. */
export const ACCEPT = 'application/json, text/event-stream';

/** A 2025-era `initialize` request, as a client that opens a session sends it. */
export const INIT = {
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
} as const;

/** The `_meta` envelope every 2026-07-28 (stateless) request carries. */
export const STATELESS_META = {
  'io.modelcontextprotocol/protocolVersion': '2026-07-28',
  'io.modelcontextprotocol/clientCapabilities': {},
  'io.modelcontextprotocol/clientInfo': { name: 'raw', version: '1' },
} as const;

/** Reads the JSON-RPC messages from an SSE or JSON response body. */
export async function messages(response: Response): Promise<Array<Record<string, unknown>>> {
  const body = await response.text();
  if ((response.headers.get('content-type') ?? '').includes('text/event-stream')) {
    return body
      .split('\n')
      .filter((line) => line.startsWith('data: ') && line.length > 6)
      .map((line) => JSON.parse(line.slice(6)) as Record<string, unknown>);
  }
  return body === '' ? [] : [JSON.parse(body) as Record<string, unknown>];
}

/** POSTs one JSON-RPC message to an MCP endpoint with a bearer token, in a session when `sessionId` is given. */
export function postMcp(
  url: string | URL,
  token: string,
  body: unknown,
  sessionId?: string,
): Promise<Response> {
  return fetch(url, {
    method: 'POST',
    headers: {
      accept: ACCEPT,
      'content-type': 'application/json',
      authorization: `Bearer ${token}`,
      ...(sessionId !== undefined && { 'mcp-session-id': sessionId }),
    },
    body: JSON.stringify(body),
  });
}
