import type { JsonReader } from '../sql-rows.js';

/** Parses a JSON column the schema guarantees is valid JSON (a `json_valid` check guards each one). */
export const parseJson: JsonReader<'text'> = (text) => JSON.parse(text);
