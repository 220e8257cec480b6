import { describe, expect, it } from 'vitest';
import { TailBuffer } from '../src/runtime/log-tail.js';
import { maskedValues, maskText, OutputMask } from '../src/runs/secret-mask.js';

const SECRET = 's3cr3t-value-42';

/** Feeds `raw` to a mask in the given chunk sizes; returns the live stream (joined by offset) and the final tail. */
function stream(secrets: string[], raw: string, sizes: number[]) {
  const mask = new OutputMask(secrets, new TailBuffer());
  const bytes = Buffer.from(raw);
  let live = Buffer.alloc(0);
  let at = 0;
  let i = 0;
  while (at < bytes.length) {
    const n = sizes[i++ % sizes.length]!;
    const out = mask.chunk(bytes.subarray(at, at + n), at);
    if (out) {
      // Contiguous in the masked offsets: a follower's cursor joins them with no gap or repeat.
      expect(out.offset).toBe(live.length);
      live = Buffer.concat([live, out.bytes]);
    }
    at += n;
  }
  const result = mask.result({ logTail: raw, logBytes: bytes.length, reason: `exited 1: ${SECRET}` });
  return { live: live.toString(), result };
}

describe('secret masking', () => {
  it('masks a secret split across chunks, at every split point', () => {
    const raw = `token is ${SECRET} and again ${SECRET}\ndone\n`;
    for (let size = 1; size <= SECRET.length + 2; size++) {
      const { live, result } = stream([SECRET], raw, [size]);
      expect(result.logTail).toBe('token is *** and again ***\ndone\n');
      // Live output is a prefix of the final tail (the rest comes with the last tail write).
      expect(result.logTail.startsWith(live)).toBe(true);
      expect(live).not.toContain(SECRET.slice(0, 6));
      expect(result.logBytes).toBe(Buffer.byteLength(result.logTail));
      expect(result.reason).toBe('exited 1: ***');
    }
  });

  it('holds back only what could start a secret: a finished line is live at once', () => {
    const mask = new OutputMask([SECRET], new TailBuffer());
    expect(mask.chunk(Buffer.from('hello\n'), 0)?.bytes.toString()).toBe('hello\n');
    expect(mask.chunk(Buffer.from('pre s3c'), 6)?.bytes.toString()).toBe('pre ');
    expect(mask.chunk(Buffer.from('r3t-value-42 post'), 13)?.bytes.toString()).toBe('*** post');
    expect(mask.tailFor('ignored', 0)).toEqual({ text: 'hello\npre *** post', end: 18 });
  });

  it('with no secrets, or only short ones, it is the identity (offsets too)', () => {
    for (const secrets of [[], ['abc', '']]) {
      const mask = new OutputMask(secrets, new TailBuffer());
      const b = Buffer.from('abc abc');
      expect(mask.chunk(b, 100)).toEqual({ bytes: b, offset: 100 });
      expect(mask.tailFor('x', 7)).toEqual({ text: 'x', end: 7 });
      const r = { logTail: 'abc', logBytes: 3, reason: 'abc' };
      expect(mask.result(r)).toBe(r);
    }
  });

  it('a multi-line secret is masked whole and line by line; the longest value wins', () => {
    expect(maskedValues(['line-one\nline-two', 'line']).map(String)).toEqual(['line-one\nline-two', 'line-one', 'line-two', 'line']);
    expect(maskText('a line-one\nline-two b line-two c line', maskedValues(['line-one\nline-two']))).toBe('a *** b *** c line');
  });

  it('the bytes the runtime read after the stream ended are masked on, in the same offsets', () => {
    const mask = new OutputMask([SECRET], new TailBuffer());
    const first = Buffer.from('start\n');
    mask.chunk(first, 0);
    const raw = `start\nlast line without newline ${SECRET}`;
    const r = mask.result({ logTail: raw, logBytes: Buffer.byteLength(raw) });
    expect(r).toEqual({ logTail: 'start\nlast line without newline ***', logBytes: 35 });
  });

  it('a tail that cannot join the stream is masked whole, also a secret cut at its front', () => {
    const mask = new OutputMask([SECRET], new TailBuffer());
    mask.chunk(Buffer.from('x'), 0);
    const r = mask.result({ logTail: `value-42 then ${SECRET}`, logBytes: 100_000 });
    expect(r.logTail).toBe('*** then ***');
    expect(r.logBytes).toBeUndefined();
  });
});
