import { html, type SafeHtml } from '../../oauth/pages/html.js';
import { renderPage } from '../../oauth/pages/layout.js';
import type {
  AdminAuditEntry,
  AdminClient,
  AdminGrant,
  AdminSession,
  AdminSigningKey,
  AdminUser,
} from '../service.js';
import { type HourlySeries, renderHourlyChart } from './charts.js';
import { actionForm, type ConsoleFrame, orDash, renderConsolePage, table, when } from './layout.js';
import { CONSOLE_CSS } from './styles.js';

const userHref = (username: string) => `/admin/users/${encodeURIComponent(username)}`;
const userPath = (username: string) => `/admin/users/${encodeURIComponent(username)}`;

/** The buttons that act on one account, each a POST form. */
function userActions(user: AdminUser, frame: ConsoleFrame, back: string): SafeHtml {
  const base = userPath(user.username);
  const id = user.username;
  return html`${
    user.disabled
      ? actionForm({
          action: `${base}/enable`,
          csrf: frame.csrf,
          back,
          label: 'Enable',
          testId: `enable-${id}`,
        })
      : actionForm({
          action: `${base}/disable`,
          csrf: frame.csrf,
          back,
          label: 'Disable',
          testId: `disable-${id}`,
          tone: 'danger',
        })
  }${actionForm({
    action: `${base}/revoke`,
    csrf: frame.csrf,
    back,
    label: 'Sign out everywhere',
    testId: `signout-${id}`,
    tone: 'danger',
  })}${
    user.admin
      ? actionForm({
          action: `${base}/revoke-admin`,
          csrf: frame.csrf,
          back,
          label: 'Revoke admin',
          testId: `revoke-admin-${id}`,
        })
      : actionForm({
          action: `${base}/grant-admin`,
          csrf: frame.csrf,
          back,
          label: 'Make admin',
          testId: `grant-admin-${id}`,
        })
  }`;
}

function statusBadges(user: AdminUser): SafeHtml {
  return html`${user.disabled ? html`<span class="badge badge-warn" data-testid="status-${user.username}">disabled</span>` : html`<span class="badge badge-ok" data-testid="status-${user.username}">active</span>`}${user.admin && html` <span class="badge badge-warn" data-testid="admin-badge-${user.username}">admin</span>`}`;
}

export interface OverviewData {
  readonly users: number;
  readonly sessions: number;
  readonly clients: number;
  readonly username?: string | undefined;
  readonly toolCalls: HourlySeries;
  readonly authFailures: HourlySeries;
  readonly sessionsOpened: HourlySeries;
}

export function renderOverview(frame: ConsoleFrame, data: OverviewData): string {
  const stat = (name: string, value: number, testId: string) =>
    html`<div class="stat" data-testid="${testId}"><div class="value">${value}</div><div class="name">${name}</div></div>`;
  return renderConsolePage({
    title: 'Overview',
    section: 'overview',
    frame,
    body: html`<div class="stats">${stat('Users', data.users, 'stat-users')}${stat('Live sessions', data.sessions, 'stat-sessions')}${stat('Registered clients', data.clients, 'stat-clients')}</div>
<section class="section"><h2>Activity, last 24 hours${data.username !== undefined && html` — ${data.username}`}</h2>
<form class="filters" method="get" action="/admin" data-testid="chart-filter">
<div class="field"><label for="chart-user">User</label><input type="text" id="chart-user" name="user" value="${data.username ?? ''}" placeholder="everyone"></div>
<button class="btn btn-secondary" type="submit">Show</button>
</form>
<div class="charts">
${renderHourlyChart({ title: 'Tool calls', series: data.toolCalls, testId: 'chart-tool-calls' })}
${renderHourlyChart({ title: 'Authentication failures', series: data.authFailures, testId: 'chart-auth-failures' })}
${renderHourlyChart({ title: 'Sessions opened', series: data.sessionsOpened, testId: 'chart-sessions-opened' })}
</div></section>`,
  });
}

export function renderUsers(frame: ConsoleFrame, users: readonly AdminUser[]): string {
  const back = '/admin/users';
  return renderConsolePage({
    title: 'Users',
    section: 'users',
    frame,
    body: table({
      testId: 'users-table',
      head: ['Username', 'Name', 'Email', 'Status', 'Created', ''],
      empty: 'No local accounts yet. Add one with gatehouse users add.',
      rows: users.map(
        (user) =>
          html`<tr data-testid="user-row-${user.username}"><td><a href="${userHref(user.username)}" data-testid="user-link-${user.username}">${user.username}</a></td><td>${orDash(user.name)}</td><td>${orDash(user.email)}</td><td>${statusBadges(user)}</td><td>${when(user.createdAt)}</td><td class="actions-cell">${userActions(user, frame, back)}</td></tr>`,
      ),
    }),
  });
}

export function renderUser(
  frame: ConsoleFrame,
  data: { user: AdminUser; sessions: readonly AdminSession[]; grants: readonly AdminGrant[] },
): string {
  const { user } = data;
  const back = userPath(user.username);
  const live = data.grants.filter((grant) => grant.revokedAt === undefined);
  return renderConsolePage({
    title: user.username,
    section: 'users',
    frame,
    body: html`<div class="panel"><dl class="facts">
<dt>Status</dt><dd>${statusBadges(user)}</dd>
<dt>Name</dt><dd>${orDash(user.name)}</dd>
<dt>Email</dt><dd>${orDash(user.email)}</dd>
<dt>User id</dt><dd><code>${user.id}</code></dd>
<dt>Created</dt><dd>${when(user.createdAt)}</dd>
${user.disabledAt !== undefined && html`<dt>Disabled</dt><dd>${when(user.disabledAt)}</dd>`}
</dl></div>
<div>${userActions(user, frame, back)}</div>
<section class="section"><h2>Live sessions (${data.sessions.length})</h2>
${table({
  testId: 'sessions-table',
  head: ['Session', 'Transport', 'Client', 'Opened', 'Last seen', 'Expires', ''],
  empty: 'No live MCP sessions.',
  rows: data.sessions.map(
    (session) =>
      html`<tr data-testid="session-row" data-session-id="${session.id}"><td class="mono"><code>${session.id.slice(0, 12)}…</code></td><td>${session.transport}</td><td>${orDash(session.client)}</td><td>${when(session.createdAt)}</td><td>${when(session.lastSeenAt)}</td><td>${when(session.expiresAt)}</td><td class="actions-cell">${actionForm(
        {
          action: `/admin/sessions/${encodeURIComponent(session.id)}/end`,
          csrf: frame.csrf,
          back,
          label: 'End',
          testId: 'end-session',
          tone: 'danger',
        },
      )}</td></tr>`,
  ),
})}
${data.sessions.length > 0 && html`<p class="pager">${actionForm({ action: `${userPath(user.username)}/end-sessions`, csrf: frame.csrf, back, label: 'End all sessions', testId: 'end-all-sessions', tone: 'danger' })}</p>`}
</section>
<section class="section"><h2>Connected clients (${live.length})</h2>
${table({
  testId: 'grants-table',
  head: ['Client', 'Scopes', 'Resource', 'Granted', 'Expires', ''],
  empty: 'No connected clients.',
  rows: live.map(
    (grant) =>
      html`<tr data-testid="grant-row" data-grant-id="${grant.id}"><td>${grant.clientName ?? grant.clientId}<div class="note mono">${grant.clientId}</div></td><td>${orDash(grant.scopes.join(' '))}</td><td class="mono">${grant.resource}</td><td>${when(grant.createdAt)}</td><td>${when(grant.expiresAt)}</td><td class="actions-cell">${actionForm(
        {
          action: `/admin/grants/${encodeURIComponent(grant.id)}/revoke`,
          csrf: frame.csrf,
          back,
          label: 'Revoke',
          testId: 'revoke-grant',
          tone: 'danger',
        },
      )}</td></tr>`,
  ),
})}
</section>`,
  });
}

export function renderClients(frame: ConsoleFrame, clients: readonly AdminClient[]): string {
  const back = '/admin/clients';
  return renderConsolePage({
    title: 'OAuth clients',
    section: 'clients',
    frame,
    body: html`<p class="lead">Clients that registered themselves (RFC 7591). Configured clients and metadata-document clients are not stored here.</p>
${table({
  testId: 'clients-table',
  head: ['Client', 'Redirect URIs', 'Type', 'Registered', 'Approved', ''],
  empty: 'No registered clients.',
  rows: clients.map((client) => {
    const path = `/admin/clients/${encodeURIComponent(client.clientId)}`;
    return html`<tr data-testid="client-row" data-client-id="${client.clientId}"><td>${orDash(client.clientName)}<div class="note mono">${client.clientId}</div></td><td class="mono">${client.redirectUris.map((uri) => html`<div>${uri}</div>`)}</td><td>${client.applicationType} · ${client.tokenEndpointAuthMethod}</td><td>${when(client.createdAt)}</td><td>${client.approvedAt === undefined ? html`<span class="badge badge-warn">not approved</span>` : when(client.approvedAt)}</td><td class="actions-cell">${
      client.approvedAt === undefined &&
      actionForm({
        action: `${path}/approve`,
        csrf: frame.csrf,
        back,
        label: 'Approve',
        testId: 'approve-client',
        tone: 'primary',
      })
    }${actionForm({ action: `${path}/remove`, csrf: frame.csrf, back, label: 'Remove', testId: 'remove-client', tone: 'danger' })}</td></tr>`;
  }),
})}`,
  });
}

export function renderKeys(frame: ConsoleFrame, keys: readonly AdminSigningKey[]): string {
  return renderConsolePage({
    title: 'Signing keys',
    section: 'keys',
    frame,
    body: html`<p class="lead">Tokens are signed with the newest key; retired keys keep verifying until the tokens they signed expire.</p>
<p>${actionForm({ action: '/admin/keys/rotate', csrf: frame.csrf, back: '/admin/keys', label: 'Rotate now', testId: 'rotate-keys', tone: 'primary' })}</p>
<div class="section">${table({
      testId: 'keys-table',
      head: ['Key id', 'Algorithm', 'State', 'Created', 'Retires', 'Expires'],
      empty: 'No signing keys.',
      rows: keys.map(
        (key) =>
          html`<tr data-testid="key-row" data-kid="${key.kid}"><td class="mono"><code>${key.kid}</code></td><td>${key.alg}</td><td>${key.state === 'signing' ? html`<span class="badge badge-ok">signing</span>` : html`<span class="badge badge-warn">verifying</span>`}</td><td>${when(key.createdAt)}</td><td>${when(key.retiresAt)}</td><td>${when(key.expiresAt)}</td></tr>`,
      ),
    })}</div>`,
  });
}

export interface AuditView {
  readonly entries: readonly AdminAuditEntry[];
  readonly filter: { readonly user: string; readonly event: string; readonly since: string };
  /** The query string of the next (older) page, when there is one. */
  readonly olderQuery?: string | undefined;
  /** The query string of the JSON Lines export of this filter. */
  readonly exportQuery: string;
}

/** What an audit entry says beyond its columns, as `name=value` pairs. */
function entryDetail(entry: AdminAuditEntry): string {
  const skip = new Set(['type', 'outcome', 'ip', 'requestId', 'clientId', 'principal']);
  return Object.entries(entry.event)
    .filter(([name, value]) => !skip.has(name) && value !== undefined && typeof value !== 'object')
    .map(([name, value]) => `${name}=${String(value)}`)
    .join(' ');
}

export function renderAudit(frame: ConsoleFrame, view: AuditView): string {
  const { filter } = view;
  return renderConsolePage({
    title: 'Audit log',
    section: 'audit',
    frame,
    body: html`<form class="filters" method="get" action="/admin/audit" data-testid="audit-filter">
<div class="field"><label for="audit-user">User</label><input type="text" id="audit-user" name="user" value="${filter.user}" placeholder="username"></div>
<div class="field"><label for="audit-event">Event type</label><input type="text" id="audit-event" name="event" value="${filter.event}" placeholder="login, tool.called, oauth.token."></div>
<div class="field"><label for="audit-since">Since</label><input type="text" id="audit-since" name="since" value="${filter.since}" placeholder="24h, 7d or ISO 8601"></div>
<button class="btn btn-secondary" type="submit" data-testid="audit-apply">Filter</button>
<a href="/admin/audit.jsonl?${view.exportQuery}" data-testid="audit-export">Export JSON Lines</a>
</form>
${table({
  testId: 'audit-table',
  head: ['Time', 'Event', 'Outcome', 'User', 'Client', 'Address', 'Detail'],
  empty: 'No audit entries match.',
  rows: view.entries.map(
    (entry) =>
      html`<tr data-testid="audit-row" data-type="${entry.type}"><td class="nowrap">${when(entry.time)}</td><td class="mono nowrap">${entry.type}</td><td>${orDash(entry.outcome)}</td><td>${orDash(entry.username ?? entry.subject)}</td><td class="mono">${orDash(entry.clientId)}</td><td class="mono nowrap">${orDash(entry.ip)}</td><td class="mono">${entryDetail(entry)}</td></tr>`,
  ),
})}
${view.olderQuery !== undefined && html`<p class="pager"><a href="/admin/audit?${view.olderQuery}" data-testid="audit-older">Older entries</a></p>`}`,
  });
}

/**
 * The page for a signed-in person who is not an administrator: who they are signed in as, and a way to
 * sign out (to sign in as someone else).
 */
export function renderForbidden(options: {
  username?: string | undefined;
  csrf?: string | undefined;
}): string {
  return renderPage({
    title: 'Administrators only',
    testId: 'console-forbidden',
    extraStyle: CONSOLE_CSS,
    body: html`<div class="tone-error" data-testid="message" data-tone="error" role="alert">
<h1 data-testid="message-title">Administrators only</h1>
<p class="message-text" data-testid="message-text">${
      options.username === undefined
        ? 'This account is not an administrator of this Gatehouse.'
        : `You are signed in as ${options.username}, who is not an administrator of this Gatehouse.`
    } An administrator can give it the role (<code>gatehouse users grant-admin &lt;username&gt;</code>).</p>
<pre class="detail" data-testid="message-detail">ERR_ADMIN_REQUIRED</pre>
${
  options.csrf !== undefined &&
  html`<form method="post" action="/admin/sign-out" class="section" data-testid="forbidden-sign-out"><input type="hidden" name="csrf" value="${options.csrf}"><button class="btn btn-secondary" type="submit" data-testid="sign-out">Sign out and use another account</button></form>`
}
</div>`,
  });
}
