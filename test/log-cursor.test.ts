import { describe, expect, it } from 'vitest';
import { LogCursor } from '../src/runs/log-cursor.js';

// The cursor alone, fed as followLogs feeds it from Redis: no Redis, no Docker.
const b = (s: string) => Buffer.from(s);
const text = (pieces: Buffer[]) => Buffer.concat(pieces).toString();

/** A cursor on attempt 1 that has written `sent` (as from its first chunks). */
function onAttempt1(sent = ''): LogCursor {
  const c = new LogCursor();
  c.toAttempt(1);
  if (sent) c.take(0, b(sent));
  return c;
}

describe('LogCursor: chunks in order', () => {
  it('writes each chunk as it comes and advances sent', () => {
    const c = new LogCursor();
    expect(c.toAttempt(1)).toEqual([]);
    expect(text(c.take(0, b('line 1\n')))).toBe('line 1\n');
    expect(text(c.take(7, b('line 2\n')))).toBe('line 2\n');
    expect(c.attempt).toBe(1);
    expect(c.sent).toBe(14);
  });

  it('cuts a chunk that overlaps what was sent, and drops one wholly sent', () => {
    const c = onAttempt1('abcd');
    expect(text(c.take(2, b('cdef')))).toBe('ef');
    expect(c.take(0, b('abc'))).toEqual([]);
    expect(c.take(6, b(''))).toEqual([]);
    expect(c.sent).toBe(6);
  });

  it('counts offsets in bytes, not characters', () => {
    const c = onAttempt1('é');
    expect(c.sent).toBe(2);
    expect(text(c.take(2, b('ü\n')))).toBe('ü\n');
    expect(c.sent).toBe(5);
  });
});

describe('LogCursor: a gap', () => {
  it('holds a chunk beyond sent, and writes it once the gap is filled', () => {
    const c = onAttempt1('ab');
    expect(c.take(4, b('ef'))).toEqual([]);
    expect(c.sent).toBe(2);
    // Separate writes, in offset order.
    expect(c.take(2, b('cd')).map(String)).toEqual(['cd', 'ef']);
    expect(c.sent).toBe(6);
  });

  it('drains chunks that arrived out of order, sorted, cutting their overlaps', () => {
    const c = onAttempt1();
    expect(c.take(6, b('gh'))).toEqual([]);
    expect(c.take(2, b('cdef'))).toEqual([]);
    expect(c.take(4, b('efg'))).toEqual([]);
    expect(text(c.take(0, b('ab')))).toBe('abcdefgh');
    expect(c.sent).toBe(8);
  });

  it('keeps a held chunk that the gap-filler does not reach yet', () => {
    const c = onAttempt1();
    c.take(8, b('ij'));
    expect(text(c.take(0, b('abcd')))).toBe('abcd');
    expect(text(c.take(4, b('efgh')))).toBe('efghij');
  });

  it('drops held chunks past 4 MiB; the tail fills in for them', () => {
    const c = onAttempt1();
    const mib = 1024 * 1024;
    c.take(1, Buffer.alloc(4 * mib, 'x'));
    c.take(1 + 4 * mib, b('lost'));
    expect(c.take(0, b('a')).reduce((n, p) => n + p.length, 0)).toBe(1 + 4 * mib);
    expect(c.sent).toBe(1 + 4 * mib);
    expect(text(c.fromTail({ text: 'xlost', attempt: 1, end: 5 + 4 * mib }))).toBe('lost');
  });
});

describe('LogCursor: a new attempt', () => {
  it('marks where the next attempt begins and starts again at offset 0', () => {
    const c = onAttempt1('first\n');
    c.take(10, b('held'));
    expect(text(c.toAttempt(2))).toBe('--- runlet: attempt 2 ---\n');
    expect(c.attempt).toBe(2);
    expect(c.sent).toBe(0);
    // The held chunk belonged to attempt 1: nothing is drained from it now.
    expect(text(c.take(0, b('second\n')))).toBe('second\n');
    expect(c.sent).toBe(7);
  });

  it('puts the marker on a line of its own after output that did not end its line', () => {
    const c = onAttempt1('no newline');
    expect(text(c.toAttempt(3))).toBe('\n--- runlet: attempt 3 ---\n');
  });

  it('writes no marker for the first attempt it sees, whatever its number', () => {
    const c = new LogCursor();
    expect(c.toAttempt(2)).toEqual([]);
    expect(c.attempt).toBe(2);
  });

  it('ignores the current or an earlier attempt', () => {
    const c = new LogCursor();
    c.toAttempt(2);
    c.take(0, b('abc'));
    expect(c.toAttempt(2)).toEqual([]);
    expect(c.toAttempt(1)).toEqual([]);
    expect(c.attempt).toBe(2);
    expect(c.sent).toBe(3);
  });
});

describe('LogCursor: the stored tail', () => {
  it('starts from a tail snapshot: writes it and stands at its end', () => {
    const c = new LogCursor();
    expect(text(c.fromTail({ text: 'line 1\nline 2\n', attempt: 1, end: 14 }))).toBe('line 1\nline 2\n');
    expect(c.attempt).toBe(1);
    expect(c.sent).toBe(14);
    // Then chunks: one the tail already had is dropped, the next one written.
    expect(c.take(7, b('line 2\n'))).toEqual([]);
    expect(text(c.take(14, b('line 3\n')))).toBe('line 3\n');
  });

  it('a tail that kept only the end of the output says how much was not kept', () => {
    const c = new LogCursor();
    expect(text(c.fromTail({ text: 'tail\n', attempt: 1, end: 105 }))).toBe('[runlet: 100 bytes of output were not kept]\ntail\n');
    expect(c.sent).toBe(105);
  });

  it('the not-kept notice starts its own line after a cut-off line', () => {
    const c = onAttempt1('partial');
    expect(text(c.fromTail({ text: 'end\n', attempt: 1, end: 20 }))).toBe('\n[runlet: 9 bytes of output were not kept]\nend\n');
  });

  it('writes only the part of the tail beyond sent, then the held chunks it joins up with', () => {
    const c = onAttempt1('abc');
    c.take(8, b('ij'));
    // Chunks [3, 8) were published before the subscribe; a later tail write covers them.
    expect(c.fromTail({ text: 'abcdefgh', attempt: 1, end: 8 }).map(String)).toEqual(['defgh', 'ij']);
    expect(c.sent).toBe(10);
  });

  it('writes nothing from a tail that ends at or before sent', () => {
    const c = onAttempt1('abcdef');
    expect(c.fromTail({ text: 'abcdef', attempt: 1, end: 6 })).toEqual([]);
    expect(c.fromTail({ text: 'abc', attempt: 1, end: 3 })).toEqual([]);
    expect(c.sent).toBe(6);
  });

  it("writes nothing from an earlier attempt's tail", () => {
    const c = new LogCursor();
    c.toAttempt(2);
    expect(c.fromTail({ text: 'old output\n', attempt: 1, end: 11 })).toEqual([]);
    expect(c.attempt).toBe(2);
    expect(c.sent).toBe(0);
  });

  it('a tail with no position (no container ever started) is written whole, once', () => {
    const c = new LogCursor();
    expect(text(c.fromTail({ text: 'image not found\n' }))).toBe('image not found\n');
    expect(c.fromTail({ text: 'image not found\n' })).toEqual([]);
    expect(c.sent).toBe(16);
  });

  it('a tail with no position after output was written adds nothing', () => {
    const c = onAttempt1('abc');
    expect(c.fromTail({ text: 'abcdef' })).toEqual([]);
  });

  it('an empty tail of a run that has not printed yet writes nothing', () => {
    const c = new LogCursor();
    expect(c.fromTail({ text: '', attempt: 1, end: 0 })).toEqual([]);
    expect(c.fromTail({ text: '' })).toEqual([]);
    expect(c.attempt).toBe(1);
  });
});

describe('LogCursor: the end of a run', () => {
  it('the final tail completes what the chunks left out, each byte once', () => {
    const c = new LogCursor();
    const out = [
      ...c.fromTail({ text: 'about to fail\n', attempt: 1, end: 14 }),
      ...c.take(14, b('by')),
      // The last chunk was lost; the final tail (written before the end is recorded) has it.
      ...c.fromTail({ text: 'about to fail\nbye\n', attempt: 1, end: 18 }),
    ];
    expect(text(out)).toBe('about to fail\nbye\n');
    expect(c.sent).toBe(18);
  });

  it('the final tail of a retry that followers never saw chunks of: marker, then its output', () => {
    const c = onAttempt1('try 1\n');
    expect(text(c.fromTail({ text: 'try 2\n', attempt: 2, end: 6 }))).toBe('--- runlet: attempt 2 ---\ntry 2\n');
    expect(c.attempt).toBe(2);
    expect(c.sent).toBe(6);
  });
});
