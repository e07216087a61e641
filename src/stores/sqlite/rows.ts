/**
 * `{ [key]: value }` when the column holds a value, `{}` when it is NULL: optional fields absent on write
 * stay absent on read, never `null`.
 */
export function optionalField<K extends string, V>(key: K, value: V | null): { [P in K]?: V } {
  return (value === null ? {} : { [key]: value }) as { [P in K]?: V };
}

/** Parses a JSON column the schema guarantees is valid JSON (a `json_valid` check guards each one). */
export function parseJson<T>(text: string): T {
  return JSON.parse(text) as T;
}
