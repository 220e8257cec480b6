import {
  AbortMultipartUploadCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  S3Client,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { manifestFromMetadata, manifestToMetadata, partNumber, type Manifest, type PartRef, type PartStore } from './parts.js';

export interface S3Settings {
  readonly bucket: string;
  readonly region: string;
  /** MinIO, s3rver, ...; unset for AWS. */
  readonly endpoint?: string;
  readonly forcePathStyle: boolean;
  /** Only for tests; in a container the SDK reads AWS_ACCESS_KEY_ID etc. from the environment. */
  readonly credentials?: S3ClientConfig['credentials'];
}

/** Parts above this size go up in 8 MiB pieces (multipart); below it, in one PUT. */
const PIECE_BYTES = 8 * 1024 * 1024;
const HEAD_CONCURRENCY = 16;

export class S3PartStore implements PartStore {
  readonly client: S3Client;
  private readonly bucket: string;

  constructor(s: S3Settings) {
    this.bucket = s.bucket;
    this.client = new S3Client({
      region: s.region,
      endpoint: s.endpoint,
      forcePathStyle: s.forcePathStyle,
      credentials: s.credentials,
      // The SDK's default trailing CRC32 (aws-chunked bodies) is not understood by every
      // S3-compatible server; integrity is checked end to end by the sha256 read-back instead.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
  }

  async abortStaleUploads(prefix: string): Promise<number> {
    let aborted = 0;
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    for (;;) {
      let page;
      try {
        page = await this.client.send(
          new ListMultipartUploadsCommand({ Bucket: this.bucket, Prefix: prefix, KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker }),
        );
      } catch (err) {
        // s3rver can't list uploads. An unfinished upload is never an object, so it is a cost
        // (left to the bucket's AbortIncompleteMultipartUpload rule), not a correctness problem.
        if ((err as { name?: string }).name === 'NotImplemented') return aborted;
        throw err;
      }
      for (const u of page.Uploads ?? []) {
        await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: u.Key, UploadId: u.UploadId }));
        aborted++;
      }
      if (!page.IsTruncated) return aborted;
      keyMarker = page.NextKeyMarker;
      uploadIdMarker = page.NextUploadIdMarker;
    }
  }

  async listParts(dayPrefix: string): Promise<PartRef[]> {
    const keys: { key: string; number: number }[] = [];
    let token: string | undefined;
    do {
      const page = await this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: dayPrefix, ContinuationToken: token }));
      for (const o of page.Contents ?? []) {
        const n = o.Key === undefined ? undefined : partNumber(o.Key);
        if (n !== undefined) keys.push({ key: o.Key!, number: n });
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    const refs: PartRef[] = [];
    for (let i = 0; i < keys.length; i += HEAD_CONCURRENCY) {
      const heads = await Promise.all(
        keys.slice(i, i + HEAD_CONCURRENCY).map(async ({ key, number }) => {
          const head = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
          return { key, number, manifest: manifestFromMetadata(key, head.Metadata) };
        }),
      );
      refs.push(...heads);
    }
    return refs.sort((a, b) => a.number - b.number);
  }

  async put(key: string, body: Buffer, manifest: Manifest): Promise<void> {
    const upload = new Upload({
      client: this.client,
      partSize: PIECE_BYTES,
      queueSize: 4,
      params: {
        Bucket: this.bucket,
        Key: key,
        Body: body,
        ContentType: 'application/gzip',
        Metadata: manifestToMetadata(manifest),
        // A part is written once: if the key exists (another run got there first), fail
        // rather than replace a part whose documents may already be deleted.
        IfNoneMatch: '*',
      },
    });
    await upload.done();
  }

  async get(key: string): Promise<{ body: Buffer; manifest: Manifest }> {
    const res = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
    const body = Buffer.from(await res.Body!.transformToByteArray());
    return { body, manifest: manifestFromMetadata(key, res.Metadata) };
  }
}
