import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';

/**
 * The bucket's layout, in one place:
 *   answer-keys/<testId>.json                         { testId, title, questions: [{ id, answer, points, tolerance? }] }
 *   submissions/<week>/<studentId>/<testId>.json      { studentId, email, name, testId, submittedAt, answers }
 *   reports/<week>/students/<studentId>.json          written: one student's scores
 *   reports/<week>/summary.json, summary.csv          written: the trainer's summary
 *   notifications/<week>/<studentId>.sent             written: that student's email was accepted
 *   notifications/<week>/trainer-<hash>.sent          written: this summary was sent to the trainer
 * Student reports sit under students/ so that a student called "summary" can't overwrite
 * the summary.
 */
export const layout = {
  answerKey: (testId: string) => `answer-keys/${testId}.json`,
  submissionsOf: (week: string) => `submissions/${week}/`,
  studentReport: (week: string, studentId: string) => `reports/${week}/students/${studentId}.json`,
  summaryJson: (week: string) => `reports/${week}/summary.json`,
  summaryCsv: (week: string) => `reports/${week}/summary.csv`,
  studentSent: (week: string, studentId: string) => `notifications/${week}/${studentId}.sent`,
  trainerSent: (week: string, hash: string) => `notifications/${week}/trainer-${hash}.sent`,
};

export interface StoreSettings {
  readonly bucket: string;
  readonly region: string;
  /** For S3-compatible servers (MinIO, s3rver); unset for AWS. */
  readonly endpoint?: string;
  readonly forcePathStyle: boolean;
}

export interface Store {
  /** Every key under `prefix`, in S3's (lexicographic) order. */
  list(prefix: string): Promise<string[]>;
  /** The object's text, or undefined when there is no such object. */
  getText(key: string): Promise<string | undefined>;
  exists(key: string): Promise<boolean>;
  put(key: string, body: string, contentType: string): Promise<void>;
}

function isNotFound(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e?.$metadata?.httpStatusCode === 404 || e?.name === 'NoSuchKey' || e?.name === 'NotFound';
}

export function createStore(settings: StoreSettings): Store {
  // Credentials come from the SDK's default chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY,
  // a profile, a role). Checksums only where S3 requires them: the SDK's default CRC32
  // trailers on every upload are refused by some S3-compatible servers.
  const client = new S3Client({
    region: settings.region,
    forcePathStyle: settings.forcePathStyle,
    ...(settings.endpoint && { endpoint: settings.endpoint }),
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  const Bucket = settings.bucket;
  return {
    async list(prefix) {
      const keys: string[] = [];
      let ContinuationToken: string | undefined;
      do {
        const page = await client.send(new ListObjectsV2Command({ Bucket, Prefix: prefix, ContinuationToken }));
        for (const o of page.Contents ?? []) if (o.Key) keys.push(o.Key);
        ContinuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (ContinuationToken);
      return keys;
    },
    async getText(key) {
      try {
        const res = await client.send(new GetObjectCommand({ Bucket, Key: key }));
        return await res.Body!.transformToString('utf8');
      } catch (err) {
        if (isNotFound(err)) return undefined;
        throw err;
      }
    },
    async exists(key) {
      try {
        await client.send(new HeadObjectCommand({ Bucket, Key: key }));
        return true;
      } catch (err) {
        if (isNotFound(err)) return false;
        throw err;
      }
    },
    async put(key, body, contentType) {
      await client.send(new PutObjectCommand({ Bucket, Key: key, Body: body, ContentType: contentType }));
    },
  };
}
