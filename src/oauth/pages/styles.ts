import { createHash } from 'node:crypto';

/**
 * The only stylesheet of every page, inlined in one `<style>` element. The CSP allows exactly this text by
 * hash ({@link PAGE_CSS_HASH}), so pages need neither `'unsafe-inline'` nor a static file route. Changing a
 * single character changes the hash; both are computed from this constant, so they cannot drift.
 */
export const PAGE_CSS = `
:root {
  color-scheme: light dark;
  --bg: #f3f4f6;
  --card: #ffffff;
  --text: #111827;
  --muted: #5b6472;
  --border: #e2e5ea;
  --subtle: #f7f8fa;
  --accent: #2f5bd3;
  --accent-hover: #264bb3;
  --accent-text: #ffffff;
  --focus: #2f5bd3;
  --error-bg: #fdeeee;
  --error-border: #f4c7c3;
  --error-text: #a1261d;
  --warn-bg: #fff7e6;
  --warn-border: #f5dca3;
  --warn-text: #7a4d00;
  --ok-bg: #e8f6ee;
  --ok-border: #bfe5cd;
  --ok-text: #17693a;
  --info-bg: #eaf1fe;
  --info-border: #c5d7fb;
  --info-text: #23469f;
  --shadow: 0 1px 2px rgba(17, 24, 39, 0.05), 0 10px 30px rgba(17, 24, 39, 0.08);
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #0d0f13;
    --card: #171a20;
    --text: #e8eaee;
    --muted: #9ba3b0;
    --border: #2a2f38;
    --subtle: #1e222a;
    --accent: #6f9bff;
    --accent-hover: #8cb0ff;
    --accent-text: #0b1222;
    --focus: #8cb0ff;
    --error-bg: #2c1615;
    --error-border: #5c2925;
    --error-text: #ffaaa2;
    --warn-bg: #2a2112;
    --warn-border: #5a4520;
    --warn-text: #f5c86a;
    --ok-bg: #12261b;
    --ok-border: #24513a;
    --ok-text: #83d9a5;
    --info-bg: #141f37;
    --info-border: #2a3f6e;
    --info-text: #a9c3ff;
    --shadow: 0 1px 2px rgba(0, 0, 0, 0.4), 0 10px 30px rgba(0, 0, 0, 0.35);
  }
}
*, *::before, *::after { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; text-size-adjust: 100%; }
body {
  margin: 0;
  min-height: 100vh;
  background: var(--bg);
  color: var(--text);
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, "Noto Sans", sans-serif;
  font-size: 16px;
  line-height: 1.5;
}
.page {
  display: flex;
  flex-direction: column;
  align-items: center;
  justify-content: center;
  gap: 20px;
  min-height: 100vh;
  padding: 32px 16px;
}
.brand {
  display: flex;
  align-items: center;
  gap: 8px;
  color: var(--muted);
  font-size: 15px;
  font-weight: 600;
  letter-spacing: 0.01em;
}
.brand svg { color: var(--accent); flex: none; }
.card {
  width: 100%;
  max-width: 420px;
  background: var(--card);
  border: 1px solid var(--border);
  border-radius: 14px;
  box-shadow: var(--shadow);
  padding: 32px;
}
.card-wide { max-width: 480px; }
.foot { color: var(--muted); font-size: 13px; text-align: center; max-width: 420px; }
h1 { margin: 0 0 6px; font-size: 22px; line-height: 1.3; font-weight: 650; overflow-wrap: anywhere; }
h2 { margin: 0 0 8px; font-size: 14px; font-weight: 600; color: var(--muted); }
p { margin: 0; }
.lead { color: var(--muted); margin-bottom: 24px; overflow-wrap: anywhere; }
.lead strong { color: var(--text); font-weight: 600; }
code, .mono {
  font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, "Liberation Mono", monospace;
  font-size: 0.875em;
  overflow-wrap: anywhere;
}
form { margin: 0; }
.stack { display: flex; flex-direction: column; gap: 16px; }
.field { display: flex; flex-direction: column; gap: 6px; }
label { font-size: 14px; font-weight: 600; }
input[type="text"], input[type="password"] {
  width: 100%;
  font: inherit;
  color: var(--text);
  background: var(--card);
  border: 1px solid var(--border);
  border-radius: 8px;
  padding: 10px 12px;
  min-height: 44px;
}
input[type="text"]:hover, input[type="password"]:hover { border-color: var(--muted); }
.btn {
  display: inline-flex;
  align-items: center;
  justify-content: center;
  gap: 8px;
  width: 100%;
  min-height: 44px;
  padding: 10px 16px;
  font: inherit;
  font-weight: 600;
  border-radius: 8px;
  border: 1px solid transparent;
  cursor: pointer;
  text-decoration: none;
}
.btn-primary { background: var(--accent); color: var(--accent-text); }
.btn-primary:hover { background: var(--accent-hover); }
.btn-secondary { background: var(--card); color: var(--text); border-color: var(--border); }
.btn-secondary:hover { background: var(--subtle); }
:focus-visible { outline: 3px solid var(--focus); outline-offset: 2px; }
input:focus-visible { outline-offset: 0; border-color: var(--focus); }
.link-button {
  font: inherit;
  color: var(--accent);
  background: none;
  border: 0;
  padding: 0;
  cursor: pointer;
  text-decoration: underline;
  text-underline-offset: 2px;
}
a { color: var(--accent); text-underline-offset: 2px; }
.alert {
  border: 1px solid;
  border-radius: 8px;
  padding: 10px 12px;
  margin-bottom: 20px;
  font-size: 14px;
  overflow-wrap: anywhere;
}
.alert-error { background: var(--error-bg); border-color: var(--error-border); color: var(--error-text); }
.alert-warn { background: var(--warn-bg); border-color: var(--warn-border); color: var(--warn-text); }
.divider {
  display: flex;
  align-items: center;
  gap: 12px;
  margin: 20px 0;
  color: var(--muted);
  font-size: 13px;
}
.divider::before, .divider::after { content: ""; flex: 1; border-top: 1px solid var(--border); }
.client-head { display: flex; align-items: center; gap: 14px; margin-bottom: 16px; }
.client-logo {
  width: 48px;
  height: 48px;
  border-radius: 10px;
  border: 1px solid var(--border);
  object-fit: contain;
  flex: none;
}
.badge {
  display: inline-block;
  vertical-align: middle;
  font-size: 12px;
  font-weight: 600;
  line-height: 1;
  padding: 4px 8px;
  border-radius: 999px;
  border: 1px solid;
  white-space: nowrap;
}
.badge-warn { background: var(--warn-bg); border-color: var(--warn-border); color: var(--warn-text); }
.badge-ok { background: var(--ok-bg); border-color: var(--ok-border); color: var(--ok-text); }
.panel {
  background: var(--subtle);
  border: 1px solid var(--border);
  border-radius: 10px;
  padding: 14px 16px;
  margin-bottom: 16px;
  font-size: 14px;
}
.facts { margin: 0; display: grid; grid-template-columns: max-content 1fr; gap: 4px 12px; }
.facts dt { color: var(--muted); }
.facts dd { margin: 0; min-width: 0; overflow-wrap: anywhere; }
.redirect {
  border: 1px solid var(--info-border);
  background: var(--info-bg);
  color: var(--info-text);
  border-radius: 10px;
  padding: 12px 16px;
  margin-bottom: 16px;
  font-size: 14px;
}
.redirect-host {
  display: block;
  margin-top: 2px;
  font-size: 18px;
  font-weight: 700;
  color: var(--text);
  overflow-wrap: anywhere;
}
.note { color: var(--muted); font-size: 13px; margin-top: 4px; }
.scopes { list-style: none; margin: 0 0 16px; padding: 0; border: 1px solid var(--border); border-radius: 10px; }
.scopes li { padding: 10px 14px; display: flex; flex-direction: column; gap: 2px; }
.scopes li + li { border-top: 1px solid var(--border); }
.scopes .scope-name { font-weight: 600; }
.scopes .scope-desc { color: var(--muted); font-size: 14px; }
.resource { color: var(--muted); font-size: 14px; margin-bottom: 24px; overflow-wrap: anywhere; }
.resource strong { color: var(--text); font-weight: 600; }
.actions { display: flex; gap: 12px; }
.actions .btn { flex: 1; }
.signed-in {
  display: flex;
  flex-wrap: wrap;
  align-items: baseline;
  gap: 4px 8px;
  margin-top: 20px;
  padding-top: 16px;
  border-top: 1px solid var(--border);
  color: var(--muted);
  font-size: 14px;
  overflow-wrap: anywhere;
}
.signed-in strong { color: var(--text); font-weight: 600; }
.tone-icon {
  display: flex;
  align-items: center;
  justify-content: center;
  width: 48px;
  height: 48px;
  border-radius: 50%;
  margin-bottom: 16px;
}
.tone-error .tone-icon { background: var(--error-bg); color: var(--error-text); }
.tone-info .tone-icon { background: var(--ok-bg); color: var(--ok-text); }
.message-text { color: var(--muted); overflow-wrap: anywhere; }
.detail {
  margin: 16px 0 0;
  padding: 10px 12px;
  background: var(--subtle);
  border: 1px solid var(--border);
  border-radius: 8px;
  font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, "Liberation Mono", monospace;
  font-size: 13px;
  white-space: pre-wrap;
  overflow-wrap: anywhere;
}
@media (max-width: 480px) {
  .page { justify-content: flex-start; padding: 20px 12px; gap: 16px; }
  .card { padding: 24px 20px; border-radius: 12px; }
  h1 { font-size: 20px; }
  .actions { flex-direction: column-reverse; }
}
`;

/** The CSP `style-src` source that allows {@link PAGE_CSS}, e.g. `'sha256-…'`. */
export const PAGE_CSS_HASH = `'sha256-${createHash('sha256').update(PAGE_CSS, 'utf8').digest('base64')}'`;
