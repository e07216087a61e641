import { SdkError, SdkErrorCode, SdkHttpError, UnauthorizedError } from '@modelcontextprotocol/client';
import { GatehouseError, type UpstreamFailureReason } from '../errors/gatehouse-error.js';

/** JSON-RPC error code for a request the upstream could not answer (implementation-defined range). */
export const UPSTREAM_FAILED_CODE = -32000;

const UNREACHABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
]);

/** Thrown by a start or request that ran out of time. */
export class UpstreamTimeoutError extends Error {
  override readonly name = 'UpstreamTimeoutError';
}

/** Thrown when the upstream went away while something waited for it. */
export class UpstreamExitedError extends Error {
  override readonly name = 'UpstreamExitedError';
}

/**
 * Names why an upstream failed, from whatever the transport threw: spawn errors of a stdio child, fetch
 * errors and HTTP statuses of an HTTP upstream, timeouts. `starting` tells an exit before the first
 * answer (the command is broken) from one later (it crashed); for an HTTP upstream, anything else it
 * did is an answer that is not MCP.
 */
export function upstreamFailureReason(
  error: unknown,
  starting: boolean,
  upstream: 'stdio' | 'http' = 'stdio',
): UpstreamFailureReason {
  // What the network said, however deep the SDK wrapped it, decides first.
  const network = networkFailure(error);
  if (network !== undefined) return network;
  if (error instanceof GatehouseError && typeof error.details?.reason === 'string') {
    return error.details.reason as UpstreamFailureReason;
  }
  if (error instanceof UpstreamTimeoutError) return 'upstream_timeout';
  // An HTTP upstream that goes away while Gatehouse waits for its first answer has not "exited".
  const exitedAtStart = upstream === 'http' ? 'upstream_invalid_response' : 'upstream_spawn_failed';
  if (error instanceof UpstreamExitedError) return starting ? exitedAtStart : 'upstream_exited';
  if (UnauthorizedError.isInstance(error)) return 'upstream_rejected';
  if (SdkHttpError.isInstance(error)) {
    const status = error.status;
    return typeof status === 'number' && status >= 400 && status < 500
      ? 'upstream_rejected'
      : 'upstream_invalid_response';
  }
  if (SdkError.isInstance(error)) {
    if (error.code === SdkErrorCode.RequestTimeout) return 'upstream_timeout';
    if (error.code === SdkErrorCode.ConnectionClosed) return starting ? exitedAtStart : 'upstream_exited';
    return 'upstream_invalid_response';
  }
  if (error instanceof SyntaxError || upstream === 'http') return 'upstream_invalid_response';
  return starting ? 'upstream_spawn_failed' : 'upstream_exited';
}

/** A spawn, connection or timeout failure anywhere in the `cause` chain. */
function networkFailure(error: unknown): UpstreamFailureReason | undefined {
  for (let current = error, depth = 0; current !== undefined && current !== null && depth < 8; depth++) {
    const code = errorCode(current);
    if (code === 'ENOENT' || code === 'EACCES' || code === 'ENOEXEC' || code === 'EPERM')
      return 'upstream_spawn_failed';
    if (code !== undefined && UNREACHABLE_CODES.has(code)) return 'upstream_unreachable';
    if (current instanceof UpstreamTimeoutError) return 'upstream_timeout';
    if (current instanceof Error && (current.name === 'AbortError' || current.name === 'TimeoutError')) {
      return 'upstream_timeout';
    }
    if (current instanceof TypeError && /fetch failed/i.test(current.message)) return 'upstream_unreachable';
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

const DESCRIPTION: Record<UpstreamFailureReason, string> = {
  upstream_spawn_failed: 'the upstream MCP server could not be started',
  upstream_unreachable: 'the upstream MCP server could not be reached',
  upstream_rejected: 'the upstream MCP server refused the gateway',
  upstream_timeout: 'the upstream MCP server did not answer in time',
  upstream_invalid_response: 'the upstream MCP server answered with something that is not MCP',
  upstream_exited: 'the upstream MCP server exited before answering',
};

/** A fixed, secret-free sentence for a reason (the cause itself goes to the log only). */
export function describeUpstreamFailure(reason: UpstreamFailureReason): string {
  return DESCRIPTION[reason];
}

/**
 * The error a client gets when its request cannot reach the upstream: 502 (504 for a timeout) with the
 * stable reason in `data.reason`. Exposed, since the reason and sentence are fixed strings: the cause is
 * attached for the log, never rendered.
 */
export function upstreamError(reason: UpstreamFailureReason, cause?: unknown): GatehouseError {
  return new GatehouseError(
    reason === 'upstream_timeout' ? 'ERR_UPSTREAM_TIMEOUT' : 'ERR_UPSTREAM_UNAVAILABLE',
    describeUpstreamFailure(reason),
    { cause, expose: true, details: { reason } },
  );
}

/** The JSON-RPC error answering one request the upstream could not serve. */
export function upstreamRpcError(reason: UpstreamFailureReason, message = describeUpstreamFailure(reason)) {
  return { code: UPSTREAM_FAILED_CODE, message, data: { reason } };
}

function errorCode(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' ? code : undefined;
}
