/**
 * Durations and sizes as people write them in YAML ("45m", "1g") turned into the numbers
 * the rest of runlet uses (`timeoutMs`, `memoryBytes`). Parsers return `undefined` for text
 * they don't understand, so the caller can word the error for the key it is reading.
 */

const MS_PER_UNIT: Readonly<Record<string, number>> = {
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

/** One `<number><unit>` part of a duration; several may follow each other ("1h30m"). */
const DURATION_PART = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/y;

/**
 * Whole-string shapes, exported so the JSON Schema can give editors the same pattern.
 * `m` is minutes, not months: there is no month unit, since months have no fixed length.
 */
export const DURATION_PATTERN = '(?:[0-9]+(?:\\.[0-9]+)?(?:ms|s|m|h|d))+';
export const SIZE_PATTERN = '[0-9]+(?:\\.[0-9]+)?\\s*(?:[kKmMgGtT](?:[iI]?[bB])?|[bB])?';

/** "30s", "10m", "2h", "1d", "500ms", "1h30m" → milliseconds (rounded to whole ms). */
export function parseDurationMs(text: string): number | undefined {
  const s = text.trim();
  if (s === '') return undefined;
  let totalMs = 0;
  DURATION_PART.lastIndex = 0;
  while (DURATION_PART.lastIndex < s.length) {
    const m = DURATION_PART.exec(s);
    if (!m) return undefined;
    totalMs += Number(m[1]) * MS_PER_UNIT[m[2]];
  }
  return Math.round(totalMs);
}

/** Binary multiples, as Docker reads `--memory`: k = 1024, m = 1024², g = 1024³. */
const BYTES_PER_UNIT: Readonly<Record<string, number>> = {
  '': 1,
  k: 1024,
  m: 1024 ** 2,
  g: 1024 ** 3,
  t: 1024 ** 4,
};

const SIZE = /^(\d+(?:\.\d+)?)\s*(?:([kmgt])(?:i?b)?|b)?$/i;

/**
 * "256m", "1g", "512k", "1024", "1.5g", "64MiB" → bytes (rounded down to a whole byte).
 * A bare number, in YAML or in a string, is bytes, as it is for Docker.
 */
export function parseSizeBytes(value: string | number): number | undefined {
  if (typeof value === 'number') {
    return Number.isFinite(value) && value >= 0 ? Math.floor(value) : undefined;
  }
  const m = SIZE.exec(value.trim());
  if (!m) return undefined;
  const unit = (m[2] ?? '').toLowerCase();
  return Math.floor(Number(m[1]) * BYTES_PER_UNIT[unit]);
}

/** Bytes back to the shortest exact "6m"-style text, for messages. */
export function formatBytes(bytes: number): string {
  for (const unit of ['t', 'g', 'm', 'k']) {
    const per = BYTES_PER_UNIT[unit];
    if (bytes >= per && bytes % per === 0) return `${bytes / per}${unit}`;
  }
  return String(bytes);
}
