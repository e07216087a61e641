import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { configSchema, type GatehouseConfigInput } from '../../src/config/schema.js';
import { tokenHash } from '../../src/crypto/fingerprint.js';
import { bundledDemoUpstream } from '../../src/demo/bundled.js';
import { createGateway, type Gateway } from '../../src/edge/gateway.js';
import { silentLogger } from '../../src/ops/logger.js';
import type { PrincipalSnapshot } from '../../src/stores/ports.js';

export type StoreVariant = 'memory' | 'sqlite';

export interface RefreshOptions {
  rounds: number;
  /** Operation bound of one measured run. */
  maxOps: number;
  /** Wall-time bound of one measured run, in milliseconds. */
  maxRunMs: number;
  /** Unmeasured refreshes per variant before the first round. */
  warmupOps: number;
}

export interface RefreshRun {
  variant: StoreVariant;
  round: number;
  ops: number;
  durationMs: number;
  opsPerSecond: number;
  microsPerOp: number;
}

const REDIRECT_URI = 'http://127.0.0.1:1/cb';
const FORM = { 'content-type': 'application/x-www-form-urlencoded' };

/** One gateway and the refresh-token family the timed loop walks (always holding its newest token). */
interface Subject {
  readonly gateway: Gateway;
  readonly clientId: string;
  refreshToken: string;
}

/**
 * Case (d): refresh-token rotation at the token endpoint, memory store vs SQLite store. Each variant is
 * a whole gateway (`createGateway`, nothing listening) served in-process through `app.request`; one
 * public client, one local user and one grant per variant are set up outside timing, then each refresh
 * presents the refresh token the previous one returned, sequentially (one request at a time), so every
 * operation is the full rotation: client lookup, refresh-token lookup, grant read, ES256 access token,
 * sealed grace response, compare-and-swap rotation, audit event.
 */
export async function measureRefresh(options: RefreshOptions): Promise<RefreshRun[]> {
  const dataDir = mkdtempSync(join(tmpdir(), 'gatehouse-bench-refresh-'));
  const gateways: Gateway[] = [];
  try {
    const subjects = {} as Record<StoreVariant, Subject>;
    for (const variant of ['memory', 'sqlite'] as const) {
      const input: GatehouseConfigInput =
        variant === 'memory'
          ? { store: { kind: 'memory' } }
          : { store: { kind: 'sqlite' }, dataDir: join(dataDir, 'sqlite') };
      const config = configSchema.parse({ ...input, server: { port: 0 }, log: { level: 'silent' } });
      const gateway = await createGateway(config, {
        logger: silentLogger,
        defaultUpstream: () => bundledDemoUpstream(),
      });
      gateways.push(gateway);
      subjects[variant] = await prepare(gateway);
    }

    for (const variant of ['memory', 'sqlite'] as const) {
      await timed(subjects[variant], options.warmupOps, options.maxRunMs);
    }

    const runs: RefreshRun[] = [];
    for (let round = 1; round <= options.rounds; round++) {
      const order: StoreVariant[] = round % 2 === 1 ? ['memory', 'sqlite'] : ['sqlite', 'memory'];
      for (const variant of order) {
        const { ops, durationMs } = await timed(subjects[variant], options.maxOps, options.maxRunMs);
        runs.push({
          variant,
          round,
          ops,
          durationMs,
          opsPerSecond: (ops * 1000) / durationMs,
          microsPerOp: (durationMs * 1000) / ops,
        });
      }
    }
    return runs;
  } finally {
    for (const gateway of gateways) await gateway.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/** Registers a public client, adds a local user, issues a code for them directly and exchanges it. */
async function prepare(gateway: Gateway): Promise<Subject> {
  const accounts = gateway.authorizationServer?.accounts;
  if (accounts === undefined) throw new Error('the bench needs the authorization server with local accounts');

  const registered = await gateway.app.request('/oauth/register', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      client_name: 'gatehouse bench',
      redirect_uris: [REDIRECT_URI],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    }),
  });
  const client = (await registered.json()) as { client_id?: string };
  if (registered.status !== 201 || client.client_id === undefined) {
    throw new Error(`client registration failed (${registered.status}): ${JSON.stringify(client)}`);
  }
  const clientId = client.client_id;

  // scrypt: once per variant, outside timing.
  const user = await accounts.add({
    username: 'bench-user',
    password: randomBytes(18).toString('base64url'),
    email: 'bench-user@example.test',
  });
  const principal: PrincipalSnapshot = {
    subject: user.id,
    idp: 'local',
    ...(user.email !== undefined && { email: user.email }),
    claims: { username: user.username },
  };

  // What the consent page's `complete()` stores, without a browser.
  const code = `ghc_${randomBytes(32).toString('base64url')}`;
  const verifier = randomBytes(32).toString('base64url');
  const now = Date.now();
  await gateway.stores.codes.create({
    codeHash: tokenHash(code),
    grantId: `grt_${randomBytes(16).toString('base64url')}`,
    clientId,
    redirectUri: REDIRECT_URI,
    codeChallenge: createHash('sha256').update(verifier).digest('base64url'),
    resource: gateway.urls.resource,
    scopes: [...gateway.config.auth.requiredScopes],
    principal,
    authTime: now,
    createdAt: now,
    expiresAt: now + 60_000,
  });
  const exchanged = await gateway.app.request('/oauth/token', {
    method: 'POST',
    headers: FORM,
    body: new URLSearchParams({
      grant_type: 'authorization_code',
      code,
      redirect_uri: REDIRECT_URI,
      code_verifier: verifier,
      client_id: clientId,
      resource: gateway.urls.resource,
    }).toString(),
  });
  const tokens = (await exchanged.json()) as { refresh_token?: string };
  if (exchanged.status !== 200 || tokens.refresh_token === undefined) {
    throw new Error(`code exchange failed (${exchanged.status}): ${JSON.stringify(tokens)}`);
  }
  return { gateway, clientId, refreshToken: tokens.refresh_token };
}

async function refreshOnce(subject: Subject): Promise<void> {
  const response = await subject.gateway.app.request('/oauth/token', {
    method: 'POST',
    headers: FORM,
    body: new URLSearchParams({
      grant_type: 'refresh_token',
      refresh_token: subject.refreshToken,
      client_id: subject.clientId,
    }).toString(),
  });
  const body = (await response.json()) as { refresh_token?: string; access_token?: string };
  if (response.status !== 200 || body.refresh_token === undefined || body.access_token === undefined) {
    throw new Error(`refresh failed (${response.status}): ${JSON.stringify(body)}`);
  }
  subject.refreshToken = body.refresh_token;
}

async function timed(
  subject: Subject,
  maxOps: number,
  maxRunMs: number,
): Promise<{ ops: number; durationMs: number }> {
  const begin = performance.now();
  const deadline = begin + maxRunMs;
  let ops = 0;
  while (ops < maxOps && performance.now() < deadline) {
    await refreshOnce(subject);
    ops += 1;
  }
  return { ops, durationMs: performance.now() - begin };
}
