/**
 * The admin dashboard at `{base}/dashboard`: polls `stats.json`, `users.json`,
 * `connections.json` and `repositoryMessages.json` every `interval` ms (query parameter,
 * default 2000) and kicks connections through `kick.do`.
 */
import { ApiError, getJson, postJson } from './api.js';
import { Chart } from './chart.js';
import { byId, formatBytes, formatInt, formatRate, formatTime, h, preview } from './dom.js';
import { PagedTable } from './table.js';
import type { ConnectionView, Page, Stats, StoredMessageView, UserView } from './types.js';
import './style.css';

const requested = Number(new URLSearchParams(location.search).get('interval'));
const interval = Number.isFinite(requested) && requested > 0 ? Math.min(60_000, Math.max(250, requested)) : 2000;

const chart = new Chart(byId('chart'));
let previous: Stats | undefined;

/**
 * A field of the app's user object as text. Those are whatever the app put there: an object
 * shows as JSON, not as "[object Object]".
 */
function asText(value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  return JSON.stringify(value) ?? ''; // undefined for a function or a symbol
}

function userLabel(user: UserView | undefined): string {
  if (user === undefined) return '–';
  const name = typeof user.name === 'string' && user.name !== '' ? user.name : undefined;
  const id = user.id === null || user.id === undefined ? undefined : asText(user.id);
  if (name !== undefined && id !== undefined) return `${name} (${id})`;
  return name ?? id ?? 'anonymous';
}

const text = (value: unknown): string => (value === null || value === undefined || value === '' ? '–' : asText(value));

const users = new PagedTable<UserView>(byId('users'), {
  columns: [
    { title: 'ID', cell: (u) => text(u.id), className: 'mono' },
    { title: 'Name', cell: (u) => text(u.name) },
    { title: 'Tenant', cell: (u) => text(u.tenantId) },
  ],
  searchFields: [{ value: 'name', label: 'Name' }],
  pageSize: 10,
  empty: 'Nobody is online.',
  key: (u) => `${text(u.tenantId)}/${text(u.id)}`,
  load: (pageNum, pageSize, filter) => getJson<Page<UserView>>('users.json', { pageNum, pageSize, ...filter }),
});

const connections = new PagedTable<ConnectionView>(byId('connections'), {
  columns: [
    { title: 'Connection', cell: (c) => h('code', { title: c.id }, c.id), className: 'mono' },
    { title: 'User', cell: (c) => userLabel(c.user) },
    { title: 'Tenant', cell: (c) => text(c.tenantId) },
    {
      title: 'Client',
      cell: (c) =>
        h(
          'div',
          {},
          text(c.clientId),
          c.clientVersion ? h('span', { class: 'muted' }, ` v${c.clientVersion}`) : null,
          h('div', { class: 'sub', title: c.userAgent }, [c.locationHref, c.userAgent].filter(Boolean).join(' · ') || '–'),
        ),
    },
    { title: 'Listening', cell: (c) => (c.listeners.length === 0 ? '–' : c.listeners.join(', ')) },
    { title: 'IP', cell: (c) => text(c.ip), className: 'mono' },
    { title: 'Since', cell: (c) => formatTime(c.createdAt), className: 'num' },
    { title: 'Events', cell: (c) => formatInt(c.eventsWritten), className: 'num' },
    { title: 'Buffered', cell: (c) => formatBytes(c.bufferedAmount), className: 'num' },
    { title: '', cell: kickButton },
  ],
  searchFields: [
    { value: 'name', label: 'User name' },
    { value: 'clientId', label: 'Client id' },
    { value: 'id', label: 'Connection id' },
  ],
  empty: 'No open connection.',
  key: (c) => c.id,
  load: (pageNum, pageSize, filter) => getJson<Page<ConnectionView>>('connections.json', { pageNum, pageSize, ...filter }),
});

const messages = new PagedTable<StoredMessageView>(byId('messages'), {
  columns: [
    { title: 'Message', cell: (m) => h('code', { title: m.id }, m.id), className: 'mono' },
    { title: 'Event', cell: (m) => m.event },
    { title: 'To', cell: (m) => m.targets.map((t) => `${t.kind} ${'key' in t ? t.key : t.keyHash}`.trim()).join(', ') || '–' },
    // Stored as the JSON text that goes on the wire: show it as it is.
    { title: 'Data', cell: (m) => h('code', { class: 'sub' }, preview(m.data, 80, false)) },
    { title: 'Created', cell: (m) => formatTime(m.createdAt), className: 'num' },
    { title: 'Expires', cell: (m) => formatTime(m.expiresAt), className: 'num' },
  ],
  searchFields: [
    { value: 'userId', label: 'User id' },
    { value: 'tenantId', label: 'Tenant id' },
    { value: 'channel', label: 'Channel' },
  ],
  pageSize: 10,
  empty: 'No pending message.',
  key: (m) => m.id,
  unavailable: { status: 404, text: 'Durable delivery is not configured on this system (no qos store).' },
  load: (pageNum, pageSize, filter) => getJson<Page<StoredMessageView>>('repositoryMessages.json', { pageNum, pageSize, ...filter }),
});

function kickButton(c: ConnectionView): HTMLElement {
  const button = h(
    'button',
    { type: 'button', class: 'danger small', 'data-kick': c.id, title: 'Close this connection (the client does not reconnect by itself)' },
    'Kick',
  );
  button.addEventListener('click', () => {
    button.disabled = true;
    button.textContent = 'Kicking…';
    postJson<{ closed: number }>('kick.do', { connectionId: c.id })
      .then(({ closed }) => {
        notify(closed > 0 ? `Kicked connection ${c.id}.` : `Connection ${c.id} was already gone.`, 'ok');
        return refresh();
      })
      .catch((err: unknown) => {
        button.disabled = false;
        button.textContent = 'Kick';
        notify(`Kick failed: ${messageOf(err)}`, 'error');
      });
  });
  return button;
}

async function loadStats(): Promise<void> {
  const stats = await getJson<Stats>('stats.json');
  let rate: number | null = null;
  if (previous !== undefined && stats.time > previous.time && stats.local.eventsSent >= previous.local.eventsSent) {
    rate = ((stats.local.eventsSent - previous.local.eventsSent) * 1000) / (stats.time - previous.time);
  }
  previous = stats;
  chart.add(stats.time, rate, stats.connections);

  byId('system').textContent = stats.name;
  byId('c-users').textContent = formatInt(stats.users);
  byId('c-connections').textContent = formatInt(stats.connections);
  byId('c-local').textContent = `${formatInt(stats.local.connections)} on this node`;
  byId('c-rate').textContent = formatRate(rate);
  byId('c-sent').textContent = formatInt(stats.local.eventsSent);
  byId('c-failed').textContent = `${formatInt(stats.local.eventsFailed)} failed · ${formatBytes(stats.local.bytesSent)}`;
  byId('c-pending').textContent = stats.qos === null ? 'not configured' : formatInt(stats.qos.pending);
  byId('c-pending').classList.toggle('quiet', stats.qos === null);
  byId('c-peers').textContent = stats.cluster === null ? 'single node' : formatInt(stats.cluster.peers.length);
  byId('c-peers').classList.toggle('quiet', stats.cluster === null);
  byId('partial').hidden = stats.partial !== true;

  renderPeers(stats.cluster);
}

function renderPeers(cluster: Stats['cluster']): void {
  const root = byId('peers');
  if (cluster === null) {
    root.replaceChildren(h('p', { class: 'muted' }, 'Single node: no cluster configured.'));
    return;
  }
  const node = (nodeId: string, note: string, self: boolean): HTMLElement =>
    h('li', { 'data-peer': nodeId }, h('span', { class: self ? 'dot self' : 'dot' }), h('code', {}, nodeId), h('span', { class: 'muted' }, note));
  const list = h('ul', { class: 'peers' }, node(cluster.nodeId, ' this node', true));
  for (const p of cluster.peers) list.append(node(p.nodeId, ` ${p.group}${p.qosTag === undefined ? '' : ' · durable store'}`, false));
  root.replaceChildren(list);
  if (cluster.peers.length === 0) root.append(h('p', { class: 'muted' }, 'No peer is up.'));
}

function messageOf(err: unknown): string {
  if (err instanceof ApiError)
    return err.status === 401 ? 'not logged in (401)' : err.status === 403 ? 'admin rights required (403)' : `${err.message} (${err.status})`;
  return err instanceof TypeError ? 'server unreachable' : err instanceof Error ? err.message : String(err);
}

function setStatus(message: string, kind: 'ok' | 'error'): void {
  const status = byId('status');
  status.textContent = message;
  status.className = kind;
}

let noticeTimer: ReturnType<typeof setTimeout> | undefined;

/** Tells the outcome of an action for a few seconds. */
function notify(message: string, kind: 'ok' | 'error'): void {
  const notice = byId('notice');
  notice.textContent = message;
  notice.className = kind;
  notice.hidden = false;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => (notice.hidden = true), 6000);
}

/** Loads everything once; rejects with the first failure. */
async function refresh(): Promise<void> {
  const stats = await Promise.allSettled([loadStats()]);
  // Without a durable queue, repositoryMessages.json answers 404: do not ask every time.
  const noQueue = stats[0].status === 'fulfilled' && previous?.qos === null;
  if (noQueue) messages.showUnavailable();
  const lists = await Promise.allSettled([users.refresh(), connections.refresh(), noQueue ? undefined : messages.refresh()]);
  const failed = [...stats, ...lists].find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed !== undefined) throw failed.reason;
}

async function poll(): Promise<void> {
  try {
    await refresh();
    setStatus(`Updated ${formatTime(Date.now())}`, 'ok');
  } catch (err) {
    setStatus(`Update failed: ${messageOf(err)}. Retrying…`, 'error');
  }
  setTimeout(() => void poll(), interval);
}

void poll();
