import { createHash } from 'node:crypto';

/**
 * The console's own rules, inlined after the shared page stylesheet (whose colours, buttons, badges and
 * alerts it reuses): navigation, tables, inline forms and the charts. Allowed by hash like the shared one
 * ({@link CONSOLE_CSS_HASH}), so the console needs no `'unsafe-inline'` and no static file route.
 */
export const CONSOLE_CSS = `
.card-full { max-width: 1180px; padding: 24px 28px; }
.page:has(.card-full) { justify-content: flex-start; }
.console-head { display: flex; flex-wrap: wrap; align-items: center; justify-content: space-between; gap: 12px; margin-bottom: 20px; }
.console-nav { display: flex; flex-wrap: wrap; gap: 4px; }
.console-nav a { padding: 6px 12px; border-radius: 8px; text-decoration: none; color: var(--text); font-weight: 600; font-size: 15px; }
.console-nav a:hover { background: var(--subtle); }
.console-nav a[aria-current="page"] { background: var(--info-bg); color: var(--info-text); }
.console-who { display: flex; align-items: center; gap: 10px; color: var(--muted); font-size: 14px; }
.console-who strong { color: var(--text); }
.section { margin-top: 28px; }
.section h2 { font-size: 16px; color: var(--text); margin-bottom: 10px; }
.table-wrap { overflow-x: auto; border: 1px solid var(--border); border-radius: 10px; }
table { width: 100%; border-collapse: collapse; font-size: 14px; }
th, td { text-align: left; padding: 8px 12px; vertical-align: middle; }
th { background: var(--subtle); color: var(--muted); font-weight: 600; white-space: nowrap; }
tr + tr td { border-top: 1px solid var(--border); }
td.mono, td code { font-size: 13px; }
td.actions-cell, td.nowrap { white-space: nowrap; overflow-wrap: normal; }
.inline { display: inline-block; margin: 0 4px 0 0; }
.btn-small { width: auto; min-height: 32px; padding: 4px 10px; font-size: 13px; }
.btn-danger { background: var(--error-bg); color: var(--error-text); border-color: var(--error-border); }
.btn-danger:hover { filter: brightness(0.97); }
.alert-ok { background: var(--ok-bg); border-color: var(--ok-border); color: var(--ok-text); }
.empty { color: var(--muted); font-size: 14px; padding: 12px; }
.filters { display: flex; flex-wrap: wrap; align-items: flex-end; gap: 12px; margin-bottom: 16px; }
.filters .field { min-width: 160px; }
.filters input[type="text"] { min-height: 36px; padding: 6px 10px; }
.filters .btn { width: auto; min-height: 36px; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(340px, 1fr)); gap: 16px; }
.chart { margin: 0; border: 1px solid var(--border); border-radius: 10px; padding: 12px 14px; background: var(--card); }
.chart h3 { margin: 0 0 4px; font-size: 14px; }
.chart .total { color: var(--muted); font-size: 13px; margin-bottom: 6px; }
.chart svg { width: 100%; height: auto; display: block; }
.chart .bar { fill: var(--accent); }
.chart .bar-zero { fill: var(--border); }
.chart .axis { stroke: var(--border); stroke-width: 1; }
.chart .label { fill: var(--muted); font-size: 12px; font-family: system-ui, sans-serif; }
.stats { display: flex; flex-wrap: wrap; gap: 12px; margin-bottom: 8px; }
.stat { border: 1px solid var(--border); border-radius: 10px; padding: 10px 16px; min-width: 140px; }
.stat .value { font-size: 22px; font-weight: 700; }
.stat .name { color: var(--muted); font-size: 13px; }
.pager { margin-top: 12px; font-size: 14px; }
`;

/** The CSP `style-src` source that allows {@link CONSOLE_CSS}. */
export const CONSOLE_CSS_HASH = `'sha256-${createHash('sha256').update(CONSOLE_CSS, 'utf8').digest('base64')}'`;
