// The native engine's armed reply (docs/net-engine.md "Armed reply"), over loopback in one process: it fires only
// for exactly one datagram, with exactly the armed bytes, from the armed peer; at most once (a duplicate gets no
// second answer: the sorcerer's apprentice); never for a batch of more than one; not after disarm, rearm or close;
// and never on node:dgram or with it turned off.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadNativeAddon } from './engine.js';
import { UdpEndpoint, type RecvBatch } from './udp.js';

const skip = loadNativeAddon() ? false : 'addon not built';

const EXPECT = Buffer.from([0, 4, 0, 7]); // a TFTP ACK 7
const REPLY = Buffer.concat([Buffer.from([0, 3, 0, 8]), Buffer.alloc(1408, 0x5a)]); // DATA 8

interface Seen {
  readonly bytes: Buffer;
  /** takeArmFired() in the batch callback that delivered it. */
  readonly fired: boolean;
  readonly count: number;
}

async function endpoint(seen: Seen[], o: { backend?: 'native' | 'dgram'; arm?: boolean } = {}): Promise<UdpEndpoint> {
  const ref: { ep?: UdpEndpoint } = {};
  const r = await UdpEndpoint.open({
    family: 4, port: 0, address: '127.0.0.1', backend: o.backend ?? 'native', spinUs: 0, recvInfo: false, arm: o.arm,
    onBatch: (b: RecvBatch) => {
      const fired = ref.ep?.takeArmFired() ?? false;
      for (let i = 0; i < b.count; i++) seen.push({ bytes: Buffer.from(b.data(i)), fired, count: b.count });
    },
  });
  assert.ok(r.ok, r.ok ? '' : r.error);
  ref.ep = r.value;
  return r.value;
}

async function until(cond: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 2));
  }
}

const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 60));

async function pair(): Promise<{ srv: UdpEndpoint; cli: UdpEndpoint; atSrv: Seen[]; atCli: Seen[]; to: { address: string; port: number }; close(): Promise<void> }> {
  const atSrv: Seen[] = [];
  const atCli: Seen[] = [];
  const srv = await endpoint(atSrv);
  const cli = await endpoint(atCli);
  return {
    srv, cli, atSrv, atCli, to: { address: '127.0.0.1', port: cli.address().port },
    close: async () => {
      await srv.close();
      await cli.close();
    },
  };
}

function sendTo(from: UdpEndpoint, to: UdpEndpoint, bytes: Buffer): void {
  from.send(bytes, 0, bytes.length, to.address().port, '127.0.0.1');
  from.flush();
}

test('armed reply: exact bytes from the armed peer are answered by the engine, once; a duplicate is not', { skip, timeout: 10000 }, async () => {
  const p = await pair();
  try {
    assert.equal(p.srv.arm(p.to, EXPECT, REPLY), true);
    sendTo(p.cli, p.srv, EXPECT);
    await until(() => p.atCli.length === 1 && p.atSrv.length === 1);
    assert.deepEqual(p.atCli[0].bytes, REPLY, 'the armed reply reached the peer');
    assert.equal(p.atSrv[0].fired, true, 'the batch callback is told the reply went out');
    assert.deepEqual(p.atSrv[0].bytes, EXPECT, 'the request is still delivered to JS');
    assert.equal(p.srv.takeArmFired(), false, 'the news is given once');
    // the duplicate (the sorcerer's apprentice): delivered, never answered a second time
    sendTo(p.cli, p.srv, EXPECT);
    await until(() => p.atSrv.length === 2);
    await settle();
    assert.equal(p.atSrv[1].fired, false);
    assert.equal(p.atCli.length, 1, 'no second reply');
    const st = p.srv.stats();
    assert.equal(st.armFired, 1);
    assert.equal(st.armFailed, 0);
  } finally {
    await p.close();
  }
});

test('armed reply: other bytes, a longer datagram, or another peer disarm without an answer', { skip, timeout: 10000 }, async () => {
  const p = await pair();
  const strangerSeen: Seen[] = [];
  const stranger = await endpoint(strangerSeen);
  try {
    const cases: [string, UdpEndpoint, Buffer][] = [
      ['other bytes', p.cli, Buffer.from([0, 4, 0, 6])],
      ['expect plus one byte', p.cli, Buffer.concat([EXPECT, Buffer.from([0])])],
      ['expect from another port', stranger, EXPECT],
    ];
    for (const [what, from, bytes] of cases) {
      const n = p.atSrv.length;
      assert.equal(p.srv.arm(p.to, EXPECT, REPLY), true);
      sendTo(from, p.srv, bytes);
      await until(() => p.atSrv.length === n + 1);
      assert.equal(p.atSrv[n].fired, false, what);
      // the arm is gone with that receive: the exact request now gets no engine answer either
      sendTo(p.cli, p.srv, EXPECT);
      await until(() => p.atSrv.length === n + 2);
      assert.equal(p.atSrv[n + 1].fired, false, `${what}: disarmed by the receive`);
    }
    await settle();
    assert.equal(p.atCli.length, 0, 'nobody got a reply');
    assert.equal(strangerSeen.length, 0);
    assert.equal(p.srv.stats().armFired, 0);
  } finally {
    await stranger.close();
    await p.close();
  }
});

test('armed reply: a receive of more than one datagram never fires, even when the first is the expected one', { skip, timeout: 10000 }, async () => {
  const p = await pair();
  try {
    assert.equal(p.srv.arm(p.to, EXPECT, REPLY), true);
    // both are queued at the server before its poll callback can run (one process, one synchronous flush)
    p.cli.send(EXPECT, 0, EXPECT.length, p.srv.address().port, '127.0.0.1');
    p.cli.send(EXPECT, 0, EXPECT.length, p.srv.address().port, '127.0.0.1');
    p.cli.flush();
    await until(() => p.atSrv.length === 2);
    await settle();
    assert.equal(p.atSrv[0].count, 2, 'one batch of two');
    assert.equal(p.atSrv[0].fired, false);
    assert.equal(p.atCli.length, 0);
    assert.equal(p.srv.stats().armFired, 0);
  } finally {
    await p.close();
  }
});

test('armed reply: disarm, rearm and close', { skip, timeout: 10000 }, async () => {
  const p = await pair();
  try {
    assert.equal(p.srv.arm(p.to, EXPECT, REPLY), true);
    p.srv.disarm();
    sendTo(p.cli, p.srv, EXPECT);
    await until(() => p.atSrv.length === 1);
    assert.equal(p.atSrv[0].fired, false, 'disarmed');
    // rearm with another request: the first one no longer fires, the second does, with the second reply
    const expect2 = Buffer.from([0, 4, 0, 8]);
    const reply2 = Buffer.concat([Buffer.from([0, 3, 0, 9]), Buffer.alloc(100, 1)]);
    assert.equal(p.srv.arm(p.to, EXPECT, REPLY), true);
    assert.equal(p.srv.arm(p.to, expect2, reply2), true);
    sendTo(p.cli, p.srv, EXPECT);
    await until(() => p.atSrv.length === 2);
    assert.equal(p.atSrv[1].fired, false, 'the earlier arm was replaced');
    assert.equal(p.srv.arm(p.to, expect2, reply2), true);
    sendTo(p.cli, p.srv, expect2);
    await until(() => p.atSrv.length === 3 && p.atCli.length === 1);
    assert.equal(p.atSrv[2].fired, true);
    assert.deepEqual(p.atCli[0].bytes, reply2);
    // sizes out of range arm nothing
    assert.equal(p.srv.arm(p.to, Buffer.alloc(0), REPLY), false);
    assert.equal(p.srv.arm(p.to, Buffer.alloc(65), REPLY), false);
    assert.equal(p.srv.arm(p.to, EXPECT, Buffer.alloc(65536)), false);
    // armed, then closed: nothing is armed any more
    assert.equal(p.srv.arm(p.to, EXPECT, REPLY), true);
    await p.srv.close();
    assert.equal(p.srv.arm(p.to, EXPECT, REPLY), false);
    assert.equal(p.srv.takeArmFired(), false);
    assert.equal(p.srv.stats().armFired, 1);
  } finally {
    await p.close();
  }
});

test('armed reply: node:dgram and UFTP_UDP_ARM=0 (arm: false) arm nothing, and the request is not answered', { timeout: 10000 }, async () => {
  for (const o of [{ backend: 'dgram' as const }, ...(skip ? [] : [{ backend: 'native' as const, arm: false }])]) {
    const atSrv: Seen[] = [];
    const atCli: Seen[] = [];
    const srv = await endpoint(atSrv, o);
    const cli = await endpoint(atCli, o);
    try {
      assert.equal(srv.arm({ address: '127.0.0.1', port: cli.address().port }, EXPECT, REPLY), false, JSON.stringify(o));
      sendTo(cli, srv, EXPECT);
      await until(() => atSrv.length === 1);
      await settle();
      assert.equal(atSrv[0].fired, false);
      assert.equal(atCli.length, 0);
    } finally {
      await srv.close();
      await cli.close();
    }
  }
});
