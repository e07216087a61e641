import { GatehouseError } from '../errors/gatehouse-error.js';

/** JSON-RPC parse failure (-32700), answered with HTTP 400 by the MCP endpoint. */
export class JsonRpcParseError extends Error {
  override readonly name = 'JsonRpcParseError';
}

/**
 * Reads a request body of at most `maxBytes`, refusing early on a declared `Content-Length` and while
 * streaming otherwise, so an oversized body is never buffered whole. Throws `ERR_BODY_TOO_LARGE` (413).
 */
export async function readBoundedText(request: Request, maxBytes: number): Promise<string> {
  const declared = request.headers.get('content-length');
  if (declared !== null && Number(declared) > maxBytes) throw tooLarge(maxBytes);
  if (request.body === null) return '';
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      await reader.cancel().catch(() => undefined);
      throw tooLarge(maxBytes);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Reads and parses a JSON body; a body that is not JSON is a `JsonRpcParseError`. */
export async function readJsonBody(request: Request, maxBytes: number): Promise<unknown> {
  const text = await readBoundedText(request, maxBytes);
  try {
    return JSON.parse(text);
  } catch {
    throw new JsonRpcParseError('Parse error: body is not valid JSON');
  }
}

function tooLarge(maxBytes: number): GatehouseError {
  return new GatehouseError('ERR_BODY_TOO_LARGE', `request body exceeds ${maxBytes} bytes`, {
    details: { maxBytes },
  });
}
