import { StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { getDefaultEnvironment, StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import type { Transport } from '@modelcontextprotocol/server';
import type { HttpUpstreamConfig, StdioUpstreamConfig, UpstreamConfig } from '../config/schema.js';
import type { Principal } from '../identity/principal.js';
import type { Clock } from '../ops/clock.js';
import type { Logger } from '../ops/logger.js';

/**
 * Who an upstream connection acts for. A connection is never shared by two principals; `principal` may be
 * replaced by a fresher verification of the same user (a renewed token), never by another user.
 */
export interface UpstreamIdentity {
  readonly principal: Principal;
  /** The Gatehouse session, or `undefined` for the per-user connection that serves stateless requests. */
  readonly sessionId: string | undefined;
}

/** Signs the short-lived identity token an HTTP upstream receives instead of the client's own token. */
export interface IdentityTokenSigner {
  sign(input: {
    subject: string;
    audience: string;
    expiresInSeconds: number;
    claims?: Record<string, unknown>;
  }): Promise<string>;
}

/** Opens client transports to the configured upstream, one per session (or per user, for stateless requests). */
export interface UpstreamConnector {
  readonly kind: UpstreamConfig['kind'];
  /** A new, not yet started transport carrying `identity`. */
  open(identity: UpstreamIdentity): Transport;
  /** A non-secret description for logs and diagnostics. */
  describe(): string;
}

export function createUpstreamConnector(deps: {
  upstream: UpstreamConfig;
  signer: IdentityTokenSigner;
  clock: Clock;
  logger: Logger;
}): UpstreamConnector {
  const { upstream } = deps;
  return upstream.kind === 'stdio'
    ? stdioConnector(upstream, deps.logger)
    : httpConnector(upstream, deps.signer, deps.clock);
}

function stdioConnector(config: StdioUpstreamConfig, logger: Logger): UpstreamConnector {
  return {
    kind: 'stdio',
    describe: () => `stdio: ${[config.command, ...config.args].join(' ')}`,
    open({ principal, sessionId }) {
      const names = config.identityEnv;
      const env: Record<string, string> = {
        ...getDefaultEnvironment(),
        ...config.env,
        [names.userId]: principal.subject,
        [names.email]: principal.email ?? '',
        [names.scopes]: principal.scopes.join(' '),
        [names.issuer]: principal.issuer,
        [names.sessionId]: sessionId ?? '',
      };
      const transport = new StdioClientTransport({
        command: config.command,
        args: config.args,
        env,
        stderr: 'pipe',
        ...(config.cwd === undefined ? {} : { cwd: config.cwd }),
      });
      // The child's stderr is its log; keep it, attributed, at debug level (it is the upstream's output,
      // not ours, so it is never parsed for meaning).
      transport.stderr?.on('data', (chunk: Buffer) => {
        logger.debug(
          { sessionId, user: principal.subject, upstream: 'stdio' },
          chunk.toString('utf8').trimEnd(),
        );
      });
      return transport;
    },
  };
}

/** Minted tokens are reused until this close to expiry, so a burst of calls costs one signature. */
const REMINT_MARGIN_SECONDS = 10;

function httpConnector(
  config: HttpUpstreamConfig,
  signer: IdentityTokenSigner,
  clock: Clock,
): UpstreamConnector {
  const audience = config.audience ?? config.url;
  return {
    kind: 'http',
    describe: () => `http: ${config.url}`,
    open(identity) {
      const { sessionId } = identity;
      let cached: { token: string; expiresAt: number } | undefined;
      const token = async (): Promise<string> => {
        const now = Math.floor(clock.now() / 1000);
        // Read at call time: a session's principal is refreshed when the client presents a renewed token.
        const { principal } = identity;
        if (cached !== undefined && cached.expiresAt - REMINT_MARGIN_SECONDS > now) return cached.token;
        // Never the client's token: a fresh identity, audience-bound to this upstream (no token passthrough).
        const expiresInSeconds = Math.min(config.tokenTtlSeconds, Math.max(5, principal.expiresAt - now));
        const minted = await signer.sign({
          subject: principal.subject,
          audience,
          expiresInSeconds,
          claims: {
            ...(principal.email === undefined ? {} : { email: principal.email }),
            ...(principal.name === undefined ? {} : { name: principal.name }),
            scope: principal.scopes.join(' '),
            ...(sessionId === undefined ? {} : { sid: sessionId }),
            original_iss: principal.issuer,
          },
        });
        cached = { token: minted, expiresAt: now + expiresInSeconds };
        return minted;
      };
      return new StreamableHTTPClientTransport(new URL(config.url), {
        authProvider: { token },
        requestInit: { headers: config.headers },
      });
    },
  };
}

/**
 * Closes an upstream connection for good. An HTTP upstream's MCP session is deleted first (a DELETE with
 * its session id), so the upstream frees it now rather than at its own idle timeout; failures are logged
 * at debug level only, since the connection is being discarded either way.
 */
export async function closeUpstream(transport: Transport, logger: Logger): Promise<void> {
  try {
    const http = transport as Transport & { terminateSession?: () => Promise<void> };
    if (typeof http.terminateSession === 'function') await http.terminateSession().catch(() => undefined);
    await transport.close();
  } catch (error) {
    logger.debug({ err: error }, 'closing upstream failed');
  }
}
