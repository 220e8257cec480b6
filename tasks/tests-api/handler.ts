import { createStore, layout, type Store } from '../score-weekly-tests/store.js';
import { formatWeek, isoWeekOfDate, localDate } from '../score-weekly-tests/week.js';

/**
 * The trainer/student test API, written exactly as a Lambda handler behind API Gateway
 * (payload format 2.0 in, proxy result out), so the same file deploys to Lambda or runs
 * under runlet. Backed by the bucket score-weekly-tests reads:
 *   GET  /api/v1/test?subjectName=&testId=   a test's questions (answers left out)
 *   POST /api/v1/tests   { subjectName? }     the tests a student may take, and which they sent this week
 *   POST /api/v1/test    { testId, answers, name?, email? }   a student's answers, stored for the weekly scoring
 * The student is the API key's consumer (requestContext.authorizer.lambda.consumer).
 */

interface Event {
  routeKey: string;
  queryStringParameters?: Record<string, string>;
  body?: string;
  isBase64Encoded?: boolean;
  requestContext: { authorizer?: { lambda?: { consumer?: string } }; timeEpoch: number };
}

interface AnswerKeyFile {
  testId: string;
  title?: string;
  subjectName?: string;
  questions: Array<{ id: string; text?: string; points?: number; answer?: unknown }>;
}

const reply = (statusCode: number, value: unknown) => ({
  statusCode,
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify(value),
});

let store: Store | undefined;
function bucket(): Store {
  store ??= createStore({
    bucket: process.env.S3_BUCKET ?? 'course',
    region: process.env.AWS_REGION ?? 'us-east-1',
    ...(process.env.S3_ENDPOINT && { endpoint: process.env.S3_ENDPOINT }),
    forcePathStyle: process.env.S3_ENDPOINT !== undefined,
  });
  return store;
}

function bodyOf(event: Event): Record<string, unknown> | undefined {
  if (!event.body) return {};
  try {
    const text = event.isBase64Encoded ? Buffer.from(event.body, 'base64').toString('utf8') : event.body;
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

const TEST_ID = /^[A-Za-z0-9_-]{1,64}$/;

async function readKey(testId: string): Promise<AnswerKeyFile | undefined> {
  const text = await bucket().getText(layout.answerKey(testId));
  return text === undefined ? undefined : (JSON.parse(text) as AnswerKeyFile);
}

export const handler = async (event: Event) => {
  const student = event.requestContext.authorizer?.lambda?.consumer;
  if (!student) return reply(403, { message: 'Forbidden' });
  const week = formatWeek(isoWeekOfDate(localDate(new Date(event.requestContext.timeEpoch), process.env.TIMEZONE ?? 'UTC')));

  switch (event.routeKey) {
    case 'GET /api/v1/test': {
      const q = event.queryStringParameters ?? {};
      if (!q.testId || !TEST_ID.test(q.testId)) return reply(400, { message: 'testId is required (letters, digits, - and _)' });
      const key = await readKey(q.testId);
      if (!key || (q.subjectName && key.subjectName && key.subjectName !== q.subjectName))
        return reply(404, { message: `no test ${q.testId}${q.subjectName ? ` in ${q.subjectName}` : ''}` });
      return reply(200, {
        testId: key.testId,
        title: key.title,
        subjectName: key.subjectName,
        questions: key.questions.map(({ answer: _hidden, ...question }) => question),
      });
    }
    case 'POST /api/v1/tests': {
      const body = bodyOf(event);
      if (!body) return reply(400, { message: 'the body must be a JSON object' });
      const ids = (await bucket().list('answer-keys/')).filter((k) => k.endsWith('.json')).map((k) => k.slice(12, -5));
      const tests = [];
      for (const id of ids) {
        const key = await readKey(id);
        if (!key || (body.subjectName && key.subjectName !== body.subjectName)) continue;
        const submitted = await bucket().exists(`${layout.submissionsOf(week)}${student}/${id}.json`);
        tests.push({ testId: key.testId, title: key.title, subjectName: key.subjectName, submitted });
      }
      return reply(200, { student, week, tests });
    }
    case 'POST /api/v1/test': {
      const body = bodyOf(event);
      if (!body) return reply(400, { message: 'the body must be a JSON object' });
      const { testId, answers } = body;
      if (typeof testId !== 'string' || !TEST_ID.test(testId)) return reply(400, { message: 'testId is required' });
      if (typeof answers !== 'object' || answers === null || Array.isArray(answers))
        return reply(400, { message: 'answers must be an object of question id → answer' });
      if (!(await readKey(testId))) return reply(404, { message: `no test ${testId}` });
      const key = `${layout.submissionsOf(week)}${student}/${testId}.json`;
      const submission = {
        studentId: student,
        email: typeof body.email === 'string' ? body.email : `${student}@${process.env.STUDENT_EMAIL_DOMAIN ?? 'example.org'}`,
        name: typeof body.name === 'string' ? body.name : student,
        testId,
        submittedAt: new Date(event.requestContext.timeEpoch).toISOString(),
        answers,
      };
      await bucket().put(key, JSON.stringify(submission, null, 2), 'application/json');
      return reply(201, { stored: key, week });
    }
    default:
      return reply(404, { message: 'Not Found' });
  }
};
