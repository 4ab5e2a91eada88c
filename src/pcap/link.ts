/**
 * Link layers: from a captured frame to the IP packet inside it.
 *
 * Supported link types (numbers from https://www.tcpdump.org/linktypes.html):
 *   0   NULL / BSD loopback: 4-byte address family in the capturing host's byte order
 *   1   Ethernet, with any number of 802.1Q / 802.1ad / QinQ VLAN tags
 *   101 RAW (IPv4 or IPv6, by the version nibble); also 12 and 14, which some systems write for it
 *   108 LOOP (OpenBSD loopback: address family in network byte order)
 *   113 Linux cooked capture v1 (SLL), what `tcpdump -i any` writes
 *   228 IPv4, 229 IPv6
 *   276 Linux cooked capture v2 (SLL2), what newer `tcpdump -i any` writes
 */

export const LinkType = {
  NULL: 0,
  ETHERNET: 1,
  RAW_BSD12: 12,
  RAW_BSD14: 14,
  RAW: 101,
  LOOP: 108,
  LINUX_SLL: 113,
  IPV4: 228,
  IPV6: 229,
  LINUX_SLL2: 276,
} as const;

export const ETHERTYPE_IPV4 = 0x0800;
export const ETHERTYPE_IPV6 = 0x86dd;
const ETHERTYPE_VLAN = [0x8100, 0x88a8, 0x9100, 0x9200];

export type LinkDecode =
  | { readonly kind: 'ip'; readonly version: 4 | 6; readonly packet: Uint8Array }
  /** Not IP (ARP, LLDP...) or a link type we do not know: nothing for the inspector. */
  | { readonly kind: 'other'; readonly reason: string }
  | { readonly kind: 'error'; readonly message: string };

function ipByVersion(p: Uint8Array): LinkDecode {
  if (p.length < 1) return { kind: 'error', message: 'empty IP packet' };
  const v = p[0] >> 4;
  if (v === 4) return { kind: 'ip', version: 4, packet: p };
  if (v === 6) return { kind: 'ip', version: 6, packet: p };
  return { kind: 'other', reason: `IP version ${v}` };
}

function byEthertype(type: number, p: Uint8Array): LinkDecode {
  if (type === ETHERTYPE_IPV4) return { kind: 'ip', version: 4, packet: p };
  if (type === ETHERTYPE_IPV6) return { kind: 'ip', version: 6, packet: p };
  return { kind: 'other', reason: `ethertype 0x${type.toString(16).padStart(4, '0')}` };
}

/** BSD address family numbers for IPv6 differ by system; IPv4 is 2 everywhere. */
function byFamily(af: number, p: Uint8Array): LinkDecode {
  if (af === 2) return { kind: 'ip', version: 4, packet: p };
  if (af === 10 || af === 24 || af === 28 || af === 30) return { kind: 'ip', version: 6, packet: p };
  return { kind: 'other', reason: `address family ${af}` };
}

export function decodeLink(linkType: number, f: Uint8Array): LinkDecode {
  switch (linkType) {
    case LinkType.ETHERNET: {
      if (f.length < 14) return { kind: 'error', message: `Ethernet frame of ${f.length} bytes is too short` };
      let type = (f[12] << 8) | f[13];
      let at = 14;
      while (ETHERTYPE_VLAN.includes(type)) {
        if (f.length < at + 4) return { kind: 'error', message: 'Ethernet VLAN tag cut short' };
        type = (f[at + 2] << 8) | f[at + 3];
        at += 4;
      }
      if (type <= 1500) return { kind: 'other', reason: '802.3 length field (LLC)' };
      return byEthertype(type, f.subarray(at));
    }
    case LinkType.LINUX_SLL: {
      if (f.length < 16) return { kind: 'error', message: `Linux cooked (SLL) frame of ${f.length} bytes is too short` };
      return byEthertype((f[14] << 8) | f[15], f.subarray(16));
    }
    case LinkType.LINUX_SLL2: {
      if (f.length < 20) return { kind: 'error', message: `Linux cooked (SLL2) frame of ${f.length} bytes is too short` };
      return byEthertype((f[0] << 8) | f[1], f.subarray(20));
    }
    case LinkType.RAW:
    case LinkType.RAW_BSD12:
    case LinkType.RAW_BSD14:
      return ipByVersion(f);
    case LinkType.IPV4:
      return { kind: 'ip', version: 4, packet: f };
    case LinkType.IPV6:
      return { kind: 'ip', version: 6, packet: f };
    case LinkType.NULL: {
      if (f.length < 4) return { kind: 'error', message: `loopback frame of ${f.length} bytes is too short` };
      // Host byte order of the capturing machine: a family is small, so the non-zero end tells.
      const le = f[0] | (f[1] << 8) | (f[2] << 16) | (f[3] << 24);
      const be = (f[0] << 24) | (f[1] << 16) | (f[2] << 8) | f[3];
      const af = (le & 0xffff0000) === 0 ? le : be;
      return byFamily(af, f.subarray(4));
    }
    case LinkType.LOOP: {
      if (f.length < 4) return { kind: 'error', message: `loopback frame of ${f.length} bytes is too short` };
      return byFamily(((f[0] << 24) | (f[1] << 16) | (f[2] << 8) | f[3]) >>> 0, f.subarray(4));
    }
    default:
      return { kind: 'other', reason: `link type ${linkType} not supported` };
  }
}
