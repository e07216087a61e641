import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { freePort } from '../helpers/late-server.js';
import { connectClient, text } from '../helpers/mcp.js';
import { eventually } from '../helpers/wait.js';

const HTTP_MAIN = fileURLToPath(new URL('../../src/demo/http-main.ts', import.meta.url));
const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** The `NAME=value` assignments of the setup the file's opening comment tells a reader to run. */
function documentedEnvironment(): Record<string, string> {
  const comment = /^\/\*\*([\s\S]*?)\*\//.exec(readFileSync(HTTP_MAIN, 'utf8'))?.[1] ?? '';
  return Object.fromEntries(
    [...comment.matchAll(/^\s*\*\s+(GATEHOUSE_DEMO_[A-Z_]+)=(\S+)/gm)].map((m) => [
      m[1] as string,
      m[2] as string,
    ]),
  );
}

describe('the bundled HTTP demo, set up exactly as its opening comment says', () => {
  let gw: TestGateway | undefined;
  let child: ChildProcess | undefined;
  afterEach(async () => {
    child?.kill();
    await gw?.close();
  });

  it('serves whoami through the gateway (the documented issuer matches the one Gatehouse signs with)', async () => {
    const documented = documentedEnvironment();
    expect(Object.keys(documented).length).toBeGreaterThan(0);
    // The documented ports are 8787 (gateway) and 8788 (demo); the test uses free ones in their place.
    const [gatewayPort, demoPort] = [await freePort(), await freePort()];
    const env = Object.fromEntries(
      Object.entries(documented).map(([name, value]) => [
        name,
        value
          .replaceAll(':8787', `:${gatewayPort}`)
          .replace(/^8788$/, String(demoPort))
          .replaceAll(':8788', `:${demoPort}`),
      ]),
    );
    gw = await startTestGateway({
      store: { kind: 'memory' },
      server: { port: gatewayPort },
      upstream: { kind: 'http', url: `http://127.0.0.1:${demoPort}/mcp` },
    });
    const spawned = spawn(process.execPath, ['--import', 'tsx', HTTP_MAIN], {
      cwd: REPO_ROOT,
      env: { PATH: process.env.PATH ?? '', GATEHOUSE_DEMO_LOG_LEVEL: 'warn', ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    child = spawned;
    await eventually(() => probe(demoPort), 20_000);

    const { client } = await connectClient(gw.mcpUrl, await gw.token('alice'));
    const result = await client.callTool({ name: 'whoami', arguments: {} });
    expect(result.isError).not.toBe(true);
    expect(JSON.parse(text(result)).userId).toBe('alice');
    await client.close();
  });
});

async function probe(port: number): Promise<boolean> {
  return fetch(`http://127.0.0.1:${port}/mcp`, { method: 'HEAD' }).then(
    () => true,
    () => false,
  );
}
