/**
 * The demo notes server over Streamable HTTP on 127.0.0.1, as an upstream behind Gatehouse that
 * trusts only bearer JWTs Gatehouse minted for it.
 *
 *   GATEHOUSE_DEMO_PORT=8788 \
 *   GATEHOUSE_DEMO_JWKS_URL=http://127.0.0.1:8787/.well-known/jwks.json \
 *   GATEHOUSE_DEMO_ISSUER=http://127.0.0.1:8787 \
 *   GATEHOUSE_DEMO_AUDIENCE=http://127.0.0.1:8788/mcp \
 *   node --import tsx src/demo/http-main.ts
 *
 * `GATEHOUSE_DEMO_AUDIENCE` defaults to `http://127.0.0.1:<port>/mcp`. Logs go to stderr.
 */
import { serve } from '@hono/node-server';
import { z } from 'zod';
import { createLogger } from '../ops/logger.js';
import { createNotesHttpApp } from './http.js';

const envSchema = z.object({
  /** TCP port on 127.0.0.1. Default 8788. */
  GATEHOUSE_DEMO_PORT: z.coerce.number().int().min(1).max(65535).default(8788),
  GATEHOUSE_DEMO_JWKS_URL: z.url({ protocol: /^https?$/ }),
  GATEHOUSE_DEMO_ISSUER: z.string().min(1),
  GATEHOUSE_DEMO_AUDIENCE: z.string().min(1).optional(),
  /** pino level. Default `info`. */
  GATEHOUSE_DEMO_LOG_LEVEL: z.string().default('info'),
});

const parsed = envSchema.safeParse(process.env);
if (!parsed.success) {
  for (const issue of parsed.error.issues) {
    process.stderr.write(`invalid environment: ${issue.path.join('.')}: ${issue.message}\n`);
  }
  process.exit(2);
}
const env = parsed.data;
const log = createLogger({ level: env.GATEHOUSE_DEMO_LOG_LEVEL, destination: process.stderr });
const hostname = '127.0.0.1';
const audience = env.GATEHOUSE_DEMO_AUDIENCE ?? `http://${hostname}:${env.GATEHOUSE_DEMO_PORT}/mcp`;

const app = createNotesHttpApp({
  jwksUrl: env.GATEHOUSE_DEMO_JWKS_URL,
  issuer: env.GATEHOUSE_DEMO_ISSUER,
  audience,
  onError: (error) => log.warn({ err: error }, 'demo notes server error'),
});

const server = serve({ fetch: app.fetch, hostname, port: env.GATEHOUSE_DEMO_PORT }, (info) => {
  log.info({ url: `http://${hostname}:${info.port}/mcp`, audience }, 'demo notes server listening');
});

const shutdown = () => {
  void app.close().finally(() => server.close(() => process.exit(0)));
};
process.once('SIGINT', shutdown);
process.once('SIGTERM', shutdown);
