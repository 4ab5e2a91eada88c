/**
 * Small pcap fixtures of the real UFTP suite, made in the lab, for decoder tests (uftp_inspect vs tshark).
 * `uftp-lab capture-fixtures DIR` (scripts/make-fixtures.sh) writes DIR/<name>.pcap, the key files used in
 * DIR/keys/<name>/<host>.pem, and DIR/README.md listing the exact commands of each capture.
 */
import fs from 'node:fs';
import path from 'node:path';
import { runScenario, type ScenarioOptions } from './scenario.js';

export interface FixtureDef {
  readonly name: string;
  readonly what: string;
  readonly scenario: (dir: string, keysDir: string) => ScenarioOptions;
  /** Second octet of the lab's addresses (default 70; the later fixtures were made with 71: 10.71.x.x, fd71::). */
  readonly octet?: number;
}

const SMALL = { 'hello.txt': 1500, 'dir/data.bin': 20_000 } as const;
const PRIV = ['-P', '230.5.5.1'];
const TINY = { 'hello.txt': 1500, 'dir/data.bin': 6000 } as const;

export const FIXTURES: readonly FixtureDef[] = [
  {
    name: 'plain',
    what: 'no encryption; fig2 segment, server and two clients (client1, client2), no proxies; captured on the server',
    scenario: (dir, keysDir) => ({
      figure: 'fig2', noProxies: true, hub: true, clients: ['client1', 'client2'], files: SMALL, rateKbps: 10_000,
      serverArgs: PRIV, keysDir, keys: 'ec',
      captures: [{ host: 'server', iface: 'eS', file: path.join(dir, 'plain.pcap') }],
    }),
  },
  {
    name: 'rsa-hmac',
    what: 'RSA key exchange, AES-128-CBC, SHA-1, HMAC signatures; RSA-1024 keys on server and clients; captured on the server',
    scenario: (dir, keysDir) => ({
      figure: 'fig2', noProxies: true, hub: true, clients: ['client1', 'client2'], files: SMALL, rateKbps: 10_000,
      crypto: ['-Y', 'aes128-cbc', '-h', 'sha1', '-w', 'hmac', '-e', 'rsa'], serverKey: true, keys: 'rsa',
      serverArgs: PRIV, keysDir,
      captures: [{ host: 'server', iface: 'eS', file: path.join(dir, 'rsa-hmac.pcap') }],
    }),
  },
  {
    name: 'ecdh-ecdsa-gcm-clientauth',
    what: 'ECDH_ECDSA (prime256v1), AES-128-GCM, SHA-256, client authentication (-c, closed group -H @list with ' +
      'fingerprints); EC keys on server and clients; captured on the server',
    scenario: (dir, keysDir) => ({
      figure: 'fig2', noProxies: true, hub: true, clients: ['client1', 'client2'], files: SMALL, rateKbps: 10_000,
      crypto: ['-Y', 'aes128-gcm', '-h', 'sha256', '-e', 'ecdh_ecdsa:prime256v1'], serverKey: true, keys: 'ec',
      clientAuth: true, serverArgs: PRIV, keysDir,
      captures: [{ host: 'server', iface: 'eS', file: path.join(dir, 'ecdh-ecdsa-gcm-clientauth.pcap') }],
    }),
  },
  {
    name: 'proxies-heartbeat',
    what: 'nat figure: server proxy sproxyB (-s fp=<cproxyB key>) and client proxy cproxyB behind the NAT sending ' +
      'signed heartbeats (-H, -h 1, -k EC key); no encryption; captured on the tunnel (router interface eW, ' +
      'between router and NAT gateway, so the client side appears as the NAT address 10.70.9.2)',
    scenario: (dir, keysDir) => ({
      figure: 'nat', files: SMALL, rateKbps: 10_000, serverArgs: PRIV, keysDir, keys: 'ec',
      captures: [{ host: 'router', iface: 'eW', file: path.join(dir, 'proxies-heartbeat.pcap') }],
    }),
  },
  {
    name: 'response-proxy',
    what: 'fig2 with response proxies rproxy1/rproxy2 (-r -e prime256v1), clients with -R; ECDH_ECDSA, AES-128-GCM, ' +
      'SHA-256; the capture starts before the clients so their key requests and the proxies\' PROXY_KEY answers are ' +
      'in it; segment bridged as a hub, captured on the server',
    scenario: (dir, keysDir) => ({
      figure: 'fig2', hub: true, files: SMALL, rateKbps: 10_000,
      crypto: ['-Y', 'aes128-gcm', '-h', 'sha256', '-e', 'ecdh_ecdsa:prime256v1'], keys: 'ec',
      serverArgs: PRIV, keysDir,
      captures: [{ host: 'server', iface: 'eS', file: path.join(dir, 'response-proxy.pcap') }],
    }),
  },
  {
    name: 'ipv6',
    what: 'IPv6 (dual-stack fig1, fd71::/16): server, clientA, server proxies sproxyB/sproxyC (-s fd71:2::11, ' +
      '-s fd71:3::11) and client proxies cproxyB/cproxyC, four clients behind them; public multicast ff15::4:4:1, ' +
      'private ff15::5:5:1; no encryption; segments bridged as hubs, captured on the router\'s interface on network A ' +
      '(so it holds the server\'s multicast, the answers on A and both tunnels)',
    octet: 71,
    scenario: (dir, keysDir) => ({
      figure: 'fig1', ipv6: true, hub: true, files: TINY, rateKbps: 10_000, keysDir, keys: 'ec',
      captures: [{ host: 'router', iface: 'eA', file: path.join(dir, 'ipv6.pcap') }],
    }),
  },
  {
    name: 'abort',
    what: 'ABORT: fig2 segment, no proxies, no encryption; client2 runs uftpd -E (encrypted sessions only) and ' +
      'rejects the plain session with an ABORT, client1 receives the files; captured on the server',
    octet: 71,
    scenario: (dir, keysDir) => ({
      figure: 'fig2', noProxies: true, hub: true, clients: ['client1', 'client2'], files: TINY, rateKbps: 10_000,
      serverArgs: PRIV, keysDir, keys: 'ec', clientArgs: { client2: ['-E'] }, rejecting: ['client2'],
      captures: [{ host: 'server', iface: 'eS', file: path.join(dir, 'abort.pcap') }],
    }),
  },
  {
    name: 'tfmcc-loss',
    what: 'TFMCC congestion control (-C tfmcc) with 10% random loss on the segment\'s bridge: STATUS with NAKs, ' +
      'CONG_CTRL, CC_ACK, FILESEG with EXT_TFMCC_DATA_INFO; fig2, no proxies, no encryption; captured on the server',
    octet: 71,
    scenario: (dir, keysDir) => ({
      figure: 'fig2', noProxies: true, hub: true, clients: ['client1', 'client2'], files: { 'tfmcc.bin': 40_000 },
      rateKbps: 10_000, serverArgs: ['-C', 'tfmcc', ...PRIV], keysDir, keys: 'ec', lab: { lossPct: 10 },
      captures: [{ host: 'server', iface: 'eS', file: path.join(dir, 'tfmcc-loss.pcap') }],
    }),
  },
];

/** Makes every fixture (or those named) into dir; returns one line per fixture. */
export async function captureFixtures(dir: string, only: readonly string[] = [], log: (l: string) => void = () => undefined): Promise<boolean> {
  fs.mkdirSync(dir, { recursive: true });
  const absDir = path.resolve(dir);
  let allOk = true;
  // Sections of README.md by fixture name: the ones made now replace their old text, the others are kept.
  const sections = new Map<string, string>();
  const readme = path.join(absDir, 'README.md');
  const old = fs.existsSync(readme) ? fs.readFileSync(readme, 'utf8') : '';
  for (const part of old.split(/^(?=## )/m).slice(1)) {
    const m = /^## (\S+)\.pcap/.exec(part);
    if (m?.[1]) sections.set(m[1], part.trimEnd() + '\n');
  }
  for (const f of FIXTURES) {
    if (only.length > 0 && !only.includes(f.name)) continue;
    const keysDir = path.join(absDir, 'keys', f.name);
    const sc = f.scenario(absDir, keysDir);
    const r = await runScenario({ ...sc, lab: { ...(sc.lab ?? {}), prefix: `ulabfx${process.pid % 100000}`, octet: f.octet ?? 70 } });
    const pcap = path.join(absDir, `${f.name}.pcap`);
    const size = fs.existsSync(pcap) ? fs.statSync(pcap).size : 0;
    const ok = r.ok && size > 0;
    allOk &&= ok;
    log(`${ok ? 'OK  ' : 'FAIL'} ${f.name}.pcap ${size} bytes${ok ? '' : ': ' + (r.reason || 'empty capture')}`);
    const clean = (s: string): string => s.split(absDir + '/').join('').split(r.workDir).join('$WORK');
    if (ok) sections.set(f.name, [
      `## ${f.name}.pcap`, '', f.what + '.', '',
      'Commands, in order (`host: argv`, each run with `ip netns exec <prefix>-<host>`; `$WORK` is the lab\'s work directory):', '',
      '```', ...r.commands.map(clean), '```', '',
    ].join('\n'));
  }
  fs.writeFileSync(readme, [
    '# Capture fixtures', '',
    'Made by `scripts/make-fixtures.sh` (`uftp-lab capture-fixtures test/fixtures/captures`) with the real UFTP 4.10',
    'suite (Debian package uftp 4.10.2) in the lab\'s network namespaces (see docs/lab.md): addresses 10.70.x.x for',
    'the first five, 10.71.x.x and fd71::/16 for ipv6, abort and tfmcc-loss.',
    'Key files (test keys, published on purpose) are in `keys/<capture>/<host>.pem`; existing key files are',
    'reused, so re-running keeps the fingerprints. Files sent (random bytes): `data/hello.txt` (1500 bytes) and',
    '`data/dir/data.bin` (20000 bytes; 6000 in ipv6 and abort); tfmcc-loss sends `data/tfmcc.bin` (40000 bytes).',
    'Multicast: private 230.5.5.1, public 230.4.4.1 (ipv6: ff15::5:5:1 and ff15::4:4:1), port 1044.',
    'Host IDs are the hosts\' IPv4 addresses (`-U 0x0A46xxxx`, `0x0A47xxxx`). tshark decodes them as UFTP4:',
    '`tshark -r plain.pcap`. Make them again with `sudo scripts/make-fixtures.sh` (or only some: `... DIR NAME...`);',
    'the sections of the captures not made again are kept.',
    '',
    ...FIXTURES.map((f) => sections.get(f.name)).filter((x): x is string => x !== undefined),
  ].join('\n'));
  return allOk;
}
