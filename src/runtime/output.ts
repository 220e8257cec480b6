import type Docker from 'dockerode';
import type { Readable } from 'node:stream';
import { extract } from 'tar-stream';
import { formatBytes } from '../lib/format.js';
import { engineMessage, engineStatus } from './errors.js';
import { OUTPUT_PATH } from './run-dir.js';

/** The most of /runlet/output.json a run keeps: a result for the caller, not a data channel. */
export const OUTPUT_LIMIT_BYTES = 1024 * 1024;
/** Reading a file of at most 1 MiB from the local engine takes milliseconds; this bounds a stuck one. */
const READ_TIMEOUT_MS = 30_000;

export interface CapturedOutput {
  readonly output?: string;
  readonly outputError?: string;
}

/**
 * Reads /runlet/output.json from a container that has ended (and is not yet removed). Never
 * throws: a file that can't be kept, or can't be read, comes back as outputError, so the run
 * record says why there is no output rather than silently having none. An oversized file is
 * refused from its tar header, before its content is downloaded.
 */
export async function readOutput(container: Docker.Container): Promise<CapturedOutput> {
  let archive: Readable;
  try {
    archive = (await container.getArchive({ path: OUTPUT_PATH, abortSignal: AbortSignal.timeout(READ_TIMEOUT_MS) })) as Readable;
  } catch (err) {
    // The engine's 404 for a missing path, as opposed to a missing container.
    if (engineStatus(err) === 404 && /could not find the file/i.test(engineMessage(err))) return {};
    return { outputError: `could not read output.json: ${engineMessage(err)}` };
  }
  try {
    return await fromArchive(archive);
  } catch (err) {
    return { outputError: `could not read output.json: ${engineMessage(err)}` };
  } finally {
    // Also when we stopped early: an oversized file must not keep streaming from the engine.
    archive.destroy();
  }
}

async function fromArchive(archive: Readable): Promise<CapturedOutput> {
  const entries = extract();
  archive.on('error', (err) => entries.destroy(err));
  archive.pipe(entries);
  // The archive of one path: its first entry is the path itself.
  for await (const entry of entries) {
    const { type, size } = entry.header;
    const refused = refusedOutput(type, size);
    if (refused) return refused;
    const chunks: Buffer[] = [];
    for await (const chunk of entry) chunks.push(chunk as Buffer);
    return judgedOutput(Buffer.concat(chunks).toString('utf8'));
  }
  return { outputError: 'could not read output.json: the engine sent an empty archive' };
}

/**
 * Why an output.json of this type (tar's names: 'file', 'symlink', 'fifo', ...) and size is
 * not stored, before a byte of it is read; undefined when it is to be read. Both readers, the
 * archive here and the host's filesystem (run-dir-host.ts), refuse in these words.
 */
export function refusedOutput(type: string, size: number): CapturedOutput | undefined {
  if (type !== 'file') return { outputError: `output.json is a ${type}, not a regular file; not stored` };
  if (size > OUTPUT_LIMIT_BYTES)
    return { outputError: `output.json is ${formatBytes(size)}, over the ${formatBytes(OUTPUT_LIMIT_BYTES)} limit; not stored` };
  return undefined;
}

/** Kept even when it does not parse: the caller decides what an invalid result means. */
export function judgedOutput(text: string): CapturedOutput {
  try {
    JSON.parse(text);
    return { output: text };
  } catch (err) {
    return { output: text, outputError: `output.json is not valid JSON: ${(err as Error).message}` };
  }
}
