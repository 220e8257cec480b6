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
/** On a container runlet starts for itself, not for a run (e.g. the host-address probe): never adopted. */
export const LABEL_PROBE = 'runlet.probe';
