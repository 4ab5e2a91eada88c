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
}

const SMALL = { 'hello.txt': 1500, 'dir/data.bin': 20_000 } as const;
const PRIV = ['-P', '230.5.5.1'];

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
];

/** Makes every fixture (or those named) into dir; returns one line per fixture. */
export async function captureFixtures(dir: string, only: readonly string[] = [], log: (l: string) => void = () => undefined): Promise<boolean> {
  fs.mkdirSync(dir, { recursive: true });
  const absDir = path.resolve(dir);
  let allOk = true;
  const sections: string[] = [];
  for (const f of FIXTURES) {
    if (only.length > 0 && !only.includes(f.name)) continue;
    const keysDir = path.join(absDir, 'keys', f.name);
    const sc = f.scenario(absDir, keysDir);
    const r = await runScenario({ ...sc, lab: { prefix: `ulabfx${process.pid % 100000}` } });
    const pcap = path.join(absDir, `${f.name}.pcap`);
    const size = fs.existsSync(pcap) ? fs.statSync(pcap).size : 0;
    const ok = r.ok && size > 0;
    allOk &&= ok;
    log(`${ok ? 'OK  ' : 'FAIL'} ${f.name}.pcap ${size} bytes${ok ? '' : ': ' + (r.reason || 'empty capture')}`);
    const clean = (s: string): string => s.split(absDir + '/').join('').split(r.workDir).join('$WORK');
    sections.push([
      `## ${f.name}.pcap`, '', f.what + '.', '',
      'Commands, in order (`host: argv`, each run with `ip netns exec <prefix>-<host>`; `$WORK` is the lab\'s work directory):', '',
      '```', ...r.commands.map(clean), '```', '',
    ].join('\n'));
  }
  if (only.length === 0) {
    fs.writeFileSync(path.join(absDir, 'README.md'), [
      '# Capture fixtures', '',
      'Made by `scripts/make-fixtures.sh` (`uftp-lab capture-fixtures test/fixtures/captures`) with the real UFTP 4.10',
      'suite (Debian package uftp 4.10.2) in the lab\'s network namespaces (addresses 10.70.x.x, see docs/lab.md).',
      'Key files (test keys, published on purpose) are in `keys/<capture>/<host>.pem`; existing key files are',
      'reused, so re-running keeps the fingerprints. Files sent: `data/hello.txt` (1500 random bytes) and',
      '`data/dir/data.bin` (20000 random bytes); private multicast address 230.5.5.1, public 230.4.4.1, port 1044.',
      'Host IDs are the hosts\' addresses (`-U 0x0A46xxxx`). tshark decodes them as UFTP4:',
      '`tshark -r plain.pcap`. Make them again with `sudo scripts/make-fixtures.sh` (or only some: `... DIR NAME...`).',
      '',
      ...sections,
    ].join('\n'));
  }
  return allOk;
}
