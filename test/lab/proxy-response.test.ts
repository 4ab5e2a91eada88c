// Response proxies (Figures 2, 3 and 4 of uftpproxyd(1)) in the lab: the real uftp server multicasts to real uftpd
// clients directly; the clients (uftpd -R proxy/fingerprint) send every response to OUR response proxy, which
// answers their KEY_REQ with a signed PROXY_KEY, takes part in the key exchange for them (its own REGISTER and
// KEYINFO_ACK upstream, its own KEYINFO to its clients) and aggregates REGISTER/FILEINFO_ACK/STATUS/COMPLETE.
// Files checked by SHA-256. Needs root, the real suite and the compiled bins (`npx tsc -p .`).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Lab, treeHashes, type FigureName, type Proc } from '../../src/lab/lab.js';

const labs: Lab[] = [];
after(async () => {
  for (const l of labs) await l.down();
});

async function ours(lab: Lab, host: string, args: string[]): Promise<Proc> {
  const p = lab.ours(host, 'uftpproxyd', ['-d', '-x', '4', '-U', lab.uidOf(host), ...args], { timeoutMs: 120_000 });
  await lab.waitFor(() => p.exitCode !== null || p.log().includes('Listening on port'), 15_000, `our uftpproxyd on ${host}`);
  assert.equal(p.exitCode, null, `our uftpproxyd on ${host} exited: ${p.log()}`);
  return p;
}

interface Case {
  readonly figure: FigureName;
  /** Response proxy host -> its clients. */
  readonly proxies: Readonly<Record<string, readonly string[]>>;
  /** uftp encryption options; none = plain. */
  readonly enc?: readonly string[];
  readonly label: string;
  /** Key spec of every key (server, proxies, clients); default rsa:1024. */
  readonly keySpec?: string;
}

async function run(c: Case): Promise<void> {
  const lab = await Lab.up(c.figure, { prefix: `upr${randomBytes(3).toString('hex')}`, octet: 68 });
  labs.push(lab);
  const src = path.join(lab.workDir, 'src');
  fs.mkdirSync(path.join(src, 'sub'), { recursive: true });
  fs.writeFileSync(path.join(src, 'a.bin'), randomBytes(500_000));
  fs.writeFileSync(path.join(src, 'sub', 'b.txt'), 'response proxy\n');
  const want = treeHashes(src);
  const key = (who: string) => lab.makeKey(path.join(lab.workDir, 'keys', `${who}.pem`), c.keySpec ?? 'rsa:1024');
  const rps: Proc[] = [];
  const clients: { host: string; proc: Proc & { dest: string } }[] = [];
  for (const [rp, cls] of Object.entries(c.proxies)) {
    const k = await key(rp);
    rps.push(await ours(lab, rp, ['-r', '-e', 'prime256v1', '-k', k.file]));
    // the clients pin the proxy's key fingerprint: they check our PROXY_KEY's key and signature
    for (const cl of cls) {
      const ck = await key(cl);
      clients.push({ host: cl, proc: await lab.realUftpd(cl, { args: ['-R', `${lab.addrOf(rp)}/${k.fingerprint}`, '-x', '3', '-k', ck.file] }) });
    }
  }
  // PROXY_KEY goes out at most once per 5 s (multicast): a client that asked too soon gets it on its retry
  await lab.waitFor(() => clients.every((x) => x.proc.log().includes('Received PROXY_KEY')), 20_000, 'every client to get a PROXY_KEY');
  const srvKey = c.enc ? ['-k', (await key('server')).file] : [];
  const server = lab.realUftp('server', [src], { args: ['-R', '50000', ...(c.enc ?? []), ...srvKey], timeoutMs: 60_000 });
  const code = await server.wait();
  const slog = server.log();
  assert.equal(code, 0, slog.split('\n').slice(-15).join('\n'));
  for (const x of clients) {
    assert.deepEqual(treeHashes(path.join(x.proc.dest, 'src')), want, `${x.host} files`);
    assert.doesNotMatch(x.proc.log(), /(fail|invalid|mismatch|doesn't match|reject)/i, `${x.host} log`);
  }
  for (const rp of Object.keys(c.proxies)) {
    assert.match(slog, new RegExp(`COMPLETE from proxy ${lab.uidOf(rp)}`, 'i'), `completions came through ${rp}`);
  }
  for (const p of rps) {
    assert.match(p.log(), /COMPLETE for file \d+ sent upstream for 2 client\(s\)/);
    if (c.enc) assert.equal((p.log().match(/has the group key/g) ?? []).length >= 2, true, 'our KEYINFO reached both clients');
  }
  await lab.down();
}

/** The crypto configurations; every one runs in every response-proxy figure. */
const CONFIGS: readonly { readonly enc?: readonly string[]; readonly keySpec?: string; readonly label: string }[] = [
  { label: 'plain' },
  { enc: ['-Y', 'aes128-cbc', '-h', 'sha1', '-e', 'rsa'], label: 'RSA + AES-128-CBC + HMAC/SHA-1' },
  { enc: ['-Y', 'aes256-gcm', '-h', 'sha256', '-e', 'ecdh_rsa'], label: 'ECDH_RSA + AES-256-GCM/SHA-256' },
  { enc: ['-Y', 'aes128-ccm', '-h', 'sha384', '-e', 'ecdh_ecdsa', '-w', 'keyex'], keySpec: 'ec:prime256v1', label: 'ECDH_ECDSA + AES-128-CCM/SHA-384 -w keyex' },
  { enc: ['-Y', 'aes128-cbc', '-h', 'sha1', '-e', 'rsa', '-c'], label: 'RSA + AES-128-CBC/SHA-1 with client authentication (uftp -c)' },
  { enc: ['-Y', '3des', '-h', 'sha1', '-e', 'rsa'], label: 'RSA + 3DES/SHA-1' },
];
const TOPOLOGIES: readonly Pick<Case, 'figure' | 'proxies'>[] = [
  { figure: 'fig2', proxies: { rproxy1: ['client1', 'client2'] } },
  { figure: 'fig3', proxies: { rproxyB: ['clientB1', 'clientB2'], rproxyC: ['clientC1', 'clientC2'] } },
  { figure: 'fig4', proxies: { rproxyB: ['clientB1', 'clientB2'], rproxyC: ['clientC1', 'clientC2'] } },
];
const CASES: Case[] = [
  ...TOPOLOGIES.flatMap((t) => CONFIGS.map((c) => ({ ...t, ...c }))),
  { ...TOPOLOGIES[0], enc: ['-Y', 'aes256-cbc', '-h', 'sha256', '-e', 'rsa', '-w', 'keyex'], label: 'RSA + AES-256-CBC/SHA-256 -w keyex (clients\' CLIENT_KEYs checked, responses re-signed)' },
];

for (const c of CASES) {
  test(`${c.figure} ${c.label}: real uftp, OUR response prox${Object.keys(c.proxies).length > 1 ? 'ies' : 'y'}, real uftpd -R`, { timeout: 120_000 }, async () => {
    await run(c);
  });
}
