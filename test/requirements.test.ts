import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';

/**
 * The requirements list (`requirements/requirements.json`) against the tests that prove it. A test cites
 * the requirements it proves with a comment on the line(s) just above its `it(`/`test(` call:
 *
 *     // req: RFC7636-S256, MCP-AUTH-PKCE-REQUIRED
 *     it('refuses a wrong PKCE verifier', async () => { … });
 *
 * Every listed id must be cited by a test, every cited id must be listed, and no id may be listed twice.
 */

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const LIST = join(ROOT, 'requirements', 'requirements.json');

const ID = /^[A-Z][A-Z0-9]*(?:[-.][A-Z0-9]+)+$/;

const requirementSchema = z
  .object({
    id: z.string().regex(ID),
    source: z.string().min(1),
    section: z.string().min(1),
    text: z.string().min(20),
  })
  .strict();

const listSchema = z
  .object({ description: z.string(), requirements: z.array(requirementSchema).min(1) })
  .strict();

type Requirement = z.infer<typeof requirementSchema>;

/** A file that defines tests, as the scanner sees it. */
interface SourceFile {
  readonly path: string;
  readonly text: string;
}

interface Citation {
  readonly id: string;
  /** `path:line` of the `// req:` comment. */
  readonly at: string;
}

interface Findings {
  /** Listed ids no test cites. */
  readonly uncited: string[];
  /** Cited ids that are not listed (typos, removed requirements), with where. */
  readonly unknown: string[];
  /** Ids listed more than once. */
  readonly duplicated: string[];
  /** `// req:` comments that are malformed, or not just above an `it(`/`test(` call that runs. */
  readonly misplaced: string[];
}

const REQ_COMMENT = /^\s*\/\/\s*req:(.*)$/;
const COMMENT = /^\s*\/\//;
/** A test call that runs (or may, like `it.skipIf`): not `it.skip`, `it.todo` or `it.only`. */
const TEST_CALL = /^\s*(?:it|test)(?:\(|\.each\b|\.skipIf\(|\.runIf\(|\.sequential\b|\.concurrent\b)/;

/** Citations in `files`, and the `// req:` comments that cannot count as one. */
function scan(files: readonly SourceFile[]): { citations: Citation[]; misplaced: string[] } {
  const citations: Citation[] = [];
  const misplaced: string[] = [];
  for (const file of files) {
    const lines = file.text.split('\n');
    lines.forEach((line, index) => {
      const match = REQ_COMMENT.exec(line);
      if (match === null) return;
      const at = `${file.path}:${index + 1}`;
      const ids = (match[1] ?? '').split(',').map((id) => id.trim());
      let next = index + 1;
      while (next < lines.length && COMMENT.test(lines[next] ?? '')) next += 1;
      if (ids.some((id) => !ID.test(id))) {
        misplaced.push(`${at}: malformed id list "${match[1]?.trim()}"`);
      } else if (!TEST_CALL.test(lines[next] ?? '')) {
        misplaced.push(`${at}: not just above an it()/test() call`);
      } else {
        for (const id of ids) citations.push({ id, at });
      }
    });
  }
  return { citations, misplaced };
}

function check(requirements: readonly Requirement[], files: readonly SourceFile[]): Findings {
  const { citations, misplaced } = scan(files);
  const listed = requirements.map((requirement) => requirement.id);
  const cited = new Set(citations.map((citation) => citation.id));
  const known = new Set(listed);
  return {
    uncited: listed.filter((id) => !cited.has(id)),
    unknown: citations.filter(({ id }) => !known.has(id)).map(({ id, at }) => `${id} (${at})`),
    duplicated: [...new Set(listed.filter((id, index) => listed.indexOf(id) !== index))],
    misplaced,
  };
}

/** Every file under `test/` that defines tests: `*.test.ts`, and the shared `*.contract.ts` suites. */
function testFiles(): SourceFile[] {
  const dir = join(ROOT, 'test');
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((name) => name.endsWith('.test.ts') || name.endsWith('.contract.ts'))
    .sort()
    .map((name) => ({
      path: relative(ROOT, join(dir, name)),
      text: readFileSync(join(dir, name), 'utf8'),
    }));
}

describe('requirements list (requirements/requirements.json)', () => {
  const list = listSchema.parse(JSON.parse(readFileSync(LIST, 'utf8')));
  const files = testFiles();
  const findings = check(list.requirements, files);

  it('lists requirements with an id, a source, a section and the normative text', () => {
    expect(list.requirements.length).toBeGreaterThan(0);
  });

  it('lists every id once', () => {
    expect(findings.duplicated).toEqual([]);
  });

  it('has every listed requirement cited by at least one test', () => {
    expect(findings.uncited).toEqual([]);
  });

  it('has every cited id in the list', () => {
    expect(findings.unknown).toEqual([]);
  });

  it('has every citation just above the test it names', () => {
    expect(findings.misplaced).toEqual([]);
  });

  it('reads the test files it judges (a sample: the PKCE test cites RFC7636-S256)', () => {
    expect(files.some((file) => file.path === join('test', 'security', 'oauth-attacks.test.ts'))).toBe(true);
    expect(files.some((file) => file.path.endsWith('.contract.ts'))).toBe(true);
    expect(scan(files).citations.filter(({ id }) => id === 'RFC7636-S256').length).toBeGreaterThan(0);
  });
});

describe('the requirements check itself', () => {
  const requirement = (id: string): Requirement => ({
    id,
    source: 'RFC 0000',
    section: '1',
    text: 'The server MUST do the thing it is asked to do.',
  });
  const file = (...lines: string[]): SourceFile => ({ path: 'test/x.test.ts', text: lines.join('\n') });

  it('passes a list whose every id a test cites', () => {
    const findings = check(
      [requirement('RFC0000-1-A'), requirement('RFC0000-1-B')],
      [file('// req: RFC0000-1-A, RFC0000-1-B', "it('does the thing', () => {});")],
    );
    expect(findings).toEqual({ uncited: [], unknown: [], duplicated: [], misplaced: [] });
  });

  it('names a requirement no test cites', () => {
    const findings = check(
      [requirement('RFC0000-1-A'), requirement('RFC0000-1-B')],
      [file('// req: RFC0000-1-A', "it('does the thing', () => {});")],
    );
    expect(findings.uncited).toEqual(['RFC0000-1-B']);
  });

  it('names a cited id that is not listed, with where it is cited', () => {
    const findings = check(
      [requirement('RFC0000-1-A')],
      [file('// req: RFC0000-1-A, RFC0000-1-TYPO', "it('does the thing', () => {});")],
    );
    expect(findings.unknown).toEqual(['RFC0000-1-TYPO (test/x.test.ts:1)']);
  });

  it('names an id listed twice', () => {
    const findings = check(
      [requirement('RFC0000-1-A'), requirement('RFC0000-1-A')],
      [file('// req: RFC0000-1-A', "it('does the thing', () => {});")],
    );
    expect(findings.duplicated).toEqual(['RFC0000-1-A']);
  });

  it('does not count a citation that is not just above a test that runs', () => {
    const findings = check(
      [requirement('RFC0000-1-A'), requirement('RFC0000-1-B'), requirement('RFC0000-1-C')],
      [
        file(
          '// req: RFC0000-1-A',
          "describe('a group', () => {});",
          '// req: RFC0000-1-B',
          "it.skip('does the thing', () => {});",
          '// req: RFC0000-1-C',
          '// (a note between the citation and its test is fine)',
          "it.each([1])('does the thing %s', () => {});",
          '// req: rfc0000 lower case',
          "it('does the thing', () => {});",
        ),
      ],
    );
    expect(findings.uncited).toEqual(['RFC0000-1-A', 'RFC0000-1-B']);
    expect(findings.misplaced).toEqual([
      'test/x.test.ts:1: not just above an it()/test() call',
      'test/x.test.ts:3: not just above an it()/test() call',
      'test/x.test.ts:8: malformed id list "rfc0000 lower case"',
    ]);
  });
});
