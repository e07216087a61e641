import { type HtmlValue, hiddenInputs, html, type SafeHtml } from '../../oauth/pages/html.js';
import { pageHeaders, renderPage } from '../../oauth/pages/layout.js';
import { CONSOLE_CSS, CONSOLE_CSS_HASH } from './styles.js';

/** Headers of every console answer: the shared page headers (no framing, `no-store`, CSP) plus the console's stylesheet. */
export function consoleHeaders(): Record<string, string> {
  return pageHeaders({ styleHashes: [CONSOLE_CSS_HASH] });
}

/** A message shown once after a redirect (the outcome of the form just posted). */
export interface Flash {
  readonly tone: 'ok' | 'error';
  readonly text: string;
}

export type ConsoleSection = 'overview' | 'users' | 'clients' | 'keys' | 'audit';

const SECTIONS: readonly { id: ConsoleSection; href: string; label: string }[] = [
  { id: 'overview', href: '/admin', label: 'Overview' },
  { id: 'users', href: '/admin/users', label: 'Users' },
  { id: 'clients', href: '/admin/clients', label: 'Clients' },
  { id: 'keys', href: '/admin/keys', label: 'Signing keys' },
  { id: 'audit', href: '/admin/audit', label: 'Audit log' },
];

/** What every console page knows about the request. */
export interface ConsoleFrame {
  /** The signed-in administrator's username. */
  readonly username: string;
  /** This browser sign-in's CSRF token, for every form that changes something. */
  readonly csrf: string;
  readonly flash?: Flash | undefined;
}

/** A console page: the shared layout, full width, with navigation, who is signed in and the flash message. */
export function renderConsolePage(options: {
  readonly title: string;
  readonly section: ConsoleSection;
  readonly frame: ConsoleFrame;
  readonly body: SafeHtml;
}): string {
  const { frame } = options;
  return renderPage({
    title: `${options.title} · Admin`,
    width: 'full',
    testId: `console-${options.section}`,
    extraStyle: CONSOLE_CSS,
    body: html`<header class="console-head">
<nav class="console-nav" aria-label="Admin console">${SECTIONS.map(
      (section) =>
        html`<a href="${section.href}"${section.id === options.section && html` aria-current="page"`} data-testid="nav-${section.id}">${section.label}</a>`,
    )}</nav>
<div class="console-who">Signed in as <strong data-testid="console-user">${frame.username}</strong>
${actionForm({ action: '/admin/sign-out', csrf: frame.csrf, label: 'Sign out', testId: 'sign-out', tone: 'secondary' })}
</div>
</header>
${frame.flash !== undefined && html`<div class="alert ${frame.flash.tone === 'ok' ? 'alert-ok' : 'alert-error'}" role="status" data-testid="flash" data-tone="${frame.flash.tone}">${frame.flash.text}</div>`}
<h1>${options.title}</h1>
${options.body}`,
  });
}

/**
 * A one-button form that posts to `action` with the CSRF token and where to come back to. Every change the
 * console makes goes through one of these: a POST, never a link.
 */
export function actionForm(options: {
  readonly action: string;
  readonly csrf: string;
  readonly label: string;
  readonly testId: string;
  readonly back?: string;
  readonly tone?: 'primary' | 'secondary' | 'danger';
  readonly fields?: Readonly<Record<string, string>>;
}): SafeHtml {
  const tone = options.tone ?? 'secondary';
  return html`<form class="inline" method="post" action="${options.action}">${hiddenInputs({
    csrf: options.csrf,
    ...(options.back !== undefined && { back: options.back }),
    ...options.fields,
  })}<button class="btn btn-small btn-${tone}" type="submit" data-testid="${options.testId}">${options.label}</button></form>`;
}

/** A table, or a line saying there is nothing to show. */
export function table(options: {
  readonly testId: string;
  readonly head: readonly string[];
  readonly rows: readonly SafeHtml[];
  readonly empty: string;
}): SafeHtml {
  if (options.rows.length === 0)
    return html`<p class="empty" data-testid="${options.testId}-empty">${options.empty}</p>`;
  return html`<div class="table-wrap"><table data-testid="${options.testId}"><thead><tr>${options.head.map(
    (name) => html`<th scope="col">${name}</th>`,
  )}</tr></thead><tbody>${options.rows}</tbody></table></div>`;
}

/** ISO 8601 as `2026-12-03 16:05 UTC`; empty for an absent time. */
export function when(iso: string | undefined): string {
  if (iso === undefined || iso === '') return '';
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  return `${date.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

/** A cell value, or a muted dash. */
export function orDash(value: HtmlValue): HtmlValue {
  return value === undefined || value === '' ? html`<span class="note">—</span>` : value;
}
