// Addressing of our uftp against the real uftpd: unicast mode (-M <client address>: every message to that address),
// IPv6 multicast (ff15::1 / ff15::2 on a dual-stack lab, -I by address as the real programs need it), plain and
// encrypted. Files compared by SHA-256. Needs root, the real suite and the compiled bins.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Lab } from '../../src/lab/lab.js';

let shared: Lab | undefined;
after(async () => {
  await shared?.down();
});
async function lab(): Promise<Lab> {
  shared ??= await Lab.up('fig2', { prefix: `uta${randomBytes(3).toString('hex')}`, octet: 96, ipv6: true });
  return shared;
}
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

for (const enc of [false, true]) test(`unicast mode: -M <client1 address> delivers to client1 only, byte-identical${enc ? ', aes128-cbc' : ''}`, { timeout: 90_000 }, async () => {
  const l = await lab();
  const src = path.join(l.workDir, 'u');
  fs.mkdirSync(src, { recursive: true });
  const data = randomBytes(1_500_000);
  fs.writeFileSync(path.join(src, 'uni.bin'), data);
  const d1 = await l.realUftpd('client1', { args: ['-x', '2'] });
  const d2 = await l.realUftpd('client2', { args: ['-x', '2'] });
  try {
    const p = l.ours('server', 'uftp', ['-U', l.uidOf('server'), '-R', '50000', '-s', '10', '-r', '0.05', '-M', l.addrOf('client1'), ...(enc ? ['-Y', 'aes128-cbc'] : []), 'uni.bin'], { cwd: src, timeoutMs: 60_000 });
    assert.equal(await p.wait(), 0, p.log().slice(-800));
    assert.equal(sha(fs.readFileSync(path.join(d1.dest, 'uni.bin'))), sha(data));
    assert.ok(!fs.existsSync(path.join(d2.dest, 'uni.bin')), 'the other client heard nothing');
  } finally {
    await d1.kill();
    await d2.kill();
  }
});

for (const enc of [false, true]) {
  test(`IPv6 multicast ff15::1/ff15::2 to two real uftpd${enc ? ', aes256-gcm' : ''}: byte-identical`, { timeout: 90_000 }, async () => {
    const l = await lab();
    const v6 = (h: string): string => l.addrOf(h, undefined, 'ipv6');
    const src = path.join(l.workDir, `v6${enc ? 'e' : ''}`);
    fs.mkdirSync(src, { recursive: true });
    const data = randomBytes(1_000_000);
    fs.writeFileSync(path.join(src, 'six.bin'), data);
    const ds = await Promise.all(['client1', 'client2'].map((h) => l.realUftpd(h, { args: ['-x', '2', '-M', 'ff15::1', '-I', v6(h)] })));
    try {
      const p = l.ours('server', 'uftp', ['-U', l.uidOf('server'), '-R', '50000', '-s', '10', '-r', '0.05', '-M', 'ff15::1', '-P', 'ff15::2', '-I', v6('server'),
        ...(enc ? ['-Y', 'aes256-gcm', '-h', 'sha256'] : []), 'six.bin'], { cwd: src, timeoutMs: 60_000 });
      assert.equal(await p.wait(), 0, p.log().slice(-800) + '\n' + ds[0].log().slice(-400));
      for (const d of ds) assert.equal(sha(fs.readFileSync(path.join(d.dest, 'six.bin'))), sha(data));
    } finally {
      await Promise.all(ds.map((d) => d.kill()));
    }
  });
}
