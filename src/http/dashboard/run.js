// One run: its record, a timeline of its transitions, attempts, payload, output, and its
// logs followed live; Cancel and Retry.

import {
  TERMINAL,
  Unauthorized,
  api,
  badge,
  debounced,
  fmtBytes,
  fmtDuration,
  fmtNum,
  fmtTime,
  getJson,
  h,
  main,
  post,
  runLink,
  section,
  signedOut,
  sleep,
  svg,
  table,
  toMs,
} from './lib.js';

export async function runPage(view, id) {
  const run = await getJson(`/api/runs/${id}`);
  const head = h('div', {});
  const logs = h('pre', { id: 'logs', class: 'logs' });
  const logState = h('span', { class: 'muted small', id: 'log-state' });
  main.replaceChildren(head, section('Logs', logState, logs));
  // A viewer's token may not read logs (the API answers 403): the page says so instead of following.
  const follow = document.body.classList.contains('may-logs')
    ? followLogs(id, logs, logState, view.ctrl.signal)
    : (logs.replaceChildren('Your role may not read logs.'), { ended() {} });
  const render = (r) => {
    head.replaceChildren(...runHeader(r, view));
    if (TERMINAL.includes(r.status)) follow.ended();
  };
  render(run);

  const reload = debounced(async () => {
    const r = await getJson(`/api/runs/${id}`).catch(() => null);
    if (r && !view.disposed) render(r);
  }, 200);
  view.onChange = (c) => c.id === id && reload();
  view.refresh = () => reload();
}

function runHeader(r, view) {
  const ended = TERMINAL.includes(r.status);
  const msg = h('span', { class: 'msg' });
  const cancel = h(
    'button',
    {
      type: 'button',
      id: 'cancel',
      class: 'needs-cancel',
      onclick: async () => {
        if (!confirm(`Cancel run ${r.id}?`)) return;
        cancel.disabled = true;
        try {
          await post(`/api/runs/${r.id}/cancel`);
          msg.textContent = 'cancel sent';
        } catch (err) {
          cancel.disabled = false;
          msg.textContent = err.message;
        }
      },
    },
    'Cancel',
  );
  const retry = h(
    'button',
    {
      type: 'button',
      id: 'retry',
      class: 'needs-retry',
      onclick: async () => {
        try {
          const { id } = await post(`/api/runs/${r.id}/retry`);
          location.hash = `#/runs/${id}`;
        } catch (err) {
          msg.textContent = err.message;
        }
      },
    },
    'Retry',
  );
  const fact = (k, v) => (v === null || v === undefined || v === '' ? null : [h('dt', {}, k), h('dd', {}, v)]);
  return [
    h('h1', {}, 'Run ', h('span', { class: 'mono' }, r.id), ' ', h('span', { id: 'run-status' }, badge(r.status))),
    h('p', { class: 'actions' }, ended ? retry : cancel, ' ', msg),
    h(
      'dl',
      { class: 'facts' },
      fact('Task', h('a', { href: `#/history?task=${encodeURIComponent(r.task)}` }, r.task)),
      fact('Trigger', r.trigger),
      fact('Attempt', r.attempt ? `${r.attempt} of ${r.maxAttempts ?? 1}` : null),
      fact('Exit code', r.exitCode),
      fact('Reason', r.reason),
      fact('Created', fmtTime(r.createdAt)),
      fact('Scheduled for', r.scheduledAt && fmtTime(r.scheduledAt)),
      fact('Started', r.startedAt && fmtTime(r.startedAt)),
      fact('Finished', r.finishedAt && fmtTime(r.finishedAt)),
      fact('Duration', r.durationMs !== null ? fmtDuration(r.durationMs) : null),
      fact('Retry at', r.retryAt && fmtTime(r.retryAt)),
      fact('Retry of', r.retryOf && runLink(r.retryOf)),
      fact('Requested by', r.requestedBy),
      fact('Cancelled by', r.cancelledBy),
      fact('Node', r.node),
      fact('Image', r.image),
      fact('Container', r.containerId && h('span', { class: 'mono' }, r.containerId.slice(0, 12))),
      fact('Memory limit', r.memoryBytes && fmtBytes(r.memoryBytes)),
      fact('Usage', r.usage && `${fmtNum(r.usage.containerSeconds, 2)} container-s · ${fmtNum(r.usage.gbSeconds, 4)} GB-s`),
      fact('Dedupe key', r.dedupeKey && h('span', { class: 'mono small' }, r.dedupeKey)),
    ),
    section('Timeline', timeline(r)),
    r.attempts?.length
      ? section(
          'Attempts',
          table(
            ['#', 'Status', 'Exit', 'Reason', 'Started', 'Duration'],
            r.attempts.map((a) =>
              h(
                'tr',
                {},
                h('td', {}, a.attempt),
                h('td', {}, badge(a.status)),
                h('td', {}, a.exitCode ?? ''),
                h('td', {}, a.reason ?? ''),
                h('td', {}, fmtTime(a.startedAt)),
                h('td', {}, a.startedAt && a.finishedAt ? fmtDuration(toMs(a.finishedAt) - toMs(a.startedAt)) : '—'),
              ),
            ),
          ),
        )
      : null,
    section(
      'Payload',
      r.payload === null ? h('p', { class: 'muted' }, 'none') : h('pre', { class: 'json' }, JSON.stringify(r.payload, null, 2)),
    ),
    section(
      'Output',
      r.output === null
        ? h('p', { class: 'muted' }, 'none (the run wrote no /runlet/output.json)')
        : h('pre', { class: 'json', id: 'output' }, typeof r.output === 'string' ? r.output : JSON.stringify(r.output, null, 2)),
      r.outputError && h('p', { class: 'error' }, r.outputError),
    ),
  ].filter(Boolean);
}

function timeline(r) {
  const ts = r.transitions.map((t) => ({ ...t, ms: toMs(t.at) }));
  if (ts.length === 0) return h('p', { class: 'muted' }, 'no transitions');
  const start = ts[0].ms;
  const end = TERMINAL.includes(r.status) ? ts[ts.length - 1].ms : Date.now();
  const span = Math.max(1, end - start);
  const W = 800,
    H = 18;
  const bar = svg(
    'svg',
    { class: 'timeline', viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: 'none', role: 'img', 'aria-label': 'time spent in each status' },
    ts.map((t, i) => {
      if (TERMINAL.includes(t.status))
        return svg('rect', { x: W - 8, y: 0, width: 8, height: H, class: `st-${t.status}` }, svg('title', {}, t.status));
      const until = i + 1 < ts.length ? ts[i + 1].ms : end;
      const x = ((t.ms - start) / span) * W;
      return svg(
        'rect',
        { x, y: 0, width: Math.max(1, ((until - t.ms) / span) * W), height: H, class: `st-${t.status}` },
        svg('title', {}, `${t.status} for ${fmtDuration(until - t.ms)}`),
      );
    }),
  );
  const list = h(
    'ol',
    { class: 'transitions' },
    ts.map((t) =>
      h(
        'li',
        {},
        badge(t.status),
        ' ',
        h('span', { title: fmtTime(t.at) }, `+${fmtDuration(t.ms - start)}`),
        h('span', { class: 'muted small' }, ` ${fmtTime(t.at)}`),
        t.reason && h('span', {}, ` — ${t.reason}`),
      ),
    ),
  );
  return [bar, list];
}

/**
 * ?follow=1 streams the output so far, then new output, and ends with the run. It also
 * ends when there is nothing to follow yet (the run is queued) or on a daemon that cannot
 * follow (it answers with the text so far): the kept tail is read then, and the follow
 * tried again a second later, so the page is at worst a second behind.
 */
// A follow still open this long after the record says the run ended is cut, and the kept
// tail read instead: the page must not hang on a stream that failed to end.
const FOLLOW_GRACE_MS = 2000;

function followLogs(id, pre, state, signal) {
  let attempt = null;
  let ended = false;
  void followLoop(id, pre, state, signal, (ctrl) => {
    attempt = ctrl;
    if (ended) setTimeout(() => ctrl.abort(), FOLLOW_GRACE_MS);
  });
  return {
    ended() {
      if (ended) return;
      ended = true;
      const ctrl = attempt;
      setTimeout(() => ctrl?.abort(), FOLLOW_GRACE_MS);
    },
  };
}

async function followLoop(id, pre, state, signal, onAttempt) {
  const atBottom = () => pre.scrollHeight - pre.scrollTop - pre.clientHeight < 40;
  const show = (append, text) => {
    const stick = atBottom();
    if (append) pre.append(text);
    else if (pre.textContent !== text) pre.textContent = text;
    if (stick) pre.scrollTop = pre.scrollHeight;
  };
  while (!signal.aborted) {
    try {
      const ctrl = new AbortController();
      onAttempt(ctrl);
      const res = await api(`/api/runs/${id}/logs?follow=1`, { signal: AbortSignal.any([signal, ctrl.signal]) }).catch((err) => {
        if (err instanceof Unauthorized || signal.aborted) throw err;
        return null;
      });
      if (res?.ok && res.body) {
        state.textContent = 'live';
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        let first = true;
        for (;;) {
          const { value, done } = await reader.read().catch(() => ({ done: true }));
          if (done) break;
          // The stream starts with everything printed so far.
          if (first) pre.textContent = '';
          first = false;
          show(true, value);
        }
      }
      const tail = await api(`/api/runs/${id}/logs`, { signal });
      const status = tail.headers.get('x-runlet-run-status');
      show(false, await tail.text());
      if (!tail.ok || TERMINAL.includes(status)) {
        state.textContent = tail.ok ? `complete: the run ${status} (the last 64 KiB are kept)` : '';
        return;
      }
      state.textContent = status === 'queued' ? 'waiting for the run to start…' : 'live';
    } catch (err) {
      if (signal.aborted) return;
      if (err instanceof Unauthorized) return signedOut();
    }
    await sleep(1000, signal);
  }
}
