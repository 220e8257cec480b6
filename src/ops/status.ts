import type { Redis } from 'ioredis';
import type { RunletConfig } from '../config/types.js';
import { nextFireTimes } from '../config/fire-times.js';
import { liveDaemons, type Identity } from '../dispatch/identity.js';
import type { RunReader } from '../runs/store.js';
import { clusterNodes } from './nodes.js';
import { loadWaitFacts, queuedEntries } from './waiting.js';

export interface StatusSources {
  readonly redis: Redis;
  readonly store: RunReader;
  readonly config: RunletConfig;
  readonly identity: Identity;
}

/**
 * GET /api/status: the live daemons, each node (live and gone, ops/nodes.ts), runs in
 * progress, queued runs with why each waits, and each task's next fire. Each run list and
 * the heartbeats are read once, in parallel; the wait explanations and the nodes reuse
 * them, so an open dashboard costs a fixed number of round trips.
 */
export async function clusterStatus(s: StatusSources, now = Date.now()): Promise<Record<string, unknown>> {
  const [live, running, queued] = await Promise.all([
    liveDaemons(s.redis),
    s.store.list({ status: ['starting', 'running'], limit: 1000 }),
    s.store.list({ status: ['queued'], limit: 200 }),
  ]);
  const [facts, nodes] = await Promise.all([loadWaitFacts(s.redis, s.config, now, { live }), clusterNodes(s.redis, now, live)]);
  return {
    node: s.identity.node,
    daemons: live,
    nodes,
    running: running.slice(0, 200).map((r) => ({ id: r.id, task: r.task, status: r.status, node: r.node, startedAt: r.startedAt })),
    queued: queuedEntries(queued, facts),
    next: Object.values(s.config.tasks)
      .flatMap((t) => nextFireTimes(t, 1).map((at) => ({ task: t.name, at })))
      .sort((a, b) => a.at - b.at),
  };
}
