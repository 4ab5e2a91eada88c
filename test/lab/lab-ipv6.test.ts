/**
 * The lab's dual stack (ipv6: true): every host gets fd<octet>:<subnet>::<host> beside its IPv4 address,
 * usable at once (no DAD), unicast IPv6 is routed between segments, IPv6 multicast does NOT cross the fig1
 * router (it does cross fig3's, which copies site-scope multicast on purpose), and up/down leave nothing.
 * Second octet 71 (fd71::/16) keeps it apart from other labs.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { Lab, downPrefix, listNamespaces, probeReport, STATE_DIR, type RecvReport } from '../../src/lab/index.js';
import { FIGURE_DEFS } from '../../src/lab/topology.js';

const prefix = `ulab6t${process.pid % 100000}`;
const octet = 71;
after(async () => { await downPrefix(prefix); });

async function leftovers(): Promise<string[]> {
  const ns = (await listNamespaces()).filter((n) => n.startsWith(`${prefix}-`));
  const etc = fs.existsSync('/etc/netns') ? fs.readdirSync('/etc/netns').filter((n) => n.startsWith(`${prefix}-`)) : [];
  const state = fs.existsSync(`${STATE_DIR}/${prefix}.json`) ? [`${prefix}.json`] : [];
  return [...ns, ...etc, ...state];
}

test('dual-stack fig1 comes up with an IPv6 address per host and segment and goes down leaving nothing', { timeout: 90_000 }, async () => {
  const lab = await Lab.up('fig1', { prefix, octet, ipv6: true });
  try {
    assert.equal(lab.addrOf('clientB1', 'B', 'ipv6'), 'fd71:2::21');
    assert.equal(lab.addrOf('router', 'C', 'ipv6'), 'fd71:3::1');
    assert.equal(lab.subnetOf('A', 'ipv6'), 'fd71:1::/64');
    assert.equal(lab.addrOf('clientB1'), '10.71.2.21', 'IPv4 stays the default');
    const ns = (await listNamespaces()).filter((n) => n.startsWith(`${prefix}-`));
    assert.equal(ns.length, FIGURE_DEFS.fig1.hosts.length + FIGURE_DEFS.fig1.nets.length);
    for (const h of lab.hostNames()) {
      const info = lab.host(h);
      const v6 = await lab.exec(h, ['ip', '-6', '-o', 'addr', 'show']);
      for (const [net, a] of Object.entries(info.addrs6 ?? {})) {
        assert.match(v6.stdout, new RegExp(`e${net}\\s+inet6 ${a}/64 `), `${h} has ${a} on e${net}`);
      }
      assert.doesNotMatch(v6.stdout, /tentative/, `${h}: no address waits for DAD`);
      const v4 = await lab.exec(h, ['ip', '-4', '-o', 'addr', 'show']);
      for (const a of Object.values(info.addrs)) assert.ok(v4.stdout.includes(` ${a}/24 `), `${h} still has ${a}`);
      const hosts = await lab.exec(h, ['getent', 'hosts', 'sproxyB.v6']);
      assert.match(hosts.stdout, /^fd71:1::11\s+sproxyB\.v6/, `${h} resolves <host>.v6 from the lab's hosts file`);
    }
    assert.throws(() => Lab.describe('fig1', { octet }).addrOf('server', undefined, 'ipv6'), /no IPv6/);
  } finally {
    await lab.down();
  }
  assert.deepEqual(await leftovers(), [], 'nothing left after down');
  assert.deepEqual(await downPrefix(prefix), [], 'a second down finds nothing');
});

test('dual-stack fig1: IPv6 unicast is routed between segments, IPv6 multicast does not cross the router; fig3 copies it', { timeout: 90_000 }, async () => {
  const lab = await Lab.up('fig1', { prefix, octet, ipv6: true });
  try {
    const group = 'ff15::4:4:1';
    const rxA = await lab.probe('clientA', 'recv', ['--port', '5001', '--group', group, '--ms', '3000']);
    const rxB = await lab.probe('clientB1', 'recv', ['--port', '5001', '--group', group, '--ms', '3000']);
    const rxC = await lab.probe('clientC1', 'recv', ['--port', '5002', '--family', '6', '--ms', '3000']);
    await (await lab.probe('server', 'send', ['--to', group, '--port', '5001', '--count', '20', '--gap-us', '2000', '--ttl', '8'])).wait();
    await (await lab.probe('server', 'send', ['--to', lab.addrOf('clientC1', 'C', 'ipv6'), '--port', '5002', '--count', '20', '--gap-us', '2000'])).wait();
    await Promise.all([rxA.wait(), rxB.wait(), rxC.wait()]);
    const a = probeReport<RecvReport>(rxA);
    const c = probeReport<RecvReport>(rxC);
    assert.equal(a.count, 20, 'IPv6 multicast reaches the server\'s own segment');
    assert.ok(a.sources.every((s) => s.startsWith('fd71:1::10:')), `from the server's IPv6 address: ${a.sources.join(' ')}`);
    assert.equal(probeReport<RecvReport>(rxB).count, 0, 'IPv6 multicast (even with hop limit 8) does not cross the router');
    assert.equal(c.count, 20, 'IPv6 unicast is routed to network C');
    assert.ok(c.sources.every((s) => s.startsWith('fd71:1::10:')), `from the server's IPv6 address: ${c.sources.join(' ')}`);
    const route = await lab.exec('clientB1', ['ip', '-6', 'route', 'get', lab.addrOf('clientC2', 'C', 'ipv6')]);
    assert.match(route.stdout, /via fd71:2::1 dev eB/, 'the route to C goes through the router');
  } finally {
    await lab.down();
  }
  const lab3 = await Lab.up('fig3', { prefix, octet, ipv6: true });
  try {
    const rx = await lab3.probe('clientC2', 'recv', ['--port', '5001', '--group', 'ff15::4:4:1', '--ms', '3000']);
    await (await lab3.probe('server', 'send', ['--to', 'ff15::4:4:1', '--port', '5001', '--count', '20', '--gap-us', '2000'])).wait();
    await rx.wait();
    assert.equal(probeReport<RecvReport>(rx).count, 20, 'fig3\'s router copies site-scope IPv6 multicast to C');
  } finally {
    await lab3.down();
  }
  assert.deepEqual(await leftovers(), []);
});

test('dual-stack nat: IPv6 from B is masqueraded to the gateway address, unsolicited IPv6 inbound is dropped', { timeout: 60_000 }, async () => {
  const lab = await Lab.up('nat', { prefix, octet, ipv6: true });
  try {
    const rx = await lab.probe('server', 'recv', ['--port', '5003', '--family', '6', '--ms', '2500']);
    const rxB = await lab.probe('clientB1', 'recv', ['--port', '5004', '--family', '6', '--ms', '2500']);
    await (await lab.probe('clientB1', 'send', ['--to', lab.addrOf('server', 'A', 'ipv6'), '--port', '5003', '--count', '10'])).wait();
    await (await lab.probe('server', 'send', ['--to', lab.addrOf('clientB1', 'B', 'ipv6'), '--port', '5004', '--count', '10'])).wait();
    await Promise.all([rx.wait(), rxB.wait()]);
    const r = probeReport<RecvReport>(rx);
    assert.equal(r.count, 10, 'outbound IPv6 gets through');
    assert.ok(r.sources.every((s) => s.startsWith(`${lab.addrOf('natgw', 'W', 'ipv6')}:`)), `masqueraded: ${r.sources.join(' ')}`);
    assert.equal(probeReport<RecvReport>(rxB).count, 0, 'unsolicited inbound IPv6 is dropped');
    assert.ok(await lab.natDropped() >= 10);
  } finally {
    await lab.down();
  }
  assert.deepEqual(await leftovers(), []);
});
