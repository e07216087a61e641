import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { stripJsonc } from '../../../src/config/jsonc.js';
import { loadConfig } from '../../../src/config/load.js';

describe('stripJsonc', () => {
  it('removes line and block comments and trailing commas', () => {
    const text = `{
  // the port
  "server": { "port": 9000, /* inline */ },
  "list": [1, 2, 3,],
  /* a block
     over lines */
  "mode": "development",
}`;
    expect(JSON.parse(stripJsonc(text))).toEqual({
      server: { port: 9000 },
      list: [1, 2, 3],
      mode: 'development',
    });
  });

  it('leaves strings alone: comment markers, commas and escaped quotes inside them', () => {
    const text = String.raw`{"url": "http://a.test/x//y", "glob": "/* not a comment */", "q": "say \"hi\" // still text", "c": ",}", "end": "\\",}`;
    expect(JSON.parse(stripJsonc(text))).toEqual({
      url: 'http://a.test/x//y',
      glob: '/* not a comment */',
      q: 'say "hi" // still text',
      c: ',}',
      end: '\\',
    });
  });

  it('keeps every character in place, so parse errors point at the file’s own line and column', () => {
    const text = '{\n  // ñ comment with ünïcode\n  "a": 1, /* x */\n  "b": ,\n}';
    const stripped = stripJsonc(text);
    expect(stripped.length).toBe(text.length);
    expect(stripped.split('\n').map((line) => line.length)).toEqual(text.split('\n').map((l) => l.length));
    expect(() => JSON.parse(stripped)).toThrow();
  });

  it('leaves an unterminated block comment for JSON.parse to refuse', () => {
    expect(() => JSON.parse(stripJsonc('{"a": 1 /* never closed'))).toThrow();
  });

  it('does not change any plain JSON document', () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.constantFrom(0, 2), (value, indent) => {
        const text = JSON.stringify(value, null, indent);
        expect(stripJsonc(text)).toBe(text);
      }),
    );
  });

  it('lets loadConfig read a commented config file', () => {
    const config = loadConfig({
      file: 'gatehouse.jsonc',
      env: {},
      readFile: () => '{\n  // development on another port\n  "server": { "port": 9100, },\n}\n',
    });
    expect(config.server.port).toBe(9100);
  });
});
