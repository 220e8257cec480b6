import type Docker from 'dockerode';
import { RunFailedToStart } from './errors.js';
import type { RunSpec } from './types.js';

/**
 * Programs expect a writable /tmp, and a read-only rootfs takes it away. 64 MiB, and its
 * pages count against the container's memory limit, so it can't outgrow the run.
 */
export const READ_ONLY_TMPFS: Readonly<Record<string, string>> = { '/tmp': 'rw,nosuid,nodev,size=64m' };

/**
 * Whether `user` (docker --user: a name or uid, optionally :group) is root. A name other
 * than "root" counts as not root: it is resolved inside the image, unseen here.
 */
export function runsAsRoot(user: string | undefined): boolean {
  const name = (user ?? '').split(':')[0]!.trim();
  return name === '' || name === 'root' || /^0+$/.test(name);
}

/** Networks a task may not choose: each one gives up the network isolation of the container. */
const REFUSED_NETWORKS = [
  { test: (mode: string) => mode === 'host', why: "it shares the host's network stack, including services listening on its localhost" },
  { test: (mode: string) => mode.startsWith('container:'), why: "it joins another container's network stack" },
];

/** The task's own isolation choices (RunSpec.readOnly, .network) as engine settings; the fixed hardening stays in DockerRuntime. */
export function isolationHostConfig(
  spec: Pick<RunSpec, 'readOnly' | 'network'>,
): Pick<Docker.HostConfig, 'ReadonlyRootfs' | 'Tmpfs' | 'NetworkMode'> {
  return {
    ReadonlyRootfs: spec.readOnly === true,
    ...(spec.readOnly ? { Tmpfs: { ...READ_ONLY_TMPFS } } : {}),
    NetworkMode: networkMode(spec),
  };
}

/** 'bridge' unless the spec names another network. Throws RunFailedToStart for one we refuse. */
export function networkMode(spec: Pick<RunSpec, 'network'>): string {
  const mode = spec.network || 'bridge';
  const refused = REFUSED_NETWORKS.find((rule) => rule.test(mode));
  if (refused)
    throw new RunFailedToStart(`network "${mode}" is not allowed for a task: ${refused.why}. Use "none", "bridge" or a named network`);
  return mode;
}
