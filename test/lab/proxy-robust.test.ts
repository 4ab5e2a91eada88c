// Robustness of our proxies in Figure 1 (lab): 5% loss on the tunnel, and a stream of random, truncated and
// forged datagrams at both proxies' ports during a transfer. Transfers must complete byte-identical; the proxies
// must stay up with bounded memory. Needs root, the real suite and the compiled bins (`npx tsc -p .`).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Lab, treeHashes, type Proc } from '../../src/lab/lab.js';

const labs: Lab[] = [];
after(async () => {
  for (const l of labs) await l.down();
});

function makeTree(dir: string, size: number): Map<string, string> {
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(path.join(dir, 'sub'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'big.bin'), randomBytes(size));
  fs.writeFileSync(path.join(dir, 'sub', 'small.txt'), 'x'.repeat(5000));
  return treeHashes(dir);
}

async function ours(lab: Lab, host: string, args: string[]): Promise<Proc> {
  const p = lab.ours(host, 'uftpproxyd', ['-d', '-x', '2', '-U', lab.uidOf(host), ...args], { timeoutMs: 150_000 });
  await lab.waitFor(() => p.exitCode !== null || p.log().includes('Listening on port'), 15_000, `our uftpproxyd on ${host}`);
  assert.equal(p.exitCode, null, `our uftpproxyd on ${host} exited: ${p.log()}`);
  return p;
}

/** RSS (kB) of the node process running our uftpproxyd in a host's namespace. */
async function rssKb(lab: Lab, host: string): Promise<number> {
  const pids = execFileSync('ip', ['netns', 'pids', lab.nsOf(host)], { encoding: 'utf8' }).split('\n').filter(Boolean);
  for (const pid of pids) {
    let cmd = '';
    try {
      cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    } catch {
      continue;
    }
    if (!cmd.includes('uftpproxyd.js') || !fs.readFileSync(`/proc/${pid}/comm`, 'utf8').startsWith('node')) continue;
    const m = /VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    if (m) return Number(m[1]);
  }
  return assert.fail(`no uftpproxyd node process in ${host} (pids ${pids.join(' ')})`);
}

async function transfer(lab: Lab, size: number, during?: () => Promise<void>): Promise<{ ms: number; sp: Proc; cp: Proc; slog: string }> {
  const src = path.join(lab.workDir, 'src');
  const want = makeTree(src, size);
  const b1 = await lab.realUftpd('clientB1');
  const b2 = await lab.realUftpd('clientB2');
  const cp = await ours(lab, 'cproxyB', ['-c']);
  const sp = await ours(lab, 'sproxyB', ['-s', lab.tunnelDest('cproxyB')]);
  const t0 = Date.now();
  const server = lab.realUftp('server', [src], { args: ['-R', '50000', '-s', '50'], timeoutMs: 120_000 });
  if (during) await during();
  const code = await server.wait();
  const ms = Date.now() - t0;
  assert.equal(code, 0, server.log().split('\n').slice(-15).join('\n'));
  assert.deepEqual(treeHashes(path.join(b1.dest, 'src')), want, 'clientB1 files');
  assert.deepEqual(treeHashes(path.join(b2.dest, 'src')), want, 'clientB2 files');
  return { ms, sp, cp, slog: server.log() };
}

test('fig1 with 5% loss on the tunnel: the transfer through our proxies completes byte-identical', { timeout: 150_000 }, async () => {
  const lab = await Lab.up('fig1', { prefix: `upl${randomBytes(3).toString('hex')}`, octet: 67, lossPct: 5 });
  labs.push(lab);
  const { ms, slog } = await transfer(lab, 2_000_000);
  process.stdout.write(`fig1 5% loss: 2 MB + 5 KB to 2 clients in ${ms} ms, SHA-256 match\n`);
  const naks = slog.split('\n').filter((l) => /Got \d+ NAKs for section \d+ from proxy/.test(l));
  assert.ok(naks.length > 0, 'the loss made the clients NAK, and the STATUS came through the client proxy');
  process.stdout.write(`${naks.length} aggregated STATUS from the proxy, e.g. "${naks[0]}"\n`);
  await lab.down();
});

// Sent from clientA (network A) at both proxies: random bytes, valid headers with random types and bodies,
// truncated datagrams, forged ANNOUNCEs (fresh group IDs, absurd ROBUST/GRTT), forged responses and heartbeats.
const FLOOD = `
const dgram = require('node:dgram'); const crypto = require('node:crypto');
const [targets, seconds] = [process.argv[1].split(','), Number(process.argv[2])];
const s = dgram.createSocket('udp4'); let n = 0; const end = Date.now() + seconds * 1000;
function hdr(func, group) { const b = Buffer.alloc(16); b[0] = 0x40; b[1] = func; b.writeUInt32BE(crypto.randomInt(2**32), 4); b.writeUInt32BE(group, 8); b[13] = crypto.randomInt(256); return b; }
function one() {
  const k = n % 6; let b;
  if (k === 0) b = crypto.randomBytes(crypto.randomInt(1, 1500));
  else if (k === 1) b = Buffer.concat([hdr(crypto.randomInt(1, 22), crypto.randomInt(2**32)), crypto.randomBytes(crypto.randomInt(0, 600))]);
  else if (k === 2) { const a = Buffer.alloc(24); a[0] = 1; a[1] = 6; a[3] = 255; a.writeUInt16BE(1300, 6); a.writeUInt32BE(0xe6040401, 16); a.writeUInt32BE(0xe6000000 + crypto.randomInt(2**24), 20); b = Buffer.concat([hdr(1, crypto.randomInt(2**32)), a]); b[13] = 255; }
  else if (k === 3) b = hdr(crypto.randomInt(1, 22), 0).subarray(0, crypto.randomInt(0, 16));
  else if (k === 4) { const r = Buffer.alloc(44); r[0] = 2; r[1] = 11; b = Buffer.concat([hdr(2, crypto.randomInt(2**32)), r, crypto.randomBytes(8)]); }
  else { const h = Buffer.alloc(12); h[0] = 14; h[1] = 3; b = Buffer.concat([hdr(14, 0), h]); }
  const t = targets[n % targets.length]; n++;
  s.send(b, 1044, t);
}
function burst() { for (let i = 0; i < 40; i++) one(); if (Date.now() < end) setTimeout(burst, 10); else setTimeout(() => { console.log('sent ' + n); s.close(); }, 100); }
burst();
`;

test('hostile input: a stream of random, truncated and forged datagrams at both proxies during a transfer', { timeout: 150_000 }, async () => {
  const lab = await Lab.up('fig1', { prefix: `uph${randomBytes(3).toString('hex')}`, octet: 67 });
  labs.push(lab);
  let sent = '';
  let before = { sp: 0, cp: 0 };
  const { sp, cp, ms } = await transfer(lab, 3_000_000, async () => {
    before = { sp: await rssKb(lab, 'sproxyB'), cp: await rssKb(lab, 'cproxyB') };
    const targets = [lab.addrOf('sproxyB'), lab.addrOf('cproxyB')].join(',');
    const r = await lab.exec('clientA', [process.execPath, '-e', FLOOD, targets, '6'], { timeoutMs: 30_000 });
    sent = r.stdout.trim();
  });
  const after_ = { sp: await rssKb(lab, 'sproxyB'), cp: await rssKb(lab, 'cproxyB') };
  assert.match(sent, /^sent \d+$/);
  assert.ok(Number(sent.slice(5)) > 5000, `flood sent ${sent}`);
  assert.equal(sp.exitCode, null, 'server proxy still running');
  assert.equal(cp.exitCode, null, 'client proxy still running');
  for (const k of ['sp', 'cp'] as const) {
    assert.ok(after_[k] - before[k] < 64 * 1024, `${k} RSS grew from ${before[k]} to ${after_[k]} kB`);
  }
  process.stdout.write(`hostile: ${sent} datagrams during a 3 MB transfer (${ms} ms); RSS sp ${before.sp}->${after_.sp} kB, cp ${before.cp}->${after_.cp} kB\n`);
  await lab.down();
});
