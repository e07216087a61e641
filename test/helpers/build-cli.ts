import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/**
 * Vitest global setup: compiles `src/` to `dist/` once (what `npm run build` and the published package
 * run), so every test that spawns the `gatehouse` binary runs the real compiled program — without paying
 * the TypeScript loader's start-up on each of the hundreds of CLI and server processes the suite starts.
 */
export default function setup(): void {
  const root = fileURLToPath(new URL('../..', import.meta.url));
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  execFileSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { cwd: root, stdio: 'inherit' });
}
