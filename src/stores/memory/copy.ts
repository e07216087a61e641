/**
 * A deep copy through JSON, so the memory adapter has the value semantics of the SQL and Redis adapters:
 * what goes in is what a JSON round trip gives back (an `undefined` optional field comes back absent), and
 * no caller can reach into a stored object through a reference it kept or was given.
 */
export function copyJson<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

/** Orders strings by UTF-8 bytes, the order SQLite's `BINARY` collation and Postgres' `C` collation use. */
export function compareBinary(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

/** What each memory port factory returns: the port, and a way for `close()` to drop everything it holds. */
export interface MemoryPort<T> {
  readonly store: T;
  clear(): void;
}
