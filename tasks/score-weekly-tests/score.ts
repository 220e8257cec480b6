/**
 * Scoring, with no I/O: parse an answer key and a submission (untrusted JSON), score one
 * against the other. Anything malformed comes back as a reason, never as an exception, so
 * one bad file is reported and the rest of the week is still scored.
 */

export type AnswerValue = string | number | boolean;

export interface Question {
  readonly id: string;
  readonly answer: AnswerValue;
  readonly points: number;
  /** Numbers only: an answer within ± tolerance of `answer` counts (default 0). */
  readonly tolerance?: number;
}

export interface AnswerKey {
  readonly testId: string;
  readonly title: string;
  readonly questions: readonly Question[];
}

export interface Submission {
  readonly studentId: string;
  readonly email: string;
  readonly name: string;
  readonly testId: string;
  readonly submittedAt?: string;
  readonly answers: Readonly<Record<string, unknown>>;
}

export interface QuestionResult {
  readonly id: string;
  readonly correct: boolean;
  readonly answered: boolean;
  readonly points: number;
  readonly maxPoints: number;
}

export interface TestResult {
  readonly testId: string;
  readonly title: string;
  readonly submittedAt?: string;
  readonly points: number;
  readonly maxPoints: number;
  readonly percent: number;
  readonly grade: Grade;
  readonly questions: readonly QuestionResult[];
}

export type Parsed<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly reason: string };

/** Lowest percent for each grade, best first; below the last band is F. */
export const GRADE_BANDS = [
  { grade: 'A', minPercent: 90 },
  { grade: 'B', minPercent: 80 },
  { grade: 'C', minPercent: 70 },
  { grade: 'D', minPercent: 60 },
] as const;
export type Grade = (typeof GRADE_BANDS)[number]['grade'] | 'F';

export function gradeFor(percent: number): Grade {
  return GRADE_BANDS.find((b) => percent >= b.minPercent)?.grade ?? 'F';
}

/** Percent with one decimal; the grade is read from this rounded value, so it matches what people see. */
export function percentOf(points: number, maxPoints: number): number {
  return maxPoints > 0 ? Math.round((points / maxPoints) * 1000) / 10 : 0;
}

const EMAIL = /^[^\s@<>",]+@[^\s@<>",]+\.[^\s@<>",]+$/;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const fail = (reason: string) => ({ ok: false, reason }) as const;

/** `testId` is the one the file's name promises; a key that says otherwise is malformed. */
export function parseAnswerKey(value: unknown, testId: string): Parsed<AnswerKey> {
  if (!isObject(value)) return fail('not a JSON object');
  if (value.testId !== testId) return fail(`testId is ${JSON.stringify(value.testId)}, the file name says ${JSON.stringify(testId)}`);
  const title = typeof value.title === 'string' && value.title.trim() !== '' ? value.title.trim() : testId;
  if (!Array.isArray(value.questions) || value.questions.length === 0) return fail('questions must be a non-empty list');
  const questions: Question[] = [];
  const seen = new Set<string>();
  for (const [i, q] of value.questions.entries()) {
    const at = `questions[${i}]`;
    if (!isObject(q)) return fail(`${at} is not an object`);
    if (typeof q.id !== 'string' || q.id === '') return fail(`${at}.id must be a non-empty string`);
    if (seen.has(q.id)) return fail(`question id ${JSON.stringify(q.id)} appears twice`);
    seen.add(q.id);
    if (!['string', 'number', 'boolean'].includes(typeof q.answer)) return fail(`${at}.answer must be a string, number or boolean`);
    if (typeof q.answer === 'number' && !Number.isFinite(q.answer)) return fail(`${at}.answer is not a finite number`);
    if (typeof q.points !== 'number' || !Number.isFinite(q.points) || q.points <= 0) return fail(`${at}.points must be a positive number`);
    if (q.tolerance !== undefined) {
      if (typeof q.answer !== 'number') return fail(`${at}.tolerance is only for numeric answers`);
      if (typeof q.tolerance !== 'number' || !(q.tolerance >= 0)) return fail(`${at}.tolerance must be a number ≥ 0`);
    }
    questions.push({
      id: q.id,
      answer: q.answer as AnswerValue,
      points: q.points,
      ...(q.tolerance !== undefined && { tolerance: q.tolerance as number }),
    });
  }
  return { ok: true, value: { testId, title, questions } };
}

/**
 * `where` is what the object's key says (`submissions/<week>/<studentId>/<testId>.json`):
 * a file whose content names another student or test is refused rather than trusted,
 * since the email address it carries would otherwise receive someone else's score.
 */
export function parseSubmission(value: unknown, where: { studentId: string; testId: string }): Parsed<Submission> {
  if (!isObject(value)) return fail('not a JSON object');
  if (value.studentId !== where.studentId)
    return fail(`studentId is ${JSON.stringify(value.studentId)}, its path says ${JSON.stringify(where.studentId)}`);
  if (value.testId !== where.testId)
    return fail(`testId is ${JSON.stringify(value.testId)}, its file name says ${JSON.stringify(where.testId)}`);
  if (typeof value.email !== 'string' || !EMAIL.test(value.email.trim()))
    return fail(`email ${JSON.stringify(value.email)} is not an email address`);
  if (value.name !== undefined && typeof value.name !== 'string') return fail('name must be a string');
  if (value.submittedAt !== undefined && (typeof value.submittedAt !== 'string' || Number.isNaN(Date.parse(value.submittedAt)))) {
    return fail('submittedAt must be an ISO date-time');
  }
  if (!isObject(value.answers)) return fail('answers must be an object of question id → answer');
  const name = typeof value.name === 'string' && value.name.trim() !== '' ? value.name.trim() : where.studentId;
  return {
    ok: true,
    value: {
      studentId: where.studentId,
      testId: where.testId,
      email: value.email.trim(),
      name,
      ...(typeof value.submittedAt === 'string' && { submittedAt: value.submittedAt }),
      answers: value.answers,
    },
  };
}

/** Case, Unicode form and runs of whitespace don't change a text answer. */
export function normalizeText(s: string): string {
  return s.normalize('NFKC').trim().replace(/\s+/gu, ' ').toLowerCase();
}

// A decimal comma is accepted ("3,5"), as people in Vienna write it.
const NUMBER_TEXT = /^[+-]?(\d+([.,]\d*)?|[.,]\d+)(e[+-]?\d+)?$/i;

function asNumber(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isFinite(v) ? v : undefined;
  if (typeof v !== 'string') return undefined;
  const t = v.trim();
  return NUMBER_TEXT.test(t) ? Number(t.replace(',', '.')) : undefined;
}

export function matches(question: Question, given: unknown): boolean {
  const { answer } = question;
  if (typeof answer === 'number') {
    const n = asNumber(given);
    // The epsilon keeps 0.1 + 0.2 within a tolerance of 0 of 0.3.
    return n !== undefined && Math.abs(n - answer) <= (question.tolerance ?? 0) + 1e-9;
  }
  if (typeof answer === 'boolean') {
    if (typeof given === 'boolean') return given === answer;
    return typeof given === 'string' && normalizeText(given) === String(answer);
  }
  if (typeof given === 'string' || typeof given === 'number') return normalizeText(String(given)) === normalizeText(answer);
  return false;
}

function isAnswered(given: unknown): boolean {
  return given !== undefined && given !== null && !(typeof given === 'string' && given.trim() === '');
}

/** All or nothing per question; answers to questions the key doesn't have are ignored. */
export function scoreSubmission(key: AnswerKey, submission: Submission): TestResult {
  const questions = key.questions.map((q): QuestionResult => {
    const given = Object.hasOwn(submission.answers, q.id) ? submission.answers[q.id] : undefined;
    const correct = isAnswered(given) && matches(q, given);
    return { id: q.id, correct, answered: isAnswered(given), points: correct ? q.points : 0, maxPoints: q.points };
  });
  const points = sum(questions.map((q) => q.points));
  const maxPoints = sum(questions.map((q) => q.maxPoints));
  const percent = percentOf(points, maxPoints);
  return {
    testId: key.testId,
    title: key.title,
    ...(submission.submittedAt !== undefined && { submittedAt: submission.submittedAt }),
    points,
    maxPoints,
    percent,
    grade: gradeFor(percent),
    questions,
  };
}

/** Points may be fractional (0.5); rounding to 1e-6 keeps 0.1 + 0.2 from printing as 0.30000000000000004. */
export function sum(values: readonly number[]): number {
  return Math.round(values.reduce((a, b) => a + b, 0) * 1e6) / 1e6;
}
