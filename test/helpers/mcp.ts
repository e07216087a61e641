import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';

/** The text of a tool result: its text content blocks, joined. */
export function text(result: unknown): string {
  const content = (result as { content?: Array<{ text?: string }> }).content ?? [];
  return content.map((item) => item.text ?? '').join('');
}

/** A v2 SDK client connected over Streamable HTTP with a bearer token, in the 2025 era or pinned to 2026-07-28. */
export async function connectClient(
  url: URL,
  token: string,
  era: '2025' | '2026-07-28' = '2025',
): Promise<{ client: Client; transport: StreamableHTTPClientTransport }> {
  const client = new Client(
    { name: 'test', version: '1.0.0' },
    era === '2026-07-28' ? { versionNegotiation: { mode: { pin: '2026-07-28' } } } : {},
  );
  const transport = new StreamableHTTPClientTransport(url, { authProvider: { token: async () => token } });
  await client.connect(transport);
  return { client, transport };
}
