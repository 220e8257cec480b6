import { createHmac } from 'node:crypto';
import { isIPv4, isIPv6 } from 'node:net';
import { TaskError } from '../lib/task.js';

/**
 * What happens to personal data before a document leaves MongoDB. A denylist: fields not
 * named are archived as they are, so a new personal field must be added here (or in
 * PII_POLICY) before it is archived. Paths are dotted (`device.id`); a path that crosses
 * an array applies to every element.
 */
export interface PiiPolicy {
  /** Removed from the document. */
  readonly drop: readonly string[];
  /** Replaced by HMAC-SHA256(salt, value) in hex: still joinable across archives with the same salt, not reversible without it. */
  readonly hash: readonly string[];
  /** IPv4 cut to its /24 (`1.2.3.0`), IPv6 to its /48 (`2001:db8:1::`); anything that is not an IP is dropped. */
  readonly truncateIp: readonly string[];
}

/** appStarts as the app writes them. Documented in README.md: keep the two in step. */
export const DEFAULT_POLICY: PiiPolicy = Object.freeze({
  drop: ['email', 'name', 'phone', 'pushToken'],
  hash: ['userId', 'deviceId', 'device.id'],
  truncateIp: ['ip'],
});

const KEYS = ['drop', 'hash', 'truncateIp'] as const;

/** PII_POLICY as JSON; any mistake is a TaskError naming it, never a silently weaker policy. */
export function parsePolicy(text: string | undefined): PiiPolicy {
  if (text === undefined || text.trim() === '') return DEFAULT_POLICY;
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new TaskError(
      `PII_POLICY is not valid JSON (${(err as Error).message}): expected {"drop":[...],"hash":[...],"truncateIp":[...]}`,
    );
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new TaskError('PII_POLICY must be a JSON object: {"drop":[...],"hash":[...],"truncateIp":[...]}');
  }
  const unknown = Object.keys(raw).filter((k) => !(KEYS as readonly string[]).includes(k));
  if (unknown.length > 0) throw new TaskError(`PII_POLICY has unknown key(s) ${unknown.join(', ')}: only drop, hash and truncateIp exist`);
  const out: Record<string, string[]> = {};
  for (const key of KEYS) {
    const list = (raw as Record<string, unknown>)[key] ?? [];
    if (!Array.isArray(list) || !list.every((p) => typeof p === 'string' && p !== '' && !p.split('.').includes(''))) {
      throw new TaskError(`PII_POLICY.${key} must be a list of field paths such as "email" or "device.id"`);
    }
    if (list.some((p: string) => p === '_id' || p.startsWith('_id.'))) {
      throw new TaskError(`PII_POLICY.${key} names _id: the archive needs _id unchanged to know what it has archived`);
    }
    out[key] = list as string[];
  }
  return Object.freeze({ drop: out.drop!, hash: out.hash!, truncateIp: out.truncateIp! });
}

export function hashValue(value: unknown, salt: string): string {
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  return createHmac('sha256', salt).update(text).digest('hex');
}

/** The network part of an IP address, or undefined for anything that is not one. */
export function truncateIp(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  if (isIPv4(value)) return value.split('.').slice(0, 3).concat('0').join('.');
  if (!isIPv6(value)) return undefined;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(value);
  if (mapped && isIPv4(mapped[1]!)) return `::ffff:${truncateIp(mapped[1])}`;
  const groups = expandIPv6(value.split('%')[0]!);
  return `${groups
    .slice(0, 3)
    .map((g) => g.replace(/^0+(?=.)/, ''))
    .join(':')}::`;
}

function expandIPv6(ip: string): string[] {
  // An embedded IPv4 tail counts as two groups; only the first three groups are kept anyway.
  const tail = /(\d+\.\d+\.\d+\.\d+)$/.exec(ip);
  const text = tail ? ip.slice(0, -tail[1]!.length) + '0:0' : ip;
  const [head, rest] = text.split('::') as [string, string | undefined];
  const left = head ? head.split(':') : [];
  const right = rest === undefined ? [] : rest ? rest.split(':') : [];
  const fill = rest === undefined ? [] : Array<string>(8 - left.length - right.length).fill('0');
  return [...left, ...fill, ...right].map((g) => g.toLowerCase());
}

type Edit = (holder: Record<string, unknown>, key: string) => void;

function applyAt(node: unknown, path: readonly string[], edit: Edit): void {
  if (Array.isArray(node)) {
    for (const item of node) applyAt(item, path, edit);
    return;
  }
  if (typeof node !== 'object' || node === null) return;
  const obj = node as Record<string, unknown>;
  const [head, ...rest] = path;
  if (head === undefined || !Object.prototype.hasOwnProperty.call(obj, head)) return;
  if (rest.length === 0) edit(obj, head);
  else applyAt(obj[head], rest, edit);
}

/**
 * The document with the policy applied, as a new object (the input is not changed). Drops
 * run last so a path that is both hashed and dropped ends up dropped.
 */
export function redact<T extends Record<string, unknown>>(doc: T, policy: PiiPolicy, salt: string): T {
  const copy = structuredClone(doc);
  const hashEach = (v: unknown): unknown => (Array.isArray(v) ? v.map(hashEach) : v === null || v === undefined ? v : hashValue(v, salt));
  for (const path of policy.hash) applyAt(copy, path.split('.'), (o, k) => (o[k] = hashEach(o[k])));
  for (const path of policy.truncateIp) {
    applyAt(copy, path.split('.'), (o, k) => {
      const cut = Array.isArray(o[k]) ? (o[k] as unknown[]).map(truncateIp).filter((v) => v !== undefined) : truncateIp(o[k]);
      if (cut === undefined) delete o[k];
      else o[k] = cut;
    });
  }
  for (const path of policy.drop) applyAt(copy, path.split('.'), (o, k) => delete o[k]);
  return copy;
}
