import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { delimiter, isAbsolute, join, resolve } from 'node:path';
import { getDefaultEnvironment } from '@modelcontextprotocol/client/stdio';
import type { HttpUpstreamConfig, StdioUpstreamConfig, UpstreamConfig } from '../config/schema.js';
import type { UpstreamFailureReason } from '../errors/gatehouse-error.js';
import type { Clock } from '../ops/clock.js';
import { upstreamFailureReason } from './upstream-failure.js';

/** Whether the upstream can be used, without acting as anyone: nothing is spawned, no token is sent. */
export type UpstreamHealth =
  | { readonly ok: true; readonly detail: string }
  | { readonly ok: false; readonly reason: UpstreamFailureReason; readonly detail: string };

export interface UpstreamProbe {
  /** Checks now (a stdio command is resolved, an HTTP URL is reached); cached for `cacheMs`. */
  check(): Promise<UpstreamHealth>;
}

export interface UpstreamProbeOptions {
  readonly clock: Clock;
  /** How long an HTTP probe may take, in milliseconds. Default 2 s. */
  readonly timeoutMs?: number;
  /** How long a result is reused (readiness probes come often), in milliseconds. Default 5 s. */
  readonly cacheMs?: number;
}

/**
 * Checks an upstream the way an operator would before trusting it: a stdio command must resolve to an
 * executable file (on the child's `PATH`, from its working directory); an HTTP upstream must answer at
 * all (any status: a 401 or 405 still proves the server is there). Used at start-up, by `/readyz` and by
 * `gatehouse doctor`.
 */
export function createUpstreamProbe(upstream: UpstreamConfig, options: UpstreamProbeOptions): UpstreamProbe {
  const cacheMs = options.cacheMs ?? 5_000;
  let cached: { at: number; health: Promise<UpstreamHealth> } | undefined;
  const run = () =>
    upstream.kind === 'stdio' ? probeCommand(upstream) : probeUrl(upstream, options.timeoutMs ?? 2_000);
  return {
    check() {
      const now = options.clock.now();
      if (cached === undefined || now - cached.at >= cacheMs) cached = { at: now, health: run() };
      return cached.health;
    },
  };
}

/** Resolves a stdio upstream's command as the child's spawn would, or says why it cannot start. */
export async function probeCommand(config: StdioUpstreamConfig): Promise<UpstreamHealth> {
  const cwd = config.cwd ?? process.cwd();
  const { command } = config;
  const candidates =
    command.includes('/') || isAbsolute(command)
      ? [resolve(cwd, command)]
      : (config.env.PATH ?? getDefaultEnvironment().PATH ?? '')
          .split(delimiter)
          .filter((dir) => dir !== '')
          .map((dir) => join(resolve(cwd, dir), command));
  for (const candidate of candidates) {
    try {
      if (!(await stat(candidate)).isFile()) continue;
      await access(candidate, constants.X_OK);
      return { ok: true, detail: `stdio command ${candidate}` };
    } catch {
      // Not here, or not executable: try the next directory.
    }
  }
  return {
    ok: false,
    reason: 'upstream_spawn_failed',
    detail: `stdio command "${command}" was not found or is not executable${
      candidates.length > 1 ? ' on the PATH' : ''
    }`,
  };
}

async function probeUrl(config: HttpUpstreamConfig, timeoutMs: number): Promise<UpstreamHealth> {
  try {
    const response = await fetch(config.url, {
      method: 'HEAD',
      headers: config.headers,
      redirect: 'manual',
      signal: AbortSignal.timeout(timeoutMs),
    });
    await response.body?.cancel().catch(() => undefined);
    return { ok: true, detail: `http ${config.url} answered ${response.status}` };
  } catch (error) {
    const reason = upstreamFailureReason(error, true);
    return {
      ok: false,
      reason: reason === 'upstream_spawn_failed' ? 'upstream_unreachable' : reason,
      detail: `http ${config.url} could not be reached`,
    };
  }
}
