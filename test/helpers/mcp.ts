/** The text of a tool result: its text content blocks, joined. */
export function text(result: unknown): string {
  const content = (result as { content?: Array<{ text?: string }> }).content ?? [];
  return content.map((item) => item.text ?? '').join('');
}
