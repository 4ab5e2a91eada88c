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
 *        (with "quiet":true only {"count","bytes","drops","stats"} at the end)
 *        (with "batch":true: {"from","port","to","tos","ifindex","data"} per datagram through onBatch)
 *   {"mode":"send","family":4,"dst":G,"port":P,"count":N,"payload":"x","ttl":7?,"dscp":46?,"tos":0xb9?,"mif":"a1"?,
 *        "bind":"10.63.1.3"?,"size":N?,"burst":true?}
 *        prints {"sent":N,"tos":...,"stats":{...}}; "burst" queues all N at once (no wait per datagram) and waits for
 *        every callback; "size" pads the payload to N bytes
 *   {"mode":"sendlist","family":4,"targets":[{"dst":A,"port":P}...]}
 *        prints {"results":[null | "ENETUNREACH"...]}: one send per target, each one's outcome
 *   {"mode":"closeblocked","dst":A,"port":P,"count":N,"size":S}
 *        queues N datagrams, flushes, closes at once: prints {"queued","ok","failed"} (callbacks by outcome)
 * Every mode takes "backend":"native"|"dgram" (default: the process's choice, UFTP_UDP_BACKEND).
 * Errors: {"error":"..."} and exit 2.
 */
import { UdpEndpoint, type BackendKind } from './udp.js';
import { listInterfaces, defaultUid, resolveInterfaces, resolveInterface, type ResolvedInterface } from './interfaces.js';
import { formatUid } from './address.js';

interface Join {
  group: string;
  ifaces?: string[];
  source?: string;
}
interface Cmd {
  mode: 'info' | 'recv' | 'send' | 'resolve' | 'sendlist' | 'closeblocked';
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
  backend?: BackendKind;
  batch?: boolean;
  tos?: number;
  size?: number;
  burst?: boolean;
  targets?: { dst: string; port: number }[];
  quiet?: boolean;
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
  let received = 0;
  let receivedBytes = 0;
  const ep = await UdpEndpoint.open({
    family,
    port: cmd.port,
    bufferSize: cmd.bufferSize,
    backend: cmd.backend,
    onMessage: cmd.batch ? undefined : cmd.quiet ? (msg) => {
      received++;
      receivedBytes += msg.length;
    } : (msg, rinfo) => out({ from: rinfo.address, port: rinfo.port, data: msg.toString() }),
    onBatch: cmd.batch
      ? (b) => {
          for (let i = 0; i < b.count; i++) {
            const f = b.from(i);
            out({ from: f.address, port: f.port, to: b.to(i), tos: b.tos(i), ifindex: b.ifindex(i), data: b.data(i).toString() });
          }
        }
      : undefined,
  });
  if (!ep.ok) die(ep.error);
  for (const j of cmd.joins ?? []) {
    const ifs = await ifacesFor(j.ifaces, family);
    const r = j.source !== undefined ? ep.value.joinSource(j.source, j.group, ifs) : ep.value.join(j.group, ifs);
    if (!r.ok) die(r.error);
  }
  out({ ready: true, buffers: ep.value.buffers, warnings: ep.value.warnings, memberships: ep.value.memberships() });
  setTimeout(() => {
    if (cmd.quiet) out({ count: received, bytes: receivedBytes, drops: ep.value.drops(), stats: ep.value.stats() });
    void ep.value.close().then(() => process.exit(0));
  }, cmd.ms ?? 3000);
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
    backend: cmd.backend,
    bufferSize: cmd.bufferSize,
    onMessage: () => undefined,
  });
  if (!ep.ok) die(ep.error);
  if (cmd.tos !== undefined) {
    const r = ep.value.setTos(cmd.tos);
    if (!r.ok) die(r.error);
  }
  const payload = Buffer.from(cmd.payload ?? 'probe');
  const buf = cmd.size !== undefined ? Buffer.alloc(cmd.size, 0x2e) : payload;
  payload.copy(buf);
  const n = cmd.count ?? 1;
  let sent = 0;
  if (cmd.burst) {
    // as fast as the socket takes them: 256 at a time, then wait while the kernel is full (back-pressure)
    const all: Promise<Error | null>[] = [];
    for (let i = 0; i < n; i++) {
      all.push(new Promise<Error | null>((r) => ep.value.send(buf, 0, buf.length, cmd.port ?? 1044, cmd.dst ?? '', r)));
      if (i % 256 === 255) {
        ep.value.flush();
        if (ep.value.sendQueueCount() > 0) await new Promise<void>((r) => ep.value.onWritable(r));
      }
    }
    for (const err of await Promise.all(all)) {
      if (err) die(`send: ${err.message}`);
      sent++;
    }
  } else {
    for (let i = 0; i < n; i++) {
      const err = await new Promise<Error | null>((r) => ep.value.send(buf, 0, buf.length, cmd.port ?? 1044, cmd.dst ?? '', r));
      if (err) die(`send: ${err.message}`);
      sent++;
      if (cmd.intervalMs) await new Promise((r) => setTimeout(r, cmd.intervalMs));
    }
  }
  const tos = ep.value.tos();
  out({ sent, tos: tos.ok ? tos.value : tos.error, backend: ep.value.backend, stats: ep.value.stats() });
  await ep.value.close();
} else if (cmd.mode === 'closeblocked') {
  // queues `count` datagrams of `size` bytes, flushes, and closes at once while the kernel still refuses some
  const ep = await UdpEndpoint.open({ family, port: 0, backend: cmd.backend, bufferSize: 65536, onMessage: () => undefined, onError: () => undefined });
  if (!ep.ok) die(ep.error);
  const buf = Buffer.alloc(cmd.size ?? 1200);
  let ok = 0;
  let failed = 0;
  for (let i = 0; i < (cmd.count ?? 1000); i++) {
    ep.value.send(buf, 0, buf.length, cmd.port ?? 1044, cmd.dst ?? '', (e) => (e ? failed++ : ok++));
  }
  ep.value.flush();
  const queued = ep.value.sendQueueCount();
  await ep.value.close();
  await new Promise((r) => setTimeout(r, 200));
  out({ queued, ok, failed, backend: ep.value.backend });
} else if (cmd.mode === 'sendlist') {
  const ep = await UdpEndpoint.open({ family, port: 0, backend: cmd.backend, onMessage: () => undefined });
  if (!ep.ok) die(ep.error);
  const buf = Buffer.from(cmd.payload ?? 'probe');
  const results: (string | null)[] = [];
  for (const t of cmd.targets ?? []) {
    const err = await new Promise<Error | null>((r) => ep.value.send(buf, 0, buf.length, t.port, t.dst, r));
    results.push(err ? ((err as NodeJS.ErrnoException).code ?? err.message) : null);
  }
  out({ results, backend: ep.value.backend });
  await ep.value.close();
} else {
  die(`unknown mode ${String(cmd.mode)}`);
}
