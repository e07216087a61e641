import { z } from 'zod';
import { type ConfigIssue, formatConfigPath } from './format-issues.js';
import { configSchema } from './schema.js';

/**
 * How `GATEHOUSE_*` environment variables map onto the config schema. The mapping is derived by walking
 * the zod schema, so a field added to the schema is settable from the environment with no code here.
 *
 * - Name: `GATEHOUSE_` + path segments joined by `__`; an object key is written in UPPER_SNAKE_CASE
 *   (`idleTimeoutMs` → `IDLE_TIMEOUT_MS`), an array element by its index (`VERIFIERS__0__KIND`), a record
 *   entry by its key verbatim (`UPSTREAM__ENV__NODE_ENV`). Unions offer the fields of every option.
 * - Value: coerced to the field's type: number (decimal), boolean (`true`/`false`/`1`/`0`), enum and
 *   string as is, arrays/objects/records as JSON.
 * - `X_FILE` sets field `X` from the content of the named file (trailing newlines trimmed).
 */

/** A schema node, as the walk sees it. */
export type SchemaNode = z.core.$ZodType;
/** A path into the configuration: object keys and array indexes. */
export type ConfigPath = (string | number)[];

export const CONFIG_ENV_PREFIX = 'GATEHOUSE_';

/**
 * `GATEHOUSE_*` variables that are not configuration fields and are therefore never reported as unknown:
 * the config file location and the identity variables Gatehouse sets for its stdio children (so a
 * gateway running under another gateway, or a shell that exported them, still starts).
 */
export const NON_CONFIG_ENV_NAMES: readonly string[] = [
  'GATEHOUSE_CONFIG',
  'GATEHOUSE_USER_ID',
  'GATEHOUSE_USER_EMAIL',
  'GATEHOUSE_SCOPES',
  'GATEHOUSE_ISSUER',
  'GATEHOUSE_SESSION_ID',
];

/** Prefixes reserved for tests and the demo; variables under them are never configuration. */
export const NON_CONFIG_ENV_PREFIXES: readonly string[] = ['GATEHOUSE_TEST_', 'GATEHOUSE_DEMO_'];

export function isNonConfigEnvName(name: string): boolean {
  return (
    NON_CONFIG_ENV_NAMES.includes(name) || NON_CONFIG_ENV_PREFIXES.some((prefix) => name.startsWith(prefix))
  );
}

/** `idleTimeoutMs` → `IDLE_TIMEOUT_MS`. */
export function envSegment(key: string): string {
  return key
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/([A-Z]+)([A-Z][a-z])/g, '$1_$2')
    .toUpperCase();
}

type Def = z.core.$ZodTypeDef;

function defOf(schema: SchemaNode): Def {
  return schema._zod.def;
}

/** Strips wrappers (optional, default, pipe, lazy, …) and flattens unions and intersections. */
export function expand(schemas: readonly SchemaNode[]): SchemaNode[] {
  const out: SchemaNode[] = [];
  const visit = (schema: SchemaNode, depth: number): void => {
    if (depth > 32) return;
    const def = defOf(schema);
    switch (def.type) {
      case 'optional':
      case 'nullable':
      case 'default':
      case 'prefault':
      case 'readonly':
      case 'catch':
      case 'nonoptional':
        visit((def as z.core.$ZodOptionalDef).innerType, depth + 1);
        return;
      case 'pipe': {
        const pipe = def as z.core.$ZodPipeDef;
        visit(defOf(pipe.in).type === 'transform' ? pipe.out : pipe.in, depth + 1);
        return;
      }
      case 'lazy':
        visit((def as z.core.$ZodLazyDef).getter(), depth + 1);
        return;
      case 'union':
        for (const option of (def as z.core.$ZodUnionDef).options) visit(option, depth + 1);
        return;
      case 'intersection': {
        const intersection = def as z.core.$ZodIntersectionDef;
        visit(intersection.left, depth + 1);
        visit(intersection.right, depth + 1);
        return;
      }
      default:
        if (!out.includes(schema)) out.push(schema);
    }
  };
  for (const schema of schemas) visit(schema, 0);
  return out;
}

function shapeOf(schema: SchemaNode): Readonly<Record<string, SchemaNode>> | undefined {
  const def = defOf(schema);
  return def.type === 'object' ? (def as z.core.$ZodObjectDef).shape : undefined;
}

function isIndex(segment: string): boolean {
  return /^(0|[1-9][0-9]*)$/.test(segment);
}

/** The (expanded) schemas of `key` under any of `schemas`. */
export function childSchemas(schemas: readonly SchemaNode[], key: string | number): SchemaNode[] {
  const children: SchemaNode[] = [];
  for (const schema of schemas) {
    const def = defOf(schema);
    if (def.type === 'object' && typeof key === 'string') {
      const shape = (def as z.core.$ZodObjectDef).shape;
      const child = Object.hasOwn(shape, key) ? shape[key] : undefined;
      if (child !== undefined) children.push(child);
    } else if (def.type === 'array' && typeof key === 'number') {
      children.push((def as z.core.$ZodArrayDef).element);
    } else if (def.type === 'tuple' && typeof key === 'number') {
      const tuple = def as z.core.$ZodTupleDef;
      const item = tuple.items[key] ?? tuple.rest;
      if (item) children.push(item);
    } else if (def.type === 'record' && typeof key === 'string') {
      children.push((def as z.core.$ZodRecordDef).valueType);
    }
  }
  return expand(children);
}

/** Keys holding a literal in every object option of a union of two or more objects (`kind`). */
export function discriminatorKeys(schemas: readonly SchemaNode[]): string[] {
  const shapes = schemas.map(shapeOf).filter((shape) => shape !== undefined);
  const first = shapes[0];
  if (shapes.length < 2 || first === undefined) return [];
  return Object.keys(first).filter((key) =>
    shapes.every((shape) => {
      const child = shape[key];
      return child !== undefined && expand([child]).every((node) => defOf(node).type === 'literal');
    }),
  );
}

/** Pairs `[field, fieldFile]` where an object option has both (`secret` / `secretFile`). */
export function fileFieldPairs(schemas: readonly SchemaNode[]): [string, string][] {
  const pairs: [string, string][] = [];
  for (const shape of schemas.map(shapeOf)) {
    if (shape === undefined) continue;
    for (const key of Object.keys(shape)) {
      const fileKey = `${key}File`;
      if (Object.hasOwn(shape, fileKey) && !pairs.some(([field]) => field === key))
        pairs.push([key, fileKey]);
    }
  }
  return pairs;
}

type Kind = 'json' | 'number' | 'bigint' | 'boolean' | 'null' | 'string';
const KIND_ORDER: readonly Kind[] = ['json', 'number', 'bigint', 'boolean', 'null', 'string'];

function kindOf(schema: SchemaNode): Kind {
  const def = defOf(schema);
  switch (def.type) {
    case 'object':
    case 'array':
    case 'tuple':
    case 'record':
    case 'map':
    case 'set':
      return 'json';
    case 'number':
    case 'int':
    case 'nan':
      return 'number';
    case 'bigint':
      return 'bigint';
    case 'boolean':
      return 'boolean';
    case 'null':
      return 'null';
    case 'literal': {
      const value = (def as z.core.$ZodLiteralDef<z.core.util.Literal>).values[0];
      if (typeof value === 'number') return 'number';
      if (typeof value === 'boolean') return 'boolean';
      if (typeof value === 'bigint') return 'bigint';
      if (value === null) return 'null';
      return 'string';
    }
    case 'enum': {
      const values = Object.values((def as z.core.$ZodEnumDef).entries);
      return values.length > 0 && values.every((value) => typeof value === 'number') ? 'number' : 'string';
    }
    default:
      return 'string';
  }
}

type Coerced = { ok: true; value: unknown } | { ok: false; message: string };

/** Offset of the first JSON syntax error in `text`, or `undefined` when it is valid JSON. */
function jsonErrorOffset(text: string): number | undefined {
  let i = 0;
  const space = () => {
    while (i < text.length && ' \t\n\r'.includes(text[i] as string)) i++;
  };
  const string = (): boolean => {
    i++;
    while (i < text.length) {
      const c = text[i] as string;
      if (c === '"') {
        i++;
        return true;
      }
      if (c === '\\') {
        const escaped = /^(["\\/bfnrt]|u[0-9a-fA-F]{4})/.exec(text.slice(i + 1, i + 6));
        if (escaped === null) return false;
        i += 1 + escaped[0].length;
      } else if (c < ' ') return false;
      else i++;
    }
    return false;
  };
  const value = (): boolean => {
    space();
    const open = text[i];
    if (open === '"') return string();
    if (open === '{' || open === '[') {
      const close = open === '{' ? '}' : ']';
      i++;
      space();
      if (text[i] === close) {
        i++;
        return true;
      }
      for (;;) {
        if (open === '{') {
          space();
          if (text[i] !== '"' || !string()) return false;
          space();
          if (text[i] !== ':') return false;
          i++;
        }
        if (!value()) return false;
        space();
        if (text[i] === close) {
          i++;
          return true;
        }
        if (text[i] !== ',') return false;
        i++;
      }
    }
    const literal = /^(-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?|true|false|null)/.exec(text.slice(i, i + 400));
    if (literal === null) return false;
    i += literal[0].length;
    return true;
  };
  if (!value()) return i;
  space();
  return i < text.length ? i : undefined;
}

/** Where `text` stops being JSON, as ` (line L, column C)`: never V8's message, which quotes the input (maybe a secret). */
export function jsonErrorLocation(text: string): string {
  const offset = jsonErrorOffset(text);
  if (offset === undefined) return '';
  if (offset >= text.length) return ' (unexpected end)';
  const before = text.slice(0, offset);
  return ` (line ${before.split('\n').length}, column ${offset - before.lastIndexOf('\n')})`;
}

function coerceAs(kind: Kind, raw: string): Coerced {
  switch (kind) {
    case 'string':
      return { ok: true, value: raw };
    case 'number':
      return /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/.test(raw)
        ? { ok: true, value: Number(raw) }
        : { ok: false, message: 'expected a number' };
    case 'bigint':
      return /^[+-]?\d+$/.test(raw)
        ? { ok: true, value: BigInt(raw) }
        : { ok: false, message: 'expected an integer' };
    case 'boolean':
      if (raw === 'true' || raw === '1') return { ok: true, value: true };
      if (raw === 'false' || raw === '0') return { ok: true, value: false };
      return { ok: false, message: 'expected true, false, 1 or 0' };
    case 'null':
      return raw === 'null' ? { ok: true, value: null } : { ok: false, message: 'expected null' };
    case 'json':
      try {
        return { ok: true, value: JSON.parse(raw) };
      } catch {
        return { ok: false, message: `expected JSON${jsonErrorLocation(raw)}` };
      }
  }
}

/**
 * Coerces an environment string to the type of the field. When the field is a union of different types
 * (`audience`: string or array), the first kind in {@link KIND_ORDER} whose value the field accepts wins.
 */
export function coerceEnvValue(schemas: readonly SchemaNode[], raw: string): Coerced {
  const kinds = KIND_ORDER.filter((kind) => schemas.some((schema) => kindOf(schema) === kind));
  const only = kinds[0];
  if (only === undefined) return { ok: true, value: raw };
  if (kinds.length === 1) return coerceAs(only, raw);
  let fallback: Coerced | undefined;
  for (const kind of kinds) {
    const coerced = coerceAs(kind, raw);
    if (!coerced.ok) continue;
    fallback ??= coerced;
    const accepted = schemas.some(
      (schema) => kindOf(schema) === kind && z.safeParse(schema, coerced.value).success,
    );
    if (accepted) return coerced;
  }
  return fallback ?? { ok: false, message: `expected ${kinds.map(describeKind).join(' or ')}` };
}

function describeKind(kind: Kind): string {
  return kind === 'json' ? 'JSON' : kind === 'string' ? 'a string' : `a ${kind}`;
}

type Resolved =
  | { ok: true; path: ConfigPath; schemas: SchemaNode[] }
  | { ok: false; path: ConfigPath; message: string };

/** Optimal string alignment distance: insertions, deletions, substitutions and adjacent swaps count one each. */
function editDistance(a: string, b: string): number {
  const rows: number[][] = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  const at = (i: number, j: number) => rows[i]?.[j] ?? Number.POSITIVE_INFINITY;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        best = Math.min(best, at(i - 2, j - 2) + 1);
      (rows[i] as number[])[j] = best;
    }
  }
  return at(a.length, b.length);
}

/**
 * The names a mistyped `input` most likely meant: those closest to it (case ignored, a swap of two
 * letters counts once), within 2 edits (1 for names of three letters or fewer). Empty when none is close.
 *
 * @example
 * closestNames('upstrem', ['upstream', 'auth']); // ['upstream']
 */
export function closestNames(input: string, candidates: readonly string[]): string[] {
  const limit = input.length <= 3 ? 1 : 2;
  const scored = [...new Set(candidates)].map((name) => ({
    name,
    distance: editDistance(input.toLowerCase(), name.toLowerCase()),
  }));
  const best = Math.min(...scored.map((entry) => entry.distance));
  if (best > limit) return [];
  return scored.filter((entry) => entry.distance === best).map((entry) => entry.name);
}

/** Every key an object schema among `schemas` accepts. */
export function knownKeys(schemas: readonly SchemaNode[]): string[] {
  return [...new Set(schemas.flatMap((schema) => Object.keys(shapeOf(schema) ?? {})))];
}

function step(
  schemas: readonly SchemaNode[],
  segment: string,
): { key: string | number; schemas: SchemaNode[] } | undefined {
  for (const schema of schemas) {
    const shape = shapeOf(schema);
    const key = shape && Object.keys(shape).find((candidate) => envSegment(candidate) === segment);
    if (key !== undefined) return { key, schemas: childSchemas(schemas, key) };
  }
  if (isIndex(segment)) {
    const index = Number(segment);
    const children = childSchemas(schemas, index);
    if (children.length > 0) return { key: index, schemas: children };
  }
  const children = childSchemas(
    schemas.filter((schema) => defOf(schema).type === 'record'),
    segment,
  );
  return children.length > 0 ? { key: segment, schemas: children } : undefined;
}

function unknownSegmentMessage(
  name: string,
  schemas: readonly SchemaNode[],
  segment: string,
  path: ConfigPath,
) {
  const where = path.length === 0 ? 'at the top level' : `under ${formatConfigPath(path)}`;
  const names = [...new Set(knownKeys(schemas).map(envSegment))];
  const close = closestNames(segment, names);
  let hint = '';
  if (close.length > 0) hint = `; did you mean ${close.join(' or ')}?`;
  else if (names.length > 0) hint = `; expected one of ${names.join(', ')}`;
  else if (schemas.some((schema) => defOf(schema).type === 'array')) hint = '; expected an array index';
  else hint = '; this field has no sub-fields';
  return `${name} is not a configuration variable: no ${segment} ${where}${hint}`;
}

/** Maps a variable name to a field path, or explains which segment matches nothing. */
export function resolveEnvName(name: string, schema: SchemaNode = configSchema): Resolved {
  const segments = name.slice(CONFIG_ENV_PREFIX.length).split('__');
  if (!name.startsWith(CONFIG_ENV_PREFIX) || segments.some((segment) => segment === '')) {
    return { ok: false, path: [], message: `${name} is not a configuration variable: malformed name` };
  }
  let schemas = expand([schema]);
  const path: ConfigPath = [];
  for (const segment of segments) {
    const next = step(schemas, segment);
    if (next === undefined) {
      return { ok: false, path, message: unknownSegmentMessage(name, schemas, segment, path) };
    }
    path.push(next.key);
    schemas = next.schemas;
  }
  return { ok: true, path, schemas };
}

/** One field set from the environment. */
export interface EnvAssignment {
  path: ConfigPath;
  /** The coerced value. */
  value: unknown;
  /** The variable that supplied it (`GATEHOUSE_SERVER__PORT` or `…_FILE`). */
  name: string;
  /** The field's (expanded) schemas. */
  schemas: SchemaNode[];
}

export interface ReadConfigEnvOptions {
  readFile: (path: string) => string;
  schema?: SchemaNode;
}

/** File content as a value: trailing newlines (what `echo` and editors add) are not part of it. */
export function trimFileContent(content: string): string {
  return content.replace(/(\r?\n)+$/, '');
}

/** Why a file could not be read, without anything from its content. */
export function describeReadError(file: string, error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  return `cannot read file ${file}${typeof code === 'string' ? ` (${code})` : ''}`;
}

function comparePaths(a: ConfigPath, b: ConfigPath): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const x = a[i];
    const y = b[i];
    if (x === y) continue;
    if (typeof x === 'number' && typeof y === 'number') return x - y;
    return String(x) < String(y) ? -1 : 1;
  }
  return a.length - b.length;
}

/**
 * Reads every `GATEHOUSE_*` variable into field assignments, shallow paths first (so a JSON array can be
 * patched by index after it). Unknown names, uncoercible values, unreadable `_FILE`s and a variable set
 * both directly and as `_FILE` become issues; values never appear in them.
 */
export function readConfigEnv(
  env: Readonly<Record<string, string | undefined>>,
  options: ReadConfigEnvOptions,
): { assignments: EnvAssignment[]; issues: ConfigIssue[] } {
  const schema = options.schema ?? configSchema;
  const names = Object.keys(env)
    .filter(
      (name) => name.startsWith(CONFIG_ENV_PREFIX) && env[name] !== undefined && !isNonConfigEnvName(name),
    )
    .sort();
  const assignments: EnvAssignment[] = [];
  const issues: ConfigIssue[] = [];
  const viaFile = new Map<string, Extract<Resolved, { ok: true }>>();
  for (const name of names) {
    if (!name.endsWith('_FILE')) continue;
    const resolved = resolveEnvName(name.slice(0, -'_FILE'.length), schema);
    if (resolved.ok) viaFile.set(name, resolved);
  }
  const shadowed = new Set<string>();
  for (const name of viaFile.keys()) {
    const direct = name.slice(0, -'_FILE'.length);
    if (env[direct] !== undefined) shadowed.add(direct);
  }

  for (const name of names) {
    const raw = env[name] ?? '';
    const fileTarget = viaFile.get(name);
    const resolved = fileTarget ?? resolveEnvName(name, schema);
    if (!resolved.ok) {
      issues.push({
        path: formatConfigPath(resolved.path),
        source: `env ${name}`,
        message: resolved.message,
      });
      continue;
    }
    const path = formatConfigPath(resolved.path);
    if (shadowed.has(name)) continue;
    let text = raw;
    if (fileTarget !== undefined) {
      const direct = name.slice(0, -'_FILE'.length);
      if (shadowed.has(direct)) {
        issues.push({
          path,
          source: `env ${name}`,
          message: `both ${direct} and ${name} are set; set only one`,
        });
        continue;
      }
      try {
        text = trimFileContent(options.readFile(raw));
      } catch (error) {
        issues.push({ path, source: `env ${name}`, message: describeReadError(raw, error) });
        continue;
      }
    }
    const coerced = coerceEnvValue(resolved.schemas, text);
    if (!coerced.ok) {
      const from = fileTarget === undefined ? '' : ` (content of ${raw})`;
      issues.push({ path, source: `env ${name}`, message: `${coerced.message}${from}` });
      continue;
    }
    assignments.push({ path: resolved.path, value: coerced.value, name, schemas: resolved.schemas });
  }
  assignments.sort((a, b) => comparePaths(a.path, b.path));
  return { assignments, issues };
}

/** One settable variable, for documentation: `<N>` stands for an array index, `<KEY>` for a record key. */
export interface ConfigEnvVariable {
  name: string;
  path: string;
  type: string;
}

function describeNode(schema: SchemaNode): string {
  const def = defOf(schema);
  switch (def.type) {
    case 'array':
    case 'tuple':
    case 'set':
      return 'JSON array';
    case 'object':
    case 'record':
    case 'map':
      return 'JSON object';
    case 'enum':
      return Object.values((def as z.core.$ZodEnumDef).entries).join('|');
    case 'literal':
      return (def as z.core.$ZodLiteralDef<z.core.util.Literal>).values.map(String).join('|');
    default:
      return kindOf(schema);
  }
}

/**
 * Every variable the schema accepts (besides `_FILE` forms), derived from the schema itself.
 *
 * @example
 * listConfigEnvVariables().find((v) => v.path === 'server.port');
 * // { name: 'GATEHOUSE_SERVER__PORT', path: 'server.port', type: 'number' }
 */
export function listConfigEnvVariables(schema: SchemaNode = configSchema): ConfigEnvVariable[] {
  const out: ConfigEnvVariable[] = [];
  const visit = (schemas: SchemaNode[], segments: string[], path: string, depth: number): void => {
    if (depth > 8) return;
    const keys = [...new Set(schemas.flatMap((node) => Object.keys(shapeOf(node) ?? {})))];
    const children: [string, string, SchemaNode[]][] = keys.map((key) => [
      envSegment(key),
      path === '' ? key : `${path}.${key}`,
      childSchemas(schemas, key),
    ]);
    if (schemas.some((node) => ['array', 'tuple'].includes(defOf(node).type))) {
      children.push(['<N>', `${path}[<n>]`, childSchemas(schemas, 0)]);
    }
    if (schemas.some((node) => defOf(node).type === 'record')) {
      children.push(['<KEY>', `${path}.<key>`, childSchemas(schemas, '<KEY>')]);
    }
    for (const [segment, childPath, childNodes] of children) {
      const childSegments = [...segments, segment];
      const type = [...new Set(childNodes.map(describeNode))].join(' or ');
      out.push({ name: `${CONFIG_ENV_PREFIX}${childSegments.join('__')}`, path: childPath, type });
      visit(childNodes, childSegments, childPath, depth + 1);
    }
  };
  visit(expand([schema]), [], '', 0);
  return out;
}
