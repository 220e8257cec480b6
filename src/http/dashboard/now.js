// Now: what runs (elapsed against timeout, memory against limit), what waits and why,
// what is stuck, what fires next, and each node: live (its load) or gone.

import {
  Unauthorized,
  ago,
  badge,
  debounced,
  empty,
  fmtBytes,
  fmtDuration,
  fmtTime,
  getJson,
  getOptional,
  h,
  main,
  post,
  runLink,
  section,
  signedOut,
  table,
  toMs,
} from './lib.js';

export async function nowPage(view) {
  const region = h('div', {});
  main.replaceChildren(h('h1', {}, 'Now'), region);
  const load = async () => {
    if (view.disposed) return;
    const [status, { tasks }, stuck] = await Promise.all([getJson('/api/status'), getJson('/api/tasks'), getOptional('/api/stuck')]);
    if (view.disposed) return;
    const limits = new Map(tasks.map((t) => [t.name, t.limits]));
    region.replaceChildren(
      section('Running', runningTable(status.running ?? [], limits)),
      section('Queued', queuedTable(status.queued ?? [])),
      section('Stuck', stuckList(stuck)),
      section('Next up', nextTable(status.next ?? [])),
      status.nodes ? section('Nodes', nodesTable(status.nodes)) : section('Daemons', daemonsTable(status.daemons ?? [])),
    );
    view.tick();
  };
  view.tick = () => {
    for (const el of region.querySelectorAll('[data-since]')) {
      const elapsed = Date.now() - Number(el.dataset.since);
      el.querySelector('.elapsed').textContent = fmtDuration(elapsed);
      const limit = Number(el.dataset.limit);
      const bar = el.querySelector('.bar > span');
      if (bar && limit) bar.style.width = `${Math.min(100, (100 * elapsed) / limit)}%`;
    }
    for (const el of region.querySelectorAll('[data-beat-at]')) el.textContent = ago(Number(el.dataset.beatAt));
  };
  const reload = debounced(() => load().catch(() => undefined), 400);
  view.onChange = () => reload();
  view.refresh = () => reload();
  // A run becomes stuck by waiting, which sends no event: look again every few seconds.
  const timer = setInterval(reload, 5000);
  const dispose = view.dispose;
  view.dispose = function () {
    clearInterval(timer);
    dispose.call(this);
  };
  await load();
}

function runningTable(running, limits) {
  const rows = running.map((r) => {
    const lim = limits.get(r.task) ?? {};
    const since = toMs(r.startedAt) ?? Date.now();
    const mem = r.memoryUsageBytes ?? r.memoryBytesUsed;
    return h(
      'tr',
      { 'data-run-id': r.id },
      h('td', {}, runLink(r.id)),
      h('td', {}, r.task),
      h('td', {}, badge(r.status)),
      h('td', {}, r.node ?? '—'),
      h(
        'td',
        { 'data-since': since, 'data-limit': lim.timeoutMs ?? '' },
        h('span', { class: 'elapsed' }, '—'),
        ` of ${fmtDuration(lim.timeoutMs)}`,
        h('div', { class: 'bar' }, h('span', {})),
      ),
      h(
        'td',
        {},
        mem !== undefined
          ? `${fmtBytes(mem)} of ${fmtBytes(lim.memoryBytes)}`
          : [fmtBytes(lim.memoryBytes), h('span', { class: 'muted small' }, ' limit')],
      ),
      h('td', {}, h('button', { type: 'button', class: 'small', onclick: (e) => cancelRun(r.id, e.target) }, 'Cancel')),
    );
  });
  return table(['Run', 'Task', 'Status', 'Node', 'Elapsed / timeout', 'Memory', ''], rows.length ? rows : empty(7, 'Nothing is running.'), {
    id: 'running',
  });
}

function queuedTable(queued) {
  const rows = queued.map((r) =>
    h(
      'tr',
      { 'data-run-id': r.id, 'data-task': r.task },
      h('td', {}, runLink(r.id)),
      h('td', {}, r.task),
      h('td', { 'data-since': toMs(r.queuedSince ?? r.createdAt) }, h('span', { class: 'elapsed' }, '—')),
      h('td', { class: 'why' }, whyWaiting(r.waitReason)),
    ),
  );
  return table(['Run', 'Task', 'Waiting', 'Why'], rows.length ? rows : empty(4, 'Nothing is waiting.'), { id: 'queued' });
}

/** `{ code, text, until? }` from /api/status (a plain string from older daemons). */
function whyWaiting(w) {
  if (!w) return h('span', { class: 'muted' }, 'not reported');
  if (typeof w === 'string') return w;
  return [
    w.code && h('span', { class: 'code' }, w.code),
    ' ',
    w.text ?? '',
    w.until && h('span', { class: 'muted small' }, ` (until ${fmtTime(w.until)})`),
  ];
}

function stuckList(stuck) {
  if (stuck === null) return h('p', { class: 'muted', id: 'stuck' }, 'Not available: this daemon has no GET /api/stuck.');
  const items = stuck.stuck ?? [];
  const rows = items.map((s) =>
    h(
      'tr',
      { 'data-task': s.task, 'data-kind': s.kind },
      h('td', {}, s.kind),
      h('td', {}, s.task),
      h('td', {}, s.runId ? runLink(s.runId) : '—'),
      h('td', { title: fmtTime(s.since) }, ago(s.since)),
      h('td', {}, s.detail ?? '', s.waiting && h('div', { class: 'muted small' }, whyWaiting(s.waiting))),
    ),
  );
  return table(['Kind', 'Task', 'Run', 'Since', 'Detail'], rows.length ? rows : empty(5, 'Nothing is stuck.'), { id: 'stuck' });
}

function nextTable(next) {
  const rows = next
    .slice(0, 8)
    .map((n) =>
      h(
        'tr',
        {},
        h('td', {}, n.task),
        h('td', {}, fmtTime(n.at)),
        h('td', { class: 'muted' }, `in ${fmtDuration(toMs(n.at) - Date.now())}`),
      ),
    );
  return table(['Task', 'At (your time)', ''], rows.length ? rows : empty(3, 'No schedules.'));
}

/** One row per node: live ones with their load as of their last heartbeat, gone ones marked, with when they were last seen. */
function nodesTable(nodes) {
  const rows = nodes.map((n) => {
    const gone = n.state === 'gone';
    const at = toMs(n.lastHeartbeatAt);
    const runs = n.running?.runs ?? [];
    return h(
      'tr',
      { 'data-node': n.name, 'data-state': n.state, class: gone ? 'gone' : undefined },
      h(
        'td',
        {},
        h('strong', {}, n.name),
        n.daemons.map((d) => h('div', { class: 'mono small muted', title: `pid ${d.pid ?? '?'} on ${d.host ?? '?'}` }, d.id)),
      ),
      h('td', {}, h('span', { class: `badge node-${n.state}` }, n.state)),
      h(
        'td',
        { class: 'beat', title: fmtTime(at) },
        h('span', { 'data-beat-at': at }, ago(at)),
        gone && h('div', { class: 'muted small' }, `last seen ${fmtTime(at)}; listed until ${fmtTime(n.forgetAt)}`),
      ),
      h(
        'td',
        { class: 'runs', 'data-count': n.running?.count ?? '' },
        n.running ? [gone ? `had ${n.running.count}` : String(n.running.count)] : '—',
        runs.map((r) => h('div', { class: 'small' }, runLink(r.id), ` ${r.task}`)),
        // Idle warm instances per task (their memory is in the node's memory in use).
        Object.entries(n.warm ?? {}).map(([task, w]) =>
          h('div', { class: 'small muted warm', 'data-warm-task': task }, `${w.instances} warm · ${task}`),
        ),
        // Reusable instances per task: idle ones wait for an invocation, busy ones serve a run (listed above).
        Object.entries(n.reuse ?? {}).map(([task, r]) =>
          h('div', { class: 'small muted reuse', 'data-reuse-task': task }, `${r.idle} idle · ${r.busy} busy reusable · ${task}`),
        ),
      ),
      h('td', { class: 'memory' }, memoryCell(n.memory, gone)),
      h(
        'td',
        { class: 'pools small' },
        n.pools.map((p) =>
          h(
            'div',
            {},
            `${p.name} ${p.runs}/${p.concurrency ?? '?'}`,
            p.budgetBytes !== null && ` · ${fmtBytes(p.memoryBytes)} of ${fmtBytes(p.budgetBytes)}`,
          ),
        ),
      ),
    );
  });
  return table(
    ['Node', 'State', 'Last heartbeat', 'Runs in progress', 'Memory in use', 'Pool slots'],
    rows.length ? rows : empty(6, 'No node has been seen.'),
    {
      id: 'nodes',
    },
  );
}

function memoryCell(memory, gone) {
  if (!memory) return '—';
  if (memory.budgetBytes === null) return [fmtBytes(memory.inUseBytes), h('span', { class: 'muted small' }, ' (no budget)')];
  // Through the CSSOM: the page's CSP refuses style attributes.
  const fill = h('span', {});
  fill.style.width = `${Math.min(100, (100 * memory.inUseBytes) / memory.budgetBytes)}%`;
  return [`${fmtBytes(memory.inUseBytes)} of ${fmtBytes(memory.budgetBytes)}`, !gone && h('div', { class: 'bar' }, fill)];
}

function daemonsTable(daemons) {
  const rows = daemons.map((d) =>
    h('tr', {}, h('td', { class: 'mono' }, d.id ?? '—'), h('td', {}, d.node ?? '—'), h('td', {}, d.version ?? '—')),
  );
  return table(['Daemon', 'Node', 'Version'], rows.length ? rows : empty(3, 'No daemon is alive.'));
}

async function cancelRun(id, button) {
  if (!confirm(`Cancel run ${id}?`)) return;
  button.disabled = true;
  try {
    await post(`/api/runs/${id}/cancel`);
    button.textContent = 'Cancelling…';
  } catch (err) {
    if (err instanceof Unauthorized) return signedOut();
    button.disabled = false;
    alert(err.message);
  }
}
