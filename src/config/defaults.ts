/**
 * Every built-in default of runlet.yaml, in one table: resolve.ts merges them, the schema
 * states them in its descriptions (and so in the editor's JSON Schema and its hints), and
 * the README's config reference repeats them. Written as a user writes them in the file;
 * resolve.ts parses the sizes and durations with the same functions as the user's values.
 */
export const DEFAULTS = {
  memory: '256m',
  cpus: 0.5,
  timeout: '15m',
  killGrace: '10s',
  // A cluster of daemons must agree on when a tick is, so never the host's zone.
  timezone: 'UTC',
  pids: 256,
  maxPayload: '1m',
  /**
   * Not root: 65534:65534 is "nobody"/"nogroup" in most images (Debian, Alpine, busybox) and
   * the kernel's overflow id elsewhere. Numeric on purpose: Docker takes a uid:gid without
   * looking it up, so it works in an image with no /etc/passwd (scratch, distroless); it
   * owns no file in any image, so the program can change nothing of the image; and naming
   * the group too keeps the image's USER's groups (and root's group 0) off it.
   */
  user: '65534:65534',
  /** A read-only root: writes go to /tmp (a 64m tmpfs) and /runlet, never the host's disk. */
  readOnly: true,
  network: 'bridge',
  concurrency: 1,
  overlap: 'queue',
  maxQueued: 100,
  jitter: '0s',
  suspended: false,
  catchup: '0s',
  /** Tasks without `pool:` share this pool; defining it under `pools:` overrides its limits. */
  pool: 'default',
  poolConcurrency: 8,
  retentionRuns: 100,
  /** How long a function's instance stays warm after a request (scale to zero after it); other tasks: 0. */
  warmIdle: '5m',
} as const;

/** "Default 256m." for a schema description, from the table, so the two never disagree. */
export function defaultNote(key: keyof typeof DEFAULTS, suffix = ''): string {
  return `Default ${String(DEFAULTS[key])}${suffix}.`;
}
