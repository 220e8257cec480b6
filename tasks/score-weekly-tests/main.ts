import { createHash } from 'node:crypto';
import { log, output, payload, run, setting, TaskError } from '../lib/task.js';
import { createMailer, studentMessage, trainerMessage, type SmtpSettings } from './mail.js';
import { buildReports, summaryCsv, type Invalid, type Scored } from './report.js';
import { parseAnswerKey, parseSubmission, scoreSubmission, type AnswerKey, type Parsed } from './score.js';
import { createStore, layout, type Store } from './store.js';
import { formatWeek, parseWeek, weekToScore, type IsoWeek } from './week.js';

/**
 * score-weekly-tests: scores one ISO week's test submissions in S3 against the answer keys,
 * writes a report per student and a summary for the trainer back to S3, and emails each
 * student their scores and the trainer the summary. Safe to run again for the same week:
 * reports are rewritten with the same bytes, and emails already accepted are not re-sent.
 */

function flag(name: string, fallback: boolean): boolean {
  const v = setting(name, String(fallback)).toLowerCase();
  if (['true', '1', 'yes'].includes(v)) return true;
  if (['false', '0', 'no'].includes(v)) return false;
  throw new TaskError(`${name} must be true or false, not ${JSON.stringify(v)}`);
}

function checkTimeZone(zone: string): string {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return zone;
  } catch {
    throw new TaskError(`TIMEZONE ${JSON.stringify(zone)} is not an IANA time zone (e.g. Europe/Vienna)`);
  }
}

/** `{ "week": "2026-W47" }` in the payload wins; otherwise the week before the tick's (or now's) week. */
function chooseWeek(timeZone: string): { week: IsoWeek; because: string } {
  let body: unknown;
  try {
    body = payload<unknown>();
  } catch {
    throw new TaskError('the payload is not JSON; send e.g. { "week": "2026-W47" }');
  }
  if (body !== undefined) {
    if (typeof body !== 'object' || body === null || Array.isArray(body))
      throw new TaskError('the payload must be a JSON object, e.g. { "week": "2026-W47" }');
    const asked = (body as { week?: unknown }).week;
    if (asked !== undefined) {
      const week = typeof asked === 'string' ? parseWeek(asked) : undefined;
      if (!week) throw new TaskError(`payload week ${JSON.stringify(asked)} is not an ISO week like "2026-W47"`);
      return { week, because: 'payload' };
    }
  }
  const scheduledAt = process.env.RUNLET_SCHEDULED_AT;
  const reference = scheduledAt ? new Date(scheduledAt) : new Date();
  if (Number.isNaN(reference.getTime())) throw new TaskError(`RUNLET_SCHEDULED_AT ${JSON.stringify(scheduledAt)} is not a date`);
  return { week: weekToScore(reference, timeZone), because: scheduledAt ? `tick ${scheduledAt}` : `now ${reference.toISOString()}` };
}

function answerKeys(store: Store): (testId: string) => Promise<Parsed<AnswerKey>> {
  const cache = new Map<string, Promise<Parsed<AnswerKey>>>();
  const load = async (testId: string): Promise<Parsed<AnswerKey>> => {
    const key = layout.answerKey(testId);
    const text = await store.getText(key);
    if (text === undefined) return { ok: false, reason: `unknown test id (no ${key})` };
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      return { ok: false, reason: `answer key ${key} is not valid JSON` };
    }
    const parsed = parseAnswerKey(json, testId);
    return parsed.ok ? parsed : { ok: false, reason: `answer key ${key} is malformed: ${parsed.reason}` };
  };
  return (testId) => {
    if (!cache.has(testId)) cache.set(testId, load(testId));
    return cache.get(testId)!;
  };
}

async function main(): Promise<void> {
  const timeZone = checkTimeZone(setting('TIMEZONE', 'Europe/Vienna'));
  const endpoint = process.env.S3_ENDPOINT || undefined;
  const store = createStore({
    bucket: setting('S3_BUCKET'),
    region: setting('S3_REGION', 'us-east-1'),
    endpoint,
    forcePathStyle: flag('S3_FORCE_PATH_STYLE', endpoint !== undefined),
  });
  const secure = flag('SMTP_SECURE', false);
  const portText = setting('SMTP_PORT', secure ? '465' : '587');
  if (!/^\d{1,5}$/.test(portText)) throw new TaskError(`SMTP_PORT must be a port number, not ${JSON.stringify(portText)}`);
  const smtp: SmtpSettings = {
    host: setting('SMTP_HOST'),
    port: Number(portText),
    secure,
    user: process.env.SMTP_USER || undefined,
    pass: process.env.SMTP_PASS,
  };
  const mailFrom = setting('MAIL_FROM');
  const trainerEmail = setting('TRAINER_EMAIL');

  const { week, because } = chooseWeek(timeZone);
  const weekText = formatWeek(week);
  log('scoring week', { week: weekText, because, timeZone });

  // Read and score everything first: no email goes out for a week whose reports could not be written.
  const keyFor = answerKeys(store);
  const prefix = layout.submissionsOf(weekText);
  const scored: Scored[] = [];
  const invalid: Invalid[] = [];
  const ignored: string[] = [];
  for (const key of await store.list(prefix)) {
    if (key.endsWith('/')) continue; // a console's "folder" placeholder
    const parts = key.slice(prefix.length).split('/');
    if (parts.length !== 2 || !parts[0] || !/^.+\.json$/.test(parts[1])) {
      ignored.push(key);
      continue;
    }
    const studentId = parts[0];
    const testId = parts[1].slice(0, -'.json'.length);
    const bad = (reason: string) => invalid.push({ key, studentId, testId, reason });
    const text = await store.getText(key);
    if (text === undefined) continue; // deleted since the listing
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (err) {
      bad(`not valid JSON (${(err as Error).message})`);
      continue;
    }
    const submission = parseSubmission(json, { studentId, testId });
    if (!submission.ok) {
      bad(submission.reason);
      continue;
    }
    const answerKey = await keyFor(testId);
    if (!answerKey.ok) {
      bad(answerKey.reason);
      continue;
    }
    scored.push({ key, submission: submission.value, result: scoreSubmission(answerKey.value, submission.value) });
  }
  for (const i of invalid) log('submission not scored', { key: i.key, reason: i.reason });

  const { students, summary } = buildReports(week, scored, invalid, ignored);
  for (const report of students)
    await store.put(layout.studentReport(weekText, report.studentId), `${JSON.stringify(report, null, 2)}\n`, 'application/json');
  const summaryText = `${JSON.stringify(summary, null, 2)}\n`;
  const csv = summaryCsv(students);
  await store.put(layout.summaryJson(weekText), summaryText, 'application/json');
  await store.put(layout.summaryCsv(weekText), csv, 'text/csv; charset=utf-8');

  const mailer = createMailer(smtp, mailFrom);
  let emailed = 0;
  let alreadyEmailed = 0;
  const failures: string[] = [];
  const marker = (studentId: string, to: string, messageId: string) =>
    JSON.stringify({ week: weekText, studentId, to, messageId, runId: process.env.RUNLET_RUN_ID, sentAt: new Date().toISOString() });
  try {
    for (const report of students) {
      // A student with nothing scored gets no email yet: once the trainer fixes the key or
      // file and runs the week again, their first (and only) email has their score.
      if (!report.total || !report.email || !report.name) continue;
      const sentKey = layout.studentSent(weekText, report.studentId);
      if (await store.exists(sentKey)) {
        alreadyEmailed++;
        continue;
      }
      try {
        const messageId = await mailer.send(
          studentMessage({ ...report, email: report.email, name: report.name, total: report.total }, summary),
        );
        // At least once, not exactly once: the marker is written only after the SMTP server
        // accepted the message, so a crash or S3 failure between the two lines makes a
        // retry send this one email again. Writing the marker first would instead lose the
        // email for good on such a failure. Overlapping runs of the task would widen the
        // window; runlet's default concurrency of 1 keeps runs of one task apart.
        await store.put(sentKey, marker(report.studentId, report.email, messageId), 'application/json');
        emailed++;
      } catch (err) {
        failures.push(`${report.studentId}: ${(err as Error).message}`);
      }
    }

    // Keyed on the summary's bytes and the address: a retry with the same results sends
    // nothing, a re-run after a fix sends the trainer the corrected summary.
    const hash = createHash('sha256').update(`${trainerEmail}\n${summaryText}`).digest('hex').slice(0, 16);
    const trainerKey = layout.trainerSent(weekText, hash);
    let trainerEmailed = false;
    if (!(await store.exists(trainerKey))) {
      try {
        const messageId = await mailer.send(
          trainerMessage(summary, csv, trainerEmail, {
            summaryJson: layout.summaryJson(weekText),
            summaryCsv: layout.summaryCsv(weekText),
          }),
        );
        await store.put(trainerKey, marker('trainer', trainerEmail, messageId), 'application/json');
        trainerEmailed = true;
      } catch (err) {
        failures.push(`trainer: ${(err as Error).message}`);
      }
    }

    output({
      week: weekText,
      students: summary.students,
      submissions: summary.submissions,
      scored: summary.scored,
      invalid: summary.invalid,
      emailed,
      alreadyEmailed,
      trainerEmailed,
      emailFailed: failures.length,
    });
    log('done', {
      week: weekText,
      students: summary.students,
      scored: summary.scored,
      invalid: summary.invalid,
      emailed,
      alreadyEmailed,
      trainerEmailed,
    });
  } finally {
    mailer.close();
  }
  // After everything else: a failed run is retried, and the markers make that retry send
  // only the emails that did not go out.
  if (failures.length > 0) throw new Error(`${failures.length} email(s) not sent: ${failures.join('; ')}`);
}

run(main);
