import { gradeFor, percentOf, sum, type Grade, type Submission, type TestResult } from './score.js';
import { formatWeek, weekDates, type IsoWeek } from './week.js';

/**
 * The per-student reports, the trainer's summary and its CSV, from what was scored. Pure
 * and sorted throughout, and free of timestamps, so a re-run over the same objects writes
 * the same bytes (and the trainer's "already sent" marker can be keyed on them).
 */

export interface Scored {
  readonly key: string;
  readonly submission: Submission;
  readonly result: TestResult;
}

export interface Invalid {
  readonly key: string;
  readonly studentId: string;
  readonly testId: string;
  readonly reason: string;
}

export interface Total {
  readonly points: number;
  readonly maxPoints: number;
  readonly percent: number;
  readonly grade: Grade;
}

export interface StudentReport {
  readonly week: string;
  readonly studentId: string;
  /** From the student's first scored submission (by test id); absent when none could be scored. */
  readonly name?: string;
  readonly email?: string;
  readonly tests: readonly TestResult[];
  readonly invalid: readonly { readonly testId: string; readonly reason: string }[];
  /** Over all scored tests of the week; null when none could be scored. */
  readonly total: Total | null;
}

export interface Summary {
  readonly week: string;
  readonly from: string;
  readonly to: string;
  readonly students: number;
  readonly submissions: number;
  readonly scored: number;
  readonly invalid: number;
  readonly perStudent: readonly { studentId: string; name?: string; email?: string; tests: number; invalid: number; total: Total | null }[];
  readonly perTest: readonly { testId: string; title: string; submissions: number; averagePercent: number }[];
  readonly invalidSubmissions: readonly Invalid[];
  /** Objects under the week's prefix that are not `<studentId>/<testId>.json`: listed, not counted. */
  readonly ignoredKeys: readonly string[];
}

const byString = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

export function totalOf(tests: readonly TestResult[]): Total | null {
  if (tests.length === 0) return null;
  const points = sum(tests.map((t) => t.points));
  const maxPoints = sum(tests.map((t) => t.maxPoints));
  const percent = percentOf(points, maxPoints);
  return { points, maxPoints, percent, grade: gradeFor(percent) };
}

export function buildReports(
  week: IsoWeek,
  scored: readonly Scored[],
  invalid: readonly Invalid[],
  ignoredKeys: readonly string[],
): { students: StudentReport[]; summary: Summary } {
  const weekText = formatWeek(week);
  const studentIds = [...new Set([...scored.map((s) => s.submission.studentId), ...invalid.map((i) => i.studentId)])].sort(byString);
  const students = studentIds.map((studentId): StudentReport => {
    const mine = scored.filter((s) => s.submission.studentId === studentId).sort((a, b) => byString(a.result.testId, b.result.testId));
    const first = mine[0]?.submission;
    const tests = mine.map((s) => s.result);
    return {
      week: weekText,
      studentId,
      ...(first && { name: first.name, email: first.email }),
      tests,
      invalid: invalid
        .filter((i) => i.studentId === studentId)
        .sort((a, b) => byString(a.testId, b.testId))
        .map(({ testId, reason }) => ({ testId, reason })),
      total: totalOf(tests),
    };
  });

  const testIds = [...new Set(scored.map((s) => s.result.testId))].sort(byString);
  const perTest = testIds.map((testId) => {
    const results = scored.filter((s) => s.result.testId === testId).map((s) => s.result);
    return {
      testId,
      title: results[0].title,
      submissions: results.length,
      averagePercent: Math.round((sum(results.map((r) => r.percent)) / results.length) * 10) / 10,
    };
  });

  const { monday, sunday } = weekDates(week);
  const summary: Summary = {
    week: weekText,
    from: monday,
    to: sunday,
    students: students.length,
    submissions: scored.length + invalid.length,
    scored: scored.length,
    invalid: invalid.length,
    perStudent: students.map((s) => ({
      studentId: s.studentId,
      ...(s.name !== undefined && { name: s.name }),
      ...(s.email !== undefined && { email: s.email }),
      tests: s.tests.length,
      invalid: s.invalid.length,
      total: s.total,
    })),
    perTest,
    invalidSubmissions: [...invalid].sort((a, b) => byString(a.key, b.key)),
    ignoredKeys: [...ignoredKeys].sort(byString),
  };
  return { students, summary };
}

const CSV_COLUMNS = [
  'week',
  'studentId',
  'name',
  'email',
  'testId',
  'title',
  'status',
  'points',
  'maxPoints',
  'percent',
  'grade',
  'reason',
] as const;

/**
 * One row per submission. Text that a spreadsheet would run as a formula (=, +, -, @ first)
 * gets a leading apostrophe: names and reasons come from students' files.
 */
export function summaryCsv(students: readonly StudentReport[]): string {
  const cell = (v: string | number | undefined): string => {
    if (v === undefined) return '';
    if (typeof v === 'number') return String(v);
    const safe = /^[=+\-@\t\r]/.test(v) ? `'${v}` : v;
    return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
  };
  const rows: (string | number | undefined)[][] = [];
  for (const s of students) {
    for (const t of s.tests)
      rows.push([s.week, s.studentId, s.name, s.email, t.testId, t.title, 'scored', t.points, t.maxPoints, t.percent, t.grade, undefined]);
    for (const i of s.invalid)
      rows.push([
        s.week,
        s.studentId,
        s.name,
        s.email,
        i.testId,
        undefined,
        'invalid',
        undefined,
        undefined,
        undefined,
        undefined,
        i.reason,
      ]);
  }
  return [CSV_COLUMNS.join(','), ...rows.map((r) => r.map(cell).join(','))].join('\r\n') + '\r\n';
}
