#!/usr/bin/env node
/**
 * net-probe: drives UdpEndpoint from the command line so the lab tests (test/lab/net-*.test.ts) can run it
 * inside a network namespace (`ip netns exec NS node dist/src/net/probe.js '<json>'`). Not installed as a bin.
 *
 * Modes (one JSON argument):
 *   {"mode":"info"}                          -> {"interfaces":[...],"defaultUid":...,"defaults4":[...],"defaults6":[...]}
 *   {"mode":"resolve","family":4,"specs":["b1","10.63.2.2","bhost"]} -> {"resolved":[ResolvedInterface...]} or {"error":..}
 *   {"mode":"recv","family":4,"port":P,"joins":[{"group":G,"ifaces":["b1"],"source":S?}],"ms":T,"bufferSize":B?}
 *        prints {"ready":true,"buffers":...,"warnings":[...]} then one {"from":..,"data":..} per datagram, exits after T ms
 *   {"mode":"send","family":4,"dst":G,"port":P,"count":N,"payload":"x","ttl":7?,"dscp":46?,"mif":"a1"?,"bind":"10.63.1.3"?}
 *        prints {"sent":N,"tos":...}
 * Errors: {"error":"..."} and exit 2.
 */
import { UdpEndpoint } from './udp.js';
import { listInterfaces, defaultUid, resolveInterfaces, resolveInterface, type ResolvedInterface } from './interfaces.js';
import { formatUid } from './address.js';

interface Join {
  group: string;
  ifaces?: string[];
  source?: string;
}
interface Cmd {
  mode: 'info' | 'recv' | 'send' | 'resolve';
  specs?: string[];
  family?: 4 | 6;
  port?: number;
  joins?: Join[];
  ms?: number;
  bufferSize?: number;
  dst?: string;
  count?: number;
  payload?: string;
  ttl?: number;
  dscp?: number;
  mif?: string;
  bind?: string;
  intervalMs?: number;
}

function out(o: unknown): void {
  process.stdout.write(JSON.stringify(o) + '\n');
}

function die(msg: string): never {
  out({ error: msg });
  process.exit(2);
}

async function ifacesFor(names: string[] | undefined, family: 4 | 6): Promise<ResolvedInterface[]> {
  const r = await resolveInterfaces(names, family);
  if (!r.ok) die(r.error);
  return r.value;
}

const cmd = JSON.parse(process.argv[2] ?? '{}') as Cmd;
const family = cmd.family ?? 4;

if (cmd.mode === 'info') {
  const d = defaultUid();
  out({
    interfaces: listInterfaces(),
    defaultUid: d ? { ...d, hex: formatUid(d.uid) } : null,
    defaults4: (await ifacesFor(undefined, 4)).map((i) => i.name),
    defaults6: (await ifacesFor(undefined, 6)).map((i) => i.name),
  });
} else if (cmd.mode === 'resolve') {
  const r = await resolveInterfaces(cmd.specs, family);
  out(r.ok ? { resolved: r.value } : { error: r.error });
} else if (cmd.mode === 'recv') {
  const ep = await UdpEndpoint.open({
    family,
    port: cmd.port,
    bufferSize: cmd.bufferSize,
    onMessage: (msg, rinfo) => out({ from: rinfo.address, port: rinfo.port, data: msg.toString() }),
  });
  if (!ep.ok) die(ep.error);
  for (const j of cmd.joins ?? []) {
    const ifs = await ifacesFor(j.ifaces, family);
    const r = j.source !== undefined ? ep.value.joinSource(j.source, j.group, ifs) : ep.value.join(j.group, ifs);
    if (!r.ok) die(r.error);
  }
  out({ ready: true, buffers: ep.value.buffers, warnings: ep.value.warnings, memberships: ep.value.memberships() });
  setTimeout(() => void ep.value.close().then(() => process.exit(0)), cmd.ms ?? 3000);
} else if (cmd.mode === 'send') {
  let mif: ResolvedInterface | undefined;
  if (cmd.mif !== undefined) {
    const r = await resolveInterface(cmd.mif, family);
    if (!r.ok) die(r.error);
    mif = r.value;
  }
  const ep = await UdpEndpoint.open({
    family,
    port: 0,
    address: cmd.bind,
    ttl: cmd.ttl,
    dscp: cmd.dscp,
    multicastInterface: mif,
    onMessage: () => undefined,
  });
  if (!ep.ok) die(ep.error);
  const buf = Buffer.from(cmd.payload ?? 'probe');
  const n = cmd.count ?? 1;
  let sent = 0;
  for (let i = 0; i < n; i++) {
    const err = await new Promise<Error | null>((r) => ep.value.send(buf, 0, buf.length, cmd.port ?? 1044, cmd.dst ?? '', r));
    if (err) die(`send: ${err.message}`);
    sent++;
    if (cmd.intervalMs) await new Promise((r) => setTimeout(r, cmd.intervalMs));
  }
  const tos = ep.value.tos();
  out({ sent, tos: tos.ok ? tos.value : tos.error });
  await ep.value.close();
} else {
  die(`unknown mode ${String(cmd.mode)}`);
}
