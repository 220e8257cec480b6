// A minimal task: prints what runlet tells every run about itself, then exits 0.
const { RUNLET_RUN_ID, RUNLET_TASK, RUNLET_TRIGGER, RUNLET_SCHEDULED_AT } = process.env;
console.log(
  JSON.stringify({
    msg: 'hello from a runlet task',
    run: RUNLET_RUN_ID,
    task: RUNLET_TASK,
    trigger: RUNLET_TRIGGER,
    scheduledAt: RUNLET_SCHEDULED_AT,
  }),
);
