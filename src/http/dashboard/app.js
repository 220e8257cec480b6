// runlet dashboard: the shell (sign-in, routing, live updates). No framework and no build:
// each page is a module that fetches from /api and builds its DOM.

import { TOKEN_KEY, Unauthorized, api, getJson, h, main, sleep } from './lib.js';
import { tasksPage } from './tasks.js';
import { nowPage } from './now.js';
import { historyPage } from './history.js';
import { runPage } from './run.js';
import { usagePage } from './usage.js';

// --- live updates ------------------------------------------------------------------------
// EventSource cannot send an Authorization header, so the stream is read with fetch():
// the token stays in a header, and no ticket store is needed on the daemon.

const live = { ctrl: null, connectedOnce: false };

function setLive(state, text) {
  const el = document.getElementById('live');
  el.dataset.state = state;
  el.textContent = text;
}

function startLive() {
  if (live.ctrl) return;
  const ctrl = new AbortController();
  live.ctrl = ctrl;
  void (async () => {
    let delay = 1000;
    while (!ctrl.signal.aborted) {
      try {
        const res = await api('/api/events', { signal: ctrl.signal, headers: { accept: 'text/event-stream' } });
        if (res.status === 404) return setLive('off', 'no live updates');
        if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        let buf = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += value.replace(/\r\n?/g, '\n');
          let end;
          while ((end = buf.indexOf('\n\n')) >= 0) {
            if (onLiveEvent(buf.slice(0, end))) delay = 1000;
            buf = buf.slice(end + 2);
          }
        }
      } catch (err) {
        if (ctrl.signal.aborted) return;
        if (err instanceof Unauthorized) return (stopLive(), showLogin());
      }
      if (ctrl.signal.aborted) return;
      setLive('retry', 'reconnecting…');
      await sleep(delay, ctrl.signal);
      delay = Math.min(delay * 2, 15_000);
    }
  })();
}

function stopLive() {
  live.ctrl?.abort();
  live.ctrl = null;
  setLive('off', 'offline');
}

function onLiveEvent(block) {
  let event = 'message';
  let data = '';
  for (const line of block.split('\n')) {
    if (line.startsWith('event:')) event = line.slice(6).trim();
    else if (line.startsWith('data:')) data += line.slice(5).trim();
  }
  if (event === 'ready') {
    setLive('live', 'live');
    // Changes made while the stream was down were not sent: reload what is on screen.
    if (live.connectedOnce) current?.refresh?.();
    live.connectedOnce = true;
    return true;
  }
  if (event === 'run') {
    try {
      current?.onChange?.(JSON.parse(data));
    } catch (err) {
      console.error('live event', err);
    }
  }
  return false;
}

// --- routing -----------------------------------------------------------------------------

let current = null;
let afterLogin = '#/tasks';

const routes = [
  [/^#\/tasks$/, tasksPage],
  [/^#\/now$/, nowPage],
  [/^#\/history(?:\?(.*))?$/, historyPage],
  [/^#\/runs\/([0-9A-Za-z]+)$/, runPage],
  [/^#\/usage$/, usagePage],
];

/**
 * What the token's role may do (GET /api/whoami), as classes on <body>: `may-run`,
 * `may-cancel`, ... Elements marked `needs-<what>` are hidden without it (style.css); the API
 * refuses them anyway (403), this only keeps a viewer from buttons that cannot work.
 */
let roleOf;
async function applyRole() {
  const token = localStorage.getItem(TOKEN_KEY) ?? '';
  if (roleOf?.token === token) return;
  const me = await getJson('/api/whoami');
  roleOf = { token };
  document.body.dataset.role = me.role;
  document.body.dataset.who = me.name;
  for (const [what, ok] of Object.entries(me.may)) document.body.classList.toggle(`may-${what}`, ok);
}

async function route() {
  current?.dispose?.();
  current = null;
  const hash = location.hash || '#/tasks';
  if (hash === '#/login') return showLogin();
  const match = routes.find(([re]) => re.test(hash));
  if (!match) return void (location.hash = '#/tasks');
  const [re, page] = match;
  for (const a of document.querySelectorAll('[data-nav]')) a.classList.toggle('active', hash.startsWith(`#/${a.dataset.nav}`));
  const view = {
    disposed: false,
    reload: route,
    dispose() {
      this.disposed = true;
      this.ctrl.abort();
    },
    ctrl: new AbortController(),
  };
  current = view;
  try {
    await applyRole();
    await page(view, ...hash.match(re).slice(1));
    document.getElementById('logout').hidden = !localStorage.getItem(TOKEN_KEY);
    startLive();
  } catch (err) {
    if (view.disposed) return;
    if (err instanceof Unauthorized) return showLogin();
    main.replaceChildren(h('p', { class: 'error' }, `Could not load this page: ${err.message}`));
  }
}

function showLogin(message) {
  if (location.hash !== '#/login') afterLogin = location.hash || '#/tasks';
  current?.dispose?.();
  current = null;
  stopLive();
  document.getElementById('logout').hidden = true;
  const input = h('input', {
    type: 'password',
    id: 'token',
    name: 'token',
    autocomplete: 'current-password',
    placeholder: 'RUNLET_TOKEN',
    required: true,
  });
  const msg = h(
    'p',
    { class: 'error', id: 'login-error' },
    message ?? (localStorage.getItem(TOKEN_KEY) ? 'The daemon refused the saved token.' : ''),
  );
  const form = h(
    'form',
    {
      id: 'login',
      onsubmit: async (e) => {
        e.preventDefault();
        localStorage.setItem(TOKEN_KEY, input.value.trim());
        try {
          await getJson('/api/status');
          const target = afterLogin === '#/login' ? '#/tasks' : afterLogin;
          // Setting the hash it already has fires no hashchange.
          if (location.hash === target) route();
          else location.hash = target;
        } catch (err) {
          localStorage.removeItem(TOKEN_KEY);
          msg.textContent = err instanceof Unauthorized ? 'Wrong token.' : `The daemon did not answer: ${err.message}`;
        }
      },
    },
    h('h1', {}, 'Sign in'),
    h(
      'p',
      { class: 'muted' },
      'The daemon is started with RUNLET_TOKEN; paste it here. It is kept in this browser (localStorage) and sent as a bearer header, never in a URL.',
    ),
    h('label', { for: 'token' }, 'Token'),
    input,
    h('button', { type: 'submit' }, 'Sign in'),
    msg,
  );
  main.replaceChildren(form);
  input.focus();
}

document.getElementById('logout').addEventListener('click', () => {
  localStorage.removeItem(TOKEN_KEY);
  showLogin('Signed out.');
});
window.addEventListener('hashchange', route);
window.addEventListener('runlet:signed-out', () => showLogin());
setInterval(() => current?.tick?.(), 1000);
route();
