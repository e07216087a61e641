import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { configSchema } from '../../../src/config/schema.js';
import { describeSecret } from '../../../src/crypto/fingerprint.js';
import { runDoctor } from '../../../src/doctor/doctor.js';

const SECRET = 'm8Kq2Vx7Lr4Tz9Wn3Pb6Yc1Hd5Fg0Sj8Ae2Uo7Ri4Q';
const OTHER = 'Q4iR7oU2eA8jS0gF5dH1cY6bP3nW9zT4rL7xV2qK8m';

const cleanup: Array<() => void> = [];
afterEach(() => {
  for (const fn of cleanup.splice(0)) fn();
});

function config(secret: string) {
  const dataDir = mkdtempSync(join(tmpdir(), 'gatehouse-doctor-supabase-'));
  cleanup.push(() => rmSync(dataDir, { recursive: true, force: true }));
  return configSchema.parse({
    dataDir,
    store: { kind: 'memory' },
    downstream: { supabase: { issuer: 'https://ref.supabase.co/auth/v1', secret } },
  });
}

describe('gatehouse doctor: the Supabase minting secret', () => {
  it('names it by length and fingerprint, never by value', async () => {
    const report = await runDoctor(config(SECRET));
    const check = report.checks.find((c) => c.id === 'downstream:supabase');
    const { length, fingerprint } = describeSecret(SECRET);
    expect(check).toMatchObject({ status: 'ok' });
    expect(check?.summary).toContain(`${length} bytes, ${fingerprint}`);
    expect(JSON.stringify(report)).not.toContain(SECRET);
  });

  it('fails an expected fingerprint of another project’s secret, naming both', async () => {
    const expected = describeSecret(OTHER).fingerprint;
    const report = await runDoctor(config(SECRET), {
      expectFingerprints: new Map([['downstream.supabase', expected]]),
    });
    expect(report.ok).toBe(false);
    const mismatch = report.checks.find((c) => c.status === 'fail');
    expect(mismatch?.summary).toContain(describeSecret(SECRET).fingerprint);
    expect(mismatch?.summary).toContain(expected);
    const matching = await runDoctor(config(SECRET), {
      expectFingerprints: new Map([['downstream.supabase', describeSecret(SECRET).fingerprint]]),
    });
    expect(matching.ok).toBe(true);
    expect(JSON.stringify([report, matching])).not.toContain(SECRET);
  });

  it('warns about a published development secret', async () => {
    const report = await runDoctor(config('super-secret-jwt-token-with-at-least-32-characters-long'));
    const check = report.checks.find((c) => c.id === 'downstream:supabase');
    expect(check).toMatchObject({ status: 'warn' });
    expect(check?.summary).toContain('published development secret');
  });
});
