/**
 * Label names on every container runlet creates. Labels are how a restarted daemon finds,
 * re-attaches to and cleans up what a previous process left behind, so they are the one
 * place container ownership is recorded: change a name here and old containers are orphaned.
 */
export const LABEL_MANAGED = 'runlet.managed';
export const LABEL_RUN = 'runlet.run';
export const LABEL_TASK = 'runlet.task';
/** Added by the caller (dispatch), listed here so every reader uses the same names. */
export const LABEL_NODE = 'runlet.node';
export const LABEL_CLUSTER = 'runlet.cluster';
export const LABEL_DAEMON = 'runlet.daemon';
/** Epoch ms after which the run must be stopped; lets an adopting process keep the original timeout. */
export const LABEL_DEADLINE = 'runlet.deadline';
/**
 * The run's attempt (1-based) the container runs: an adopting process records its outcome and
 * log position as that attempt, and removes unrecorded a container of an attempt the run has
 * moved past.
 */
export const LABEL_ATTEMPT = 'runlet.attempt';
/**
 * What triggered the run (cron, webhook, ...): with the others, enough to record the run
 * again should Redis lose its record while the container runs (dispatch/orphans.ts).
 */
export const LABEL_TRIGGER = 'runlet.trigger';
/** On a container runlet starts for itself, not for a run (e.g. the host-address probe): never adopted. */
export const LABEL_PROBE = 'runlet.probe';
/**
 * On a warm instance (value: its instance id): a container created and started ahead of any
 * run, waiting on runlet's shim for one event. Labels cannot change after creation, so the
 * container never says which run it was given: it carries no runlet.run, the runs'
 * re-attach path (Runtime.list) never sees it, and start-up settling removes every one it
 * finds (an idle one holds nothing; a delivered one's run had its record written by the
 * daemon that died, and becomes lost like any run whose container is gone).
 */
export const LABEL_WARM = 'runlet.warm';
/** On a reusable instance (value: its instance id): serves Lambda Runtime API invocations one after another. */
export const LABEL_REUSE = 'runlet.reuse';
/** On an image runlet built from a task's `build:` directory. */
export const LABEL_IMAGE = 'runlet.image';

/** Every runlet label starts with this; a user's own extra labels may not (RUNLET_LABELS). */
export const LABEL_NAMESPACE = 'runlet.';
/** Except under this prefix, left to users who want runlet-looking labels of their own. */
export const USER_LABEL_PREFIX = `${LABEL_NAMESPACE}x-`;

/** What dispatch records on a run's container, besides the runtime's own labels. */
export interface RunLabels {
  readonly node: string;
  readonly cluster: string;
  /** The daemon process that started the container: a live one keeps it, a dead one's is adopted. */
  readonly daemon: string;
  /** Epoch ms. */
  readonly deadline: number;
  readonly attempt: number;
  /** The run's trigger kind; absent on containers of an older runlet. */
  readonly trigger?: string;
}

export function formatRunLabels(l: RunLabels): Record<string, string> {
  return {
    [LABEL_NODE]: l.node,
    [LABEL_CLUSTER]: l.cluster,
    [LABEL_DAEMON]: l.daemon,
    [LABEL_DEADLINE]: String(l.deadline),
    [LABEL_ATTEMPT]: String(l.attempt),
    ...(l.trigger !== undefined && { [LABEL_TRIGGER]: l.trigger }),
  };
}

/**
 * Reads what formatRunLabels wrote. A container made by an older runlet may lack some: its
 * attempt is then 1 (it predates retries), its deadline and daemon unknown.
 */
export function parseRunLabels(
  labels: Readonly<Record<string, string>>,
): Partial<Omit<RunLabels, 'attempt'>> & { readonly attempt: number } {
  const deadline = Number(labels[LABEL_DEADLINE]) || undefined;
  return {
    ...(labels[LABEL_NODE] !== undefined && { node: labels[LABEL_NODE] }),
    ...(labels[LABEL_CLUSTER] !== undefined && { cluster: labels[LABEL_CLUSTER] }),
    ...(labels[LABEL_DAEMON] && { daemon: labels[LABEL_DAEMON] }),
    ...(deadline !== undefined && { deadline }),
    ...(labels[LABEL_TRIGGER] && { trigger: labels[LABEL_TRIGGER] }),
    attempt: Number(labels[LABEL_ATTEMPT] ?? 1) || 1,
  };
}

/** The labels that pick out the containers of one node of one cluster (start-up settling). */
export function nodeLabels(cluster: string, node: string): Record<string, string> {
  return { [LABEL_MANAGED]: 'true', [LABEL_CLUSTER]: cluster, [LABEL_NODE]: node };
}
