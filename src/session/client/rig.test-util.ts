// A test rig for the client machine: a hand-made server (src/wire encoders: it sends what the real uftp never
// would) and the real disk effects (src/files/disk.ts) on a scratch directory. Drives the machine synchronously as
// the event loop does: handle, then drain effects (answers go back at once) and datagrams.
import type { Endpoint } from '../../core/machine.js';
import { Disk, type DiskConfig } from '../../files/disk.js';
import { FileType, UFTP_VER_NUM } from '../../wire/constants.js';
import type { UftpHeader } from '../../wire/header.js';
import { decodePacket, encodePacket, type Message } from '../../wire/packet.js';
import type { ClientEffect } from './effects.js';
import { ClientMachine, type ClientConfig } from './machine.js';

export const SERVER: Endpoint = { address: '10.9.9.1', port: 40000 };
export const SERVER_ID = 0x0a090901;
export const CLIENT_ID = 0x0a090902;

export class Rig {
  readonly m: ClientMachine;
  readonly disk: Disk;
  now = 0;
  seq = 0;
  readonly sent: Message[] = [];
  readonly logs: string[] = [];
  readonly results: Extract<ClientEffect, { type: 'result' }>[] = [];
  readonly groupId: number;

  constructor(
    dest: string[],
    o: { disk?: Partial<DiskConfig>; client?: Partial<ClientConfig>; groupId?: number } = {},
  ) {
    this.groupId = o.groupId ?? 0x11223344;
    this.m = new ClientMachine({ uid: CLIENT_ID, destDirs: dest, wallMicros: (n) => n * 1000, ...o.client });
    this.disk = new Disk({ destDirs: dest, runScript: () => undefined, log: (_l, t) => this.logs.push(t), ...o.disk });
  }

  header(): UftpHeader {
    return { version: UFTP_VER_NUM, func: 0, seq: this.seq++ & 0xffff, srcId: SERVER_ID, groupId: this.groupId, groupInst: 0, grtt: 0x6a, gsize: 1, reserved: 0 };
  }

  /** Delivers a message from the server and runs everything that follows. */
  send(m: Message, dt = 1): void {
    this.now += dt;
    this.deliver(encodePacket({ header: this.header(), message: m }));
  }

  deliver(d: Uint8Array, from: Endpoint = SERVER): void {
    this.m.handle(this.now, from, d);
    this.pump();
  }

  pump(): void {
    for (let guard = 0; guard < 1_000_000; guard++) {
      const e = this.m.pollEffect();
      if (e === undefined) break;
      if (e.type === 'log') this.logs.push(e.text);
      else if (e.type === 'result') this.results.push(e);
      else if (e.type !== 'join' && e.type !== 'leave' && e.type !== 'connect') {
        const r = this.disk.execute(e);
        if (r instanceof Promise) throw new Error('the rig drives the disk synchronously');
        if (r !== undefined) this.m.handleEffectResult(r);
      }
    }
    for (let t = this.m.pollTransmit(this.now); t; t = this.m.pollTransmit(this.now)) {
      const p = decodePacket(t.data);
      if (p.ok) this.sent.push(p.value.message);
    }
  }

  advance(ms: number): void {
    const end = this.now + ms;
    for (;;) {
      const at = this.m.pollTimeout();
      if (at === undefined || at > end) break;
      this.now = Math.max(this.now, at);
      this.m.handleTimeout(this.now);
      this.pump();
    }
    this.now = end;
  }

  /** ANNOUNCE (open group, plain) and REG_CONF. */
  register(flags = 0): void {
    this.send({
      type: 'ANNOUNCE', flags, robust: 20, ccType: 0, blockSize: 1000, timestamp: { sec: 1, usec: 0 }, publicMcast: '230.4.4.1',
      privateMcast: '230.5.5.1', extensions: [], clientIds: [],
    });
    this.send({ type: 'REG_CONF', extensions: [], clientIds: [CLIENT_ID] });
  }

  /**
   * Sends a whole regular file (FILEINFO, every block, DONE); returns the status of its COMPLETE. NUL bytes in
   * `name` go on the wire as they are (the encoder refuses them: they are patched in after encoding).
   */
  file(fileId: number, name: string | Uint8Array, data: Uint8Array, mtime = 1_700_000_000): number | undefined {
    const raw = typeof name === 'string' ? Buffer.from(name) : name;
    const clean = raw.map((x) => (x === 0 ? 1 : x));
    const d = encodePacket({
      header: this.header(),
      message: {
        type: 'FILEINFO', fileId, fileType: FileType.REG, fileSize: data.length, fileTimestamp: mtime, timestamp: { sec: 1, usec: 0 },
        name: clean, linkName: new Uint8Array(0), extensions: [], clientIds: [CLIENT_ID],
      },
    });
    raw.forEach((x, i) => {
      if (x === 0) d[16 + 28 + i] = 0; // FILEINFO's name starts 28 bytes into the message
    });
    this.now += 1;
    this.deliver(d);
    for (let i = 0, b = 0; i < data.length; i += 1000, b++) {
      this.send({ type: 'FILESEG', fileId, section: 0, secBlock: b, extensions: [], data: data.subarray(i, i + 1000) }, 0);
    }
    this.send({ type: 'DONE', fileId, section: 0, extensions: [], clientIds: [CLIENT_ID] });
    return this.lastComplete(fileId);
  }

  /** FILEINFO of another type (directory, link, delete); returns the status of its COMPLETE. */
  entry(fileId: number, fileType: number, name: string, link = ''): number | undefined {
    this.send({
      type: 'FILEINFO', fileId, fileType, fileSize: 0, fileTimestamp: 0, timestamp: { sec: 1, usec: 0 }, name: Buffer.from(name),
      linkName: Buffer.from(link), extensions: [], clientIds: [CLIENT_ID],
    });
    return this.lastComplete(fileId);
  }

  lastComplete(fileId: number): number | undefined {
    for (let i = this.sent.length - 1; i >= 0; i--) {
      const x = this.sent[i];
      if (x.type === 'COMPLETE' && x.fileId === fileId) return x.status;
    }
    return undefined;
  }

  end(): void {
    this.send({ type: 'DONE', fileId: 0, section: 0, extensions: [], clientIds: [CLIENT_ID] });
    this.send({ type: 'DONE_CONF', extensions: [], clientIds: [CLIENT_ID] });
  }
}
