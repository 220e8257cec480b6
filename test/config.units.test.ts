import { describe, expect, it } from 'vitest';
import { formatBytes, parseDurationMs, parseSizeBytes } from '../src/config/units.js';

describe('parseDurationMs', () => {
  it.each([
    ['500ms', 500],
    ['30s', 30_000],
    ['10m', 600_000],
    ['2h', 7_200_000],
    ['1d', 86_400_000],
    ['1.5s', 1_500],
    ['1h30m', 5_400_000],
    [' 45m ', 2_700_000],
    ['0s', 0],
  ])('reads %j as %d ms', (text, ms) => {
    expect(parseDurationMs(text)).toBe(ms);
  });

  it.each(['', 'soon', '10', '10 m', '10M', '1w', 'm', '-5s', '1h 30m', '1.s'])('refuses %j', (text) => {
    expect(parseDurationMs(text)).toBeUndefined();
  });
});

describe('parseSizeBytes', () => {
  it.each([
    ['1024', 1024],
    ['512k', 512 * 1024],
    ['256m', 256 * 1024 ** 2],
    ['1g', 1024 ** 3],
    ['1G', 1024 ** 3],
    ['64MiB', 64 * 1024 ** 2],
    ['64mb', 64 * 1024 ** 2],
    ['1.5g', 1.5 * 1024 ** 3],
    ['100b', 100],
    [' 6m ', 6 * 1024 ** 2],
  ])('reads %j as %d bytes', (text, bytes) => {
    expect(parseSizeBytes(text)).toBe(bytes);
  });

  it('reads a YAML number as bytes, as Docker does', () => {
    expect(parseSizeBytes(1024)).toBe(1024);
    expect(parseSizeBytes(-1)).toBeUndefined();
  });

  it.each(['', 'lots', '1x', 'm', '-1m', '1 g b', '1e3'])('refuses %j', (text) => {
    expect(parseSizeBytes(text)).toBeUndefined();
  });
});

describe('formatBytes', () => {
  it('writes the shortest exact unit', () => {
    expect(formatBytes(6 * 1024 ** 2)).toBe('6m');
    expect(formatBytes(1024 ** 3)).toBe('1g');
    expect(formatBytes(1536)).toBe('1536');
  });
});
