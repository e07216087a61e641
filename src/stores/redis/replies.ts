/** A record's fields as Redis returns them: every value a string. */
export type Fields = Readonly<Record<string, string>>;

/**
 * The fields of an `HGETALL` reply — a flat `[name, value, …]` array when a script returns it, an object
 * when ioredis does — or `undefined` for a missing key (empty reply, or nil).
 */
export function toFields(reply: unknown): Fields | undefined {
  if (Array.isArray(reply)) {
    if (reply.length === 0) return undefined;
    const fields: Record<string, string> = {};
    for (let i = 0; i + 1 < reply.length; i += 2) fields[String(reply[i])] = String(reply[i + 1]);
    return fields;
  }
  if (reply !== null && typeof reply === 'object') {
    const fields = reply as Record<string, string>;
    return Object.keys(fields).length === 0 ? undefined : fields;
  }
  return undefined;
}

/** The elements of a script's array reply; nil is an empty list. */
export function toList(reply: unknown): unknown[] {
  return Array.isArray(reply) ? reply : [];
}

/** The record in an `HGETALL`-shaped reply, read by `toRecord`; `undefined` for a missing key. */
export function recordOf<T>(reply: unknown, toRecord: (fields: Fields) => T): T | undefined {
  const fields = toFields(reply);
  return fields === undefined ? undefined : toRecord(fields);
}

/** The records in a script's array of `HGETALL`-shaped replies, read by `toRecord`; missing ones skipped. */
export function recordsOf<T>(reply: unknown, toRecord: (fields: Fields) => T): T[] {
  return toList(reply).flatMap((item) => {
    const record = recordOf(item, toRecord);
    return record === undefined ? [] : [record];
  });
}

/** The field as a string; throws when the record lacks it (a record the adapter did not write). */
export function text(fields: Fields, name: string): string {
  const value = fields[name];
  if (value === undefined) throw new Error(`A Redis record lacks its ${name} field.`);
  return value;
}

/** The field as a number; throws when the record lacks it. */
export function num(fields: Fields, name: string): number {
  return Number(text(fields, name));
}

/** `{ [name]: value }` when the record holds the field, `{}` when not: absent stays absent, never null. */
export function optionalText<K extends string>(fields: Fields, name: K): { [P in K]?: string } {
  const value = fields[name];
  return (value === undefined ? {} : { [name]: value }) as { [P in K]?: string };
}

/** {@link optionalText}, as a number. */
export function optionalNum<K extends string>(fields: Fields, name: K): { [P in K]?: number } {
  const value = fields[name];
  return (value === undefined ? {} : { [name]: Number(value) }) as { [P in K]?: number };
}

/** `[name, value, …]` for `HSET`, leaving out fields whose value is `undefined`. */
export function hashArgs(fields: Readonly<Record<string, string | number | undefined>>): string[] {
  const args: string[] = [];
  for (const [name, value] of Object.entries(fields)) {
    if (value !== undefined) args.push(name, String(value));
  }
  return args;
}

/** Byte order of two strings, as SQL's `BINARY` collation sorts them (UTF-8, code point by code point). */
export function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** Oldest first, ties by id: the order the ports give records of one principal in. */
export function byCreatedAtThenId<T extends { readonly createdAt: number; readonly id: string }>(
  a: T,
  b: T,
): number {
  return a.createdAt - b.createdAt || byteOrder(a.id, b.id);
}
