import { describe, expect, it } from 'vitest';
import {
  hostLookalikeReasons,
  lookalikeReasons,
  readableText,
  skeleton,
} from '../../../src/oauth/untrusted-text.js';

describe('readableText', () => {
  it('removes bidi embeddings, overrides, isolates and marks (Trojan Source, "exe.txt" tricks)', () => {
    for (const control of [
      '\u202A',
      '\u202B',
      '\u202C',
      '\u202D',
      '\u202E',
      '\u2066',
      '\u2067',
      '\u2068',
      '\u2069',
      '\u200E',
      '\u200F',
      '\u061C',
    ]) {
      expect(readableText(`Claude${control}gnp.exe`)).toBe('Claudegnp.exe');
    }
  });

  it('removes invisible characters: zero-width, word joiner, BOM, soft hyphen, tags, fillers, private use', () => {
    const invisible = [
      '\u200B',
      '\u2060',
      '\u2061',
      '\u2064',
      '\uFEFF',
      '\u00AD',
      '\u034F',
      '\u115F',
      '\u1160',
      '\u3164',
      '\uFFA0',
      '\u2800',
      '\u180E',
      '\u{E0041}',
      '\uF8FF',
    ];
    for (const char of invisible) expect(readableText(`Cla${char}ude`), codePoint(char)).toBe('Claude');
  });

  it('turns control characters and every kind of space or line break into one plain space, trimmed', () => {
    expect(readableText('  Notes\tapp\u2028for\u00A0you\u3000now\n ')).toBe('Notes app for you now');
    expect(readableText('a\u0000b')).toBe('a b');
  });

  it('keeps joiners where they join (emoji sequences, Persian and Indic text), removes them elsewhere', () => {
    expect(readableText('Dev 👩\u200D💻')).toBe('Dev 👩\u200D💻');
    expect(readableText('\u0645\u06CC\u200C\u062E\u0648\u0627\u0647\u0645')).toBe(
      '\u0645\u06CC\u200C\u062E\u0648\u0627\u0647\u0645',
    );
    expect(readableText('\u0915\u094D\u200D\u0937')).toBe('\u0915\u094D\u200D\u0937');
    expect(readableText('\u200DClaude\u200C')).toBe('Claude');
    expect(readableText('a \u200D b')).toBe('a b');
  });

  it('leaves ordinary text of any script alone', () => {
    for (const text of [
      'Café Manager',
      '日本語のアプリ',
      'Ελληνικά',
      'Привет',
      'עברית',
      'VS Code — Insiders',
    ]) {
      expect(readableText(text)).toBe(text);
    }
  });
});

describe('lookalikeReasons', () => {
  it('flags a word that mixes scripts (a Cyrillic С in "Claude")', () => {
    expect(lookalikeReasons('\u0421laude')).toContain('mixed_scripts');
    expect(lookalikeReasons('Pay\u03C1al')).toContain('mixed_scripts');
  });

  it('flags a word written wholly in another script that reads as Latin ("аррӏе")', () => {
    expect(lookalikeReasons('\u0430\u0440\u0440\u04CF\u0435')).toEqual(['confusable']);
    expect(lookalikeReasons('\u039F\u03A1\u0395\u039D')).toEqual(['confusable']);
  });

  it('flags styled letters that stand in for plain ones (full-width, mathematical bold, circled)', () => {
    expect(lookalikeReasons('\uFF23\uFF4C\uFF41\uFF55\uFF44\uFF45')).toContain('styled');
    expect(lookalikeReasons('𝐂𝐥𝐚𝐮𝐝𝐞')).toContain('styled');
    expect(lookalikeReasons('Ⓒlaude')).toContain('styled');
  });

  it('accepts single-script names, Japanese/Chinese/Korean mixed with Latin, and decomposed accents', () => {
    for (const text of [
      'Notes helper',
      'Café Manager',
      'Cafe\u0301 Manager',
      'Привет мир',
      'Ελληνικά',
      '日本語のアプリ Pro',
      'Notion AI 日本',
      '한국어 앱 Pro',
      'VS Code 2',
      'Claude для работы',
    ]) {
      expect(lookalikeReasons(text), text).toEqual([]);
    }
  });
});

describe('skeleton', () => {
  it('maps look-alikes, styled letters, accents, case, 0/1 and joiners to one plain form', () => {
    expect(skeleton('\u0421laude')).toBe('claude');
    expect(skeleton('\uFF23\uFF4C\uFF41\uFF55\uFF44\uFF45')).toBe('claude');
    expect(skeleton('Cla\u200Dúde')).toBe('claude');
    expect(skeleton('C1aude')).toBe('claude');
    expect(skeleton('G00gle')).toBe('google');
  });
});

describe('hostLookalikeReasons', () => {
  it('decodes punycode labels and checks them like text', () => {
    // аррӏе.com, all Cyrillic.
    expect(hostLookalikeReasons('xn--80ak6aa92e.com')).toEqual(['confusable']);
    expect(hostLookalikeReasons('claude.ai')).toEqual([]);
    expect(hostLookalikeReasons('xn--bcher-kva.example')).toEqual([]); // bücher.example
    expect(hostLookalikeReasons('127.0.0.1:8080')).toEqual([]);
  });
});

function codePoint(char: string): string {
  return `U+${(char.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, '0')}`;
}
