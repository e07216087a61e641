import { readableText, skeleton } from '../untrusted-text.js';

/** A product people know by name, and the hosts whose metadata documents may use that name. */
interface Product {
  readonly name: string;
  /** Spellings of the name (compared by skeleton, so look-alike spellings match too). */
  readonly aliases: readonly string[];
  /** A metadata document served from one of these hosts (or a subdomain) proves the name. */
  readonly hosts: readonly string[];
}

const PRODUCTS: readonly Product[] = [
  { name: 'Claude', aliases: ['Claude'], hosts: ['claude.ai', 'claude.com', 'anthropic.com'] },
  { name: 'Anthropic', aliases: ['Anthropic'], hosts: ['anthropic.com'] },
  { name: 'ChatGPT', aliases: ['ChatGPT'], hosts: ['chatgpt.com', 'openai.com'] },
  { name: 'OpenAI', aliases: ['OpenAI', 'Codex'], hosts: ['openai.com', 'chatgpt.com'] },
  { name: 'Cursor', aliases: ['Cursor'], hosts: ['cursor.com', 'cursor.sh'] },
  {
    name: 'Visual Studio Code',
    aliases: ['Visual Studio Code', 'VS Code', 'VSCode'],
    hosts: ['visualstudio.com', 'vscode.dev', 'microsoft.com'],
  },
  { name: 'GitHub', aliases: ['GitHub', 'Copilot'], hosts: ['github.com', 'githubcopilot.com'] },
  { name: 'Microsoft', aliases: ['Microsoft'], hosts: ['microsoft.com'] },
  { name: 'Windsurf', aliases: ['Windsurf', 'Codeium'], hosts: ['windsurf.com', 'codeium.com'] },
  { name: 'Google', aliases: ['Google', 'Gemini'], hosts: ['google.com'] },
  { name: 'MCP Inspector', aliases: ['MCP Inspector'], hosts: ['modelcontextprotocol.io'] },
  // The server itself: no client is Gatehouse.
  { name: 'Gatehouse', aliases: ['Gatehouse'], hosts: [] },
];

/** Longest alias, in words: how many consecutive words of a name are compared with an alias. */
const MAX_ALIAS_WORDS = 3;

/** Words of a name for comparison: split at spaces, punctuation and lower-to-upper case changes (`GitHub`). */
function words(value: string): string[] {
  return readableText(value)
    .replace(/(\p{Ll})(\p{Lu})/gu, '$1 $2')
    .split(/[^\p{L}\p{N}]+/u)
    .map(skeleton)
    .filter((word) => word !== '');
}

const BY_SKELETON = new Map(
  PRODUCTS.flatMap((product) => product.aliases.map((alias) => [words(alias).join(''), product] as const)),
);

/**
 * The well-known product whose name `clientName` uses — in any spelling that looks the same (`Сlaude`
 * with a Cyrillic С, `C1aude`, `ClaudeAI`, `VS Code Helper`) — unless `documentHost`, the host of a
 * metadata-document client's URL, proves it (`claude.ai` for Claude). `undefined` when it claims none.
 * Only meaningful for clients nobody verified: an operator-configured client's name is the operator's.
 *
 * @example
 * claimedProduct('My Claude helper');                 // 'Claude'
 * claimedProduct('Claude', 'claude.ai');              // undefined: the document host proves it
 * claimedProduct('Precursor notes');                  // undefined: a word containing "cursor" is not Cursor
 */
export function claimedProduct(clientName: string, documentHost?: string): string | undefined {
  const parts = words(clientName);
  for (let start = 0; start < parts.length; start++) {
    let joined = '';
    for (let end = start; end < Math.min(parts.length, start + MAX_ALIAS_WORDS); end++) {
      joined += parts[end];
      const product = BY_SKELETON.get(joined);
      if (product !== undefined && !provenBy(product, documentHost)) return product.name;
    }
  }
  return undefined;
}

function provenBy(product: Product, host: string | undefined): boolean {
  if (host === undefined) return false;
  const name = host.toLowerCase().replace(/:\d+$/, '');
  return product.hosts.some((proven) => name === proven || name.endsWith(`.${proven}`));
}
