import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { configSchema, type GatehouseConfigInput } from '../../../src/config/schema.js';
import { runDoctor } from '../../../src/doctor/doctor.js';
import { freePort, serveLate } from '../../helpers/late-server.js';

const cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0)) await fn();
});

async function upstreamCheckOf(upstream: GatehouseConfigInput['upstream']) {
  const dataDir = mkdtempSync(join(tmpdir(), 'gatehouse-doctor-upstream-'));
  cleanup.push(() => rmSync(dataDir, { recursive: true, force: true }));
  const report = await runDoctor(configSchema.parse({ dataDir, upstream }));
  return report.checks.find((check) => check.id === 'upstream');
}

describe('gatehouse doctor checks the upstream as serve and /readyz do', () => {
  it('fails a stdio command that is not on the PATH, and passes one that is', async () => {
    expect(await upstreamCheckOf({ kind: 'stdio', command: 'gatehouse-test-no-such-command' })).toMatchObject(
      {
        status: 'fail',
        details: { reason: 'upstream_spawn_failed' },
      },
    );
    expect(await upstreamCheckOf({ kind: 'stdio', command: 'node' })).toMatchObject({ status: 'ok' });
  });

  it('fails an HTTP upstream nobody listens on, and passes one that answers (whatever the status)', async () => {
    expect(
      await upstreamCheckOf({ kind: 'http', url: `http://127.0.0.1:${await freePort()}/mcp` }),
    ).toMatchObject({
      status: 'fail',
      details: { reason: 'upstream_unreachable' },
    });
    const server = await serveLate();
    cleanup.push(() => server.close());
    server.setApp({ fetch: () => new Response(null, { status: 401 }) });
    expect(await upstreamCheckOf({ kind: 'http', url: `${server.publicUrl}/mcp` })).toMatchObject({
      status: 'ok',
    });
  });
});
