import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TfmccReceiver } from './tfmcc.js';
import { CcFlag } from '../../wire/constants.js';
import { quantizeGrtt, quantizeRate } from '../../wire/quantize.js';

test('slow start: no loss -> CC_START and twice the receive rate', () => {
  const r = new TfmccReceiver(10, 1000);
  for (let i = 0; i < 1000; i++) r.onSeq(i, i, 1000, false); // 1000 bytes per ms = 1e6 B/s
  assert.equal(r.lossRate(), 0);
  assert.ok(r.flags() & CcFlag.START);
  assert.ok(Math.abs(r.rate() - 2e6) / 2e6 < 0.05, `rate ${r.rate()}`);
});

test('losses: sequence gaps become loss events (one per RTT), the rate follows the TFRC equation and falls with p', () => {
  const r = new TfmccReceiver(20, 1000);
  let seq = 0;
  // one lost datagram every 100: p ~ 0.01
  for (let t = 0; t < 5000; t++) {
    seq = (seq + (t % 100 === 99 ? 2 : 1)) & 0xffff;
    r.onSeq(t, seq, 1000, false);
  }
  const p = r.lossRate();
  assert.ok(p > 0.008 && p < 0.012, `p ${p}`);
  assert.equal(r.flags() & CcFlag.START, 0, 'out of slow start');
  const x1 = r.rate();
  // RFC 5348 with s=1000, R=0.02 s, p=0.01: about 580 kB/s
  assert.ok(x1 > 400_000 && x1 < 800_000, `rate ${x1}`);
  // CE marks count as loss events too: a mark every 10 datagrams raises p
  for (let t = 5000; t < 8000; t++) r.onSeq(t, (seq = (seq + 1) & 0xffff), 1000, t % 10 === 0);
  assert.ok(r.rate() < x1, 'more loss, lower rate');
});

test('CONG_CTRL: RTT taken from our item, CLR answers every time, others once per round when below the suppression rate', () => {
  const r = new TfmccReceiver(500, 1000);
  const cc = (seq: number, flags: number, rate: number) => ({ type: 'CONG_CTRL' as const, ccSeq: seq, ccRate: quantizeRate(rate), timestamp: { sec: 1, usec: 0 }, extensions: [], items: [{ clientId: 7, flags, rtt: quantizeGrtt(0.04) }] });
  assert.equal(r.onCongCtrl(cc(1, CcFlag.CLR | CcFlag.RTT, 1e9), 7), true, 'CLR answers');
  assert.ok(Math.abs(r.rttMs - 40) < 3, `rtt ${r.rttMs}`);
  assert.equal(r.onCongCtrl(cc(1, CcFlag.CLR | CcFlag.RTT, 1e9), 7), true, 'CLR answers again');
  assert.equal(r.onCongCtrl(cc(2, CcFlag.RTT, 1), 7), false, 'not CLR, our rate above the suppression rate: quiet');
  assert.equal(r.onCongCtrl(cc(3, CcFlag.RTT, 1e12), 7), true, 'below the suppression rate: once per round');
  assert.equal(r.onDataInfo(3, quantizeRate(1e12)), false, 'the same round is not answered twice');
  assert.equal(r.onDataInfo(4, quantizeRate(1e12)), true, 'a new round is');
});
