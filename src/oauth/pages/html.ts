/**
 * HTML that is already safe to emit: produced by {@link html} (which escapes every interpolated string) or
 * wrapped deliberately with {@link rawHtml}. Pages are built only from `SafeHtml`, so forgetting to escape a
 * user-supplied value is a type error rather than an XSS.
 */
export class SafeHtml {
  constructor(readonly value: string) {}

  toString(): string {
    return this.value;
  }
}

/**
 * A value that may be interpolated into {@link html}. `false`, `null`, `undefined` and `''` render as
 * nothing (so `${cond && html`…`}` works); arrays render each item; strings and numbers are escaped.
 */
export type HtmlValue = SafeHtml | string | number | false | null | undefined | readonly HtmlValue[];

const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

/**
 * Escapes `& < > " '` so a string is inert both as element text and inside a quoted attribute value.
 *
 * @example
 * escapeHtml(`<img src=x onerror="alert(1)">`); // '&lt;img src=x onerror=&quot;alert(1)&quot;&gt;'
 */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (char) => ESCAPES[char] ?? char);
}

function render(value: HtmlValue): string {
  if (value instanceof SafeHtml) return value.value;
  if (value === false || value === null || value === undefined) return '';
  if (Array.isArray(value)) return (value as readonly HtmlValue[]).map(render).join('');
  return escapeHtml(String(value));
}

/**
 * Tagged template that escapes every interpolation unless it is already {@link SafeHtml}. Attribute values
 * must be written inside double quotes (`value="${v}"`); unquoted attributes are not made safe by escaping.
 *
 * @example
 * html`<p class="name">${clientName}</p>`; // clientName is escaped
 */
export function html(strings: TemplateStringsArray, ...values: readonly HtmlValue[]): SafeHtml {
  let out = strings[0] ?? '';
  for (let i = 0; i < values.length; i++) out += render(values[i]) + (strings[i + 1] ?? '');
  return new SafeHtml(out);
}

/** Marks trusted markup as safe without escaping. Never pass anything derived from a request or a client. */
export function rawHtml(markup: string): SafeHtml {
  return new SafeHtml(markup);
}

/** `<input type="hidden">` for each entry (interaction id, CSRF token…), names and values escaped. */
export function hiddenInputs(hidden: Readonly<Record<string, string>>): SafeHtml {
  return html`${Object.entries(hidden).map(
    ([name, value]) => html`<input type="hidden" name="${name}" value="${value}">`,
  )}`;
}

/**
 * The URL itself when it is an absolute `https:` URL, else `undefined`, so client-supplied links and images
 * can never be `javascript:`, `data:` or plain-HTTP URLs.
 */
export function webUrl(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  try {
    const url = new URL(value);
    if (url.protocol === 'https:') return url.href;
  } catch {
    return undefined;
  }
  return undefined;
}
