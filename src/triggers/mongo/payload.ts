import type { TaskConfig } from '../../config/types.js';
import type { RunRequest } from '../../runs/types.js';
import { tokenKey } from './cursor.js';
import type { ChangeEvent } from './source.js';

/** What a run of a change gets as its payload (RUNLET_PAYLOAD, /runlet/payload.json, stdin). */
export interface ChangePayload {
  operationType: string;
  ns: { db: string; coll: string };
  documentKey?: unknown;
  fullDocument?: unknown;
  updateDescription?: unknown;
  /** ISO time of the change in the oplog (second precision, as MongoDB keeps it). */
  clusterTime?: string;
  /** Set when fullDocument/updateDescription were left out to fit the task's maxPayload. */
  omitted?: string;
}

export function changePayload(event: ChangeEvent): ChangePayload {
  return {
    operationType: event.operationType,
    ns: { db: event.ns.db, coll: event.ns.coll },
    ...(event.documentKey !== undefined && { documentKey: event.documentKey }),
    ...(event.fullDocument !== undefined && event.fullDocument !== null && { fullDocument: event.fullDocument }),
    ...(event.updateDescription !== undefined && event.updateDescription !== null && { updateDescription: event.updateDescription }),
    ...(event.clusterTime && { clusterTime: new Date(event.clusterTime.t * 1000).toISOString() }),
  };
}

/**
 * One change → one run request. The dedupe key is the change's resume token, which every
 * daemon sees the same for the same change: a change handed over twice (a crash before the
 * token was stored, a deposed holder still draining) makes one run.
 *
 * A document too large for the task's maxPayload is not a reason to drop the change (that
 * would lose it silently): the run still happens, without the document, and says so; the
 * task can read it by documentKey.
 */
export function changeRequest(task: TaskConfig, event: ChangeEvent): { request: RunRequest; omitted?: string } {
  let payload = changePayload(event);
  let omitted: string | undefined;
  const bytes = Buffer.byteLength(JSON.stringify(payload));
  if (bytes > task.maxPayloadBytes) {
    omitted = `fullDocument and updateDescription left out: the change is ${bytes} bytes as JSON, more than maxPayload (${task.maxPayloadBytes} bytes); read the document by documentKey`;
    const { fullDocument: _f, updateDescription: _u, ...rest } = payload;
    payload = { ...rest, omitted };
  }
  return {
    request: {
      task: task.name,
      trigger: 'mongo',
      dedupeKey: `${task.name}:mongo:${tokenKey(event.token)}`,
      payload,
      cause: `${event.operationType} on ${event.ns.db}.${event.ns.coll}`,
    },
    ...(omitted && { omitted }),
  };
}
