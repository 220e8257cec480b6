// Tasks: every task with its triggers, next times (its zone and yours), last run, a strip
// of the last 30 runs, success rate, and Run now with an optional JSON payload.

import {
  TERMINAL,
  Unauthorized,
  VIEWER_TZ,
  ago,
  badge,
  debounced,
  empty,
  fmtDuration,
  fmtShort,
  fmtTime,
  getJson,
  h,
  main,
  post,
  runLink,
  signedOut,
  svg,
  table,
} from './lib.js';

export async function tasksPage(view) {
  const { tasks } = await getJson('/api/tasks', { signal: view.ctrl.signal });
  const recent = await Promise.all(tasks.map((t) => recentRuns(t.name)));
  const rows = new Map();
  const body = tasks.map((t, i) => {
    const actions = h('td', { class: 'actions' }, runNowForm(t.name));
    const tr = h('tr', { 'data-task': t.name }, taskCells(t, recent[i]), actions);
    rows.set(t.name, tr);
    return tr;
  });
  main.replaceChildren(
    h('h1', {}, 'Tasks'),
    h(
      'p',
      { class: 'muted' },
      `Times in each task's zone, then yours (${VIEWER_TZ}). Bars: the last 30 runs, oldest left; height is duration.`,
    ),
    table(
      ['Task', 'Triggers', 'Next runs', 'Last run', 'Last 30', 'Success', ''],
      body.length ? body : empty(7, 'No tasks are configured.'),
      { id: 'tasks' },
    ),
  );

  const refreshRow = debounced(async (name) => {
    const tr = rows.get(name);
    if (!tr || view.disposed) return;
    const [t, runs] = await Promise.all([getJson(`/api/tasks/${encodeURIComponent(name)}`), recentRuns(name)]);
    // The actions cell stays: it may hold a payload being typed.
    const actions = tr.lastElementChild;
    tr.replaceChildren(...taskCells(t, runs), actions);
  }, 300);
  view.onChange = (c) => refreshRow(c.task);
  view.refresh = () => tasks.forEach((t) => refreshRow(t.name));
}

const recentRuns = async (task) => (await getJson(`/api/runs?task=${encodeURIComponent(task)}&limit=30`)).runs;

function taskCells(t, runs) {
  const cron = t.triggers.find((x) => x.type === 'cron');
  const zone = cron?.timezone ?? VIEWER_TZ;
  const last = t.lastRun;
  return [
    h(
      'td',
      {},
      h('strong', { class: 'task-name' }, t.name),
      t.paused && h('span', { class: 'flag' }, 'paused'),
      t.suspended && h('span', { class: 'flag' }, 'suspended'),
      t.description && h('div', { class: 'muted small' }, t.description),
    ),
    h(
      'td',
      {},
      h(
        'ul',
        { class: 'plain' },
        t.triggers.map((x) => h('li', {}, describeTrigger(x))),
      ),
    ),
    h(
      'td',
      { class: 'next' },
      t.nextRuns.length
        ? h(
            'ul',
            { class: 'plain' },
            t.nextRuns.map((at) =>
              h(
                'li',
                { class: 'nowrap' },
                h('span', {}, fmtShort(at, zone)),
                zone !== VIEWER_TZ && h('span', { class: 'muted small' }, ` · ${fmtShort(at)} yours`),
              ),
            ),
          )
        : h('span', { class: 'muted' }, 'on trigger'),
    ),
    h(
      'td',
      { class: 'last nowrap' },
      last
        ? [
            h('a', { href: `#/runs/${last.id}`, class: 'last-status', 'data-run-id': last.id }, badge(last.status)),
            ' ',
            fmtDuration(last.durationMs),
            h('div', { class: 'muted small' }, ago(last.createdAt)),
          ]
        : h('span', { class: 'muted' }, 'never ran'),
    ),
    h('td', {}, runStrip(runs)),
    h('td', { class: 'rate' }, successRate(runs)),
  ];
}

function describeTrigger(x) {
  switch (x.type) {
    case 'cron':
      return `cron "${x.schedule}" (${x.timezone})`;
    case 'webhook':
      return `webhook POST ${x.path}`;
    case 'queue':
      return `queue "${x.queue}"`;
    case 'mongo':
      return `mongo ${x.db}.${x.collection}${x.configured ? '' : ' (not watched)'}`;
    case 'after':
      return `after ${x.task} ${x.status.join('|')}`;
    case 'manual':
      return 'manual';
    default:
      return x.type;
  }
}

function runStrip(runs) {
  const W = 6,
    H = 28,
    n = 30;
  const ordered = [...runs].reverse();
  const max = Math.max(1, ...ordered.map((r) => r.durationMs ?? 0));
  return svg(
    'svg',
    { class: 'strip', width: n * W, height: H, viewBox: `0 0 ${n * W} ${H}`, role: 'img', 'aria-label': `last ${runs.length} runs` },
    svg('line', { x1: 0, x2: n * W, y1: H - 0.5, y2: H - 0.5, class: 'baseline' }),
    ordered.map((r, i) => {
      const hgt = r.durationMs ? Math.max(3, (r.durationMs / max) * H) : 3;
      return svg(
        'a',
        { href: `#/runs/${r.id}` },
        svg(
          'rect',
          { x: n * W - (ordered.length - i) * W, y: H - hgt, width: W - 1, height: hgt, class: `st-${r.status}` },
          svg('title', {}, `${r.status} · ${fmtDuration(r.durationMs)} · ${fmtTime(r.createdAt)}`),
        ),
      );
    }),
  );
}

function successRate(runs) {
  // Skipped and cancelled runs did not run to an outcome of their own.
  const ran = runs.filter((r) => TERMINAL.includes(r.status) && r.status !== 'skipped' && r.status !== 'cancelled');
  if (ran.length === 0) return h('span', { class: 'muted' }, '—');
  const ok = ran.filter((r) => r.status === 'succeeded').length;
  return h(
    'span',
    { title: `${ok} of the last ${ran.length} runs that ran succeeded` },
    `${Math.round((100 * ok) / ran.length)}%`,
    h('span', { class: 'muted small' }, ` ${ok}/${ran.length}`),
  );
}

function runNowForm(task) {
  const payload = h('textarea', {
    name: 'payload',
    rows: 3,
    placeholder: 'optional JSON payload, e.g. {"date": "2026-01-31"}',
    spellcheck: 'false',
  });
  const msg = h('div', { class: 'msg small' });
  const submit = async (e) => {
    e.preventDefault();
    const text = payload.value.trim();
    if (text) {
      try {
        JSON.parse(text);
      } catch (err) {
        return void msg.replaceChildren(h('span', { class: 'error' }, `Not JSON: ${err.message}`));
      }
    }
    try {
      const { id } = await post(`/api/tasks/${encodeURIComponent(task)}/runs`, text || undefined);
      msg.replaceChildren('queued ', runLink(id));
      msg.dataset.runId = id;
    } catch (err) {
      if (err instanceof Unauthorized) return signedOut();
      msg.replaceChildren(h('span', { class: 'error' }, err.message));
    }
  };
  return h(
    'details',
    { class: 'run-now needs-run' },
    h('summary', {}, 'Run now'),
    h('form', { onsubmit: submit }, payload, h('button', { type: 'submit' }, 'Start run')),
    msg,
  );
}
