/**
 * JSON with comments (`//`, `/* … *\/`) and trailing commas, as editors write for settings files, turned
 * into plain JSON: each comment and each trailing comma becomes spaces (line breaks kept), so every
 * character stays where it was and a parse error still points at the right line and column. Nothing
 * inside a string is touched. An unterminated block comment is left as is, for `JSON.parse` to refuse.
 *
 * @example
 * JSON.parse(stripJsonc('{ "port": 8787, // the default\n}')); // { port: 8787 }
 */
export function stripJsonc(text: string): string {
  return withoutTrailingCommas(withoutComments(text));
}

/** Index just past the string literal starting at `start` (a `"`), or the text's end if it never closes. */
function endOfString(text: string, start: number): number {
  let at = start + 1;
  while (at < text.length && text[at] !== '"') at += text[at] === '\\' ? 2 : 1;
  return Math.min(at + 1, text.length);
}

const blank = (span: string) => span.replace(/[^\r\n]/g, ' ');

function withoutComments(text: string): string {
  let out = '';
  let at = 0;
  while (at < text.length) {
    const char = text[at];
    const next = text[at + 1];
    if (char === '"') {
      const end = endOfString(text, at);
      out += text.slice(at, end);
      at = end;
    } else if (char === '/' && next === '/') {
      const newline = text.indexOf('\n', at);
      const end = newline === -1 ? text.length : newline;
      out += blank(text.slice(at, end));
      at = end;
    } else if (char === '/' && next === '*') {
      const close = text.indexOf('*/', at + 2);
      if (close === -1) return out + text.slice(at);
      out += blank(text.slice(at, close + 2));
      at = close + 2;
    } else {
      out += char;
      at++;
    }
  }
  return out;
}

function withoutTrailingCommas(text: string): string {
  let out = '';
  let at = 0;
  while (at < text.length) {
    const char = text[at];
    if (char === '"') {
      const end = endOfString(text, at);
      out += text.slice(at, end);
      at = end;
      continue;
    }
    if (char === ',') {
      let ahead = at + 1;
      while (ahead < text.length && /\s/.test(text[ahead] as string)) ahead++;
      out += text[ahead] === '}' || text[ahead] === ']' ? ' ' : ',';
    } else {
      out += char;
    }
    at++;
  }
  return out;
}
