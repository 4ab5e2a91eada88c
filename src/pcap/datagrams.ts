/**
 * From capture bytes to the UDP datagrams on one port: capture file -> link layer -> IP -> UDP.
 */

import { readCaptureFrames, type CaptureResult } from './capture.js';
import { formatEndpoint, UdpExtractor, type UdpDatagram } from './ip.js';
import { decodeLink } from './link.js';

export type DatagramEvent =
  /** A UDP datagram to or from the port. */
  | {
      readonly kind: 'datagram';
      readonly frame: number;
      readonly timeNs: bigint;
      readonly src: string;
      readonly dst: string;
      readonly datagram: UdpDatagram;
    }
  /** A frame on the port (or, for `src`/`dst` only, one we could not place) that did not decode below UFTP. */
  | {
      readonly kind: 'error';
      readonly frame: number;
      readonly timeNs: bigint;
      readonly src?: string;
      readonly dst?: string;
      readonly message: string;
    };

export interface DatagramStats {
  frames: number;
  /** IP packets, fragments included. */
  ipPackets: number;
  udpDatagrams: number;
  /** UDP datagrams to or from the port. */
  portDatagrams: number;
  /** Frames whose link, IP or UDP header was malformed (not attributable to a port unless reported). */
  malformedFrames: number;
  /** Datagrams on the port reassembled from IP fragments. */
  reassembled: number;
  /** Fragment sets that never completed. */
  incompleteFragmentSets: number;
}

export interface DatagramOptions {
  /** UDP port to keep; a datagram matches when either its source or destination port is this. */
  readonly port: number;
}

export function newStats(): DatagramStats {
  return { frames: 0, ipPackets: 0, udpDatagrams: 0, portDatagrams: 0, malformedFrames: 0, reassembled: 0, incompleteFragmentSets: 0 };
}

/**
 * Streams the datagrams on `opts.port` out of a capture. Ends with `{ok: false}` if the file
 * itself cannot be read (not a capture, corrupt, cut short); everything before that was yielded.
 * `stats` (if given) is filled in as it goes.
 */
export async function* readUdpDatagrams(
  source: AsyncIterable<Uint8Array>,
  opts: DatagramOptions,
  stats: DatagramStats = newStats(),
): AsyncGenerator<CaptureResult<DatagramEvent>, void, undefined> {
  const ip = new UdpExtractor();
  const port = opts.port;
  for await (const item of readCaptureFrames(source)) {
    if (!item.ok) {
      stats.incompleteFragmentSets = ip.pendingCount + ip.droppedFragmentSets;
      yield item;
      return;
    }
    const f = item.value;
    stats.frames++;
    const link = decodeLink(f.linkType, f.data);
    if (link.kind === 'other') continue;
    if (link.kind === 'error') {
      stats.malformedFrames++;
      continue;
    }
    stats.ipPackets++;
    const r = ip.decode(link.version, link.packet, f.timeNs);
    switch (r.kind) {
      case 'other':
      case 'fragment':
        break;
      case 'error':
        stats.malformedFrames++;
        if (r.ports !== undefined && (r.ports.src === port || r.ports.dst === port)) {
          yield {
            ok: true,
            value: {
              kind: 'error',
              frame: f.number,
              timeNs: f.timeNs,
              src: r.srcAddr === undefined ? undefined : formatEndpoint(r.srcAddr, r.ports.src),
              dst: r.dstAddr === undefined ? undefined : formatEndpoint(r.dstAddr, r.ports.dst),
              message: r.message,
            },
          };
        }
        break;
      case 'udp': {
        stats.udpDatagrams++;
        const d = r.datagram;
        if (d.srcPort !== port && d.dstPort !== port) break;
        stats.portDatagrams++;
        if (d.fragments > 1) stats.reassembled++;
        const src = formatEndpoint(d.srcAddr, d.srcPort);
        const dst = formatEndpoint(d.dstAddr, d.dstPort);
        if (d.payload.length < d.declaredLength) {
          yield {
            ok: true,
            value: {
              kind: 'error',
              frame: f.number,
              timeNs: f.timeNs,
              src,
              dst,
              message: `datagram cut short by the capture's snaplen: ${d.payload.length} of ${d.declaredLength} bytes captured`,
            },
          };
          break;
        }
        yield { ok: true, value: { kind: 'datagram', frame: f.number, timeNs: f.timeNs, src, dst, datagram: d } };
        break;
      }
    }
  }
  stats.incompleteFragmentSets = ip.pendingCount + ip.droppedFragmentSets;
}
