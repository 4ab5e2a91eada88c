/**
 * One end of bench/udp-engine.ts, run inside a namespace as `node dist/bench/peers/udp-peer.js '<json>'`:
 *   {"mode":"send","backend":"native"|"dgram","dst":A,"port":P,"count":N,"size":S,"gso":true}
 *   {"mode":"recv","backend":"native"|"dgram","port":P,"idleMs":T,"api":"batch"|"message","recvInfo":true,"coalesce":false}
 * ("coalesce": the receive coalescing uftpd and the server proxy run, src/daemon/coalesce.ts, at its defaults)
 * Prints {"count":N,"cpu":seconds}: user+system CPU of this process from the first send (sender) or from ready
 * (receiver) until the last datagram has gone or IDLE_MS have passed without one.
 */
import { DEFAULT_COALESCE, ReceiveCoalescer, coalesceTurns } from '../../src/daemon/coalesce.js';
import { UdpEndpoint, type BackendKind } from '../../src/net/udp.js';

interface Cmd {
  mode: 'send' | 'recv';
  backend: BackendKind;
  dst?: string;
  port: number;
  count?: number;
  size?: number;
  gso?: boolean;
  idleMs?: number;
  api?: 'batch' | 'message';
  recvInfo?: boolean;
  coalesce?: boolean;
}

const cmd = JSON.parse(process.argv[2] ?? '{}') as Cmd;
const cpu = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

if (cmd.mode === 'send') {
  const ep = await UdpEndpoint.open({ family: 6, port: 0, backend: cmd.backend, bufferSize: 4194304, gso: cmd.gso ?? true, onMessage: () => undefined });
  if (!ep.ok) throw new Error(ep.error);
  const e = ep.value;
  const size = cmd.size ?? 1300;
  const b = Buffer.alloc(size, 0x55);
  const count = cmd.count ?? 100000;
  const dst = cmd.dst ?? '::1';
  const t0 = cpu();
  let i = 0;
  while (i < count) {
    const k = Math.min(256, count - i);
    for (let j = 0; j < k; j++) e.send(b, 0, size, cmd.port, dst);
    i += k;
    e.flush();
    if (e.sendQueueCount() > 0) await new Promise<void>((r) => e.onWritable(r));
  }
  await new Promise<void>((r) => e.onWritable(r));
  const used = cpu() - t0;
  process.stdout.write(JSON.stringify({ count, cpu: used, stats: e.stats() }) + '\n');
  await e.close();
} else {
  let n = 0;
  const turn = { turnCount: 0 };
  const ep = await UdpEndpoint.open({
    family: 6, port: cmd.port, backend: cmd.backend, bufferSize: 4194304, recvInfo: cmd.recvInfo ?? true,
    onBatch: cmd.api === 'batch' ? (b) => {
      n += b.count;
      turn.turnCount += b.count;
    } : undefined,
    onMessage: cmd.api === 'batch' ? undefined : () => n++,
  });
  if (!ep.ok) throw new Error(ep.error);
  const coalescer = cmd.coalesce === true ? new ReceiveCoalescer(DEFAULT_COALESCE) : undefined;
  if (coalescer) coalesceTurns([ep.value], coalescer, turn);
  const idle = cmd.idleMs ?? 500;
  process.stdout.write('{"ready":true}\n');
  const t0 = cpu();
  let last = 0;
  let lastCpu = t0;
  // every idle/4 ms: the CPU when the count last moved is the end of the run
  const timer = setInterval(() => {
    if (n !== last) {
      last = n;
      lastCpu = cpu();
      return;
    }
    if (n === 0) return;
    clearInterval(timer);
    process.stdout.write(JSON.stringify({ count: n, cpu: lastCpu - t0, stats: ep.value.stats(), drops: ep.value.drops(), sleeps: coalescer?.sleeps }) + '\n');
    void ep.value.close();
  }, Math.max(10, idle / 4));
}
