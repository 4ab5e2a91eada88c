/**
 * Impairments are measured to be in effect: random loss (nftables numgen) over 2000 datagrams, the tbf rate
 * limit, and the delay relay's RTT (configured 2 x one-way delay, within 10%), including the 250 ms one-way
 * "satellite" tunnel steered through it.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Lab, downPrefix, probeReport, type PingReport, type RecvReport } from '../../src/lab/index.js';

const prefix = `ulabti${process.pid % 100000}`;
after(async () => { await downPrefix(prefix); });

async function blast(lab: Lab, count: number, size: number, gapUs: number, ms: number, to = 'clientB1'): Promise<RecvReport> {
  const rx = await lab.probe(to, 'recv', ['--port', '5003', '--ms', String(ms)]);
  await (await lab.probe('server', 'send', ['--to', lab.addrOf(to), '--port', '5003', '--count', String(count),
    '--size', String(size), '--gap-us', String(gapUs)], ms + 10_000)).wait();
  await rx.wait();
  return probeReport<RecvReport>(rx);
}

test('5% loss on the fig1 router drops 2.5..8% of 2000 datagrams; none without it', { timeout: 90_000 }, async () => {
  const lab = await Lab.up('fig1', { prefix, lossPct: 5 });
  try {
    const r = await blast(lab, 2000, 200, 500, 6000);
    const lost = (2000 - r.count) / 2000;
    console.log(`loss configured 5%, measured ${(lost * 100).toFixed(2)}% of 2000`);
    assert.ok(lost >= 0.025 && lost <= 0.08, `measured loss ${(lost * 100).toFixed(2)}% outside 2.5..8%`);
    await lab.setImpairment({});
    const clean = await blast(lab, 2000, 200, 500, 6000);
    assert.ok(clean.count >= 1990, `without loss ${clean.count}/2000 arrived`);
  } finally {
    await lab.down();
  }
});

test('fig2 (one segment): 10% loss on the bridge drops 7..13% of 2000 datagrams', { timeout: 60_000 }, async () => {
  const lab = await Lab.up('fig2', { prefix, lossPct: 10 });
  try {
    const r = await blast(lab, 2000, 200, 500, 6000, 'client1');
    const lost = (2000 - r.count) / 2000;
    console.log(`bridge loss configured 10%, measured ${(lost * 100).toFixed(2)}% of 2000`);
    assert.ok(lost >= 0.07 && lost <= 0.13, `measured loss ${(lost * 100).toFixed(2)}% outside 7..13%`);
  } finally {
    await lab.down();
  }
});

test('one link: 20% loss on the router\'s link to B leaves network C alone', { timeout: 60_000 }, async () => {
  const lab = await Lab.up('fig1', { prefix });
  try {
    await lab.impairLink('router', 'B', { lossPct: 20 });
    const b = await blast(lab, 2000, 200, 500, 6000, 'clientB1');
    const c = await blast(lab, 2000, 200, 500, 6000, 'clientC1');
    const lostB = (2000 - b.count) / 2000;
    console.log(`link loss router:B configured 20%, measured ${(lostB * 100).toFixed(2)}% to B, ${2000 - c.count} lost to C`);
    assert.ok(lostB >= 0.16 && lostB <= 0.24, `measured ${(lostB * 100).toFixed(2)}% to B`);
    assert.ok(c.count >= 1990, `network C got ${c.count}/2000`);
    await lab.impairLink('router', 'B', {});
    assert.ok((await blast(lab, 500, 200, 500, 3000, 'clientB1')).count >= 497, 'removed again');
  } finally {
    await lab.down();
  }
});

test('2000 kbit/s rate limit: a faster sender gets 2000 kbit/s +-15% through the router', { timeout: 60_000 }, async () => {
  const lab = await Lab.up('fig1', { prefix, rateKbit: 2000 });
  try {
    // ~8 Mbit/s offered for ~2 s; tbf counts frames (payload + 42 bytes of Ethernet/IP/UDP headers).
    const r = await blast(lab, 2000, 1000, 1000, 6000);
    const secs = (r.lastMs - r.firstMs) / 1000;
    const kbit = ((r.bytes + 42 * r.count) * 8) / 1000 / secs;
    console.log(`rate configured 2000 kbit/s, measured ${kbit.toFixed(0)} kbit/s (${r.count} frames in ${secs.toFixed(2)} s)`);
    assert.ok(r.count < 1500, 'the excess was dropped');
    assert.ok(kbit > 1700 && kbit < 2300, `measured ${kbit.toFixed(0)} kbit/s`);
  } finally {
    await lab.down();
  }
});

for (const oneWay of [50, 250]) {
  test(`delay relay: ${oneWay} ms one way gives an RTT of ${2 * oneWay} ms +-10% on the server-proxy tunnel`, { timeout: 60_000 }, async () => {
    const lab = await Lab.up('fig1', { prefix, delayMs: oneWay });
    try {
      const dest = lab.tunnelDest('cproxyB');
      assert.notEqual(dest, lab.addrOf('cproxyB'), 'the tunnel is steered through the relay');
      const echo = await lab.probe('cproxyB', 'echo', ['--port', '1044', '--ms', '20000']);
      const count = 10;
      const ping = await lab.probe('sproxyB', 'ping', ['--to', dest, '--port', '1044', '--count', String(count),
        '--gap-ms', '100', '--ms', String(count * 100 + 4 * oneWay + 1500)]);
      await ping.wait();
      await echo.kill();
      const rep = probeReport<PingReport>(ping);
      const sorted = [...rep.rtts].sort((a, b) => a - b);
      const median = sorted[Math.floor(sorted.length / 2)] ?? NaN;
      console.log(`delay ${oneWay} ms one way: ${rep.rtts.length}/${rep.sent} echoes, RTT min ${sorted[0]?.toFixed(1)} median ${median.toFixed(1)} max ${sorted.at(-1)?.toFixed(1)} ms`);
      assert.equal(rep.rtts.length, count, 'every echo came back');
      // The relay adds the configured RTT: the median is within 10%, and no echo beats the delay.
      assert.ok(Math.abs(median - 2 * oneWay) <= 0.1 * 2 * oneWay, `median RTT ${median.toFixed(1)} ms not within 10% of ${2 * oneWay} ms`);
      assert.ok((sorted[0] ?? 0) >= 2 * oneWay * 0.99, `an echo came back in ${sorted[0]?.toFixed(1)} ms, faster than the delay`);
    } finally {
      await lab.down();
    }
  });
}
