import { PREFIX } from '../../runs/keys.js';

/**
 * The Redis keys of the MongoDB change-stream trigger, one set per task (in the style of
 * src/runs/keys.ts, where they belong once merged).
 */
export const streamKeys = {
  /** string `<holder daemon id>|<fence>` with a PX expiry: who may consume the stream now. */
  lease: (task: string) => `${PREFIX}:stream:${task}:lease`,
  /** integer, INCR'd on every acquisition and reset: the fencing token of the latest holder. */
  fence: (task: string) => `${PREFIX}:stream:${task}:fence`,
  /** string: the resume token (canonical EJSON) of the last change whose run is recorded. */
  token: (task: string) => `${PREFIX}:stream:${task}:token`,
  /**
   * hash: state (unconfigured|waiting|watching|error), holder, fence, error, errorKind,
   * errorAt, retryAt, lastEventAt, lastTokenAt, lastClusterTimeMs, eventsTotal, resetAt.
   * Times are epoch ms; '' means unset.
   */
  state: (task: string) => `${PREFIX}:stream:${task}:state`,
} as const;
