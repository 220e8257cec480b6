import { DeleteObjectCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunRecord } from '../src/runs/types.js';
import { configFrom, removeClusterContainers, startTestDaemon, type TestDaemon } from './helpers/daemon.js';
import { startS3, startSmtp } from './helpers/host.js';
import { startTestRedis } from './helpers/redis.js';

// score-weekly-tests end to end: its image (scripts/build-images.sh) run by a real daemon
// against a real S3 server (s3rver) and a real SMTP server, both in this process: every
// wait below is async, so they keep answering the container.

const TASK = 'score-weekly-tests';
const BUCKET = 'course';

let s3: Awaited<ReturnType<typeof startS3>>;
let smtp: Awaited<ReturnType<typeof startSmtp>>;
let redis: Awaited<ReturnType<typeof startTestRedis>>;
let daemon: TestDaemon;
let client: S3Client;

const put = (key: string, body: unknown) =>
  client.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: typeof body === 'string' ? body : JSON.stringify(body) }));
const get = async (key: string) => (await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }))).Body!.transformToString();
const keys = async (prefix: string) =>
  ((await client.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: prefix }))).Contents ?? []).map((o) => o.Key!).sort();
const snapshot = async (prefix: string) =>
  Object.fromEntries(await Promise.all((await keys(prefix)).map(async (k) => [k, await get(k)] as const)));

const sub = (studentId: string, name: string, testId: string, answers: Record<string, unknown>) => ({
  studentId,
  email: `${studentId}@example.org`,
  name,
  testId,
  submittedAt: '2026-11-20T09:30:00+01:00',
  answers,
});

async function seed(): Promise<void> {
  await put('answer-keys/quiz-1.json', {
    testId: 'quiz-1',
    title: 'Fractions',
    questions: [
      { id: 'q1', answer: 'one half', points: 4 },
      { id: 'q2', answer: 0.75, points: 4, tolerance: 0.01 },
      { id: 'q3', answer: 3, points: 2 },
    ],
  });
  await put('answer-keys/quiz-2.json', {
    testId: 'quiz-2',
    title: 'Geometry',
    questions: [
      { id: 'g1', answer: 180, points: 5 },
      { id: 'g2', answer: 'hypotenuse', points: 5 },
    ],
  });
  // ana: 10/10 + 5/10 = 75 % (C). ben: 4/10 (F) and a test with no answer key. cleo: a broken file.
  await put('submissions/2026-W47/ana/quiz-1.json', sub('ana', 'Ana Müller', 'quiz-1', { q1: ' One  Half', q2: '0,75', q3: 3 }));
  await put('submissions/2026-W47/ana/quiz-2.json', sub('ana', 'Ana Müller', 'quiz-2', { g1: '180', g2: 'leg' }));
  await put('submissions/2026-W47/ben/quiz-1.json', sub('ben', 'Ben Okafor', 'quiz-1', { q1: 'a half', q2: 0.76, q3: 2 }));
  await put('submissions/2026-W47/ben/quiz-9.json', sub('ben', 'Ben Okafor', 'quiz-9', { x: 1 }));
  await put('submissions/2026-W47/cleo/quiz-1.json', '{"studentId": "cleo", "answers": {');
  await put('submissions/2026-W47/notes.txt', 'not a submission');
  await put('submissions/2026-W46/ana/quiz-1.json', sub('ana', 'Ana Müller', 'quiz-1', { q1: 'one half' }));
  // The week the cron tick of Monday 30 Nov 2026 23:00 Vienna scores.
  await put('submissions/2026-W48/dave/quiz-2.json', sub('dave', 'Dave Kim', 'quiz-2', { g1: 180, g2: 'Hypotenuse' }));
}

beforeAll(async () => {
  [s3, smtp, redis] = await Promise.all([startS3([BUCKET]), startSmtp(), startTestRedis()]);
  client = new S3Client({
    endpoint: s3.endpointForHost,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
  });
  await seed();
  const config = configFrom(`
tasks:
  ${TASK}:
    image: runlet/task-${TASK}:local
    memory: 256m
    timeout: 30s
    env:
      S3_ENDPOINT: ${s3.endpointForContainers}
      S3_BUCKET: ${BUCKET}
      AWS_ACCESS_KEY_ID: S3RVER
      AWS_SECRET_ACCESS_KEY: S3RVER
      SMTP_HOST: ${smtp.hostForContainers}
      SMTP_PORT: ${smtp.port}
      MAIL_FROM: "Course Bot <course@example.org>"
      TRAINER_EMAIL: trainer@example.org
`);
  daemon = await startTestDaemon({ config, redisUrl: redis.url });
});

afterAll(async () => {
  await daemon?.stop();
  if (daemon) await removeClusterContainers(daemon.identity.clusterId);
  await Promise.all([redis?.stopAndClean(), s3?.stop(), smtp?.stop()]);
  client?.destroy();
});

async function manualRun(body: unknown): Promise<RunRecord> {
  const res = await fetch(`${daemon.url}/api/tasks/${TASK}/runs`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  expect(res.status).toBe(202);
  const { id } = (await res.json()) as { id: string };
  return daemon.waitForEnd(id);
}

function outputOf(rec: RunRecord): Record<string, unknown> {
  expect(rec.status, rec.logTail).toBe('succeeded');
  return JSON.parse(rec.output!);
}

/** The message as text: quoted-printable soft breaks joined and =XX bytes decoded as UTF-8. */
function decoded(raw: string): string {
  const joined = raw.replace(/=\r?\n/g, '');
  return Buffer.from(
    joined.replace(/=([0-9A-F]{2})/g, (_m, hex: string) => String.fromCharCode(parseInt(hex, 16))),
    'latin1',
  ).toString('utf8');
}
const subject = (raw: string) => /^Subject: (.*)$/m.exec(raw)?.[1];

describe('score-weekly-tests', () => {
  it('a manual run for a week scores it, writes reports and a summary, and emails each scored student and the trainer', async () => {
    const out = outputOf(await manualRun({ week: '2026-W47' }));
    expect(out).toEqual({
      week: '2026-W47',
      students: 3,
      submissions: 5,
      scored: 3,
      invalid: 2,
      emailed: 2,
      alreadyEmailed: 0,
      trainerEmailed: true,
      emailFailed: 0,
    });

    const ana = JSON.parse(await get('reports/2026-W47/students/ana.json'));
    expect(ana).toMatchObject({
      week: '2026-W47',
      studentId: 'ana',
      name: 'Ana Müller',
      email: 'ana@example.org',
      invalid: [],
      total: { points: 15, maxPoints: 20, percent: 75, grade: 'C' },
    });
    expect(ana.tests.map((t: { testId: string; points: number; grade: string }) => [t.testId, t.points, t.grade])).toEqual([
      ['quiz-1', 10, 'A'],
      ['quiz-2', 5, 'F'],
    ]);
    const ben = JSON.parse(await get('reports/2026-W47/students/ben.json'));
    expect(ben.total).toEqual({ points: 4, maxPoints: 10, percent: 40, grade: 'F' });
    expect(ben.invalid).toEqual([{ testId: 'quiz-9', reason: 'unknown test id (no answer-keys/quiz-9.json)' }]);
    const cleo = JSON.parse(await get('reports/2026-W47/students/cleo.json'));
    expect(cleo).toMatchObject({
      studentId: 'cleo',
      tests: [],
      total: null,
      invalid: [{ testId: 'quiz-1', reason: expect.stringContaining('not valid JSON') }],
    });

    const summary = JSON.parse(await get('reports/2026-W47/summary.json'));
    expect(summary).toMatchObject({
      week: '2026-W47',
      from: '2026-11-16',
      to: '2026-11-22',
      students: 3,
      submissions: 5,
      scored: 3,
      invalid: 2,
      ignoredKeys: ['submissions/2026-W47/notes.txt'],
    });
    expect(summary.perTest).toEqual([
      { testId: 'quiz-1', title: 'Fractions', submissions: 2, averagePercent: 70 },
      { testId: 'quiz-2', title: 'Geometry', submissions: 1, averagePercent: 50 },
    ]);
    const csv = await get('reports/2026-W47/summary.csv');
    expect(csv).toContain('2026-W47,ana,Ana Müller,ana@example.org,quiz-1,Fractions,scored,10,10,100,A,\r\n');
    expect(csv).toContain('2026-W47,cleo,,,quiz-1,,invalid,,,,,');

    expect(await keys('notifications/2026-W47/')).toEqual([
      'notifications/2026-W47/ana.sent',
      'notifications/2026-W47/ben.sent',
      expect.stringMatching(/^notifications\/2026-W47\/trainer-[0-9a-f]{16}\.sent$/),
    ]);

    expect(smtp.messages.map((m) => m.to)).toEqual([['ana@example.org'], ['ben@example.org'], ['trainer@example.org']]);
    expect(smtp.messages.every((m) => m.from === 'course@example.org')).toBe(true);
    const [toAna, toBen, toTrainer] = smtp.messages.map((m) => ({ subject: subject(m.raw), text: decoded(m.raw) }));
    expect(toAna.subject).toBe('Your test results for week 2026-W47: 75% (C)');
    expect(toAna.text).toContain('Hello Ana Müller,');
    expect(toAna.text).toContain('- Fractions (quiz-1): 10/10 points, 100%, grade A');
    expect(toAna.text).toContain('Total: 15/20 points, 75%, grade C');
    expect(toBen.subject).toBe('Your test results for week 2026-W47: 40% (F)');
    expect(toBen.text).toContain('- quiz-9: unknown test id');
    expect(toTrainer.subject).toBe('Weekly test summary 2026-W47: 3 students, 3 scored, 2 invalid');
    expect(toTrainer.text).toContain('- Ana Müller (ana): 15/20 points, 75%, grade C over 2 test(s)');
    expect(toTrainer.text).toContain('- cleo (cleo): nothing scored, 1 invalid');
    expect(toTrainer.text).toContain('submissions/2026-W47/cleo/quiz-1.json: not valid JSON');
    expect(toTrainer.text).toContain('filename=summary-2026-W47.csv');
  });

  it('running the same week again sends no email twice and rewrites the reports byte for byte', async () => {
    const before = await snapshot('reports/2026-W47/');
    expect(Object.keys(before)).toHaveLength(5);
    const sent = smtp.messages.length;

    const out = outputOf(await manualRun({ week: '2026-W47' }));
    expect(out).toMatchObject({ week: '2026-W47', scored: 3, invalid: 2, emailed: 0, alreadyEmailed: 2, trainerEmailed: false });
    expect(smtp.messages).toHaveLength(sent);
    expect(await snapshot('reports/2026-W47/')).toEqual(before);
  });

  it('a retry after a run that emailed only some students sends just the missing emails', async () => {
    // As if the last run died after Ana's email and marker but before Ben's.
    await client.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: 'notifications/2026-W47/ben.sent' }));
    const sent = smtp.messages.length;
    const out = outputOf(await manualRun({ week: '2026-W47' }));
    expect(out).toMatchObject({ emailed: 1, alreadyEmailed: 1, trainerEmailed: false });
    expect(smtp.messages.slice(sent).map((m) => m.to)).toEqual([['ben@example.org']]);
    expect(await keys('notifications/2026-W47/ben.sent')).toEqual(['notifications/2026-W47/ben.sent']);
  });

  it('a cron run scores the week before its tick (Monday 30 Nov 2026 23:00 Vienna → 2026-W48)', async () => {
    const tick = Date.parse('2026-11-30T22:00:00Z');
    const { runId } = await daemon.submit({ task: TASK, trigger: 'cron', dedupeKey: `${TASK}:cron:${tick}`, scheduledAt: tick });
    const sent = smtp.messages.length;
    const out = outputOf(await daemon.waitForEnd(runId));
    expect(out).toEqual({
      week: '2026-W48',
      students: 1,
      submissions: 1,
      scored: 1,
      invalid: 0,
      emailed: 1,
      alreadyEmailed: 0,
      trainerEmailed: true,
      emailFailed: 0,
    });
    expect(smtp.messages.slice(sent).map((m) => [m.to, subject(m.raw)])).toEqual([
      [['dave@example.org'], 'Your test results for week 2026-W48: 100% (A)'],
      [['trainer@example.org'], 'Weekly test summary 2026-W48: 1 students, 1 scored, 0 invalid'],
    ]);
    expect(await keys('reports/2026-W48/')).toEqual([
      'reports/2026-W48/students/dave.json',
      'reports/2026-W48/summary.csv',
      'reports/2026-W48/summary.json',
    ]);
  });

  it('a payload week that is not an ISO week fails the run with exit code 2 and a one-line reason', async () => {
    const rec = await manualRun({ week: '2026-W60' });
    expect(rec.status).toBe('failed');
    expect(rec.exitCode).toBe(2);
    expect(rec.logTail).toContain('payload week "2026-W60" is not an ISO week like "2026-W47"');
  });
});
