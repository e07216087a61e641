import { GatehouseError, isGatehouseError } from '../errors/gatehouse-error.js';

/** Where a configuration value came from, lowest precedence first. */
export type ConfigIssueSource = 'default' | `file ${string}` | `env ${string}` | 'flag';

/** One problem found while loading the configuration. Never carries a secret value. */
export interface ConfigIssue {
  /** Dotted path of the field, with array indexes in brackets (`auth.verifiers[0].secret`); `''` for the whole configuration. */
  path: string;
  /** The layer that supplied the offending value (`env GATEHOUSE_SERVER__PORT`, `file gatehouse.json`, `flag`, `default`). */
  source: ConfigIssueSource;
  message: string;
}

/** Renders a path as `auth.verifiers[0].secret`. */
export function formatConfigPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const segment of path) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else out += out === '' ? String(segment) : `.${String(segment)}`;
  }
  return out;
}

function renderIssues(issues: readonly ConfigIssue[]): string {
  const header = `Invalid configuration (${issues.length} ${issues.length === 1 ? 'problem' : 'problems'}):`;
  const lines = issues.map(
    (issue) => `${issue.path === '' ? '(root)' : issue.path}: ${issue.message} (${issue.source})`,
  );
  return [header, ...lines].join('\n');
}

/** The one error a failed load throws: `ERR_CONFIG_INVALID` with every issue in `details.issues`. */
export function configInvalidError(issues: readonly ConfigIssue[]): GatehouseError {
  return new GatehouseError('ERR_CONFIG_INVALID', renderIssues(issues), { details: { issues: [...issues] } });
}

/**
 * Text for the CLI to print when start-up fails: for `ERR_CONFIG_INVALID`, a header and one line per issue
 * (`path: message (source)`); for any other error, its message.
 *
 * @example
 * try {
 *   loadConfig({ env: process.env });
 * } catch (error) {
 *   console.error(formatConfigIssues(error));
 *   process.exitCode = 1;
 * }
 */
export function formatConfigIssues(error: unknown): string {
  if (isGatehouseError(error, 'ERR_CONFIG_INVALID')) {
    const issues = error.details?.issues;
    if (Array.isArray(issues)) return renderIssues(issues as ConfigIssue[]);
    return error.message;
  }
  return error instanceof Error ? error.message : String(error);
}
