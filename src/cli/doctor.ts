import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import type { ConfigIssue } from '../config/format-issues.js';
import type { DoctorCheck, DoctorReport } from '../doctor/doctor.js';
import { isGatehouseError } from '../errors/gatehouse-error.js';
import { addConfigFlags, type CliConfigFlags, loadCliConfig } from './config-flags.js';

interface DoctorFlags extends CliConfigFlags {
  token?: string;
  tokenFile?: string;
  expectFingerprint: string[];
  json?: boolean;
}

const collect = (value: string, previous: string[]) => [...previous, value];

/** Exit codes: 0 no check failed, 1 a check failed, 2 usage or configuration error. */
export function registerDoctor(program: Command): void {
  addConfigFlags(
    program
      .command('doctor')
      .description(
        'check configuration, store, keys, verifiers (JWKS, issuer metadata, clock skew) and optionally a token; secrets appear only as length and fingerprint',
      ),
    { upstream: true },
  )
    .option(
      '--token <jwt>',
      'a token to decode and verify (prefer --token-file: arguments show in the process list)',
    )
    .option('--token-file <file>', 'read the token from a file ("-" for stdin)')
    .option(
      '--expect-fingerprint <name=fingerprint>',
      'compare a verifier’s (or secretKey’s) fingerprint with the other deployment’s; repeatable',
      collect,
      [],
    )
    .option('--json', 'machine-readable output')
    .action(async (flags: DoctorFlags) => {
      const usage = (message: string) => {
        process.stderr.write(`gatehouse doctor: ${message}\n`);
        process.exitCode = 2;
      };
      if (flags.token !== undefined && flags.tokenFile !== undefined) {
        usage('use either --token or --token-file, not both');
        return;
      }
      const { parseFingerprint, runDoctor } = await import('../doctor/doctor.js');
      const expectFingerprints = new Map<string, string>();
      for (const entry of flags.expectFingerprint) {
        const at = entry.indexOf('=');
        const fingerprint = at > 0 ? parseFingerprint(entry.slice(at + 1)) : undefined;
        if (fingerprint === undefined) {
          usage(
            `--expect-fingerprint wants <name>=sha256:<hex>, got "${entry.slice(0, at > 0 ? at : 40)}=…"`,
          );
          return;
        }
        expectFingerprints.set(entry.slice(0, at), fingerprint);
      }
      let token: string | undefined = flags.token?.trim();
      if (flags.tokenFile !== undefined) {
        try {
          token = readFileSync(flags.tokenFile === '-' ? 0 : flags.tokenFile, 'utf8').trim();
        } catch (error) {
          const code = (error as { code?: unknown }).code;
          usage(`cannot read ${flags.tokenFile}${typeof code === 'string' ? ` (${code})` : ''}`);
          return;
        }
      }

      let report: DoctorReport;
      try {
        const config = loadCliConfig(flags);
        report = await runDoctor(config, { token, expectFingerprints, env: process.env });
      } catch (error) {
        if (!isGatehouseError(error, 'ERR_CONFIG_INVALID')) throw error;
        const issues = (error.details?.issues as ConfigIssue[] | undefined) ?? [];
        const check: DoctorCheck = {
          id: 'config',
          status: 'fail',
          summary:
            issues.length > 0
              ? `invalid configuration (${issues.length} problem${issues.length === 1 ? '' : 's'})`
              : error.message,
          details: { issues },
          hints: issues.map((issue) => `${issue.path || '(root)'}: ${issue.message} (${issue.source})`),
        };
        print({ ok: false, mode: undefined, checks: [check] }, flags.json === true);
        process.exitCode = 2;
        return;
      }
      print(report, flags.json === true);
      process.exitCode = report.ok ? 0 : 1;
    });
}

const LABEL = { ok: 'ok  ', warn: 'WARN', fail: 'FAIL' } as const;

function print(report: DoctorReport, json: boolean): void {
  if (json) {
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    return;
  }
  const width = Math.max(...report.checks.map((check) => check.id.length));
  const lines = [report.mode === undefined ? 'gatehouse doctor' : `gatehouse doctor (mode ${report.mode})`];
  for (const check of report.checks) {
    lines.push(`  ${LABEL[check.status]}  ${check.id.padEnd(width)}  ${check.summary}`);
    for (const hint of check.hints ?? []) lines.push(`        ${' '.repeat(width)}  → ${hint}`);
  }
  const count = (status: DoctorCheck['status']) =>
    report.checks.filter((check) => check.status === status).length;
  lines.push(`${count('fail')} failed, ${count('warn')} warning(s), ${count('ok')} ok`);
  process.stdout.write(`${lines.join('\n')}\n`);
}
