/**
 * The demo's per-user notes store. Every operation takes the caller's user id; there is no operation
 * that reads across users, so a tool handler cannot leak one user's notes to another by mistake.
 */
export interface NotesBook {
  /**
   * Appends `text` to `userId`'s notes and resolves with how many notes that user now has.
   * Rejects with {@link NotesFullError} once the user holds `maxNotesPerUser` notes.
   */
  add(userId: string, text: string): Promise<number>;
  /** `userId`'s notes, oldest first. */
  list(userId: string): Promise<readonly string[]>;
}

/** Default cap on notes per user, so one caller cannot grow the demo's memory or disk without bound. */
export const DEFAULT_MAX_NOTES_PER_USER = 1000;

export interface MemoryNotesBookOptions {
  /** Most notes one user may hold. Default {@link DEFAULT_MAX_NOTES_PER_USER}. */
  maxNotesPerUser?: number;
}

/** Thrown by {@link NotesBook.add} when the user already holds the maximum number of notes. */
export class NotesFullError extends Error {
  override readonly name = 'NotesFullError';
  readonly code = 'ERR_NOTES_FULL';

  constructor(readonly maxNotesPerUser: number) {
    super(`a user may hold at most ${maxNotesPerUser} notes`);
  }
}

/**
 * A {@link NotesBook} held in process memory: it lives as long as the process, which for the stdio
 * demo is one Gatehouse session.
 *
 * @example
 * ```ts
 * const notes = createMemoryNotesBook();
 * await notes.add('alice', 'buy milk'); // 1
 * await notes.list('bob'); // []
 * ```
 */
export function createMemoryNotesBook(options: MemoryNotesBookOptions = {}): NotesBook {
  const maxNotesPerUser = options.maxNotesPerUser ?? DEFAULT_MAX_NOTES_PER_USER;
  const byUser = new Map<string, string[]>();
  return {
    async add(userId, text) {
      const notes = byUser.get(userId) ?? [];
      if (notes.length >= maxNotesPerUser) throw new NotesFullError(maxNotesPerUser);
      notes.push(text);
      byUser.set(userId, notes);
      return notes.length;
    },
    async list(userId) {
      return [...(byUser.get(userId) ?? [])];
    },
  };
}
