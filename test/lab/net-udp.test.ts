// The UDP driver (src/net) inside two network namespaces of our own, joined by two veth pairs:
//   NS A: a9 fd63:9::1 (IPv6 only)                  NS B: b9 fd63:9::2 (IPv6 only, created first)
//         a1 10.63.1.1 (+10.63.1.3), fd63:1::1            b1 10.63.1.2, fd63:1::2
//         a2 10.63.2.1,              fd63:2::1            b2 10.63.2.2, fd63:2::2
// The endpoint runs in the namespaces through dist/src/net/probe.js (run `npx tsc -p .` first).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const probe = path.join(root, 'dist/src/net/probe.js');
const suffix = randomBytes(3).toString('hex');
const A = `un-na${suffix}`;
const B = `un-nb${suffix}`;
const procs: ChildProcess[] = [];
const BACKENDS = ['native', 'dgram'] as const;

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'], timeout: 10000 });
}
function nsexec(ns: string, ...args: string[]): string {
  return execFileSync('ip', ['netns', 'exec', ns, ...args], { encoding: 'utf8', timeout: 10000 });
}

function cleanup(): void {
  for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  for (const ns of [A, B]) {
    try {
      for (const pid of execFileSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).split('\n').filter(Boolean)) {
        process.kill(Number(pid), 'SIGKILL');
      }
    } catch {
      // namespace not there
    }
    try {
      ip('netns', 'del', ns);
    } catch {
      // not there
    }
    fs.rmSync(`/etc/netns/${ns}`, { recursive: true, force: true });
  }
}

/** Waits until the veths have carrier (it comes a moment after `link set up`). */
async function waitCarrier(ns: string, devs: string[]): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (devs.every((d) => nsexec(ns, 'cat', `/sys/class/net/${d}/operstate`).trim() === 'up')) return;
    await sleep(50);
  }
  throw new Error(`no carrier on ${ns} ${devs.join(',')}`);
}

before(async () => {
  cleanup();
  for (const ns of [A, B]) {
    ip('netns', 'add', ns);
    fs.mkdirSync(`/etc/netns/${ns}`, { recursive: true });
    fs.writeFileSync(`/etc/netns/${ns}/resolv.conf`, 'nameserver 127.0.0.1\n');
    ip('-n', ns, 'link', 'set', 'lo', 'up');
  }
  // b9 comes first (lowest ifindex) and has only IPv6: the default UID must still come from b1's IPv4
  ip('link', 'add', 'a9', 'netns', A, 'type', 'veth', 'peer', 'name', 'b9', 'netns', B);
  ip('-n', A, 'addr', 'add', 'fd63:9::1/64', 'dev', 'a9', 'nodad');
  ip('-n', B, 'addr', 'add', 'fd63:9::2/64', 'dev', 'b9', 'nodad');
  ip('-n', A, 'link', 'set', 'a9', 'up');
  ip('-n', B, 'link', 'set', 'b9', 'up');
  for (const n of [1, 2]) {
    ip('link', 'add', `a${n}`, 'netns', A, 'type', 'veth', 'peer', 'name', `b${n}`, 'netns', B);
    ip('-n', A, 'addr', 'add', `10.63.${n}.1/24`, 'dev', `a${n}`);
    ip('-n', B, 'addr', 'add', `10.63.${n}.2/24`, 'dev', `b${n}`);
    ip('-n', A, 'addr', 'add', `fd63:${n}::1/64`, 'dev', `a${n}`, 'nodad');
    ip('-n', B, 'addr', 'add', `fd63:${n}::2/64`, 'dev', `b${n}`, 'nodad');
    ip('-n', A, 'link', 'set', `a${n}`, 'up');
    ip('-n', B, 'link', 'set', `b${n}`, 'up');
  }
  ip('-n', A, 'addr', 'add', '10.63.1.3/24', 'dev', 'a1');
  // multicast goes out a1 unless an endpoint picks another interface (-O)
  ip('-n', A, 'route', 'add', '224.0.0.0/4', 'dev', 'a1');
  ip('-n', B, 'route', 'add', '224.0.0.0/4', 'dev', 'b1');
  await waitCarrier(A, ['a9', 'a1', 'a2']);
  await waitCarrier(B, ['b9', 'b1', 'b2']);
});

after(cleanup);

interface Line {
  ready?: boolean;
  error?: string;
  from?: string;
  data?: string;
  buffers?: { requested: number; recv: number; send: number; clamped: boolean };
  warnings?: string[];
  sent?: number;
  tos?: number | string;
  to?: string;
  ifindex?: number;
}

/** Starts a receiver; resolves when it has joined, with a function returning the datagrams so far. */
async function receiver(ns: string, cmd: object): Promise<{ lines: Line[]; ready: Line; done: Promise<void> }> {
  const p = spawn('ip', ['netns', 'exec', ns, 'timeout', '20', process.execPath, probe, JSON.stringify({ mode: 'recv', ...cmd })], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  procs.push(p);
  const lines: Line[] = [];
  let buf = '';
  let readyResolve: (l: Line) => void = () => undefined;
  const ready = new Promise<Line>((r) => (readyResolve = r));
  p.stdout?.on('data', (d: Buffer) => {
    buf += d.toString();
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      const l = JSON.parse(buf.slice(0, i)) as Line;
      buf = buf.slice(i + 1);
      if (l.ready || l.error) readyResolve(l);
      else lines.push(l);
    }
  });
  const done = new Promise<void>((r) => p.on('exit', () => r()));
  const r = await Promise.race([ready, done.then((): Line => ({ error: 'receiver exited before ready' }))]);
  assert.equal(r.error, undefined, r.error);
  return { lines, ready: r, done };
}

async function waitFor(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await sleep(50);
  }
}

function send(ns: string, cmd: object): Line {
  const out = nsexec(ns, 'timeout', '15', process.execPath, probe, JSON.stringify({ mode: 'send', ...cmd }));
  const l = JSON.parse(out.trim().split('\n').pop() ?? '{}') as Line;
  assert.equal(l.error, undefined, l.error);
  return l;
}

/** Runs tcpdump -v on an interface while `fn` runs; returns its text output. */
async function tcpdump(ns: string, dev: string, filter: string, fn: () => Promise<void> | void): Promise<string> {
  const p = spawn('ip', ['netns', 'exec', ns, 'timeout', '15', 'tcpdump', '-i', dev, '-n', '-v', '-l', '-c', '3', filter], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  procs.push(p);
  let text = '';
  let err = '';
  p.stdout.on('data', (d: Buffer) => (text += d.toString()));
  p.stderr.on('data', (d: Buffer) => (err += d.toString()));
  for (let i = 0; i < 100 && !/listening on/.test(err); i++) await sleep(50);
  await fn();
  const exited = new Promise<void>((r) => p.on('exit', () => r()));
  await Promise.race([exited, sleep(3000)]);
  if (p.exitCode === null) p.kill('SIGTERM');
  await exited;
  return text;
}

// every test of the socket engine's options runs on both backends (src/net/engine.ts). Receivers listen for a
// fixed window (`ms`) wide enough for three or four sender processes to start on a loaded machine.
for (const backend of BACKENDS) {
  test(`[${backend}] multicast join on a chosen interface receives; the other interface does not`, { timeout: 60000 }, async () => {
    const rx = await receiver(B, { backend, batch: true, family: 4, port: 5001, joins: [{ group: '239.63.0.1', ifaces: ['b1'] }], ms: 4000 });
    // TOS 0xb9: DSCP 46 with ECN ECT(1); the native engine reads it back per datagram (IP_RECVTOS)
    send(A, { backend, family: 4, dst: '239.63.0.1', port: 5001, payload: 'via-a1', mif: 'a1', count: 3, tos: 0xb9 });
    send(A, { backend, family: 4, dst: '239.63.0.1', port: 5001, payload: 'via-a2', mif: 'a2', count: 3 });
    // -O by IP address selects the same interface as by name
    send(A, { backend, family: 4, dst: '239.63.0.1', port: 5001, payload: 'via-10.63.2.1', mif: '10.63.2.1', count: 2 });
    await rx.done;
    const data = rx.lines.map((l) => l.data);
    assert.equal(data.filter((d) => d === 'via-a1').length, 3);
    assert.equal(data.filter((d) => d !== 'via-a1').length, 0, `received ${JSON.stringify(data)}`);
    const b1 = Number(nsexec(B, 'cat', '/sys/class/net/b1/ifindex').trim());
    for (const l of rx.lines) {
      if (backend === 'native') {
        // IP_PKTINFO: the group it was sent to and the interface it came in on; IP_RECVTOS: DSCP and ECN
        assert.equal(l.to, '239.63.0.1');
        assert.equal(l.ifindex, b1);
        assert.equal(l.tos, 0xb9);
      } else {
        assert.equal(l.to, undefined); // node:dgram cannot tell
        assert.equal(l.tos, -1);
      }
    }

    // the same group joined on b2 (by address) gets the a2 traffic
    const rx2 = await receiver(B, { backend, family: 4, port: 5002, joins: [{ group: '239.63.0.1', ifaces: ['10.63.2.2'] }], ms: 3500 });
    send(A, { backend, family: 4, dst: '239.63.0.1', port: 5002, payload: 'via-a2', mif: 'a2', count: 2 });
    send(A, { backend, family: 4, dst: '239.63.0.1', port: 5002, payload: 'via-a1', mif: 'a1', count: 2 });
    await rx2.done;
    assert.deepEqual(rx2.lines.map((l) => l.data), ['via-a2', 'via-a2']);
  });

  test(`[${backend}] multicast TTL (-t) and DSCP (-Q) are set on outgoing packets (tcpdump -v)`, { timeout: 60000 }, async () => {
    let sent: Line = {};
    const v4 = await tcpdump(A, 'a1', 'udp port 5003', () => {
      sent = send(A, { backend, family: 4, dst: '239.63.0.3', port: 5003, ttl: 7, dscp: 46, mif: 'a1', count: 3 });
    });
    assert.equal(sent.tos, 46 << 2);
    const pkts = v4.split('\n').filter((l) => /^\S+ IP \(/.test(l));
    assert.equal(pkts.length, 3, v4);
    for (const l of pkts) {
      assert.match(l, /\(tos 0xb8, ttl 7,/);
    }
    // hexadecimal -Q 0x0a and default TTL 1
    const v4b = await tcpdump(A, 'a1', 'udp port 5004', () => {
      send(A, { backend, family: 4, dst: '239.63.0.3', port: 5004, dscp: 0x0a, mif: 'a1', count: 3 });
    });
    for (const l of v4b.split('\n').filter((x) => /^\S+ IP \(/.test(x))) assert.match(l, /\(tos 0x28, ttl 1,/);
    // IPv6: traffic class and hop limit
    const v6 = await tcpdump(A, 'a1', 'udp port 5005', () => {
      send(A, { backend, family: 6, dst: 'ff15::63', port: 5005, ttl: 5, dscp: 46, mif: 'a1', count: 3 });
    });
    const p6 = v6.split('\n').filter((l) => /^\S+ IP6 \(/.test(l));
    assert.equal(p6.length, 3, v6);
    for (const l of p6) assert.match(l, /\(class 0xb8, (flowlabel \S+, )?hlim 5,/);
  });

  test(`[${backend}] SSM: a source-specific join receives only from the listed source`, { timeout: 60000 }, async () => {
    const rx = await receiver(B, { backend, family: 4, port: 5006, joins: [{ group: '232.63.0.1', source: '10.63.1.1', ifaces: ['b1'] }], ms: 4000 });
    send(A, { backend, family: 4, dst: '232.63.0.1', port: 5006, payload: 'from-.1', bind: '10.63.1.1', mif: 'a1', count: 3 });
    send(A, { backend, family: 4, dst: '232.63.0.1', port: 5006, payload: 'from-.3', bind: '10.63.1.3', mif: 'a1', count: 3 });
    await rx.done;
    assert.deepEqual(rx.lines.map((l) => `${l.from} ${l.data}`), ['10.63.1.1 from-.1', '10.63.1.1 from-.1', '10.63.1.1 from-.1']);
    // a non-SSM group is refused for a source-specific join
    const bad = spawn('ip', ['netns', 'exec', B, 'timeout', '10', process.execPath, probe, JSON.stringify({ mode: 'recv', backend, port: 5007, joins: [{ group: '239.63.0.9', source: '10.63.1.1' }] })]);
    procs.push(bad);
    let out = '';
    bad.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const code = await new Promise<number | null>((r) => bad.on('exit', (c) => r(c)));
    assert.equal(code, 2);
    assert.match(out, /239\.63\.0\.9 is not a source-specific multicast address/);
  });

  test(`[${backend}] IPv6 multicast: ff15:: group joined on b1 receives; SSM ff3e::/96 from one source`, { timeout: 60000 }, async () => {
    const rx = await receiver(B, { backend, batch: true,
      family: 6, port: 5008, ms: 4000,
      joins: [{ group: 'ff15::6301', ifaces: ['b1'] }, { group: 'ff3e::8000:6301', source: 'fd63:1::1', ifaces: ['b1'] }],
    });
    send(A, { backend, family: 6, dst: 'ff15::6301', port: 5008, payload: 'asm', mif: 'a1', count: 2 });
    send(A, { backend, family: 6, dst: 'ff15::6301', port: 5008, payload: 'asm-a2', mif: 'a2', count: 2 });
    send(A, { backend, family: 6, dst: 'ff3e::8000:6301', port: 5008, payload: 'ssm-ok', mif: 'a1', bind: 'fd63:1::1', count: 2 });
    ip('-n', A, 'addr', 'replace', 'fd63:1::3/64', 'dev', 'a1', 'nodad');
    try {
      send(A, { backend, family: 6, dst: 'ff3e::8000:6301', port: 5008, payload: 'ssm-other', mif: 'a1', bind: 'fd63:1::3', count: 2 });
    } finally {
      // the second address would become the source of the next run's any-source sends
      ip('-n', A, 'addr', 'del', 'fd63:1::3/64', 'dev', 'a1');
    }
    await rx.done;
    assert.deepEqual(rx.lines.map((l) => `${l.from} ${l.data}`).sort(), ['fd63:1::1 asm', 'fd63:1::1 asm', 'fd63:1::1 ssm-ok', 'fd63:1::1 ssm-ok']);
    if (backend === 'native') {
      // IPV6_PKTINFO: each datagram's group
      assert.deepEqual(rx.lines.map((l) => `${l.to} ${l.data}`).sort(), ['ff15::6301 asm', 'ff15::6301 asm', 'ff3e::8000:6301 ssm-ok', 'ff3e::8000:6301 ssm-ok']);
      assert.ok(rx.lines.every((l) => l.tos === 0), 'traffic class 0 read back');
    }
  });

  test(`[${backend}] buffer sizes (-B): set as asked, clamp by the kernel reported`, { timeout: 30000 }, async () => {
    const rmemMax = Number(nsexec(B, 'cat', '/proc/sys/net/core/rmem_max').trim());
    const wmemMax = Number(nsexec(B, 'cat', '/proc/sys/net/core/wmem_max').trim());
    const small = await receiver(B, { backend, family: 4, port: 5009, ms: 100, bufferSize: 65536 });
    assert.deepEqual(small.ready.buffers, { requested: 65536, recv: 65536, send: 65536, clamped: false });
    assert.deepEqual(small.ready.warnings?.filter((w) => !w.startsWith('UDP engine:')), []);
    await small.done;
    const dflt = await receiver(B, { backend, family: 4, port: 5009, ms: 100 });
    assert.equal(dflt.ready.buffers?.requested, 262144);
    assert.equal(dflt.ready.buffers?.recv, Math.min(262144, rmemMax));
    await dflt.done;
    const big = await receiver(B, { backend, family: 6, port: 5009, ms: 100, bufferSize: 104857600 });
    assert.ok(rmemMax < 104857600, 'this test needs rmem_max below 100 MB');
    assert.deepEqual(big.ready.buffers, { requested: 104857600, recv: rmemMax, send: wmemMax, clamped: true });
    assert.deepEqual(big.ready.warnings?.filter((w) => !w.startsWith('UDP engine:')), [`UDP buffer size 104857600 clamped by the kernel: receive ${rmemMax}, send ${wmemMax}`]);
    await big.done;
  });
}

test('interfaces: default set and default UID follow the first multicast-capable interface', { timeout: 30000 }, async () => {
  interface Info {
    interfaces: { name: string; multicast: boolean; up: boolean; loopback: boolean }[];
    defaultUid: { uid: number; hex: string; address: string; name: string } | null;
    defaults4: string[];
    defaults6: string[];
  }
  const info = (): Info => JSON.parse(nsexec(B, process.execPath, probe, '{"mode":"info"}')) as Info;
  let i = info();
  assert.deepEqual(i.defaults4, ['b1', 'b2']);
  assert.deepEqual(i.defaults6.sort(), ['b1', 'b2', 'b9']);
  assert.deepEqual(i.defaultUid, { uid: 0x0a3f0102, hex: '0x0A3F0102', address: '10.63.1.2', name: 'b1' });
  assert.equal(i.interfaces.find((x) => x.name === 'lo')?.loopback, true);
  // b1 loses IFF_MULTICAST: it leaves the default join set; the UID stays b1's, as the real uftpd keeps it
  ip('-n', B, 'link', 'set', 'b1', 'multicast', 'off');
  try {
    i = info();
    assert.equal(i.interfaces.find((x) => x.name === 'b1')?.multicast, false);
    assert.deepEqual(i.defaults4, ['b2']);
    assert.equal(i.defaultUid?.hex, '0x0A3F0102');
  } finally {
    ip('-n', B, 'link', 'set', 'b1', 'multicast', 'on');
  }
  // b1 without carrier (its peer a1 down): still listed (os.networkInterfaces() would omit it), still in the
  // default set, still the UID interface, as the real uftpd takes it
  ip('-n', A, 'link', 'set', 'a1', 'down');
  try {
    await waitFor(() => nsexec(B, 'cat', '/sys/class/net/b1/operstate').trim() !== 'up');
    i = info();
    const b1 = i.interfaces.find((x) => x.name === 'b1') as Info['interfaces'][number] & { running: boolean };
    assert.equal(b1.running, false);
    assert.equal(b1.up, true);
    assert.deepEqual(i.defaults4, ['b1', 'b2']);
    assert.equal(i.defaultUid?.hex, '0x0A3F0102');
  } finally {
    ip('-n', A, 'link', 'set', 'a1', 'up');
    ip('-n', A, 'route', 'replace', '224.0.0.0/4', 'dev', 'a1');
    ip('-n', A, 'addr', 'replace', 'fd63:1::1/64', 'dev', 'a1', 'nodad');
  }
  // b1 administratively down: not active, the UID comes from b2
  ip('-n', B, 'link', 'set', 'b1', 'down');
  try {
    i = info();
    assert.equal(i.interfaces.find((x) => x.name === 'b1')?.up ?? false, false);
    assert.deepEqual(i.defaults4, ['b2']);
    assert.equal(i.defaultUid?.hex, '0x0A3F0202');
  } finally {
    ip('-n', B, 'link', 'set', 'b1', 'up');
    // going down dropped b1's IPv6 address and multicast route: put them back for the tests after this one
    ip('-n', B, 'addr', 'replace', 'fd63:1::2/64', 'dev', 'b1', 'nodad');
    ip('-n', B, 'route', 'replace', '224.0.0.0/4', 'dev', 'b1');
    await waitCarrier(B, ['b1']);
    await waitCarrier(A, ['a1']);
  }
});

test('default UID and -Q agree with the real uftpd/uftp in the same namespaces (tshark)', { timeout: 60000 }, async () => {
  const ours = (JSON.parse(nsexec(B, process.execPath, probe, '{"mode":"info"}')) as { defaultUid: { uid: number } }).defaultUid.uid;
  const dir = fs.mkdtempSync('/tmp/un-uid-');
  try {
    fs.mkdirSync(path.join(dir, 'dest'));
    fs.writeFileSync(path.join(dir, 'f'), 'hello\n');
    const cap = path.join(dir, 'cap.pcap');
    const td = spawn('ip', ['netns', 'exec', A, 'timeout', '30', 'tcpdump', '-i', 'a1', '-U', '-w', cap, 'udp port 1044'], { stdio: ['ignore', 'ignore', 'pipe'] });
    procs.push(td);
    let tdErr = '';
    td.stderr.on('data', (d: Buffer) => (tdErr += d.toString()));
    for (let i = 0; i < 100 && !/listening on/.test(tdErr); i++) await sleep(50);
    const pidfile = path.join(dir, 'uftpd.pid');
    nsexec(B, 'timeout', '20', 'uftpd', '-L', path.join(dir, 'uftpd.log'), '-D', path.join(dir, 'dest'), '-P', pidfile);
    try {
      nsexec(A, 'timeout', '20', 'uftp', '-Q', '46', '-R', '10000', path.join(dir, 'f'));
    } finally {
      for (let i = 0; i < 40 && !fs.existsSync(pidfile); i++) await sleep(50);
      if (fs.existsSync(pidfile)) process.kill(Number(fs.readFileSync(pidfile, 'utf8')), 'SIGTERM');
      await sleep(300);
      td.kill('SIGTERM');
      await new Promise((r) => td.on('exit', r));
    }
    const ids = execFileSync('tshark', ['-r', cap, '-T', 'fields', '-e', 'uftp4.src_id', '-Y', 'ip.src==10.63.1.2'], { encoding: 'utf8' })
      .split('\n').filter(Boolean).map((x) => Number(x));
    assert.ok(ids.length > 0, 'uftpd answered');
    assert.equal(new Set(ids).size, 1);
    assert.equal(ids[0], ours, `real uftpd uses 0x${ids[0].toString(16)}, we derive 0x${ours.toString(16)}`);
    assert.equal(ours, 0x0a3f0102);
    // the real uftp's -Q 46 puts 46 << 2 = 0xb8 in the TOS byte, the value our setDscp(46) sets (test above)
    const tos = execFileSync('tshark', ['-r', cap, '-T', 'fields', '-e', 'ip.dsfield', '-Y', 'ip.src==10.63.1.1'], { encoding: 'utf8' })
      .split('\n').filter(Boolean);
    assert.ok(tos.length > 0);
    assert.deepEqual([...new Set(tos.map((x) => Number(x)))], [0xb8]);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('-I/-O items resolve by interface name, by IP and by hostname; unknown ones fail naming the item', { timeout: 30000 }, () => {
  fs.writeFileSync(`/etc/netns/${B}/hosts`, '127.0.0.1 localhost\n10.63.2.2 bhost\nfd63:1::2 bhost6\n');
  const resolve = (family: 4 | 6, specs: string[]): { resolved?: { name: string; address: string; multicastInterface: string }[]; error?: string } =>
    JSON.parse(nsexec(B, process.execPath, probe, JSON.stringify({ mode: 'resolve', family, specs })));
  const r4 = resolve(4, ['b1', '10.63.2.2', 'bhost']);
  assert.equal(r4.error, undefined);
  assert.deepEqual(r4.resolved?.map((r) => [r.name, r.address, r.multicastInterface]), [
    ['b1', '10.63.1.2', '10.63.1.2'], ['b2', '10.63.2.2', '10.63.2.2'], ['b2', '10.63.2.2', '10.63.2.2'],
  ]);
  assert.deepEqual(resolve(6, ['b2', 'fd63:1::2', 'bhost6']).resolved?.map((r) => [r.name, r.multicastInterface]), [
    ['b2', '::%b2'], ['b1', '::%b1'], ['b1', '::%b1'],
  ]);
  assert.match(resolve(4, ['nosuchhost']).error ?? '', /^Invalid name\/address nosuchhost: /);
  assert.equal(resolve(4, ['10.99.99.99']).error, 'no interface with address 10.99.99.99');
  assert.equal(resolve(4, ['b9']).error, 'interface b9 has no IPv4 address');
});
