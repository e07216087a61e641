import { readFileSync } from 'node:fs';
import type { z } from 'zod';
import {
  type ConfigPath,
  childSchemas,
  closestNames,
  coerceEnvValue,
  describeReadError,
  discriminatorKeys,
  expand,
  fileFieldPairs,
  jsonErrorLocation,
  knownKeys,
  readConfigEnv,
  type SchemaNode,
  trimFileContent,
} from './env.js';
import {
  type ConfigIssue,
  type ConfigIssueSource,
  configInvalidError,
  formatConfigPath,
} from './format-issues.js';
import { stripJsonc } from './jsonc.js';
import { configSchema, type GatehouseConfig, type GatehouseConfigInput } from './schema.js';

type DeepPartial<T> = T extends readonly unknown[]
  ? T
  : T extends object
    ? { [K in keyof T]?: DeepPartial<T[K]> }
    : T;

/** Config input with every field optional at every depth (arrays are given whole). */
export type ConfigOverrides = DeepPartial<GatehouseConfigInput>;

export interface LoadConfigOptions {
  /**
   * Path of a JSON config file (comments and trailing commas allowed, as `gatehouse init` writes it); when
   * absent, `env.GATEHOUSE_CONFIG` names it; when neither (or empty), no file.
   */
  file?: string;
  /**
   * Environment to read `GATEHOUSE_*` overrides and `*_FILE` secrets from. `NODE_ENV=production` means
   * `mode: production` unless a layer sets `mode` itself.
   */
  env: Readonly<Record<string, string | undefined>>;
  /** Highest-precedence overrides (from CLI flags), shaped like the config input. `undefined` fields are ignored. */
  overrides?: ConfigOverrides;
  /** Reads files (the config file, `*_FILE` secrets, `secretFile`). Default: `fs.readFileSync(path, 'utf8')`. */
  readFile?: (path: string) => string;
}

const ROOT: SchemaNode[] = expand([configSchema]);
const SECRET_LIKE = /(secret|password|passphrase|token|apikey|api_key|privatekey|private_key|credentials?)$/i;

type Container = Record<string, unknown> | unknown[];

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** Sets an own property even for keys such as `__proto__` (which plain assignment would treat as the prototype). */
function put(container: Container, key: string | number, value: unknown): void {
  if (Array.isArray(container) && typeof key === 'number') container[key] = value;
  else Object.defineProperty(container, key, { value, enumerable: true, writable: true, configurable: true });
}

function get(container: Container, key: string | number): unknown {
  return Object.hasOwn(container, key) ? (container as Record<string | number, unknown>)[key] : undefined;
}

function cloneData(value: unknown): unknown {
  if (Array.isArray(value)) {
    const copy: unknown[] = new Array(value.length);
    value.forEach((item, index) => {
      copy[index] = cloneData(item);
    });
    return copy;
  }
  if (isPlainObject(value)) {
    const copy: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) if (item !== undefined) put(copy, key, cloneData(item));
    return copy;
  }
  return value;
}

function getAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let node = root;
  for (const key of path) {
    if (typeof node !== 'object' || node === null || typeof key === 'symbol') return undefined;
    node = get(node as Container, key);
  }
  return node;
}

/** The merged input plus, for every node, the layer that last wrote it. */
class Layers {
  readonly root: Record<string, unknown> = {};
  private readonly sources = new Map<string, ConfigIssueSource>();

  /** Where the value at `path` came from: its own writer, else its nearest written ancestor, else the default. */
  sourceOf(path: readonly PropertyKey[]): ConfigIssueSource {
    for (let length = path.length; length > 0; length--) {
      const source = this.sources.get(formatConfigPath(path.slice(0, length)));
      if (source !== undefined) return source;
    }
    return 'default';
  }

  /** Deep-merges a layer: plain objects merge, anything else (arrays included) replaces. */
  mergeRoot(value: Record<string, unknown>, source: ConfigIssueSource): void {
    for (const [key, item] of Object.entries(value)) {
      this.merge(this.root, key, item, [key], source, childSchemas(ROOT, key));
    }
  }

  /** Sets one field (creating objects and arrays on the way), as an environment variable does. */
  set(path: ConfigPath, value: unknown, source: ConfigIssueSource): void {
    let parent: Container = this.root;
    let schemas = ROOT;
    for (let i = 0; i < path.length - 1; i++) {
      const key = path[i] as string | number;
      const wantArray = typeof path[i + 1] === 'number';
      schemas = childSchemas(schemas, key);
      let child = get(parent, key);
      if (wantArray ? !Array.isArray(child) : !isPlainObject(child)) {
        child = wantArray ? [] : {};
        this.forget(path.slice(0, i + 1));
        put(parent, key, child);
      }
      this.sources.set(formatConfigPath(path.slice(0, i + 1)), source);
      parent = child as Container;
    }
    const last = path.at(-1);
    if (last === undefined) return;
    if (typeof last === 'string' && !Array.isArray(parent) && discriminatorKeys(schemas).includes(last)) {
      this.dropOtherVariant(parent, path.slice(0, -1), last, value, source);
    }
    this.merge(parent, last, value, path, source, childSchemas(schemas, last));
  }

  /**
   * Switching a union's variant (`upstream.kind` from `stdio` to `http`) drops the fields lower layers set
   * for the old variant; fields this same layer set are kept.
   */
  private dropOtherVariant(
    parent: Record<string, unknown>,
    parentPath: ConfigPath,
    discriminator: string,
    value: unknown,
    source: ConfigIssueSource,
  ): void {
    const current = get(parent, discriminator);
    if (current === undefined || current === value) return;
    for (const key of Object.keys(parent)) {
      if (key === discriminator || this.sourceOf([...parentPath, key]) === source) continue;
      delete parent[key];
      this.forget([...parentPath, key]);
    }
  }

  private merge(
    parent: Container,
    key: string | number,
    value: unknown,
    path: ConfigPath,
    source: ConfigIssueSource,
    schemas: SchemaNode[],
  ): void {
    if (value === undefined) return;
    const existing = get(parent, key);
    if (isPlainObject(value) && isPlainObject(existing) && !variantChanged(schemas, existing, value)) {
      this.sources.set(formatConfigPath(path), source);
      for (const [childKey, item] of Object.entries(value)) {
        this.merge(existing, childKey, item, [...path, childKey], source, childSchemas(schemas, childKey));
      }
      return;
    }
    this.forget(path);
    put(parent, key, cloneData(value));
    this.record(path, value, source);
  }

  private record(path: ConfigPath, value: unknown, source: ConfigIssueSource): void {
    this.sources.set(formatConfigPath(path), source);
    if (Array.isArray(value)) {
      value.forEach((item, index) => {
        this.record([...path, index], item, source);
      });
    } else if (isPlainObject(value)) {
      for (const [key, item] of Object.entries(value)) {
        if (item !== undefined) this.record([...path, key], item, source);
      }
    }
  }

  private forget(path: ConfigPath): void {
    const prefix = formatConfigPath(path);
    for (const key of this.sources.keys()) {
      if (key === prefix || key.startsWith(`${prefix}.`) || key.startsWith(`${prefix}[`))
        this.sources.delete(key);
    }
  }
}

function variantChanged(
  schemas: SchemaNode[],
  existing: Record<string, unknown>,
  value: Record<string, unknown>,
) {
  return discriminatorKeys(schemas).some(
    (key) => value[key] !== undefined && existing[key] !== undefined && value[key] !== existing[key],
  );
}

/**
 * Replaces every `xFile` (where the schema has both `x` and `xFile`, such as a verifier's `secretFile`) by
 * `x` holding the file's content, so that after loading the secret itself is always populated.
 */
function resolveFileFields(
  schemas: SchemaNode[],
  value: unknown,
  path: ConfigPath,
  sourceOf: (path: ConfigPath) => ConfigIssueSource,
  readFile: (path: string) => string,
  issues: ConfigIssue[],
): unknown {
  if (Array.isArray(value)) {
    const copy: unknown[] = new Array(value.length);
    value.forEach((item, index) => {
      copy[index] = resolveFileFields(
        childSchemas(schemas, index),
        item,
        [...path, index],
        sourceOf,
        readFile,
        issues,
      );
    });
    return copy;
  }
  if (!isPlainObject(value)) return value;
  const copy: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) {
    if (item === undefined) continue;
    put(
      copy,
      key,
      resolveFileFields(childSchemas(schemas, key), item, [...path, key], sourceOf, readFile, issues),
    );
  }
  for (const [field, fileField] of fileFieldPairs(schemas)) {
    const file = copy[fileField];
    if (typeof file !== 'string') continue;
    const filePath = [...path, fileField];
    if (copy[field] !== undefined) {
      issues.push({
        path: formatConfigPath(filePath),
        source: sourceOf(filePath),
        message: `both ${field} and ${fileField} are set; set only one`,
      });
      delete copy[fileField];
      continue;
    }
    let content: string;
    try {
      content = trimFileContent(readFile(file));
    } catch (error) {
      issues.push({
        path: formatConfigPath(filePath),
        source: sourceOf(filePath),
        message: describeReadError(file, error),
      });
      continue;
    }
    const coerced = coerceEnvValue(childSchemas(schemas, field), content);
    if (!coerced.ok) {
      issues.push({
        path: formatConfigPath(filePath),
        source: sourceOf(filePath),
        message: `${coerced.message} (content of ${file})`,
      });
      continue;
    }
    put(copy, field, coerced.value);
    delete copy[fileField];
  }
  return copy;
}

function readConfigFile(
  file: string,
  readFile: (path: string) => string,
  issues: ConfigIssue[],
): Record<string, unknown> | undefined {
  const source: ConfigIssueSource = `file ${file}`;
  let text: string;
  try {
    text = readFile(file);
  } catch (error) {
    issues.push({ path: '', source, message: describeReadError(file, error) });
    return undefined;
  }
  // Comments and trailing commas become spaces: positions in a parse error stay those of the file.
  text = stripJsonc(text.replace(/^\uFEFF/, ''));
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    issues.push({ path: '', source, message: `${file} is not valid JSON${jsonErrorLocation(text)}` });
    return undefined;
  }
  if (!isPlainObject(parsed)) {
    issues.push({ path: '', source, message: `${file} must hold a JSON object` });
    return undefined;
  }
  return parsed;
}

type ZodIssue = z.core.$ZodIssue;
type Flat = { path: PropertyKey[]; message: string };

/** Expected types of a union whose every branch failed with one type mismatch on the value itself. */
function unionTypeMismatch(branches: ZodIssue[][]): string | undefined {
  const expected: string[] = [];
  let missing = false;
  for (const branch of branches) {
    const only = branch[0];
    if (branch.length !== 1 || only === undefined || only.code !== 'invalid_type' || only.path.length > 0)
      return;
    expected.push(only.expected);
    missing ||= /received undefined$/.test(only.message);
  }
  const list = [...new Set(expected)].join(' or ');
  return missing ? `required (expected ${list})` : `expected ${list}`;
}

/** The (expanded) schemas of the field at `path`. */
function schemasAt(path: readonly PropertyKey[]): SchemaNode[] {
  let schemas = ROOT;
  for (const key of path) {
    if (typeof key === 'symbol') return [];
    schemas = childSchemas(schemas, key);
  }
  return schemas;
}

/**
 * zod issues as one line per field: unknown keys one by one, `required` for missing fields, and a failed
 * union of objects narrowed to the branch whose literal (`kind`) matched.
 */
function flattenZodIssues(issues: readonly ZodIssue[], base: PropertyKey[] = []): Flat[] {
  const out: Flat[] = [];
  for (const issue of issues) {
    const path = [...base, ...issue.path];
    switch (issue.code) {
      case 'unrecognized_keys': {
        const known = knownKeys(schemasAt(path));
        for (const key of issue.keys) {
          const close = closestNames(key, known).map((name) => JSON.stringify(name));
          const hint = close.length > 0 ? `; did you mean ${close.join(' or ')}?` : '';
          out.push({ path: [...path, key], message: `unknown field${hint}` });
        }
        break;
      }
      case 'invalid_type':
        out.push({
          path,
          message: /received undefined$/.test(issue.message)
            ? `required (expected ${issue.expected})`
            : issue.message,
        });
        break;
      case 'invalid_union': {
        if (issue.errors.length === 0) {
          out.push({ path, message: issue.message });
          break;
        }
        const literalMismatch = (issue_: ZodIssue) =>
          issue_.code === 'invalid_value' && issue_.path.length === 1;
        const matching = issue.errors.filter((branch) => !branch.some(literalMismatch));
        const [only] = matching;
        if (matching.length === 1 && only !== undefined) {
          out.push(...flattenZodIssues(only, path));
          break;
        }
        if (matching.length === 0) {
          const first = issue.errors[0]?.find(literalMismatch);
          const key = first?.path[0];
          const values = issue.errors.flatMap((branch) =>
            branch.flatMap((i) =>
              literalMismatch(i) && i.path[0] === key && i.code === 'invalid_value' ? i.values : [],
            ),
          );
          if (key !== undefined) {
            const expected = values.map((v) => JSON.stringify(v)).join(' | ');
            out.push({ path: [...path, key], message: `expected one of ${expected}` });
            break;
          }
        }
        out.push({ path, message: unionTypeMismatch(issue.errors) ?? 'matches none of the allowed shapes' });
        break;
      }
      default:
        out.push({ path, message: issue.message });
    }
  }
  return out;
}

function holes(value: unknown, path: ConfigPath, out: ConfigPath[]): ConfigPath[] {
  if (Array.isArray(value)) {
    for (let index = 0; index < value.length; index++) {
      if (!(index in value)) out.push([...path, index]);
      else holes(value[index], [...path, index], out);
    }
  } else if (isPlainObject(value)) {
    for (const [key, item] of Object.entries(value)) holes(item, [...path, key], out);
  }
  return out;
}

/**
 * Loads the configuration: schema defaults < config file < `GATEHOUSE_*` environment < `overrides`, with
 * `NODE_ENV=production` meaning `mode: production` when no layer sets `mode`. Every `…File` field is read
 * here, so the result holds its secrets.
 * Plain objects merge deeply; arrays replace (an indexed variable such as `GATEHOUSE_AUTH__VERIFIERS__0__KIND`
 * patches one element). Every problem is collected and thrown as one `ERR_CONFIG_INVALID` whose
 * `details.issues` lists `{ path, source, message }`; no issue ever contains a secret value.
 *
 * @example
 * const config = loadConfig({ env: process.env, overrides: { server: { port: 9000 } } });
 */
export function loadConfig(options: LoadConfigOptions): GatehouseConfig {
  const readFile = options.readFile ?? ((path: string) => readFileSync(path, 'utf8'));
  const issues: ConfigIssue[] = [];
  const layers = new Layers();

  const configFile = options.file ?? (options.env.GATEHOUSE_CONFIG || undefined);
  if (configFile !== undefined) {
    const source: ConfigIssueSource = `file ${configFile}`;
    const parsed = readConfigFile(configFile, readFile, issues);
    if (parsed !== undefined) {
      const resolved = resolveFileFields(ROOT, parsed, [], () => source, readFile, issues);
      layers.mergeRoot(resolved as Record<string, unknown>, source);
    }
  }

  const env = readConfigEnv(options.env, { readFile, schema: configSchema });
  issues.push(...env.issues);
  for (const assignment of env.assignments) {
    const source: ConfigIssueSource = `env ${assignment.name}`;
    const value = resolveFileFields(
      assignment.schemas,
      assignment.value,
      assignment.path,
      () => source,
      readFile,
      issues,
    );
    layers.set(assignment.path, value, source);
  }

  if (options.overrides !== undefined) {
    const resolved = resolveFileFields(ROOT, options.overrides, [], () => 'flag', readFile, issues);
    layers.mergeRoot(resolved as Record<string, unknown>, 'flag');
  }

  // Node's convention for "this is a production deployment"; an explicit `mode` anywhere still wins.
  if (getAt(layers.root, ['mode']) === undefined && options.env.NODE_ENV === 'production') {
    layers.set(['mode'], 'production', 'env NODE_ENV');
  }

  // A `secretFile` that reached the merged input some other way (an env variable naming the `…File` field itself).
  const merged = resolveFileFields(ROOT, layers.root, [], (path) => layers.sourceOf(path), readFile, issues);

  const gaps = holes(merged, [], []);
  const gapPaths = gaps.map(formatConfigPath);
  for (const gap of gaps) {
    issues.push({
      path: formatConfigPath(gap),
      source: layers.sourceOf(gap),
      message: 'missing: a later index is set, but array indexes must run from 0 without gaps',
    });
  }

  const result = configSchema.safeParse(merged);
  if (!result.success) {
    for (const issue of flattenZodIssues(result.error.issues)) {
      const path = formatConfigPath(issue.path);
      if (gapPaths.includes(path)) continue;
      const value = getAt(merged, issue.path);
      const key = issue.path.at(-1);
      const hidden =
        typeof key === 'string' && SECRET_LIKE.test(key) && typeof value === 'string'
          ? ` (value hidden; ${value.length} characters)`
          : '';
      issues.push({ path, source: layers.sourceOf(issue.path), message: `${issue.message}${hidden}` });
    }
  }

  const unique = issues.filter(
    (issue, index) =>
      issues.findIndex((other) => other.path === issue.path && other.message === issue.message) === index,
  );
  if (unique.length > 0 || !result.success) throw configInvalidError(unique);
  return result.data;
}
