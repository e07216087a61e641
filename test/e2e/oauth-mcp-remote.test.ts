import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { signIn } from '../helpers/oauth.js';

const PASSWORD = 'mcp-remote passphrase 42';
const CLIENT = createRequire(import.meta.url).resolve('mcp-remote/dist/client.js');

/**
 * `mcp-remote-client` (the CLI behind `npx mcp-remote`, which Claude Desktop and others use to reach
 * remote servers) completes the flow on its own: discovery, dynamic registration, PKCE, its loopback
 * callback, token, then `tools/list`. The test plays the user: it reads the URL the client prints,
 * signs in through the form and lets the browser redirect land on the client's callback.
 */
/** Resolves once `done()` holds; rejects if the child exits first. */
async function until(
  done: () => boolean,
  exited: Promise<number | null>,
  output: () => string,
): Promise<void> {
  let exitedEarly = false;
  void exited.then(() => {
    exitedEarly = true;
  });
  while (!done()) {
    if (exitedEarly) throw new Error(`mcp-remote-client exited early:\n${output()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('mcp-remote-client against the gateway', () => {
  let gw: TestGateway;
  let home: string;

  beforeAll(async () => {
    gw = await startTestGateway();
    await gw.gateway.authorizationServer?.accounts?.add({ username: 'dave', password: PASSWORD });
    home = mkdtempSync(join(tmpdir(), 'gatehouse-mcp-remote-'));
  });
  afterAll(async () => {
    await gw?.close();
    rmSync(home, { recursive: true, force: true });
  });

  it('signs in, receives tokens on its callback and lists the tools', async () => {
    const child = spawn(process.execPath, [CLIENT, gw.mcpUrl.href, '0'], {
      env: {
        PATH: '/nonexistent', // no browser opener: the test is the browser
        HOME: home,
        MCP_REMOTE_CONFIG_DIR: join(home, '.mcp-auth'),
      },
      // stdin stays open: the client treats its end as the user quitting.
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let output = '';
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    const killer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    try {
      const authorizeUrl = await new Promise<string>((resolve, reject) => {
        const onData = (chunk: Buffer) => {
          output += chunk.toString();
          const match = /Please authorize this client by visiting:\s+(\S+)/.exec(output);
          if (match?.[1] !== undefined) resolve(match[1]);
        };
        child.stdout.on('data', onData);
        child.stderr.on('data', onData);
        void exited.then((code) =>
          reject(new Error(`mcp-remote-client exited (${code}) before authorizing:\n${output}`)),
        );
      });
      const { callback } = await signIn(authorizeUrl, { username: 'dave', password: PASSWORD });
      expect(callback.searchParams.get('code')).toBeTruthy();
      expect(callback.searchParams.get('iss')).toBe(gw.gateway.urls.issuer);
      // The browser follows the redirect to the client's loopback callback server.
      const delivered = await fetch(callback);
      expect(delivered.status).toBe(200);
      // The authenticated tools/list answer, as the client logs it on arrival. (mcp-remote-client 0.1.x
      // replaces the transport's message handler after connecting, so its own request then waits for its
      // 60 s timeout; the answer it logs is the proof the whole flow worked, and the test stops there.)
      await until(
        () => /"name": "whoami"/.test(output),
        exited,
        () => output,
      );
      expect(output).toContain('Connected successfully!');
    } finally {
      clearTimeout(killer);
      child.kill();
    }
  }, 90_000);
});
