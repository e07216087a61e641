import { createHash } from 'node:crypto';
import { copyFile, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createFileNotesBook, notesFileName } from '../../../src/demo/file-notes-book.js';
import { NotesFullError } from '../../../src/demo/notes-book.js';

describe('createFileNotesBook', () => {
  let root: string;
  let directory: string;

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'gatehouse-file-notes-'));
    directory = join(root, 'notes');
  });

  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('names each file after the SHA-256 of the user id', () => {
    const digest = createHash('sha256').update('../../etc/passwd').digest('hex');
    expect(notesFileName('../../etc/passwd')).toBe(`${digest}.jsonl`);
  });

  it('keeps notes across book instances (sessions) and apart per user', async () => {
    const first = createFileNotesBook({ directory });
    expect(await first.add('alice', 'one')).toBe(1);
    expect(await first.add('bob', 'bob note')).toBe(1);

    const second = createFileNotesBook({ directory });
    expect(await second.add('alice', 'two')).toBe(2);
    expect(await second.list('alice')).toEqual(['one', 'two']);
    expect(await second.list('bob')).toEqual(['bob note']);
    expect(await second.list('carol')).toEqual([]);
    expect((await readdir(directory)).sort()).toEqual([notesFileName('alice'), notesFileName('bob')].sort());
  });

  it('creates the directory 0700 and files 0600', async () => {
    await createFileNotesBook({ directory }).add('alice', 'one');
    expect((await stat(directory)).mode & 0o777).toBe(0o700);
    expect((await stat(join(directory, notesFileName('alice')))).mode & 0o777).toBe(0o600);
  });

  it("shows nothing from another user's file put under the caller's name", async () => {
    const notes = createFileNotesBook({ directory });
    await notes.add('alice', 'alice secret');
    await copyFile(join(directory, notesFileName('alice')), join(directory, notesFileName('mallory')));
    expect(await notes.list('mallory')).toEqual([]);
  });

  it('skips a torn or foreign line instead of failing the whole file', async () => {
    const notes = createFileNotesBook({ directory });
    await notes.add('alice', 'one');
    const file = join(directory, notesFileName('alice'));
    await writeFile(file, `${await readFile(file, 'utf8')}{"userId":"alice","text":"tor`, { flag: 'w' });
    expect(await notes.add('alice', 'two')).toBe(2);
    expect(await notes.list('alice')).toEqual(['one', 'two']);
  });

  it('loses no note when two sessions of one user add at the same time', async () => {
    const sessionA = createFileNotesBook({ directory });
    const sessionB = createFileNotesBook({ directory });
    await Promise.all(
      Array.from({ length: 20 }, (_, index) =>
        (index % 2 === 0 ? sessionA : sessionB).add('alice', `n${index}`),
      ),
    );
    expect([...(await sessionA.list('alice'))].sort()).toEqual(
      Array.from({ length: 20 }, (_, i) => `n${i}`).sort(),
    );
  });

  it('refuses a note past maxNotesPerUser with ERR_NOTES_FULL', async () => {
    const notes = createFileNotesBook({ directory, maxNotesPerUser: 1 });
    await notes.add('alice', 'one');
    const failure = await notes.add('alice', 'two').catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(NotesFullError);
    expect(await notes.list('alice')).toEqual(['one']);
    expect(await notes.add('alice', 'three').catch((error: unknown) => (error as NotesFullError).code)).toBe(
      'ERR_NOTES_FULL',
    );
  });
});
