// Shared by the dashboard's pages: DOM building, formatting, and the API client. Pages
// build DOM with textContent only (never innerHTML with data), so a task name or a log
// line cannot inject script next to the token in localStorage.

export const TOKEN_KEY = 'runlet.token';
export const TERMINAL = ['succeeded', 'failed', 'timed_out', 'oom_killed', 'cancelled', 'skipped', 'lost'];
export const STATUSES = ['queued', 'starting', 'running', ...TERMINAL];
export const TRIGGERS = ['cron', 'manual', 'webhook', 'queue', 'mongo', 'after'];
export const VIEWER_TZ = Intl.DateTimeFormat().resolvedOptions().timeZone;
export const main = document.getElementById('main');

// --- DOM ---------------------------------------------------------------------------------

export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  setProps(el, props);
  el.append(...flat(children));
  return el;
}

const SVG_NS = 'http://www.w3.org/2000/svg';
export function svg(tag, props, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  setProps(el, props);
  el.append(...flat(children));
  return el;
}

function setProps(el, props) {
  for (const [k, v] of Object.entries(props ?? {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'text') el.textContent = String(v);
    else el.setAttribute(k === 'className' ? 'class' : k, v === true ? '' : String(v));
  }
}

function flat(children) {
  return children
    .flat(Infinity)
    .filter((c) => c !== null && c !== undefined && c !== false)
    .map((c) => (c instanceof Node ? c : String(c)));
}

export const badge = (status) => h('span', { class: `badge st-${status}`, 'data-status': status }, status ?? '—');
export const runLink = (id) => h('a', { href: `#/runs/${id}`, class: 'mono' }, id);
export const section = (title, ...body) => h('section', {}, h('h2', {}, title), ...body);
export const table = (head, rows, props = {}) =>
  h(
    'table',
    props,
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        head.map((c) => h('th', {}, c)),
      ),
    ),
    h('tbody', {}, rows),
  );
export const empty = (cols, text) => h('tr', { class: 'empty' }, h('td', { colspan: cols }, text));

// --- formatting --------------------------------------------------------------------------

export function fmtDuration(ms) {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '—';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${Math.floor(s % 60)}s`;
  const hrs = Math.floor(m / 60);
  return hrs < 48 ? `${hrs}h ${m % 60}m` : `${Math.floor(hrs / 24)}d ${hrs % 24}h`;
}

export const toMs = (t) => (t === null || t === undefined ? undefined : typeof t === 'number' ? t : Date.parse(t));
export const ago = (t) => (toMs(t) === undefined ? '—' : `${fmtDuration(Date.now() - toMs(t))} ago`);

export function fmtTime(t, timeZone = VIEWER_TZ) {
  if (toMs(t) === undefined) return '—';
  return new Intl.DateTimeFormat(undefined, {
    timeZone,
    year: 'numeric',
    month: 'short',
    day: 'numeric',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
  }).format(new Date(toMs(t)));
}

export function fmtBytes(n) {
  if (n === null || n === undefined) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) ((n /= 1024), i++);
  return `${Number.isInteger(n) ? n : n.toFixed(1)} ${units[i]}`;
}

/** "Tue 24 Nov, 03:00 CET": short enough to show a time twice, in two zones. */
export function fmtShort(t, timeZone = VIEWER_TZ) {
  if (toMs(t) === undefined) return '—';
  return new Intl.DateTimeFormat('en-GB', {
    timeZone,
    weekday: 'short',
    day: 'numeric',
    month: 'short',
    hour: '2-digit',
    minute: '2-digit',
    timeZoneName: 'short',
  }).format(new Date(toMs(t)));
}

export const fmtNum = (n, digits = 1) =>
  n === null || n === undefined ? '—' : n.toLocaleString(undefined, { maximumFractionDigits: digits });

// --- API ---------------------------------------------------------------------------------

export class Unauthorized extends Error {}
export class ApiFailure extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// The token goes in a header only: a URL ends up in history, logs and Referer headers.
export async function api(path, init = {}) {
  const headers = new Headers(init.headers);
  const token = localStorage.getItem(TOKEN_KEY);
  if (token) headers.set('authorization', `Bearer ${token}`);
  const res = await fetch(path, { ...init, headers });
  if (res.status === 401) throw new Unauthorized();
  return res;
}

export async function getJson(path, init) {
  const res = await api(path, init);
  if (!res.ok) throw new ApiFailure(res.status, await errorText(res));
  return res.json();
}

/** null when the daemon has no such route yet (404), so pages can say "not available". */
export async function getOptional(path) {
  try {
    return await getJson(path);
  } catch (err) {
    if (err instanceof ApiFailure && err.status === 404) return null;
    throw err;
  }
}

export async function errorText(res) {
  const text = await res.text();
  try {
    return JSON.parse(text).error?.message ?? text;
  } catch {
    return text || `HTTP ${res.status}`;
  }
}

export async function post(path, body) {
  const init = { method: 'POST' };
  if (body !== undefined) Object.assign(init, { headers: { 'content-type': 'application/json' }, body });
  const res = await api(path, init);
  if (!res.ok) throw new ApiFailure(res.status, await errorText(res));
  return res.json();
}

export const sleep = (ms, signal) =>
  new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => (clearTimeout(t), resolve()), { once: true });
  });

/** Coalesces a burst of calls (a run's queued/starting/running events) into one. */
export function debounced(fn, ms) {
  const timers = new Map();
  return (key = '') => {
    clearTimeout(timers.get(key));
    timers.set(
      key,
      setTimeout(() => (timers.delete(key), fn(key)), ms),
    );
  };
}

/** A page met a 401 (the token was changed or revoked): app.js shows the sign-in form. */
export function signedOut() {
  window.dispatchEvent(new Event('runlet:signed-out'));
}
