import { domainToUnicode } from 'node:url';

/**
 * Text chosen by someone else — a client's name, a host it registered — made safe to read, and checked
 * for imitation of other text. Escaping (see `pages/html.ts`) stops markup; this stops what escaping
 * cannot: characters that reorder or hide text, and letters that look like other letters.
 */

/** Controls and every kind of space or line break: each becomes one plain space. */
const SPACING = /[\p{Cc}\p{Zs}\p{Zl}\p{Zp}]/gu;
/** A zero-width joiner or non-joiner with nothing to join on one side (it joins letters and emoji only). */
const STRAY_JOINER =
  // biome-ignore lint/suspicious/noMisleadingCharacterClass: marks and joiners are matched one by one on purpose
  /(?<![\p{L}\p{M}\p{Extended_Pictographic}\uFE0F])[\u200C\u200D]|[\u200C\u200D](?![\p{L}\p{M}\p{Extended_Pictographic}])/gu;
/**
 * Characters that show nothing yet change what is shown: format characters (bidi embeddings, overrides,
 * isolates and marks, zero-width space, word joiner, BOM, soft hyphen, tags), private-use characters
 * (a font may draw anything there, Apple's logo at U+F8FF), lone surrogates, and letters that render
 * blank (Hangul and Khmer fillers, the braille blank, the combining grapheme joiner, Mongolian
 * variation selectors).
 */
// biome-ignore lint/suspicious/noMisleadingCharacterClass: each invisible character is removed on its own
const INVISIBLE = /[\p{Cf}\p{Co}\p{Cs}\u034F\u115F\u1160\u17B4\u17B5\u180B-\u180F\u2800\u3164\uFFA0]/gu;
const JOINERS = new Set(['\u200C', '\u200D']);

/**
 * `value` without characters that hide or reorder text, with every run of spacing as one space, trimmed.
 * Joiners stay where they join (emoji sequences, Persian and Indic words). A name run through this can
 * no longer say `Claude‮exe.txt` and read as `Claudetxt.exe`.
 *
 * @example
 * readableText('Notes\u202Egnp.exe'); // 'Notesgnp.exe'
 */
export function readableText(value: string): string {
  return value
    .replace(SPACING, ' ')
    .replace(STRAY_JOINER, '')
    .replace(INVISIBLE, (char) => (JOINERS.has(char) ? char : ''))
    .replace(/ {2,}/g, ' ')
    .trim();
}

/** Why a piece of text may be imitating other text (after UTS #39 §5, simplified). */
export type LookalikeReason =
  /** A word mixes scripts that are not normally written together (a Cyrillic `С` in `Claude`). */
  | 'mixed_scripts'
  /** A word wholly in another script that reads as Latin (`аррӏе`, all Cyrillic). */
  | 'confusable'
  /** Styled letters that stand in for plain ones (full-width, mathematical bold, circled). */
  | 'styled';

const SCRIPTS = [
  'Latin',
  'Greek',
  'Cyrillic',
  'Armenian',
  'Georgian',
  'Cherokee',
  'Hebrew',
  'Arabic',
  'Syriac',
  'Thaana',
  'Nko',
  'Devanagari',
  'Bengali',
  'Gurmukhi',
  'Gujarati',
  'Oriya',
  'Tamil',
  'Telugu',
  'Kannada',
  'Malayalam',
  'Sinhala',
  'Thai',
  'Lao',
  'Tibetan',
  'Myanmar',
  'Khmer',
  'Mongolian',
  'Ethiopic',
  'Canadian_Aboriginal',
  'Hangul',
  'Hiragana',
  'Katakana',
  'Bopomofo',
  'Han',
  'Yi',
  'Coptic',
  'Glagolitic',
  'Tifinagh',
  'Vai',
  'Lisu',
  'Adlam',
  'Osage',
  'Deseret',
  'Runic',
  'Ogham',
].map((name) => ({ name, pattern: new RegExp(`^\\p{Script=${name}}$`, 'u') }));
const SCRIPTLESS = /^[\p{Script=Common}\p{Script=Inherited}]$/u;

/** Script sets UTS #39 "highly restrictive" allows in one word: Latin with the scripts of CJK writing. */
const WRITTEN_TOGETHER: readonly ReadonlySet<string>[] = [
  new Set(['Latin', 'Han', 'Hiragana', 'Katakana']),
  new Set(['Latin', 'Han', 'Bopomofo']),
  new Set(['Latin', 'Han', 'Hangul']),
];

/**
 * Letters of other scripts (and a few Latin ones) that are drawn like a plain Latin letter, from the
 * Unicode confusables data (UTS #39) for the scripts most used to imitate Latin names and hosts.
 */
const LATIN_LOOKALIKES: Readonly<Record<string, string>> = Object.fromEntries(
  [
    // Cyrillic
    'АA ВB СC ЕE НH ІI ЈJ КK МM ОO РP ЅS ТT ХX ҮY ԜW ӀI ԚQ',
    'аa сc еe һh іi јj оo рp ѕs уy хx ԁd ԛq ԝw ӏl үy',
    // Greek
    'ΑA ΒB ΕE ΖZ ΗH ΙI ΚK ΜM ΝN ΟO ΡP ΤT ΥY ΧX οo ρp αa νv υu ιi κk χx ϲc ϳj',
    // Armenian
    'օo ոn սu հh ցg քp զq ՏS ՕO ՍU ԼL',
    // Cherokee
    'ᎪA ᏴB ᏟC ᎠD ᎬE ᏀG ᎻH ᏆI ᎫJ ᏦK ᏞL ᎷM ᎾO ᏢP ᏚS ᎢT ᏙV ᎳW ᏃZ',
    // Latin letters drawn like other Latin letters
    'ıi ȷj ɑa ɡg ɩi ʏy',
  ]
    .join(' ')
    .split(' ')
    .map((pair) => [...pair] as [string, string]),
);

/** Words, as far as imitation goes: anything between spaces and punctuation. */
const WORD_BREAK = /[\p{Z}\p{P}\s]+/u;

function scriptOf(char: string): string | undefined {
  if (SCRIPTLESS.test(char)) return undefined;
  return SCRIPTS.find((script) => script.pattern.test(char))?.name ?? 'Other';
}

function wordReasons(word: string): LookalikeReason[] {
  const reasons: LookalikeReason[] = [];
  if (word.normalize('NFC') !== word.normalize('NFKC')) reasons.push('styled');
  const letters = [...word.normalize('NFC')].filter((char) => /\p{L}/u.test(char));
  const scripts = new Set(letters.map(scriptOf).filter((script) => script !== undefined));
  if (scripts.size > 1 && !WRITTEN_TOGETHER.some((set) => [...scripts].every((script) => set.has(script)))) {
    reasons.push('mixed_scripts');
  } else if (
    scripts.size === 1 &&
    !scripts.has('Latin') &&
    letters.length > 1 &&
    letters.every((char) => LATIN_LOOKALIKES[char] !== undefined)
  ) {
    reasons.push('confusable');
  }
  return reasons;
}

/**
 * Why `value` may imitate other text, word by word; empty when it reads as what it is. Marks, never
 * refuses: a Russian word made only of Latin-looking letters is legitimate and still flagged.
 *
 * @example
 * lookalikeReasons('Сlaude'); // ['mixed_scripts'] (the first letter is Cyrillic)
 */
export function lookalikeReasons(value: string): LookalikeReason[] {
  const reasons = new Set<LookalikeReason>();
  for (const word of readableText(value).split(WORD_BREAK)) {
    for (const reason of wordReasons(word)) reasons.add(reason);
  }
  return [...reasons];
}

/**
 * {@link lookalikeReasons} for a host as the URL parser gives it (ASCII, international labels in
 * punycode `xn--…`): each label is decoded and checked like a word.
 *
 * @example
 * hostLookalikeReasons('xn--80ak6aa92e.com'); // ['confusable'] (аррӏе.com)
 */
export function hostLookalikeReasons(host: string): LookalikeReason[] {
  const hostname = host.replace(/:\d+$/, '');
  if (!/(^|\.)xn--/i.test(hostname)) return [];
  return lookalikeReasons(domainToUnicode(hostname).replaceAll('.', ' '));
}

/**
 * A plain form under which look-alike spellings of one name compare equal: styled letters unstyled,
 * accents and joiners dropped, look-alike letters mapped to Latin, lower case, `0`/`1`/`|` read as
 * `o`/`l`/`l`. For comparing names, never for showing them.
 *
 * @example
 * skeleton('\u04211aude'); // 'claude' (a Cyrillic С, a digit one)
 */
export function skeleton(value: string): string {
  const plain = readableText(value)
    .normalize('NFKC')
    .normalize('NFD')
    .replace(/[\p{M}\u200C\u200D]/gu, '');
  let mapped = '';
  for (const char of plain) mapped += LATIN_LOOKALIKES[char] ?? char;
  return mapped.toLowerCase().replace(/[01|]/g, (char) => (char === '0' ? 'o' : 'l'));
}
