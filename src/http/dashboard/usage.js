// Usage: GB-seconds used per day and per task, against what always-on workers of the same
// memory would have reserved.

import { empty, fmtNum, getOptional, h, main, section, svg, table } from './lib.js';

export async function usagePage(view) {
  const usage = await getOptional('/api/usage?days=30');
  if (usage === null) {
    main.replaceChildren(
      h('h1', {}, 'Usage'),
      h('p', { class: 'muted', id: 'usage-na' }, 'Not available: this daemon has no GET /api/usage.'),
    );
    return;
  }
  const days = [...(usage.days ?? [])].sort((a, b) => a.day.localeCompare(b.day));
  const perDay = days.map((d) => {
    const ts = Object.values(d.tasks ?? {});
    return {
      day: d.day,
      used: sum(ts, 'gbSeconds'),
      alwaysOn: sum(ts, 'alwaysOnGbSeconds'),
      seconds: sum(ts, 'containerSeconds'),
      runs: sum(ts, 'runs'),
    };
  });
  const perTask = new Map();
  for (const d of days) {
    for (const [task, u] of Object.entries(d.tasks ?? {})) {
      const t = perTask.get(task) ?? { runs: 0, containerSeconds: 0, gbSeconds: 0, alwaysOnGbSeconds: 0 };
      for (const k of Object.keys(t)) t[k] += u[k] ?? 0;
      perTask.set(task, t);
    }
  }
  const used = sum(perDay, 'used');
  const alwaysOn = sum(perDay, 'alwaysOn');
  const taskRows = [...perTask.entries()]
    .sort((a, b) => b[1].gbSeconds - a[1].gbSeconds)
    .map(([task, t]) =>
      h(
        'tr',
        { 'data-task': task },
        h('td', {}, task),
        h('td', { class: 'num' }, fmtNum(t.runs, 0)),
        h('td', { class: 'num' }, fmtNum(t.containerSeconds)),
        h('td', { class: 'num' }, fmtNum(t.gbSeconds, 3)),
        h('td', { class: 'num' }, fmtNum(t.alwaysOnGbSeconds, 0)),
        h('td', { class: 'num' }, saving(t.gbSeconds, t.alwaysOnGbSeconds)),
      ),
    );

  const dayRows = [...days].reverse().flatMap((d) =>
    Object.entries(d.tasks ?? {})
      .filter(([, u]) => u.runs > 0)
      .map(([task, u]) =>
        h(
          'tr',
          {},
          h('td', {}, d.day),
          h('td', {}, task),
          h('td', { class: 'num' }, fmtNum(u.runs, 0)),
          h('td', { class: 'num' }, fmtNum(u.containerSeconds)),
          h('td', { class: 'num' }, fmtNum(u.gbSeconds, 3)),
          h('td', { class: 'num' }, fmtNum(u.alwaysOnGbSeconds, 0)),
          h('td', { class: 'num' }, saving(u.gbSeconds, u.alwaysOnGbSeconds)),
        ),
      ),
  );
  main.replaceChildren(
    h('h1', {}, 'Usage'),
    h(
      'p',
      { class: 'headline' },
      `Last ${days.length} day(s): ${fmtNum(used, 2)} GB-s used, against ${fmtNum(alwaysOn, 0)} GB-s that always-on workers of the same memory would have reserved — `,
      h('strong', {}, saving(used, alwaysOn)),
      ' saved.',
    ),
    section(
      'Per day',
      usageChart(perDay),
      h('p', { class: 'muted small' }, 'GB-seconds per day, log scale: used (dark) and always-on reservation (light).'),
    ),
    section(
      'Per task',
      table(
        ['Task', 'Runs', 'Container-s', 'GB-s used', 'GB-s always-on', 'Saving'],
        taskRows.length ? taskRows : empty(6, 'No runs in this period.'),
        { id: 'usage-tasks' },
      ),
    ),
    section(
      'Per task and day',
      h('p', { class: 'muted small' }, 'Days on which a task did not run are left out.'),
      table(
        ['Day', 'Task', 'Runs', 'Container-s', 'GB-s used', 'GB-s always-on', 'Saving'],
        dayRows.length ? dayRows : empty(7, 'No runs in this period.'),
        { id: 'usage-days' },
      ),
    ),
  );
}

const sum = (xs, k) => xs.reduce((a, x) => a + (x[k] ?? 0), 0);
// Savings are often 99.9…%: enough digits that two tasks can still be told apart.
function saving(used, alwaysOn) {
  if (!(alwaysOn > 0)) return '—';
  const pct = 100 * (1 - used / alwaysOn);
  return `${pct.toFixed(pct > 99 ? 3 : 1)}% (${fmtNum(alwaysOn - used, 0)} GB-s)`;
}

/** Used and always-on differ by orders of magnitude, so the axis is logarithmic and labelled. */
function usageChart(perDay) {
  const W = 760,
    H = 220,
    L = 56,
    B = 24,
    T = 8;
  if (perDay.length === 0) return h('p', { class: 'muted' }, 'No data.');
  const maxV = Math.max(1, ...perDay.map((d) => Math.max(d.used, d.alwaysOn)));
  const top = Math.ceil(Math.log10(maxV));
  const bottom = Math.min(-2, top - 6);
  const y = (v) => (v <= 0 ? H - B : T + (H - B - T) * (1 - (Math.log10(Math.max(v, 10 ** bottom)) - bottom) / (top - bottom)));
  const slot = (W - L) / perDay.length;
  const ticks = [];
  for (let e = bottom; e <= top; e++) {
    ticks.push(
      svg('line', { x1: L, x2: W, y1: y(10 ** e), y2: y(10 ** e), class: 'grid' }),
      svg('text', { x: L - 6, y: y(10 ** e) + 4, class: 'axis', 'text-anchor': 'end' }, fmtNum(10 ** e, 2)),
    );
  }
  const bars = perDay.map((d, i) => {
    const x = L + i * slot;
    const w = Math.max(2, slot * 0.7);
    return svg(
      'g',
      {},
      svg('rect', { x, y: y(d.alwaysOn), width: w, height: H - B - y(d.alwaysOn), class: 'always-on' }),
      svg('rect', { x: x + w * 0.2, y: y(d.used), width: w * 0.6, height: H - B - y(d.used), class: 'used' }),
      svg(
        'title',
        {},
        `${d.day}: ${fmtNum(d.used, 3)} GB-s used of ${fmtNum(d.alwaysOn, 0)} always-on; ${fmtNum(d.runs, 0)} runs, ${fmtNum(d.seconds)} container-s`,
      ),
      i % Math.ceil(perDay.length / 10) === 0 &&
        svg('text', { x: x + w / 2, y: H - 6, class: 'axis', 'text-anchor': 'middle' }, d.day.slice(5)),
    );
  });
  return svg(
    'svg',
    { class: 'chart', id: 'usage-chart', viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': 'GB-seconds used and always-on per day' },
    ticks,
    bars,
  );
}
