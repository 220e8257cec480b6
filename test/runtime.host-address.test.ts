import { createServer, type Server } from 'node:http';
import { networkInterfaces } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DockerRuntime } from '../src/runtime/docker.js';
import { addressFromBridge, hostAddress, inSubnet, probeHostGateway, type BridgeNetwork } from '../src/runtime/host-address.js';
import { BUSYBOX, busyboxSpec, docker, removeTestContainers, requireImages, runToEnd, testLabels } from './helpers/docker.js';
import { freePort } from './helpers/process.js';
import { until } from './helpers/until.js';

const FILE = 'runtime.host-address';

/** What `docker network inspect bridge` shows on a freshly installed engine's first start. */
const FIRST_START_BRIDGE: BridgeNetwork = {
  IPAM: { Config: [{ Subnet: '172.17.0.0/16' }] },
  Options: { 'com.docker.network.bridge.default_bridge': 'true', 'com.docker.network.bridge.name': 'docker0' },
};

describe('the address at which a task container reaches the host', () => {
  let server: Server;
  let port: number;
  beforeAll(async () => {
    await requireImages(BUSYBOX);
    port = await freePort('0.0.0.0');
    server = createServer((_req, res) => res.end('hello from the host'));
    await new Promise<void>((resolve) => server.listen(port, '0.0.0.0', resolve));
  });
  afterAll(async () => {
    server.close();
    await removeTestContainers(FILE);
  });

  it('is found on this engine, and every source that can answer here gives the same address', async () => {
    const found = await hostAddress(docker);
    const probed = await probeHostGateway(docker, { labels: testLabels(FILE) });
    expect(probed).toBe(found.address);
    const local = (networkInterfaces().docker0 ?? []).find((a) => a.family === 'IPv4')?.address;
    if (local) expect(found.address).toBe(local);
  });

  it("on a first-start engine (the bridge has a subnet but no gateway) it is the bridge interface's address", async () => {
    // Right after an engine (re)start docker0 exists a moment before it has its address.
    const local = await until(
      "docker0's IPv4 address in 172.17.0.0/16 (the engine just started?)",
      async () => (networkInterfaces().docker0 ?? []).find((a) => a.family === 'IPv4' && inSubnet(a.address, '172.17.0.0/16'))?.address,
      20_000,
      100,
    );
    expect(addressFromBridge(FIRST_START_BRIDGE)).toEqual({ address: local, source: 'bridge-interface' });
    // A bridge interface this machine does not have (an engine elsewhere): no guess, the probe decides.
    expect(addressFromBridge({ ...FIRST_START_BRIDGE, Options: { 'com.docker.network.bridge.name': 'no-such-br0' } })).toBeUndefined();
    // An interface of that name outside the bridge's subnet is another network's, not this one's.
    expect(addressFromBridge({ ...FIRST_START_BRIDGE, IPAM: { Config: [{ Subnet: '10.99.0.0/16' }] } })).toBeUndefined();
  });

  it('a restarted engine names its gateway, and that wins', () => {
    expect(addressFromBridge({ IPAM: { Config: [{ Subnet: '172.17.0.0/16', Gateway: '172.17.0.1' }] } })).toEqual({
      address: '172.17.0.1',
      source: 'bridge-gateway',
    });
  });

  it('a run reaches a server on the host as host.docker.internal, without knowing any address', async () => {
    const runtime = new DockerRuntime({ docker, labels: testLabels(FILE) });
    const { result } = await runToEnd(runtime, busyboxSpec(FILE, { command: ['wget', '-qO-', `http://host.docker.internal:${port}/`] }));
    expect(result.outcome).toBe('succeeded');
    expect(result.logTail).toBe('hello from the host');
  });

  it('a run without a network gets no host entry (and cannot reach the host)', async () => {
    const runtime = new DockerRuntime({ docker, labels: testLabels(FILE) });
    const { result } = await runToEnd(
      runtime,
      busyboxSpec(FILE, { network: 'none', command: ['sh', '-c', 'grep -c host.docker.internal /etc/hosts || echo no-entry'] }),
    );
    expect(result.logTail).toContain('no-entry');
  });
});
