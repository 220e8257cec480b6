/**
 * A run of a task that this daemon's config does not have (a reload removed it while its
 * job was being fetched). Not the run's failure: another daemon, whose config has the task,
 * may run it, so the worker hands the job back to the queue (dispatch/workers.ts).
 */
export class TaskNotConfigured extends Error {
  constructor(readonly task: string) {
    super(`task "${task}" is not in the configuration this daemon runs`);
    this.name = 'TaskNotConfigured';
  }
}
