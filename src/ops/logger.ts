import { createRequire } from 'node:module';
import { type DestinationStream, type Logger, type LoggerOptions, pino } from 'pino';
import pinoPretty from 'pino-pretty';
import { currentRequestScope } from './request-scope.js';

export type { Logger };

/**
 * Every field name under which Gatehouse (or a library it logs the errors of) can hold a credential:
 * request headers, OAuth parameters (RFC 6749, 7523, 7636, 8693, 9449), configuration secrets.
 */
const CREDENTIAL_FIELDS = [
  'authorization',
  'proxy-authorization',
  'cookie',
  'set-cookie',
  'token',
  'accessToken',
  'access_token',
  'refreshToken',
  'refresh_token',
  'idToken',
  'id_token',
  'code',
  'codeVerifier',
  'code_verifier',
  'clientSecret',
  'client_secret',
  'clientAssertion',
  'client_assertion',
  'assertion',
  'subjectToken',
  'subject_token',
  'actorToken',
  'actor_token',
  'password',
  'secret',
  'secretKey',
  'privateKey',
  'apiToken',
  'apiKey',
  'api_key',
  'bearerToken',
  'dpop',
] as const;

/** `name` as a redaction path segment (bracketed when it is not an identifier, such as `set-cookie`). */
function segment(name: string): string {
  return /^[A-Za-z_$][\w$]*$/.test(name) ? `.${name}` : `["${name}"]`;
}

/**
 * Paths pino blanks out wherever they appear — at the top level of a log line and nested one and two
 * levels down (`headers.authorization`, `req.headers.cookie`, `err.config.password`) — so a token, secret,
 * password or cookie never reaches a log.
 */
export const REDACTED_PATHS: readonly string[] = CREDENTIAL_FIELDS.flatMap((name) => {
  const tail = segment(name);
  return [tail.startsWith('.') ? tail.slice(1) : tail, `*${tail}`, `*.*${tail}`];
});

/**
 * `code` is both an OAuth authorization code and the stable code of an error (`ERR_STORE_UNAVAILABLE`,
 * `invalid_grant`, `ECONNREFUSED`, a SQLSTATE): the latter are kept, because they are what an operator
 * searches for; anything else under `code` is treated as a credential.
 */
const STABLE_CODE = /^(?:[A-Z][A-Z0-9_]*|[a-z][a-z_]*|[0-9A-Z]{5}|-?\d+)$/;
const CENSOR = '[redacted]';

function censor(value: unknown, path: string[]): unknown {
  if (path.at(-1) === 'code') {
    if (typeof value === 'number') return value;
    if (typeof value === 'string' && value.length <= 64 && STABLE_CODE.test(value)) return value;
  }
  return CENSOR;
}

/** A log file that rolls over (pino-roll): `path.1`, `path.2`, … */
export interface LogFileConfig {
  /** The file's path; numbered as it rolls, its folder created when missing. */
  readonly path: string;
  /** Roll once the file reaches this size: a number of megabytes, or `k`/`m`/`g` (`10m`). */
  readonly size?: string | number | undefined;
  /** Roll `daily`, `hourly`, or every so many milliseconds. */
  readonly frequency?: 'daily' | 'hourly' | number | undefined;
  /** Files kept besides the current one; older ones are removed. Default: all kept. */
  readonly limit?: number | undefined;
}

export interface LoggerConfig {
  level: string;
  /**
   * `pretty`: human-readable lines (pino-pretty); `json`: one JSON object per line; `auto` (default): pretty
   * when standard output is a terminal, JSON otherwise (a log pipeline, a container).
   */
  format?: 'auto' | 'json' | 'pretty' | undefined;
  /** Also write JSON lines to a rolling file. */
  file?: LogFileConfig | undefined;
  /** Where to write instead of stdout; tests pass a stream to assert on what was logged (JSON: not a terminal). */
  destination?: NodeJS.WritableStream | undefined;
}

const require = createRequire(import.meta.url);

/**
 * The gateway's logger: pino with credentials redacted and, on every line logged while a request is
 * served, that request's `requestId` (from the request scope), so the lines of one request can be found
 * together and matched with the id its error answer quotes.
 *
 * @example
 * const logger = createLogger({ level: 'info', format: 'json', file: { path: '/var/log/gatehouse/gatehouse.log', size: '50m', limit: 10 } });
 */
export function createLogger(config: LoggerConfig): Logger {
  const options: LoggerOptions = {
    level: config.level,
    base: { service: 'gatehouse' },
    redact: { paths: [...REDACTED_PATHS], censor },
    mixin() {
      const scope = currentRequestScope();
      return scope === undefined ? {} : { requestId: scope.requestId };
    },
  };
  // `auto` asks the stream actually written to: a terminal gets pretty lines, a pipe or a file JSON.
  const terminal = ((config.destination ?? process.stdout) as { isTTY?: boolean }).isTTY === true;
  const pretty = config.format === 'pretty' || ((config.format ?? 'auto') === 'auto' && terminal);
  const stdout: DestinationStream | undefined = pretty
    ? pinoPretty({
        colorize: terminal,
        ignore: 'pid,hostname,service',
        sync: true,
        ...(config.destination !== undefined && { destination: config.destination }),
      })
    : (config.destination as DestinationStream | undefined);
  if (config.file === undefined || config.level === 'silent') {
    return stdout === undefined ? pino(options) : pino(options, stdout);
  }
  const file = pino.transport({
    target: require.resolve('pino-roll'),
    options: {
      file: config.file.path,
      mkdir: true,
      ...(config.file.size !== undefined && { size: config.file.size }),
      ...(config.file.frequency !== undefined && { frequency: config.file.frequency }),
      ...(config.file.limit !== undefined && { limit: { count: config.file.limit } }),
    },
  }) as DestinationStream;
  return pino(
    options,
    pino.multistream([
      { stream: stdout ?? pino.destination(1), level: config.level as pino.Level },
      { stream: file, level: config.level as pino.Level },
    ]),
  );
}

export const silentLogger: Logger = pino({ level: 'silent' });
