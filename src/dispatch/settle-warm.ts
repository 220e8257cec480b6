import { nodeLabels, parseRunLabels } from '../runtime/labels.js';
import type { WarmRuntime } from '../runtime/types.js';
import type { RunContext } from './context.js';
import { isDaemonAlive } from './identity.js';

/**
 * Removes this node's warm and reusable containers whose daemon is gone (at start-up, on
 * every reconciler pass, and before a redelivered run of this node is declared lost): an
 * idle one holds nothing, and one that had been delivered a run holds a run whose record has
 * no container to re-attach to (nothing on a warm container names its run), which the
 * existing rules make `lost`. A live daemon's (two daemons may share one engine) are its own.
 */
export async function settleWarm(ctx: RunContext): Promise<number> {
  const runtime = ctx.runtime as Partial<WarmRuntime>;
  if (typeof runtime.listWarm !== 'function') return 0;
  const { identity } = ctx;
  let removed = 0;
  for (const c of await runtime.listWarm(nodeLabels(identity.clusterId, identity.node))) {
    const owner = parseRunLabels(c.labels).daemon;
    if (owner === identity.daemonId) continue;
    if (owner && (await isDaemonAlive(ctx.redis, owner, identity.node))) continue;
    ctx.logger.info(
      { containerId: c.containerId.slice(0, 12), kind: c.kind, task: c.task },
      'removing a warm container left by a previous process',
    );
    await ctx.runtime.remove(c.containerId);
    removed++;
  }
  return removed;
}
