import { describe, expect, it } from 'vitest';
import { createMemoryNotesBook, NotesFullError } from '../../../src/demo/notes-book.js';

describe('createMemoryNotesBook', () => {
  it('keeps each user’s notes apart, oldest first', async () => {
    const notes = createMemoryNotesBook();
    expect(await notes.add('alice', 'one')).toBe(1);
    expect(await notes.add('alice', 'two')).toBe(2);
    expect(await notes.add('bob', 'mine')).toBe(1);
    expect(await notes.list('alice')).toEqual(['one', 'two']);
    expect(await notes.list('bob')).toEqual(['mine']);
    expect(await notes.list('carol')).toEqual([]);
  });

  it('hands out copies, so a caller cannot edit the stored list', async () => {
    const notes = createMemoryNotesBook();
    await notes.add('alice', 'one');
    const list = (await notes.list('alice')) as string[];
    list.push('injected');
    expect(await notes.list('alice')).toEqual(['one']);
  });

  it('refuses a note past maxNotesPerUser with ERR_NOTES_FULL, for that user only', async () => {
    const notes = createMemoryNotesBook({ maxNotesPerUser: 2 });
    await notes.add('alice', 'one');
    await notes.add('alice', 'two');
    const failure = await notes.add('alice', 'three').catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(NotesFullError);
    expect((failure as NotesFullError).code).toBe('ERR_NOTES_FULL');
    expect(await notes.add('bob', 'one')).toBe(1);
  });
});
