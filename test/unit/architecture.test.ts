import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const SRC = fileURLToPath(new URL('../../src/', import.meta.url));

/**
 * The floors of ARCHITECTURE.md: a folder may import from its own floor or lower, never higher. Keep this
 * table and that page in step.
 */
const FLOORS: Readonly<Record<string, number>> = {
  config: 0,
  errors: 0,
  crypto: 0,
  net: 0,
  stores: 1,
  ops: 2,
  identity: 3,
  demo: 3,
  tokens: 4,
  guard: 5,
  sessions: 5,
  downstream: 5,
  bridge: 6,
  transports: 7,
  oauth: 7,
  diagnostics: 7,
  admin: 7,
  doctor: 8,
  edge: 9,
  library: 10,
  cli: 11,
  'index.ts': 11,
};

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sources(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

/** The top-level room of a file under `src/`: its first folder, or the file itself at the root. */
function roomOf(file: string): string {
  return relative(SRC, file).split(sep)[0] as string;
}

/** Every relative module a file imports, statically or with `import()`. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const found = [
    ...text.matchAll(/^\s*(?:import|export)\s[^;]*?from\s+'(\.[^']+)'/gms),
    ...text.matchAll(/\bimport\(\s*'(\.[^']+)'\s*\)/g),
  ];
  return found.map((match) => resolve(dirname(file), match[1] as string));
}

describe('layering (ARCHITECTURE.md)', () => {
  const files = sources(SRC);

  it('knows the floor of every room under src/', () => {
    const rooms = [...new Set(files.map(roomOf))].sort();
    expect(rooms.filter((room) => FLOORS[room] === undefined)).toEqual([]);
  });

  it('no import runs back up: every import is from the same floor or a lower one', () => {
    const upward: string[] = [];
    for (const file of files) {
      const from = roomOf(file);
      for (const target of importsOf(file)) {
        const to = roomOf(target);
        if ((FLOORS[to] ?? -1) > (FLOORS[from] ?? -1)) {
          upward.push(`${relative(SRC, file)} -> ${relative(SRC, target)}`);
        }
      }
    }
    expect(upward).toEqual([]);
  });

  it('sees the imports it judges (a sample: the edge imports the bridge)', () => {
    const gateway = files.find((file) => file.endsWith(join('edge', 'gateway.ts'))) as string;
    expect(importsOf(gateway).some((target) => roomOf(target) === 'bridge')).toBe(true);
  });
});
