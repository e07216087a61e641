/**
 * The demo notes server over Streamable HTTP on 127.0.0.1, as an upstream behind Gatehouse that
 * trusts only bearer JWTs Gatehouse minted for it.
 *
 *   GATEHOUSE_DEMO_PORT=8788 \
 *   GATEHOUSE_DEMO_GATEWAY_URL=http://127.0.0.1:8787 \
 *   node --import tsx src/demo/http-main.ts
 *
 * and in front of it: `npm start -- --upstream-url http://127.0.0.1:8788/mcp`.
 *
 * `GATEHOUSE_DEMO_GATEWAY_URL` is the gateway's public URL: the JWKS is `<url>/.well-known/jwks.json`
 * and the issuer `<url>/` — with its trailing slash, compared exactly, as Gatehouse issues it. Set
 * `GATEHOUSE_DEMO_JWKS_URL` and `GATEHOUSE_DEMO_ISSUER` instead for a gateway with `auth.issuer` of
 * its own. `GATEHOUSE_DEMO_AUDIENCE` defaults to `http://127.0.0.1:<port>/mcp`. Logs go to stderr.
 */
import { serve } from '@hono/node-server';
import { z } from 'zod';
import { createLogger } from '../ops/logger.js';
import { createNotesHttpApp } from './http.js';

const envSchema = z
  .object({
    /** TCP port on 127.0.0.1. Default 8788. */
    GATEHOUSE_DEMO_PORT: z.coerce.number().int().min(1).max(65535).default(8788),
    /** The gateway's public URL; the JWKS URL and the issuer follow from it. */
    GATEHOUSE_DEMO_GATEWAY_URL: z.url({ protocol: /^https?$/ }).optional(),
    GATEHOUSE_DEMO_JWKS_URL: z.url({ protocol: /^https?$/ }).optional(),
    GATEHOUSE_DEMO_ISSUER: z.string().min(1).optional(),
    GATEHOUSE_DEMO_AUDIENCE: z.string().min(1).optional(),
    /** pino level. Default `info`. */
    GATEHOUSE_DEMO_LOG_LEVEL: z.string().default('info'),
  })
  .transform((env, ctx) => {
    const gateway = env.GATEHOUSE_DEMO_GATEWAY_URL?.replace(/\/+$/, '');
    const jwksUrl = env.GATEHOUSE_DEMO_JWKS_URL ?? (gateway && `${gateway}/.well-known/jwks.json`);
    const issuer = env.GATEHOUSE_DEMO_ISSUER ?? (gateway && `${gateway}/`);
    if (jwksUrl === undefined || issuer === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['GATEHOUSE_DEMO_GATEWAY_URL'],
        message: 'set GATEHOUSE_DEMO_GATEWAY_URL (or both GATEHOUSE_DEMO_JWKS_URL and GATEHOUSE_DEMO_ISSUER)',
      });
      return z.NEVER;
    }
    return { ...env, jwksUrl, issuer };
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
  jwksUrl: env.jwksUrl,
  issuer: env.issuer,
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
