import { describe, expect, it } from 'vitest';
import {
  closestNames,
  envSegment,
  isNonConfigEnvName,
  jsonErrorLocation,
  listConfigEnvVariables,
  NON_CONFIG_ENV_NAMES,
  readConfigEnv,
  resolveEnvName,
} from '../../../src/config/env.js';
import { formatConfigPath } from '../../../src/config/format-issues.js';

const noFiles = (path: string): string => {
  throw new Error(`unexpected read of ${path}`);
};

describe('config environment mapping', () => {
  it('writes camelCase keys as UPPER_SNAKE_CASE segments', () => {
    expect(envSegment('idleTimeoutMs')).toBe('IDLE_TIMEOUT_MS');
    expect(envSegment('jwksUrl')).toBe('JWKS_URL');
    expect(envSegment('dataDir')).toBe('DATA_DIR');
    expect(envSegment('mode')).toBe('MODE');
  });

  it('lists documented variables that each resolve back to their path', () => {
    const variables = listConfigEnvVariables();
    expect(variables).toContainEqual({ name: 'GATEHOUSE_SERVER__PORT', path: 'server.port', type: 'number' });
    expect(variables.map((variable) => variable.name)).toContain('GATEHOUSE_AUTH__VERIFIERS__<N>__KIND');
    for (const variable of variables) {
      const concrete = variable.name.replaceAll('<N>', '0').replaceAll('<KEY>', 'SOME_KEY');
      const resolved = resolveEnvName(concrete);
      expect(resolved.ok, concrete).toBe(true);
      expect(formatConfigPath(resolved.path)).toBe(
        variable.path.replaceAll('<n>', '0').replaceAll('<key>', 'SOME_KEY'),
      );
    }
  });

  it('keeps the allow-list of non-config variables clear of every config variable', () => {
    for (const variable of listConfigEnvVariables()) {
      const concrete = variable.name.replaceAll('<N>', '0').replaceAll('<KEY>', 'SOME_KEY');
      expect(isNonConfigEnvName(concrete), concrete).toBe(false);
    }
    for (const name of NON_CONFIG_ENV_NAMES) expect(resolveEnvName(name).ok, name).toBe(false);
  });

  it('returns assignments shallow paths first, with numeric indexes in numeric order', () => {
    const { assignments, issues } = readConfigEnv(
      {
        GATEHOUSE_AUTH__REQUIRED_SCOPES__10: 'k',
        GATEHOUSE_AUTH__REQUIRED_SCOPES__2: 'c',
        GATEHOUSE_AUTH__REQUIRED_SCOPES: '["a"]',
      },
      { readFile: noFiles },
    );
    expect(issues).toEqual([]);
    expect(assignments.map((assignment) => formatConfigPath(assignment.path))).toEqual([
      'auth.requiredScopes',
      'auth.requiredScopes[2]',
      'auth.requiredScopes[10]',
    ]);
  });

  it('reports a malformed name', () => {
    const { issues } = readConfigEnv(
      { GATEHOUSE_SERVER____PORT: '1', GATEHOUSE_: 'x' },
      { readFile: noFiles },
    );
    expect(issues.map((issue) => issue.source)).toEqual(['env GATEHOUSE_', 'env GATEHOUSE_SERVER____PORT']);
  });

  it('locates a JSON syntax error by line and column, agreeing with JSON.parse on what is valid', () => {
    const samples = [
      '{"a":1}',
      '[1, "x\\u00e9", {"b": [true, null, -1.5e3]}]',
      '{"a": 1,}',
      '[1 2]',
      '"abc',
      '01',
      '[1,]',
    ];
    for (const sample of samples) {
      let valid = true;
      try {
        JSON.parse(sample);
      } catch {
        valid = false;
      }
      expect(jsonErrorLocation(sample) === '', sample).toBe(valid);
    }
    expect(jsonErrorLocation('{\n  "a": 1\n  "b": 2\n}')).toBe(' (line 3, column 3)');
    expect(jsonErrorLocation('{"a"')).toBe(' (unexpected end)');
  });
});

describe('closestNames', () => {
  it('offers the nearest names only, counting a swap of two letters once and ignoring case', () => {
    expect(closestNames('upstrem', ['upstream', 'auth', 'server'])).toEqual(['upstream']);
    expect(closestNames('prot', ['host', 'port', 'publicUrl'])).toEqual(['port']);
    expect(closestNames('DataDir', ['dataDir', 'mode'])).toEqual(['dataDir']);
    expect(closestNames('completelyUnrelated', ['host', 'port'])).toEqual([]);
    expect(closestNames('ab', ['kind'])).toEqual([]);
  });
});
