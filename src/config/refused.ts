/**
 * Keys a docker-compose or `docker run` user will reach for that runlet refuses on purpose:
 * each one gives a run control of the host (or of every other run on it), which the isolation
 * defaults exist to prevent. They are unknown to the schema anyway; this table only turns
 * "unknown key" into a refusal that says why, placed at the key (zod-issues.ts). There is no
 * opt-in: a task that needs any of these is not a task for a shared runner.
 */
const HOST_CONTROL_CAPS = 'SYS_ADMIN, NET_ADMIN, SYS_PTRACE, SYS_MODULE, SYS_RAWIO, DAC_READ_SEARCH, SYS_BOOT, SYS_TIME, MKNOD';

const PRIVILEGED = 'privileged mode gives the container every capability and every host device: root in it is root on the host';
const CAPS =
  `runlet drops every capability and adds none back; added capabilities (${HOST_CONTROL_CAPS}, ...) ` +
  'let a run mount file systems, reconfigure the host network, trace other processes or load kernel modules';
const BINDS =
  'a run gets no host path and never the Docker socket (/var/run/docker.sock is root on the host); ' +
  'give it data through its payload, env, secrets or the network instead';
const DEVICES = 'host devices give a run raw access to the hardware (disks, memory, kernel interfaces) outside its container';
const namespace = (what: string) =>
  `sharing the host's ${what} namespace lets a run see and reach what lies outside its container; ` +
  'each run keeps its own (for the network, use network: none, bridge or a named network)';
const SECURITY_OPT = "a run always has no-new-privileges and the engine's default seccomp and AppArmor profiles; they cannot be turned off";

export const REFUSED_KEYS: Readonly<Record<string, string>> = {
  privileged: PRIVILEGED,
  cap_add: CAPS,
  capAdd: CAPS,
  capabilities: CAPS,
  volumes: BINDS,
  volumes_from: BINDS,
  binds: BINDS,
  mounts: BINDS,
  devices: DEVICES,
  device_cgroup_rules: DEVICES,
  gpus: DEVICES,
  network_mode: namespace('network'),
  networkMode: namespace('network'),
  net: namespace('network'),
  pid: namespace('process (PID)'),
  pid_mode: namespace('process (PID)'),
  ipc: namespace('IPC'),
  ipc_mode: namespace('IPC'),
  uts: namespace('UTS (hostname)'),
  userns_mode: namespace('user'),
  cgroup: namespace('cgroup'),
  cgroup_parent: namespace('cgroup'),
  security_opt: SECURITY_OPT,
  securityOpt: SECURITY_OPT,
};

/** Where REFUSED_KEYS apply: a task's own map and `defaults:`. */
export function refusalAt(path: readonly PropertyKey[], key: string): string | undefined {
  const inTask = path.length === 2 && path[0] === 'tasks';
  const inDefaults = path.length === 1 && path[0] === 'defaults';
  if (!inTask && !inDefaults) return undefined;
  const why = Object.hasOwn(REFUSED_KEYS, key) ? REFUSED_KEYS[key] : undefined;
  return why && `${JSON.stringify(key)} is refused: ${why}`;
}
