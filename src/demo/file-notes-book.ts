import { createHash } from 'node:crypto';
import { appendFile, mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DEFAULT_MAX_NOTES_PER_USER, type NotesBook, NotesFullError } from './notes-book.js';

export interface FileNotesBookOptions {
  /** Directory holding one file per user; created (mode `0700`) on first write. */
  directory: string;
  /** Most notes one user may hold. Default {@link DEFAULT_MAX_NOTES_PER_USER}. */
  maxNotesPerUser?: number;
}

/** The file that holds `userId`'s notes: the SHA-256 of the id, so ids never become path segments. */
export function notesFileName(userId: string): string {
  return `${createHash('sha256').update(userId, 'utf8').digest('hex')}.jsonl`;
}

interface NoteRecord {
  userId: string;
  text: string;
  addedAt: string;
}

/**
 * A {@link NotesBook} that keeps each user's notes in `<directory>/<sha256(userId)>.jsonl`, so a
 * user's notes outlive the stdio child of one Gatehouse session.
 *
 * Files are JSON Lines and only ever appended to: two concurrent sessions of the same user are two
 * processes, and an `O_APPEND` write of one line cannot lose the other process's note the way a
 * read-modify-write of a JSON array could. Every record carries its owner's id and a read keeps only
 * the caller's records, so a file copied or renamed onto another user's name shows that user nothing.
 * The per-user cap is exact within one process and approximate across concurrent processes.
 *
 * @example
 * ```ts
 * const notes = createFileNotesBook({ directory: '/var/lib/gatehouse-demo' });
 * await notes.add('alice', 'buy milk');
 * ```
 */
export function createFileNotesBook(options: FileNotesBookOptions): NotesBook {
  const { directory } = options;
  const maxNotesPerUser = options.maxNotesPerUser ?? DEFAULT_MAX_NOTES_PER_USER;
  let directoryReady: Promise<unknown> | undefined;
  // Serialises add() per user within this process so the cap check and the append cannot interleave.
  const queues = new Map<string, Promise<unknown>>();

  const pathFor = (userId: string) => join(directory, notesFileName(userId));

  async function readRaw(userId: string): Promise<string> {
    try {
      return await readFile(pathFor(userId), 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return '';
      throw error;
    }
  }

  async function read(userId: string): Promise<string[]> {
    return notesOf(await readRaw(userId), userId);
  }

  async function append(userId: string, text: string): Promise<number> {
    directoryReady ??= mkdir(directory, { recursive: true, mode: 0o700 });
    await directoryReady;
    const raw = await readRaw(userId);
    if (notesOf(raw, userId).length >= maxNotesPerUser) throw new NotesFullError(maxNotesPerUser);
    const record: NoteRecord = { userId, text, addedAt: new Date().toISOString() };
    // After a torn last line (a process killed mid-write), start on a fresh line so this note survives.
    const separator = raw === '' || raw.endsWith('\n') ? '' : '\n';
    await appendFile(pathFor(userId), `${separator}${JSON.stringify(record)}\n`, {
      encoding: 'utf8',
      mode: 0o600,
    });
    return (await read(userId)).length;
  }

  return {
    add(userId, text) {
      const previous = queues.get(userId) ?? Promise.resolve();
      const next = previous.catch(() => undefined).then(() => append(userId, text));
      queues.set(userId, next);
      const forget = () => {
        if (queues.get(userId) === next) queues.delete(userId);
      };
      next.then(forget, forget);
      return next;
    },
    list: read,
  };
}

/** The texts of `userId`'s records in a notes file; records of anyone else are ignored. */
function notesOf(raw: string, userId: string): string[] {
  const notes: string[] = [];
  for (const line of raw.split('\n')) {
    const record = parseRecord(line);
    if (record !== undefined && record.userId === userId) notes.push(record.text);
  }
  return notes;
}

function parseRecord(line: string): NoteRecord | undefined {
  if (line.trim() === '') return undefined;
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    // A torn last line from a process killed mid-write: skip it rather than lose the whole file.
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const { userId, text, addedAt } = value as Record<string, unknown>;
  if (typeof userId !== 'string' || typeof text !== 'string' || typeof addedAt !== 'string') return undefined;
  return { userId, text, addedAt };
}
