// A synthetic UFTP FILESEG stream for the proxy data-path lab tests (proxy-fastpath, proxy-coalesce): the packets a
// sender script sends, each block's payload (a pattern no other block has at any offset), the receiver that checks
// every forwarded FILESEG byte for byte, and the role dispatch of a test file that spawns itself in a namespace.
import fs from 'node:fs';
import { UdpEndpoint, type RecvBatch } from '../../src/net/udp.js';
import { resolveInterfaces } from '../../src/net/interfaces.js';
import { decodePacket, encodePacket, type Message, type Packet } from '../../src/wire/packet.js';
import { UFTP_VER_NUM } from '../../src/wire/constants.js';
import { quantizeGrtt } from '../../src/wire/quantize.js';

export const BLOCK = 1300;

/** One packet of the stream's session (server `srcId`, group `groupId`). */
export function streamPacket(srcId: number, groupId: number, message: Message): Uint8Array {
  const p: Packet = {
    header: { version: UFTP_VER_NUM, func: 0, seq: 0, srcId, groupId, groupInst: 0, grtt: quantizeGrtt(0.5), gsize: 0, reserved: 0 },
    message,
  };
  return encodePacket(p);
}

/** The payload of block i. */
export function blockPayload(i: number): Uint8Array {
  const d = new Uint8Array(BLOCK);
  for (let k = 0; k < BLOCK; k++) d[k] = (i * 7 + k * 13 + (i >> 8)) & 0xff;
  d[0] = i & 0xff;
  d[1] = (i >> 8) & 0xff;
  return d;
}

/** Block i of file 1 as a FILESEG (sections of 65,536 blocks). */
export function blockFileseg(srcId: number, groupId: number, i: number): Uint8Array {
  return streamPacket(srcId, groupId, { type: 'FILESEG', fileId: 1, section: i >> 16, secBlock: i & 0xffff, extensions: [], data: blockPayload(i) } as Message);
}

/** What the receiver writes to its `out` file when told to stop. */
export interface Received {
  /** Block numbers in arrival order. */
  readonly got: number[];
  readonly bad: string[];
  readonly badCount: number;
  /** The receiver's own socket drops (a count that proves nothing about the proxy when above 0). */
  readonly drops: number;
}

/** The receiver role: port 1044 (joined to `group` if given), every FILESEG checked against blockPayload; prints
 * 'ready', and writes what it got to `out` once the file `out`.stop appears. */
export async function receiveFilesegs(out: string, group?: string): Promise<void> {
  const got: number[] = [];
  const bad: string[] = [];
  const onBatch = (b: RecvBatch): void => {
    for (let i = 0; i < b.count; i++) {
      const p = decodePacket(b.data(i));
      if (!p.ok) {
        bad.push(`undecodable: ${p.error.message}`);
        continue;
      }
      const m = p.value.message;
      if (m.type !== 'FILESEG') continue;
      const n = m.section * 65536 + m.secBlock;
      const want = blockPayload(n);
      if (m.data.length !== want.length || !Buffer.from(m.data).equals(Buffer.from(want))) bad.push(`block ${n}: bytes differ`);
      got.push(n);
    }
  };
  const r = await UdpEndpoint.open({ family: 4, port: 1044, reuseAddr: true, bufferSize: 16 << 20, onBatch });
  if (!r.ok) throw new Error(r.error);
  const ep = r.value;
  if (group !== undefined) {
    const ifs = await resolveInterfaces(undefined, 4);
    if (!ifs.ok) throw new Error(ifs.error);
    const j = ep.join(group, ifs.value);
    if (!j.ok) throw new Error(j.error);
  }
  process.stdout.write('ready\n');
  while (!fs.existsSync(out + '.stop')) await new Promise((res) => setTimeout(res, 50));
  const result: Received = { got, bad: bad.slice(0, 20), badCount: bad.length, drops: ep.drops() };
  fs.writeFileSync(out, JSON.stringify(result));
  await ep.close();
}

export function readReceived(out: string): Received {
  return JSON.parse(fs.readFileSync(out, 'utf8')) as Received;
}

/** A test file run as `node file --role NAME [ARG]` in a namespace: runs that role and exits (true); without
 * --role, false (the file is the test itself). */
export function runRole(roles: Record<string, (arg: string | undefined) => Promise<void>>): boolean {
  const at = process.argv.indexOf('--role');
  if (at < 0) return false;
  const run = roles[process.argv[at + 1]];
  (run ? run(process.argv[at + 2]) : Promise.reject(new Error(`no role ${process.argv[at + 1]}`))).then(
    () => process.exit(0),
    (e: unknown) => {
      process.stderr.write(`${String(e)}\n`);
      process.exit(1);
    },
  );
  return true;
}
