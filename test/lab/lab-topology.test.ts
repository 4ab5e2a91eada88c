/**
 * The lab itself: every figure comes up and goes down leaving nothing, up/down are idempotent, each host has
 * its own resolv.conf, segments are reachable through the router, and multicast does NOT cross the fig1
 * router (it does cross fig3's, which forwards it on purpose).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { Lab, downPrefix, listNamespaces, probeReport, STATE_DIR, type RecvReport } from '../../src/lab/index.js';
import { FIGURES, FIGURE_DEFS } from '../../src/lab/topology.js';

const prefix = `ulabtt${process.pid % 100000}`;
after(async () => { await downPrefix(prefix); });

async function leftovers(): Promise<string[]> {
  const ns = (await listNamespaces()).filter((n) => n.startsWith(`${prefix}-`));
  const etc = fs.existsSync('/etc/netns') ? fs.readdirSync('/etc/netns').filter((n) => n.startsWith(`${prefix}-`)) : [];
  const state = fs.existsSync(`${STATE_DIR}/${prefix}.json`) ? [`${prefix}.json`] : [];
  return [...ns, ...etc, ...state];
}

test('every figure comes up with its hosts and segments and goes down leaving nothing', { timeout: 120_000 }, async () => {
  for (const fig of FIGURES) {
    const lab = await Lab.up(fig, { prefix });
    try {
      const def = FIGURE_DEFS[fig];
      const ns = (await listNamespaces()).filter((n) => n.startsWith(`${prefix}-`));
      assert.equal(ns.length, def.hosts.length + def.nets.length, `${fig}: one namespace per host and per segment`);
      for (const h of lab.hostNames()) {
        assert.equal(fs.readFileSync(`/etc/netns/${lab.nsOf(h)}/resolv.conf`, 'utf8'), 'nameserver 127.0.0.1\n');
        const r = await lab.exec(h, ['cat', '/etc/resolv.conf']);
        assert.match(r.stdout, /^nameserver 127\.0\.0\.1$/m, `${fig} ${h} sees its own resolv.conf`);
        const addrs = await lab.exec(h, ['ip', '-4', '-o', 'addr', 'show']);
        for (const a of Object.values(lab.host(h).addrs)) assert.ok(addrs.stdout.includes(` ${a}/24 `), `${fig} ${h} has ${a}`);
      }
    } finally {
      await lab.down();
    }
    assert.deepEqual(await leftovers(), [], `${fig}: nothing left after down`);
  }
});

test('up and down are idempotent; down kills what runs in the lab', { timeout: 60_000 }, async () => {
  const a = await Lab.up('fig2', { prefix });
  const sleeper = a.spawn('client1', ['sleep', '50'], { timeoutMs: 55_000 });
  // A second up with the same prefix replaces the first lab (and its processes) instead of colliding.
  const b = await Lab.up('fig2', { prefix });
  assert.notEqual(await sleeper.wait(), 0, 'the first lab\'s process was stopped');
  const sleeper2 = b.spawn('client2', ['sleep', '50'], { timeoutMs: 55_000 });
  const pid = sleeper2.pid;
  await b.down();
  await b.down();
  assert.notEqual(await sleeper2.wait(), 0);
  assert.throws(() => process.kill(pid, 0), 'process gone after down');
  assert.deepEqual(await downPrefix(prefix), [], 'down finds nothing the second time');
  assert.deepEqual(await leftovers(), []);
});

test('fig1: unicast is routed between segments, multicast does not cross the router; fig3 forwards it', { timeout: 90_000 }, async () => {
  const lab = await Lab.up('fig1', { prefix });
  try {
    const port = '5001';
    const rxA = await lab.probe('clientA', 'recv', ['--port', port, '--group', '230.4.4.1', '--ms', '3000']);
    const rxB = await lab.probe('clientB1', 'recv', ['--port', port, '--group', '230.4.4.1', '--ms', '3000']);
    const rxC = await lab.probe('clientC1', 'recv', ['--port', '5002', '--ms', '3000']);
    await (await lab.probe('server', 'send', ['--to', '230.4.4.1', '--port', port, '--count', '20', '--gap-us', '2000', '--ttl', '8'])).wait();
    await (await lab.probe('server', 'send', ['--to', lab.addrOf('clientC1'), '--port', '5002', '--count', '20', '--gap-us', '2000'])).wait();
    await Promise.all([rxA.wait(), rxB.wait(), rxC.wait()]);
    assert.equal(probeReport<RecvReport>(rxA).count, 20, 'multicast reaches the server\'s own segment');
    assert.equal(probeReport<RecvReport>(rxB).count, 0, 'multicast (even with TTL 8) does not cross the router');
    assert.equal(probeReport<RecvReport>(rxC).count, 20, 'unicast is routed to network C');
  } finally {
    await lab.down();
  }
  const lab3 = await Lab.up('fig3', { prefix });
  try {
    const rx = await lab3.probe('clientC2', 'recv', ['--port', '5001', '--group', '230.4.4.1', '--ms', '3000']);
    await (await lab3.probe('server', 'send', ['--to', '230.4.4.1', '--port', '5001', '--count', '20', '--gap-us', '2000'])).wait();
    await rx.wait();
    const r = probeReport<RecvReport>(rx);
    assert.equal(r.count, 20, 'fig3 forwards the server\'s multicast to the remote clients');
    assert.deepEqual(r.sources.map((s) => s.split(':')[0]), [lab3.addrOf('server')], 'with the server\'s source address');
  } finally {
    await lab3.down();
  }
});

test('capture: tcpdump in a host records what crosses its interface', { timeout: 60_000 }, async () => {
  const lab = await Lab.up('fig2', { prefix });
  try {
    const pcap = `${lab.workDir}/cap.pcap`;
    const cap = await lab.capture('client2', 'eS', pcap, ['udp', 'port', '5009']);
    const rx = await lab.probe('client1', 'recv', ['--port', '5009', '--ms', '1500']);
    await (await lab.probe('server', 'send', ['--to', lab.addrOf('client1'), '--port', '5009', '--count', '5'])).wait();
    await lab.hubMode('S'); // unicast to client1 is seen at client2 only when the bridge floods
    await (await lab.probe('server', 'send', ['--to', lab.addrOf('client1'), '--port', '5009', '--count', '7'])).wait();
    await rx.wait();
    await new Promise((r) => setTimeout(r, 300));
    await cap.kill();
    assert.equal(probeReport<RecvReport>(rx).count, 12);
    const r = await lab.exec('client2', ['tshark', '-r', pcap, '-T', 'fields', '-e', 'ip.dst']);
    const dsts = r.stdout.split('\n').filter(Boolean);
    assert.deepEqual(dsts, Array(7).fill(lab.addrOf('client1')), 'the 7 flooded datagrams, not the 5 switched ones');
  } finally {
    await lab.down();
  }
});
