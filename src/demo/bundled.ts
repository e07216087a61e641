import { createRequire } from 'node:module';
import { dirname, extname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { type StdioUpstreamConfig, stdioUpstreamSchema } from '../config/schema.js';

/**
 * The bundled demo notes server as a stdio upstream, run with the same Node as the gateway. From the
 * TypeScript sources (tests, `tsx`) it runs through the `tsx` loader; from `dist/` it runs directly.
 */
export function bundledDemoUpstream(env: Record<string, string> = {}): StdioUpstreamConfig {
  const here = fileURLToPath(import.meta.url);
  const extension = extname(here);
  const entry = join(dirname(here), `stdio-main${extension}`);
  // Resolved here, not by the child, so it works whatever the working directory.
  const loader = () => pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
  const args = extension === '.ts' ? ['--import', loader(), entry] : [entry];
  return stdioUpstreamSchema.parse({ kind: 'stdio', command: process.execPath, args, env });
}
