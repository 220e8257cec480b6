import { describe, expect, it } from 'vitest';
import { nextFireTimes } from '../src/config/fire-times.js';
import { buildReports, summaryCsv } from '../tasks/score-weekly-tests/report.js';
import {
  gradeFor,
  matches,
  parseAnswerKey,
  parseSubmission,
  scoreSubmission,
  type AnswerKey,
  type Question,
} from '../tasks/score-weekly-tests/score.js';
import { formatWeek, isoWeekOfDate, parseWeek, weekDates, weekToScore } from '../tasks/score-weekly-tests/week.js';
import { configFrom } from './helpers/daemon.js';

// The pure parts of the score-weekly-tests example task: scoring rules, the week a run
// scores, and the config line's fire times (no Docker, no servers).

const VIENNA = 'Europe/Vienna';
const week = (iso: string) => formatWeek(weekToScore(new Date(iso), VIENNA));
const q = (answer: Question['answer'], extra: Partial<Question> = {}): Question => ({ id: 'q', answer, points: 1, ...extra });

describe('scoring', () => {
  it('matches text ignoring case, surrounding and repeated whitespace, and Unicode form', () => {
    expect(matches(q('Mitochondria'), '  mitochondria ')).toBe(true);
    expect(matches(q('New  York'), 'new york')).toBe(true);
    expect(matches(q('café'), 'CAFE\u0301')).toBe(true);
    expect(matches(q('Paris'), 'Pariss')).toBe(false);
    expect(matches(q('42'), 42)).toBe(true);
    expect(matches(q('Paris'), ['Paris'])).toBe(false);
  });

  it('matches numbers within the key tolerance, from numbers or numeric text (decimal comma too)', () => {
    expect(matches(q(3.14, { tolerance: 0.01 }), 3.15)).toBe(true);
    expect(matches(q(3.14, { tolerance: 0.01 }), '3,145')).toBe(true);
    expect(matches(q(3.14, { tolerance: 0.01 }), 3.16)).toBe(false);
    expect(matches(q(0.3), 0.1 + 0.2)).toBe(true);
    expect(matches(q(12), ' 12 ')).toBe(true);
    expect(matches(q(0), '')).toBe(false);
    expect(matches(q(12), '12 apples')).toBe(false);
    expect(matches(q(true), 'TRUE')).toBe(true);
    expect(matches(q(false), true)).toBe(false);
  });

  it('gives all or nothing per question, sums points, and grades the rounded percent', () => {
    const key: AnswerKey = {
      testId: 'quiz-1',
      title: 'Fractions',
      questions: [
        { id: 'a', answer: 'half', points: 2 },
        { id: 'b', answer: 0.75, points: 1.5, tolerance: 0.001 },
        { id: 'c', answer: 'third', points: 3 },
      ],
    };
    const sub = parseSubmission(
      { studentId: 's1', email: 'a@example.org', name: 'A', testId: 'quiz-1', answers: { a: 'Half', b: '0,75', c: '', extra: 'x' } },
      { studentId: 's1', testId: 'quiz-1' },
    );
    if (!sub.ok) throw new Error(sub.reason);
    const r = scoreSubmission(key, sub.value);
    expect(r).toMatchObject({ points: 3.5, maxPoints: 6.5, percent: 53.8, grade: 'F' });
    expect(r.questions.map((x) => [x.id, x.correct, x.answered])).toEqual([
      ['a', true, true],
      ['b', true, true],
      ['c', false, false],
    ]);
    expect([gradeFor(100), gradeFor(90), gradeFor(89.9), gradeFor(80), gradeFor(70), gradeFor(60), gradeFor(59.9)]).toEqual([
      'A',
      'A',
      'B',
      'B',
      'C',
      'D',
      'F',
    ]);
  });

  it('reports malformed answer keys and submissions with a reason instead of throwing', () => {
    const good = { testId: 't', title: 'T', questions: [{ id: 'a', answer: 1, points: 1 }] };
    expect(parseAnswerKey(good, 't').ok).toBe(true);
    expect(parseAnswerKey({ ...good, testId: 'other' }, 't')).toMatchObject({ ok: false, reason: expect.stringContaining('file name') });
    expect(parseAnswerKey({ ...good, questions: [] }, 't')).toMatchObject({ ok: false });
    expect(parseAnswerKey({ ...good, questions: [{ id: 'a', answer: 1, points: 0 }] }, 't')).toMatchObject({
      ok: false,
      reason: expect.stringContaining('points'),
    });
    expect(parseAnswerKey({ ...good, questions: [{ id: 'a', answer: 'x', points: 1, tolerance: 1 }] }, 't')).toMatchObject({ ok: false });
    expect(parseAnswerKey([], 't')).toMatchObject({ ok: false });

    const where = { studentId: 's1', testId: 't' };
    const sub = { studentId: 's1', email: 'a@example.org', name: 'A', testId: 't', submittedAt: '2026-11-20T10:00:00Z', answers: {} };
    expect(parseSubmission(sub, where).ok).toBe(true);
    expect(parseSubmission({ ...sub, studentId: 's2' }, where)).toMatchObject({ ok: false, reason: expect.stringContaining('path') });
    expect(parseSubmission({ ...sub, email: 'not an address' }, where)).toMatchObject({
      ok: false,
      reason: expect.stringContaining('email'),
    });
    expect(parseSubmission({ ...sub, answers: ['a'] }, where)).toMatchObject({ ok: false, reason: expect.stringContaining('answers') });
    expect(parseSubmission({ ...sub, submittedAt: 'yesterday' }, where)).toMatchObject({ ok: false });
    expect(parseSubmission(null, where)).toMatchObject({ ok: false });
  });

  it('builds sorted reports without timestamps, and a CSV that spreadsheets will not run as formulas', () => {
    const key: AnswerKey = { testId: 't', title: 'T', questions: [{ id: 'a', answer: 'x', points: 1 }] };
    const sub = parseSubmission(
      { studentId: 'b', email: 'b@example.org', name: '=HYPERLINK("x")', testId: 't', answers: { a: 'x' } },
      { studentId: 'b', testId: 't' },
    );
    if (!sub.ok) throw new Error(sub.reason);
    const scored = [{ key: 'submissions/2026-W47/b/t.json', submission: sub.value, result: scoreSubmission(key, sub.value) }];
    const invalid = [{ key: 'submissions/2026-W47/a/t.json', studentId: 'a', testId: 't', reason: 'not valid JSON' }];
    const { students, summary } = buildReports({ year: 2026, week: 47 }, scored, invalid, ['submissions/2026-W47/notes.txt']);
    expect(students.map((s) => [s.studentId, s.total?.percent ?? null])).toEqual([
      ['a', null],
      ['b', 100],
    ]);
    expect(summary).toMatchObject({
      week: '2026-W47',
      from: '2026-11-16',
      to: '2026-11-22',
      students: 2,
      submissions: 2,
      scored: 1,
      invalid: 1,
    });
    expect(JSON.stringify(summary)).not.toMatch(/\d{2}:\d{2}/);
    const csv = summaryCsv(students);
    expect(csv).toContain(`2026-W47,b,"'=HYPERLINK(""x"")",b@example.org,t,T,scored,1,1,100,A,\r\n`);
    expect(csv).toContain('2026-W47,a,,,t,,invalid,,,,,not valid JSON\r\n');
  });
});

describe('which week a run scores (Europe/Vienna)', () => {
  it('the Monday 23:00 tick scores the ISO week that ended the Sunday before', () => {
    expect(week('2026-11-23T22:00:00Z')).toBe('2026-W47'); // Mon 23 Nov 23:00 CET
    expect(weekDates(parseWeek('2026-W47')!)).toEqual({ monday: '2026-11-16', sunday: '2026-11-22' });
  });

  it('reads the date in Vienna, not UTC, on both sides of a DST change', () => {
    // Mon 30 Mar 2026 00:30 CEST is still Sunday in UTC: Vienna's Monday counts.
    expect(week('2026-03-29T22:30:00Z')).toBe('2026-W13');
    expect(week('2026-03-29T21:30:00Z')).toBe('2026-W12'); // Sun 29 Mar 23:30 CEST
    expect(week('2026-03-30T21:00:00Z')).toBe('2026-W13'); // Mon 30 Mar 23:00 CEST, first tick in summer time
    expect(week('2026-10-26T22:00:00Z')).toBe('2026-W43'); // Mon 26 Oct 23:00 CET, first tick in winter time
  });

  it('crosses year boundaries with ISO week-years, 53-week years included', () => {
    expect(week('2027-01-04T22:00:00Z')).toBe('2026-W53');
    expect(week('2026-01-05T22:00:00Z')).toBe('2026-W01');
    expect(week('2025-12-29T22:00:00Z')).toBe('2025-W52');
    expect(formatWeek(isoWeekOfDate(new Date(Date.UTC(2021, 0, 3))))).toBe('2020-W53');
    expect(parseWeek('2026-W53')).toEqual({ year: 2026, week: 53 });
    expect(parseWeek('2025-W53')).toBeUndefined();
    expect(parseWeek('2026-W00')).toBeUndefined();
    expect(parseWeek('2026-47')).toBeUndefined();
  });

  it('the config line "0 23 * * MON" in Europe/Vienna fires Mondays 23:00 local through DST, each tick scoring the week before', () => {
    const config = configFrom(`
tasks:
  score-weekly-tests:
    image: runlet/task-score-weekly-tests:local
    schedule: "0 23 * * MON"
    timezone: Europe/Vienna
`);
    const task = config.tasks['score-weekly-tests'];
    const autumn = nextFireTimes(task, 3, new Date('2026-10-14T00:00:00Z')).map((t) => new Date(t).toISOString());
    expect(autumn).toEqual(['2026-10-19T21:00:00.000Z', '2026-10-26T22:00:00.000Z', '2026-11-02T22:00:00.000Z']);
    expect(autumn.map(week)).toEqual(['2026-W42', '2026-W43', '2026-W44']);
    const spring = nextFireTimes(task, 2, new Date('2026-03-24T00:00:00Z')).map((t) => new Date(t).toISOString());
    expect(spring).toEqual(['2026-03-30T21:00:00.000Z', '2026-04-06T21:00:00.000Z']);
    expect(nextFireTimes(task, 1, new Date('2026-11-20T00:00:00Z')).map((t) => new Date(t).toISOString())).toEqual([
      '2026-11-23T22:00:00.000Z',
    ]);
  });
});
