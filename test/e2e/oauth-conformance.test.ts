import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readChecks, startSuite } from '../helpers/conformance.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { signIn } from '../helpers/oauth.js';

/**
 * The MCP conformance suite's authorization-server scenarios, run against a real gateway:
 *
 * - `authorization-server-metadata-endpoint` fetches the RFC 8414 metadata at the paths derived from
 *   the issuer; 200, `application/json`, `issuer` equal to `--url`, authorization and token endpoints,
 *   `response_types_supported` with `code`, `code_challenge_methods_supported` with `S256`; a separate
 *   check wants `client_id_metadata_document_supported: true` (a WARNING otherwise).
 * - `authorization-code-grant` prints an authorize URL (PKCE S256, state, RFC 8707 resource) for the
 *   pre-registered public client and waits for its loopback callback: exactly one `state` (matching),
 *   one non-empty `code`, `iss` equal to the metadata issuer, no `error`; then it redeems the code and
 *   wants 200, `application/json`, `Cache-Control: no-store`, `access_token` and `token_type`.
 *
 * The test plays the user: it reads the URL the suite prints, signs in and consents through the form,
 * and follows the redirect to the suite's callback. The suite is fetched with npx (it needs Node 22);
 * when it cannot be fetched the test fails: it is never skipped.
 */
const PASSWORD = 'conformance passphrase 7';
/** The first run downloads Node 22 and the suite. */
const PRINTS_URL_WITHIN_MS = 200_000;
/** Each later step: the callback server listening, the suite exiting after the token request. */
const STEP_WITHIN_MS = 20_000;

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

/** Resolves with the first match of `pattern` in the output; rejects when the suite ends first or after `ms`. */
function waitFor(
  pattern: RegExp,
  output: () => string,
  exited: Promise<number | null>,
  ms: number,
): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    const fail = (reason: string) => {
      clearInterval(poll);
      clearTimeout(timer);
      reject(new Error(`${reason} before printing ${pattern}:\n${output()}`));
    };
    const timer = setTimeout(() => fail(`the suite ran ${ms} ms`), ms);
    const poll = setInterval(() => {
      const match = pattern.exec(output());
      if (match === null) return;
      clearInterval(poll);
      clearTimeout(timer);
      resolve(match);
    }, 50);
    exited.then(
      (code) => fail(`the suite exited (${code})`),
      (error: unknown) => fail(`the suite could not start (${String(error)})`),
    );
  });
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(what())), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

describe('MCP conformance suite: authorization server scenarios', () => {
  let gw: TestGateway;
  let port: number;
  let outputDir: string;

  beforeAll(async () => {
    port = await freePort();
    gw = await startTestGateway({
      authorizationServer: {
        clients: [
          {
            clientId: 'conformance',
            redirectUris: [`http://127.0.0.1:${port}/callback`],
            clientName: 'MCP conformance suite',
          },
        ],
      },
    });
    await gw.gateway.authorizationServer?.accounts?.add({ username: 'carol', password: PASSWORD });
    outputDir = mkdtempSync(join(tmpdir(), 'gatehouse-conformance-'));
  });
  afterAll(async () => {
    await gw?.close();
    if (outputDir !== undefined) rmSync(outputDir, { recursive: true, force: true });
  });

  // req: RFC8414-2-REQUIRED-METADATA, MCP-AUTH-PKCE-ADVERTISED
  it('passes every check of the metadata and authorization-code-grant scenarios', async () => {
    const issuer = gw.gateway.urls.issuer;
    expect(issuer).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    const suite = startSuite([
      'authorization',
      '--url',
      issuer,
      '--client-id',
      'conformance',
      '--resource',
      gw.mcpUrl.href,
      '--port',
      String(port),
      '--output-dir',
      outputDir,
    ]);
    const { output, exited } = suite;
    try {
      const [, authorizeUrl] = await waitFor(
        /Access the following URL in your browser[^\n]*\n(\S+)/,
        output,
        exited,
        PRINTS_URL_WITHIN_MS,
      );
      const authorize = new URL(authorizeUrl as string);
      expect(authorize.origin + authorize.pathname).toBe(gw.gateway.authorizationServer?.urls.authorization);
      const { callback, pages } = await signIn(authorize, {
        username: 'carol',
        password: PASSWORD,
      });
      expect(pages).toEqual(['login', 'consent']);
      expect(callback.origin + callback.pathname).toBe(`http://127.0.0.1:${port}/callback`);
      expect(callback.searchParams.get('code')).toBeTruthy();
      expect(callback.searchParams.get('iss')).toBe(issuer);
      // The suite prints the URL before its callback server listens: deliver only once it does.
      await waitFor(
        new RegExp(`Callback server started: http://127\\.0\\.0\\.1:${port}`),
        output,
        exited,
        STEP_WITHIN_MS,
      );
      // The browser follows the redirect to the suite's callback server, which then redeems the code.
      const delivered = await fetch(callback);
      expect(delivered.status).toBe(200);

      const code = await withTimeout(
        exited,
        STEP_WITHIN_MS,
        () => `the suite did not exit within ${STEP_WITHIN_MS} ms:\n${output()}`,
      );
      expect(code, output()).toBe(0);
      expect(output()).toMatch(/Total: \d+ passed, 0 failed/);

      const checks = readChecks(outputDir, 'authorization-server');
      expect([...checks.keys()].sort()).toEqual([
        'authorization-code-grant',
        'authorization-server-metadata-endpoint',
      ]);
      const statuses = [...checks.values()]
        .flat()
        .map(({ id, status, errorMessage }) => ({ id, status, errorMessage }));
      // Every check SUCCESS, no WARNING tolerated: the only check that can warn,
      // `authorization-server-metadata-cimd`, passes because Gatehouse advertises
      // `client_id_metadata_document_supported: true` (the suite exits 0 on a warning, hence this).
      expect(statuses).toEqual([
        { id: 'authorization-code-grant', status: 'SUCCESS', errorMessage: undefined },
        { id: 'authorization-server-metadata', status: 'SUCCESS', errorMessage: undefined },
        { id: 'authorization-server-metadata-cimd', status: 'SUCCESS', errorMessage: undefined },
      ]);
    } finally {
      suite.kill();
    }
  }, 240_000);
});
