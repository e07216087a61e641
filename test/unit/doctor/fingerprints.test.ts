import { describe, expect, it } from 'vitest';
import { configSchema } from '../../../src/config/schema.js';
import { describeSecret } from '../../../src/crypto/fingerprint.js';
import { runDoctor } from '../../../src/doctor/doctor.js';

/*
 * `expectFingerprints` as an embedder passes it: whatever form the operator copied (`sha256:…`, bare
 * hex, a full sha256sum, upper case), normalised by runDoctor itself rather than only by the CLI.
 */

const SECRET = 'f3J9q2LxV8mZ0rT5wK7yB1nC4hD6sA9eG2uP8oQ3iX5';
const FINGERPRINT = describeSecret(SECRET).fingerprint;

const config = configSchema.parse({
  store: { kind: 'memory' },
  authorizationServer: { enabled: false },
  auth: { verifiers: [{ kind: 'hs256', name: 'supabase', secret: SECRET }] },
});

async function expectation(wanted: string) {
  const report = await runDoctor(config, { expectFingerprints: new Map([['supabase', wanted]]) });
  expect(JSON.stringify(report)).not.toContain(SECRET);
  return report.checks.find((check) => check.id === 'fingerprint:supabase');
}

describe('runDoctor: expected fingerprints', () => {
  it('accepts the fingerprint in the forms an operator copies it', async () => {
    const hex = FINGERPRINT.slice('sha256:'.length);
    for (const wanted of [FINGERPRINT, hex, hex.toUpperCase(), ` sha256:${hex} `]) {
      expect((await expectation(wanted))?.status, wanted).toBe('ok');
    }
  });

  it('fails a different fingerprint, naming both', async () => {
    const check = await expectation('sha256:0123456789ab');
    expect(check?.status).toBe('fail');
    expect(check?.details).toEqual({ configured: FINGERPRINT, expected: 'sha256:0123456789ab' });
  });

  it('fails something that is not a fingerprint instead of comparing it', async () => {
    const check = await expectation('not-a-fingerprint');
    expect(check).toMatchObject({ status: 'fail', details: { reason: 'bad_expectation' } });
  });
});
