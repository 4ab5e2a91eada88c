/**
 * The main demo (`npm start`): Figure 1 of uftpproxyd(1) in the lab. The real uftp server on network A sends a
 * directory through a server proxy on A and a client proxy on network B (behind a router that does not route
 * multicast) to two real uftpd clients; every hop is captured and summarized with the inspector (src/pcap), and
 * the received files are checked by SHA-256.
 *
 *  1. encrypted (ECDH_ECDSA key exchange, AES-256-GCM, SHA-256), through OUR server proxy and OUR client proxy,
 *     which does the proxy key exchange of protocol.txt 5.1.1.2 with the server and with its clients;
 *  2. the same directory in a plain session, for comparison.
 */
import { createReadStream, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { Lab, checkPrereqs, ensureRealSuite, treeHashes, type Proc } from '../../lab/lab.js';
import { newStats, readUdpDatagrams } from '../../pcap/datagrams.js';
import { inspectEvent } from '../../pcap/inspect.js';

type Kind = 'ours' | 'real';

interface HopCount {
  down: Map<string, { n: number; bytes: number }>;
  up: Map<string, { n: number; bytes: number }>;
}

function add(m: Map<string, { n: number; bytes: number }>, type: string, bytes: number): void {
  const e = m.get(type) ?? { n: 0, bytes: 0 };
  e.n++;
  e.bytes += bytes;
  m.set(type, e);
}

function fmtBytes(n: number): string {
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)} MB`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} kB`;
  return `${n} B`;
}

function fmtCounts(m: Map<string, { n: number; bytes: number }>): string {
  if (m.size === 0) return '(nothing)';
  let total = 0;
  const parts = [...m].sort((a, b) => b[1].n - a[1].n).map(([t, e]) => {
    total += e.bytes;
    return `${t} ${e.n}`;
  });
  return `${parts.join(', ')}  [${fmtBytes(total)}]`;
}

/** Counts UFTP messages in a capture, split into hops by a classifier returning [hop, 'down'|'up'] or undefined. */
async function countHops(file: string, classify: (src: string, dst: string) => [string, 'down' | 'up'] | undefined, hops: Map<string, HopCount>): Promise<void> {
  const stats = newStats();
  for await (const item of readUdpDatagrams(createReadStream(file), { port: 1044 }, stats)) {
    if (!item.ok) break;
    const x = inspectEvent(item.value, { json: false, line: false });
    const c = classify(x.src.replace(/:\d+$/, ''), x.dst.replace(/:\d+$/, ''));
    if (!c) continue;
    const h = hops.get(c[0]);
    if (!h) continue;
    const bytes = item.value.kind === 'datagram' ? item.value.datagram.payload.length : 0;
    add(c[1] === 'down' ? h.down : h.up, x.type ?? 'undecodable', bytes);
  }
}

async function ours(lab: Lab, host: string, args: string[]): Promise<Proc> {
  const p = lab.ours(host, 'uftpproxyd', ['-d', '-x', '2', '-U', lab.uidOf(host), '-B', '2097152', ...args], { timeoutMs: 300_000 });
  await lab.waitFor(() => p.exitCode !== null || p.log().includes('Listening on port'), 20_000, `our uftpproxyd on ${host}`);
  if (p.exitCode !== null) throw new Error(`our uftpproxyd on ${host} exited ${p.exitCode}: ${p.log().trim()}`);
  return p;
}

async function runOnce(lab: Lab, out: (l: string) => void, label: string, cp: Kind, enc: boolean, src: string, want: Map<string, string>): Promise<boolean> {
  out(`== ${label}`);
  const key = async (who: string): Promise<string[]> => (enc ? ['-k', (await lab.makeKey(path.join(lab.workDir, 'keys', `${who}.pem`), 'ec:prime256v1')).file] : []);
  const capDir = path.join(lab.workDir, 'captures', enc ? 'enc' : 'plain');
  mkdirSync(capDir, { recursive: true });
  // a large capture buffer so tcpdump keeps every packet of the burst
  const capA = await lab.capture('server', 'eA', path.join(capDir, 'server-eA.pcap'), ['-B', '32768', 'udp']);
  const capB = await lab.capture('cproxyB', 'eB', path.join(capDir, 'cproxyB-eB.pcap'), ['-B', '32768', 'udp']);
  const clients = ['clientB1', 'clientB2'];
  const uftpds = [];
  for (const c of clients) uftpds.push(await lab.realUftpd(c, { args: await key(c) }));
  const cpArgs = ['-c', ...(await key('cproxyB'))];
  const cproxy = cp === 'ours' ? await ours(lab, 'cproxyB', cpArgs) : await lab.realProxy('cproxyB', cpArgs);
  const sproxy = await ours(lab, 'sproxyB', ['-s', lab.tunnelDest('cproxyB')]);
  const encArgs = enc ? ['-Y', 'aes256-gcm', '-h', 'sha256', '-e', 'ecdh_ecdsa', ...(await key('server'))] : [];
  const t0 = Date.now();
  const server = lab.realUftp('server', [src], { args: ['-R', '50000', ...encArgs], timeoutMs: 120_000 });
  const code = await server.wait();
  const ms = Date.now() - t0;
  await new Promise((r) => setTimeout(r, 300));
  for (const p of [capA, capB, sproxy, cproxy, ...uftpds]) await p.kill();

  const A = { server: lab.addrOf('server'), sproxy: lab.addrOf('sproxyB') };
  const B = { cproxy: lab.addrOf('cproxyB'), clients: clients.map((c) => lab.addrOf(c)) };
  const hops = new Map<string, HopCount>([
    ['1', { down: new Map(), up: new Map() }],
    ['2', { down: new Map(), up: new Map() }],
    ['3', { down: new Map(), up: new Map() }],
  ]);
  const mcast = (a: string): boolean => /^2(2[4-9]|3\d)\./.test(a);
  await countHops(path.join(capDir, 'server-eA.pcap'), (s, d) => {
    if (s === A.server && (mcast(d) || d === A.sproxy)) return ['1', 'down'];
    if (s === A.sproxy && d === A.server) return ['1', 'up'];
    return undefined;
  }, hops);
  await countHops(path.join(capDir, 'cproxyB-eB.pcap'), (s, d) => {
    if (s === A.sproxy && d === B.cproxy) return ['2', 'down'];
    if (s === B.cproxy && d === A.sproxy) return ['2', 'up'];
    if (s === B.cproxy && (mcast(d) || B.clients.includes(d))) return ['3', 'down'];
    if (B.clients.includes(s) && d === B.cproxy) return ['3', 'up'];
    return undefined;
  }, hops);
  const names: Record<string, string> = {
    '1': `server ${A.server} <-> server proxy ${A.sproxy} (ours)`,
    '2': `server proxy ${A.sproxy} <-> client proxy ${B.cproxy} (${cp}), unicast through the router`,
    '3': `client proxy ${B.cproxy} <-> clients ${B.clients.join(', ')} (multicast down, unicast up)`,
  };
  for (const h of ['1', '2', '3']) {
    const c = hops.get(h);
    if (!c) continue;
    out(`  hop ${h}: ${names[h]}`);
    out(`    down: ${fmtCounts(c.down)}`);
    out(`    up:   ${fmtCounts(c.up)}`);
  }
  let ok = code === 0;
  out(`  uftp exit ${code}, ${(ms / 1000).toFixed(1)} s`);
  out('  SHA-256:');
  for (const [f, h] of want) {
    const got = uftpds.map((u) => treeHashes(path.join(u.dest, 'src')).get(f));
    const match = got.every((g) => g === h);
    ok &&= match;
    out(`    ${h.slice(0, 16)}…  ${f.padEnd(22)} ${clients.map((c, i) => `${c} ${got[i] === h ? 'match' : 'DIFFERS'}`).join(', ')}`);
  }
  out('');
  return ok;
}

/** Runs the demo; returns the exit code, or undefined when the lab cannot run here (not root...). */
export async function proxyDemo(out: (l: string) => void): Promise<number | undefined> {
  const why = await checkPrereqs();
  if (why) {
    out(`(the Figure 1 proxy demo ${why}; showing the inspector demo instead)`);
    out('');
    return undefined;
  }
  await ensureRealSuite();
  out('uftp-ts demo: Figure 1 of uftpproxyd(1) in network namespaces');
  out('  server on network A -> server proxy on A -> router (no multicast routing) -> client proxy on B -> 2 clients on B');
  out('  the real UFTP 4.10 uftp and uftpd; the proxies marked "ours" are uftp-ts');
  out('');
  const lab = await Lab.up('fig1', { prefix: `demo${randomBytes(3).toString('hex')}`, octet: 71 });
  try {
    const src = path.join(lab.workDir, 'src');
    rmSync(src, { recursive: true, force: true });
    mkdirSync(path.join(src, 'docs'), { recursive: true });
    writeFileSync(path.join(src, 'random-2MB.bin'), randomBytes(2_000_000));
    writeFileSync(path.join(src, 'docs', 'hello.txt'), 'Hello from the server, through two proxies.\n');
    writeFileSync(path.join(src, 'docs', 'table.csv'), Array.from({ length: 2000 }, (_, i) => `${i},${i * i}`).join('\n'));
    const want = treeHashes(src);
    const a = await runOnce(lab, out, '1. encrypted (ECDH_ECDSA P-256, AES-256-GCM, SHA-256): real uftp -> OUR server proxy -> OUR client proxy -> 2 real uftpd', 'ours', true, src, want);
    const b = await runOnce(lab, out, '2. plain: real uftp -> OUR server proxy -> OUR client proxy -> 2 real uftpd', 'ours', false, src, want);
    out(a && b ? 'All files arrived byte-identical.' : 'SOME TRANSFERS FAILED.');
    out(`Captures and logs: ${lab.workDir} (removed when the demo ends)`);
    return a && b ? 0 : 1;
  } finally {
    await lab.down();
  }
}
