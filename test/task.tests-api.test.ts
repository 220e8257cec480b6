import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { copyFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configFrom, removeClusterContainers, startTestDaemon, type TestDaemon } from './helpers/daemon.js';
import { startS3 } from './helpers/host.js';
import { startTestRedis } from './helpers/redis.js';

// The trainer/student test API (tasks/tests-api: a Lambda handler run by runlet's adapter)
// served as an HTTP function by a real daemon, against a real S3 server (s3rver), with one
// API key per student; and a handler written exactly for Lambda, run unchanged by the
// adapter copied into a plain Node image.

const BUCKET = 'course';
let s3: Awaited<ReturnType<typeof startS3>>;
let redis: Awaited<ReturnType<typeof startTestRedis>>;
let daemon: TestDaemon;
let client: S3Client;

/** A handler as written for Lambda behind an API Gateway HTTP API, nothing runlet-specific. */
const LAMBDA_HANDLER = `
exports.handler = async (event, context) => {
  const name = (event.queryStringParameters && event.queryStringParameters.name) || 'world';
  return {
    statusCode: 200,
    headers: { 'content-type': 'text/plain; charset=utf-8' },
    cookies: ['seen=1'],
    body: 'hello ' + name + ' from ' + event.routeKey + ' (' + context.functionName + ', ' + typeof context.awsRequestId + ')',
  };
};
`;

function lambdaImageDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'runlet-lambda-'));
  copyFileSync(resolve('tasks/lib/lambda-handler.cjs'), join(dir, 'lambda-handler.cjs'));
  writeFileSync(join(dir, 'index.js'), LAMBDA_HANDLER);
  writeFileSync(join(dir, 'Dockerfile'), 'FROM runlet/node:local\nCOPY . /var/task\nWORKDIR /var/task\n');
  return dir;
}

beforeAll(async () => {
  [s3, redis] = await Promise.all([startS3([BUCKET]), startTestRedis()]);
  client = new S3Client({
    endpoint: s3.endpointForHost,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
  });
  await client.send(
    new PutObjectCommand({
      Bucket: BUCKET,
      Key: 'answer-keys/quiz-1.json',
      Body: JSON.stringify({
        testId: 'quiz-1',
        title: 'Fractions',
        subjectName: 'maths',
        questions: [
          { id: 'q1', text: 'Half of one?', answer: 'one half', points: 4 },
          { id: 'q2', text: '3/4 as a decimal?', answer: 0.75, points: 4 },
        ],
      }),
    }),
  );
  const config = configFrom(`
tasks:
  tests-api:
    image: runlet/task-tests-api:local
    memory: 128m
    concurrency: 4
    env:
      S3_ENDPOINT: ${s3.endpointForContainers}
      S3_BUCKET: ${BUCKET}
      AWS_ACCESS_KEY_ID: S3RVER
      AWS_SECRET_ACCESS_KEY: S3RVER
    http:
      routes: ["GET /api/v1/test", "POST /api/v1/tests", "POST /api/v1/test"]
      auth: apiKeys
      apiKeys: { ana: ana-key-0001, ben: ben-key-0002 }
      rateLimit: { perKey: 20/1m }
      timeout: 20s
  fn-lambda-hello:
    build: ${lambdaImageDir()}
    command: [node, lambda-handler.cjs, index.handler]
    memory: 64m
    http:
      routes: ["GET /hello"]
      auth: none
`);
  daemon = await startTestDaemon({ config, redisUrl: redis.url, fnPort: 0, fnHost: '127.0.0.1' });
});

afterAll(async () => {
  await daemon?.stop();
  if (daemon) await removeClusterContainers(daemon.identity.clusterId);
  await Promise.all([redis?.stopAndClean(), s3?.stop()]);
  client?.destroy();
});

const api = (path: string, key: string | undefined, init: RequestInit = {}) =>
  fetch(`${daemon.fnUrl}${path}`, {
    ...init,
    headers: { ...(key && { 'x-api-key': key }), ...(init.body !== undefined && { 'content-type': 'application/json' }) },
  });

describe('a Lambda handler runs unchanged as a function', () => {
  it('async (event, context) => ({ statusCode, headers, cookies, body }) answers the request', async () => {
    const res = await fetch(`${daemon.fnUrl}/hello?name=ada`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/plain; charset=utf-8');
    expect(res.headers.getSetCookie()).toEqual(['seen=1']);
    expect(await res.text()).toBe('hello ada from GET /hello (fn-lambda-hello, string)');
  });
});

describe('tests-api: the trainer/student test API', () => {
  it("a student's session: list tests, read one without its answers, upload answers where the weekly scoring reads them", async () => {
    expect((await api('/api/v1/tests', undefined, { method: 'POST', body: '{}' })).status).toBe(403);

    const list = await api('/api/v1/tests', 'ana-key-0001', { method: 'POST', body: JSON.stringify({ subjectName: 'maths' }) });
    expect(list.status).toBe(200);
    const listed = (await list.json()) as { student: string; week: string; tests: unknown[] };
    expect(listed).toMatchObject({ student: 'ana', tests: [{ testId: 'quiz-1', title: 'Fractions', submitted: false }] });

    const test = await api('/api/v1/test?subjectName=maths&testId=quiz-1', 'ana-key-0001');
    expect(test.status).toBe(200);
    const questions = (await test.json()) as { questions: Array<Record<string, unknown>> };
    expect(questions.questions).toEqual([
      { id: 'q1', text: 'Half of one?', points: 4 },
      { id: 'q2', text: '3/4 as a decimal?', points: 4 },
    ]);
    expect((await api('/api/v1/test?subjectName=history&testId=quiz-1', 'ana-key-0001')).status).toBe(404);

    const up = await api('/api/v1/test', 'ana-key-0001', {
      method: 'POST',
      body: JSON.stringify({ testId: 'quiz-1', name: 'Ana Müller', answers: { q1: 'one half', q2: 0.75 } }),
    });
    expect(up.status).toBe(201);
    const { stored, week } = (await up.json()) as { stored: string; week: string };
    expect(stored).toBe(`submissions/${week}/ana/quiz-1.json`);
    const saved = JSON.parse(await (await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: stored }))).Body!.transformToString());
    expect(saved).toMatchObject({ studentId: 'ana', name: 'Ana Müller', testId: 'quiz-1', answers: { q1: 'one half', q2: 0.75 } });

    // Each student sees their own state: ana has sent quiz-1 this week, ben has not.
    const again = (await (await api('/api/v1/tests', 'ana-key-0001', { method: 'POST', body: '{}' })).json()) as { tests: unknown[] };
    expect(again.tests).toMatchObject([{ testId: 'quiz-1', submitted: true }]);
    const ben = (await (await api('/api/v1/tests', 'ben-key-0002', { method: 'POST', body: '{}' })).json()) as {
      student: string;
      tests: unknown[];
    };
    expect(ben).toMatchObject({ student: 'ben', tests: [{ testId: 'quiz-1', submitted: false }] });
  });
});
