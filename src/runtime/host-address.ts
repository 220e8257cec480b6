import { networkInterfaces } from 'node:os';
import type Docker from 'dockerode';
import { LABEL_MANAGED, LABEL_PROBE } from './labels.js';

/**
 * The name every task container (on a network) resolves to the host it runs on, as Docker
 * Desktop does: a config can say `http://host.docker.internal:9000` for a MinIO on the host
 * instead of guessing the bridge's address.
 */
export const HOST_ALIAS = 'host.docker.internal';

/** How the address was found, for logs and for the operator who wonders why this one. */
export type HostAddressSource = 'bridge-gateway' | 'bridge-interface' | 'host-gateway';

export interface HostAddress {
  readonly address: string;
  readonly source: HostAddressSource;
}

export interface HostAddressOptions {
  /** Only for the last resort: an image on the engine whose containers can `cat /etc/hosts`. */
  readonly probeImage?: string;
  /** Put on the probe container (a test suite's id), besides runlet's own labels. */
  readonly labels?: Readonly<Record<string, string>>;
  /** How long to wait for a local bridge interface's address (BRIDGE_ADDRESS_WAIT_MS). */
  readonly interfaceWaitMs?: number;
}

export interface BridgeNetwork {
  IPAM?: { Config?: Array<{ Gateway?: string; Subnet?: string }> };
  Options?: Record<string, string>;
}

/**
 * The address at which a container on the engine's default bridge reaches the host.
 *
 * Three sources, in order, because none of them is always there:
 * 1. the bridge's IPAM gateway: what `docker network inspect bridge` shows, but a freshly
 *    installed dockerd leaves it out until its first restart (Subnet only);
 * 2. the address of the bridge's interface (`docker0`, or the one the engine was given
 *    with --bridge) on this machine: right whenever the engine runs here, which is the case
 *    that lacks (1);
 * 3. Docker's own `host-gateway`, read back from a probe container's /etc/hosts: works for
 *    an engine elsewhere, at the cost of one container.
 */
export async function hostAddress(docker: Docker, opts: HostAddressOptions = {}): Promise<HostAddress> {
  const bridge = (await docker.getNetwork('bridge').inspect()) as BridgeNetwork;
  const found = addressFromBridge(bridge);
  if (found) return found;
  // Right after an engine start the bridge's interface exists here but has no address yet
  // (dockerd gives it one a moment later): wait for it rather than spend a probe container.
  if (bridgeInterfaceIsLocal(bridge)) {
    const deadline = Date.now() + (opts.interfaceWaitMs ?? BRIDGE_ADDRESS_WAIT_MS);
    while (Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      const later = addressFromBridge(bridge);
      if (later) return later;
    }
  }
  return { address: await probeHostGateway(docker, opts), source: 'host-gateway' };
}

/** How long a local bridge interface with no address yet (an engine just started) is waited for. */
export const BRIDGE_ADDRESS_WAIT_MS = 5_000;

/** Whether the bridge's interface exists on this machine (with or without an address yet). */
function bridgeInterfaceIsLocal(bridge: BridgeNetwork): boolean {
  return networkInterfaces()[bridgeInterfaceName(bridge)] !== undefined;
}

function bridgeInterfaceName(bridge: BridgeNetwork): string {
  return bridge.Options?.['com.docker.network.bridge.name'] ?? 'docker0';
}

/** Sources 1 and 2: what the bridge's inspect output and this machine's interfaces tell. */
export function addressFromBridge(bridge: BridgeNetwork): HostAddress | undefined {
  const gateway = bridge.IPAM?.Config?.find((c) => c.Gateway)?.Gateway;
  if (gateway) return { address: gateway, source: 'bridge-gateway' };
  const iface = bridgeInterfaceName(bridge);
  const subnets = (bridge.IPAM?.Config ?? []).map((c) => c.Subnet).filter((s): s is string => !!s);
  const local = interfaceAddress(iface, subnets);
  return local ? { address: local, source: 'bridge-interface' } : undefined;
}

/**
 * The IPv4 address of a local interface, only if it lies in one of the bridge's subnets: an
 * interface of the same name that belongs to another engine (or a remote engine's bridge we
 * cannot see) must not be mistaken for this one.
 */
function interfaceAddress(name: string, subnets: readonly string[]): string | undefined {
  const addrs = networkInterfaces()[name] ?? [];
  const v4 = addrs.filter((a) => a.family === 'IPv4' && !a.internal).map((a) => a.address);
  if (subnets.length === 0) return v4[0];
  return v4.find((a) => subnets.some((s) => inSubnet(a, s)));
}

export function inSubnet(address: string, cidr: string): boolean {
  const [base, bitsText] = cidr.split('/');
  const bits = Number(bitsText);
  const toInt = (ip: string) => ip.split('.').reduce((n, part) => (n << 8) + Number(part), 0) >>> 0;
  if (!base || !Number.isInteger(bits) || bits < 0 || bits > 32 || !/^\d+\.\d+\.\d+\.\d+$/.test(address)) return false;
  const mask = bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0;
  return (toInt(address) & mask) === (toInt(base) & mask);
}

/** One short-lived, labelled container that asks the engine what `host-gateway` means. */
export async function probeHostGateway(docker: Docker, opts: HostAddressOptions): Promise<string> {
  const image = opts.probeImage ?? 'runlet/busybox:local';
  const probe = 'runlet-host-probe';
  const container = await docker.createContainer({
    Image: image,
    Cmd: ['cat', '/etc/hosts'],
    Labels: { ...opts.labels, [LABEL_MANAGED]: 'true', [LABEL_PROBE]: 'host-address' },
    HostConfig: { ExtraHosts: [`${probe}:host-gateway`], NetworkMode: 'bridge', AutoRemove: false },
  });
  try {
    await container.start();
    await container.wait();
    const raw = await container.logs({ stdout: true, stderr: false, follow: false });
    const text = demuxedText(raw as unknown as Buffer);
    const line = text.split('\n').find((l) => l.trim().split(/\s+/).slice(1).includes(probe));
    const address = line?.trim().split(/\s+/)[0];
    if (!address) throw new Error(`the engine gave no address for host-gateway (its /etc/hosts: ${JSON.stringify(text.slice(0, 300))})`);
    return address;
  } finally {
    await container.remove({ force: true, v: true }).catch(() => undefined);
  }
}

/** A non-TTY container's log is framed: 8-byte headers before each chunk. */
function demuxedText(buf: Buffer): string {
  const parts: Buffer[] = [];
  let i = 0;
  while (i + 8 <= buf.length) {
    const size = buf.readUInt32BE(i + 4);
    parts.push(buf.subarray(i + 8, i + 8 + size));
    i += 8 + size;
  }
  return Buffer.concat(parts).toString('utf8');
}
