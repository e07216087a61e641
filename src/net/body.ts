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
    let chunk: ReadableStreamReadResult<Uint8Array>;
    try {
      chunk = await reader.read();
    } catch (error) {
      // The client went away (or the server's request timeout cut it off) mid-body: not a server fault.
      throw new GatehouseError('ERR_REQUEST_ABORTED', 'the request body was not received in full', {
        cause: error,
      });
    }
    const { done, value } = chunk;
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

/**
 * Deepest nesting of arrays and objects a client message may have. MCP messages, tool arguments and
 * schemas included, stay far below it; beyond it, every recursive walk over the value (validation,
 * serialisation, logging) risks the stack.
 */
export const MAX_JSON_DEPTH = 128;

/**
 * Parses a client's JSON text, refusing it before parsing when arrays and objects nest deeper than
 * `maxDepth` (one linear scan that skips strings): a `JsonRpcParseError` either way.
 */
export function parseJsonText(text: string, maxDepth = MAX_JSON_DEPTH): unknown {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const char = text.charCodeAt(i);
    if (inString) {
      if (char === 0x5c)
        i++; // backslash: skip the escaped character
      else if (char === 0x22) inString = false;
    } else if (char === 0x22) {
      inString = true;
    } else if (char === 0x5b || char === 0x7b) {
      if (++depth > maxDepth) {
        throw new JsonRpcParseError(`Parse error: JSON nested deeper than ${maxDepth} levels`);
      }
    } else if (char === 0x5d || char === 0x7d) {
      depth--;
    }
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new JsonRpcParseError('Parse error: body is not valid JSON');
  }
}

/** Reads and parses a JSON body; a body that is not JSON (or nests too deep) is a `JsonRpcParseError`. */
export async function readJsonBody(request: Request, maxBytes: number): Promise<unknown> {
  return parseJsonText(await readBoundedText(request, maxBytes));
}

function tooLarge(maxBytes: number): GatehouseError {
  return new GatehouseError('ERR_BODY_TOO_LARGE', `request body exceeds ${maxBytes} bytes`, {
    details: { maxBytes },
  });
}
