import { type Logger, type LoggerOptions, pino } from 'pino';

export type { Logger };

/** Paths pino blanks out wherever they appear, so a token, secret, password or cookie never reaches a log. */
export const REDACTED_PATHS = [
  'authorization',
  '*.authorization',
  'headers.authorization',
  '*.headers.authorization',
  'headers.cookie',
  '*.headers.cookie',
  'cookie',
  '*.cookie',
  'token',
  '*.token',
  'accessToken',
  '*.accessToken',
  'access_token',
  '*.access_token',
  'refresh_token',
  '*.refresh_token',
  'id_token',
  '*.id_token',
  'secret',
  '*.secret',
  'clientSecret',
  '*.clientSecret',
  'client_secret',
  '*.client_secret',
  'password',
  '*.password',
] as const;

export interface LoggerConfig {
  level: string;
  /** Where to write; defaults to stdout. Tests pass a stream to assert on what was logged. */
  destination?: NodeJS.WritableStream;
}

export function createLogger(config: LoggerConfig): Logger {
  const options: LoggerOptions = {
    level: config.level,
    base: { service: 'gatehouse' },
    redact: { paths: [...REDACTED_PATHS], censor: '[redacted]' },
  };
  return config.destination ? pino(options, config.destination as pino.DestinationStream) : pino(options);
}

export const silentLogger: Logger = pino({ level: 'silent' });
