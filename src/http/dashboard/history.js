// History: runs filtered by task, status, trigger and time; rows follow live changes.

import { STATUSES, TRIGGERS, ago, badge, debounced, empty, fmtDuration, fmtTime, getJson, h, main, runLink, table, toMs } from './lib.js';

export async function historyPage(view, query) {
  const q = new URLSearchParams(query ?? '');
  const f = {
    task: q.get('task') ?? '',
    status: q.get('status') ?? '',
    trigger: q.get('trigger') ?? '',
    since: q.get('since') ?? '',
    until: q.get('until') ?? '',
    limit: q.get('limit') ?? '50',
  };
  const { tasks } = await getJson('/api/tasks');
  const select = (name, options) =>
    h(
      'select',
      { name },
      h('option', { value: '' }, `any ${name}`),
      options.map((o) => h('option', { value: o, selected: o === f[name] }, o)),
    );
  const form = h(
    'form',
    {
      id: 'filters',
      class: 'filters',
      onsubmit: (e) => {
        e.preventDefault();
        const data = new URLSearchParams();
        for (const [k, v] of new FormData(form)) if (v) data.set(k, String(v));
        location.hash = `#/history?${data}`;
      },
    },
    select(
      'task',
      tasks.map((t) => t.name),
    ),
    select('status', STATUSES),
    select('trigger', TRIGGERS),
    h('label', {}, 'from ', h('input', { type: 'datetime-local', name: 'since', value: f.since })),
    h('label', {}, 'to ', h('input', { type: 'datetime-local', name: 'until', value: f.until })),
    h(
      'select',
      { name: 'limit' },
      ['50', '100', '200'].map((n) => h('option', { value: n, selected: n === f.limit }, `${n} runs`)),
    ),
    h('button', { type: 'submit' }, 'Show'),
  );

  const sinceMs = f.since ? Date.parse(f.since) : -Infinity;
  const untilMs = f.until ? Date.parse(f.until) : Infinity;
  const limit = Number(f.limit) || 50;
  const base = new URLSearchParams();
  for (const k of ['task', 'status', 'trigger']) if (f[k]) base.set(k, f[k]);
  const inWindow = (r) => toMs(r.createdAt) >= sinceMs && toMs(r.createdAt) < untilMs;
  const matches = (r) =>
    (!f.task || r.task === f.task) && (!f.status || r.status === f.status) && (!f.trigger || r.trigger === f.trigger) && inWindow(r);

  // The time window is applied here: pages of the newest runs are read until enough fall
  // inside it or the runs get older than its start.
  let before = '';
  let exhausted = false;
  const fetchPage = async () => {
    const out = [];
    for (let pages = 0; out.length < limit && pages < 20 && !exhausted; pages++) {
      const p = new URLSearchParams(base);
      p.set('limit', String(limit));
      if (before) p.set('before', before);
      const { runs } = await getJson(`/api/runs?${p}`);
      if (runs.length < limit) exhausted = true;
      if (runs.length === 0) break;
      before = runs[runs.length - 1].id;
      out.push(...runs.filter(inWindow));
      if (toMs(runs[runs.length - 1].createdAt) < sinceMs) exhausted = true;
    }
    return out;
  };

  const tbody = h('tbody', {});
  const more = h('button', { type: 'button', id: 'older', onclick: async () => appendRows(await fetchPage()) }, 'Older runs');
  const appendRows = (runs) => {
    tbody.querySelector('tr.empty')?.remove();
    tbody.append(...runs.map(historyRow));
    if (!tbody.children.length) tbody.append(empty(9, 'No runs match.'));
    more.hidden = exhausted;
  };
  main.replaceChildren(
    h('h1', {}, 'History'),
    form,
    h(
      'table',
      { id: 'history' },
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          ['Run', 'Task', 'Trigger', 'Status', 'Attempt', 'Created', 'Duration', 'Exit', 'Reason'].map((c) => h('th', {}, c)),
        ),
      ),
      tbody,
    ),
    more,
  );
  appendRows(await fetchPage());

  const update = debounced(async (id) => {
    if (view.disposed) return;
    const run = await getJson(`/api/runs/${id}`).catch(() => null);
    if (!run || view.disposed) return;
    const row = tbody.querySelector(`tr[data-run-id="${CSS.escape(id)}"]`);
    if (row) return matches(run) ? row.replaceWith(historyRow(run)) : row.remove();
    if (!matches(run)) return;
    // Run ids are ULIDs: sorting them as strings sorts by creation time, newest first here.
    tbody.querySelector('tr.empty')?.remove();
    const after = [...tbody.children].find((tr) => tr.dataset.runId < id);
    tbody.insertBefore(historyRow(run), after ?? null);
  }, 250);
  view.onChange = (c) => update(c.id);
  view.refresh = () => view.reload();
}

function historyRow(r) {
  return h(
    'tr',
    { 'data-run-id': r.id, 'data-status': r.status },
    h('td', {}, runLink(r.id)),
    h('td', {}, r.task),
    h('td', {}, r.trigger),
    h('td', {}, badge(r.status), r.dead && h('span', { class: 'flag' }, 'dead')),
    h('td', {}, r.maxAttempts > 1 ? `${r.attempt}/${r.maxAttempts}` : ''),
    h('td', { title: fmtTime(r.createdAt) }, ago(r.createdAt)),
    h('td', {}, fmtDuration(r.durationMs)),
    h('td', {}, r.exitCode ?? ''),
    h('td', { class: 'reason' }, r.reason ?? ''),
  );
}
