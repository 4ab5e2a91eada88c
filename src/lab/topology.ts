/**
 * The lab's figures: hosts, network segments and addresses, after the figures of uftpproxyd(1).
 * Every segment is 10.<octet>.<n>.0/24 (octet defaults to 70), a bridge inside its own "switch" namespace.
 * Host numbers are fixed per figure so tests and docs/lab.md can name them.
 */

export type FigureName = 'fig1' | 'fig2' | 'fig3' | 'fig4' | 'nat';
export const FIGURES: readonly FigureName[] = ['fig1', 'fig2', 'fig3', 'fig4', 'nat'];

export function isFigure(s: string): s is FigureName {
  return (FIGURES as readonly string[]).includes(s);
}

export type Role = 'server' | 'client' | 'sproxy' | 'cproxy' | 'rproxy' | 'router' | 'nat';

export interface NetDef {
  /** Segment name, also the interface suffix: a host's interface on segment B is `eB`. */
  readonly name: string;
  /** Third octet of 10.<octet>.<subnet>.0/24. */
  readonly subnet: number;
}

export interface HostDef {
  readonly name: string;
  readonly role: Role;
  /** Segment name -> last octet of the host's address there. */
  readonly addrs: Readonly<Record<string, number>>;
  /** Gateway for the default route: segment name and last octet, when the host has one. */
  readonly gw?: { readonly net: string; readonly host: number };
}

export interface FigureDef {
  readonly name: FigureName;
  readonly title: string;
  readonly nets: readonly NetDef[];
  readonly hosts: readonly HostDef[];
  /** Multicast forwarding on the router: frames to 224.0.0.0/4 arriving on `from` are copied out of each of `to`. */
  readonly mcastForward: readonly { readonly from: string; readonly to: readonly string[] }[];
  /** Where loss/rate impairments go: the router's interfaces, or the only segment's bridge. */
  readonly wan: { readonly kind: 'router'; readonly host: string } | { readonly kind: 'bridge'; readonly net: string };
  /** Static routes: on `host`, route to segment `net` via the address `via` on segment `viaNet`. */
  readonly routes?: readonly { readonly host: string; readonly net: string; readonly viaNet: string; readonly via: number }[];
  /** Delay relays (fig1): relay on router address A.<listen> forwards to `to` (a host on a remote segment). */
  readonly relays?: readonly { readonly listenNet: string; readonly listen: number; readonly to: string }[];
}

const gwA = { net: 'A', host: 1 } as const;

const fig1: FigureDef = {
  name: 'fig1',
  title: 'Figure 1: server proxies on network A, client proxies on B and C behind a router (no multicast routing)',
  nets: [{ name: 'A', subnet: 1 }, { name: 'B', subnet: 2 }, { name: 'C', subnet: 3 }],
  hosts: [
    { name: 'router', role: 'router', addrs: { A: 1, B: 1, C: 1 } },
    { name: 'server', role: 'server', addrs: { A: 10 }, gw: gwA },
    { name: 'sproxyB', role: 'sproxy', addrs: { A: 11 }, gw: gwA },
    { name: 'sproxyC', role: 'sproxy', addrs: { A: 12 }, gw: gwA },
    { name: 'clientA', role: 'client', addrs: { A: 20 }, gw: gwA },
    { name: 'cproxyB', role: 'cproxy', addrs: { B: 11 }, gw: { net: 'B', host: 1 } },
    { name: 'clientB1', role: 'client', addrs: { B: 21 }, gw: { net: 'B', host: 1 } },
    { name: 'clientB2', role: 'client', addrs: { B: 22 }, gw: { net: 'B', host: 1 } },
    { name: 'cproxyC', role: 'cproxy', addrs: { C: 11 }, gw: { net: 'C', host: 1 } },
    { name: 'clientC1', role: 'client', addrs: { C: 21 }, gw: { net: 'C', host: 1 } },
    { name: 'clientC2', role: 'client', addrs: { C: 22 }, gw: { net: 'C', host: 1 } },
  ],
  mcastForward: [],
  wan: { kind: 'router', host: 'router' },
  relays: [
    { listenNet: 'A', listen: 2, to: 'cproxyB' },
    { listenNet: 'A', listen: 3, to: 'cproxyC' },
  ],
};

const fig2: FigureDef = {
  name: 'fig2',
  title: 'Figure 2: server, two response proxies and two clients on one segment',
  nets: [{ name: 'S', subnet: 1 }],
  hosts: [
    { name: 'server', role: 'server', addrs: { S: 10 } },
    { name: 'rproxy1', role: 'rproxy', addrs: { S: 11 } },
    { name: 'rproxy2', role: 'rproxy', addrs: { S: 12 } },
    { name: 'client1', role: 'client', addrs: { S: 21 } },
    { name: 'client2', role: 'client', addrs: { S: 22 } },
  ],
  mcastForward: [],
  wan: { kind: 'bridge', net: 'S' },
};

const fig3: FigureDef = {
  name: 'fig3',
  title: "Figure 3: response proxies on the server's network A, clients on remote networks B and C",
  nets: [{ name: 'A', subnet: 1 }, { name: 'B', subnet: 2 }, { name: 'C', subnet: 3 }],
  hosts: [
    { name: 'router', role: 'router', addrs: { A: 1, B: 1, C: 1 } },
    { name: 'server', role: 'server', addrs: { A: 10 }, gw: gwA },
    { name: 'rproxyB', role: 'rproxy', addrs: { A: 11 }, gw: gwA },
    { name: 'rproxyC', role: 'rproxy', addrs: { A: 12 }, gw: gwA },
    { name: 'clientB1', role: 'client', addrs: { B: 21 }, gw: { net: 'B', host: 1 } },
    { name: 'clientB2', role: 'client', addrs: { B: 22 }, gw: { net: 'B', host: 1 } },
    { name: 'clientC1', role: 'client', addrs: { C: 21 }, gw: { net: 'C', host: 1 } },
    { name: 'clientC2', role: 'client', addrs: { C: 22 }, gw: { net: 'C', host: 1 } },
  ],
  mcastForward: [{ from: 'A', to: ['B', 'C'] }],
  wan: { kind: 'router', host: 'router' },
};

const fig4: FigureDef = {
  name: 'fig4',
  title: 'Figure 4: response proxies one hop from the server (A) and from their clients (B1->B2, C1->C2)',
  nets: [
    { name: 'A', subnet: 1 }, { name: 'B1', subnet: 2 }, { name: 'B2', subnet: 3 },
    { name: 'C1', subnet: 4 }, { name: 'C2', subnet: 5 },
  ],
  hosts: [
    { name: 'router', role: 'router', addrs: { A: 1, B1: 1, B2: 1, C1: 1, C2: 1 } },
    { name: 'server', role: 'server', addrs: { A: 10 }, gw: gwA },
    { name: 'rproxyB', role: 'rproxy', addrs: { B1: 11 }, gw: { net: 'B1', host: 1 } },
    { name: 'rproxyC', role: 'rproxy', addrs: { C1: 11 }, gw: { net: 'C1', host: 1 } },
    { name: 'clientB1', role: 'client', addrs: { B2: 21 }, gw: { net: 'B2', host: 1 } },
    { name: 'clientB2', role: 'client', addrs: { B2: 22 }, gw: { net: 'B2', host: 1 } },
    { name: 'clientC1', role: 'client', addrs: { C2: 21 }, gw: { net: 'C2', host: 1 } },
    { name: 'clientC2', role: 'client', addrs: { C2: 22 }, gw: { net: 'C2', host: 1 } },
  ],
  mcastForward: [
    { from: 'A', to: ['B1', 'B2', 'C1', 'C2'] },
    { from: 'B1', to: ['B2'] },
    { from: 'C1', to: ['C2'] },
  ],
  wan: { kind: 'router', host: 'router' },
};

const nat: FigureDef = {
  name: 'nat',
  title: 'Figure 1 with network B behind a masquerading NAT gateway that drops unsolicited inbound traffic',
  nets: [{ name: 'A', subnet: 1 }, { name: 'W', subnet: 9 }, { name: 'B', subnet: 2 }],
  hosts: [
    { name: 'router', role: 'router', addrs: { A: 1, W: 1 } },
    { name: 'natgw', role: 'nat', addrs: { W: 2, B: 1 }, gw: { net: 'W', host: 1 } },
    { name: 'server', role: 'server', addrs: { A: 10 }, gw: gwA },
    { name: 'sproxyB', role: 'sproxy', addrs: { A: 11 }, gw: gwA },
    { name: 'clientA', role: 'client', addrs: { A: 20 }, gw: gwA },
    { name: 'cproxyB', role: 'cproxy', addrs: { B: 11 }, gw: { net: 'B', host: 1 } },
    { name: 'clientB1', role: 'client', addrs: { B: 21 }, gw: { net: 'B', host: 1 } },
    { name: 'clientB2', role: 'client', addrs: { B: 22 }, gw: { net: 'B', host: 1 } },
  ],
  mcastForward: [],
  wan: { kind: 'router', host: 'router' },
  // The router knows the way to B (as a provider would): only the NAT's filter keeps unsolicited traffic out.
  routes: [{ host: 'router', net: 'B', viaNet: 'W', via: 2 }],
};

export const FIGURE_DEFS: Readonly<Record<FigureName, FigureDef>> = { fig1, fig2, fig3, fig4, nat };

export function subnetOf(octet: number, fig: FigureDef, net: string): string {
  const n = fig.nets.find((x) => x.name === net);
  if (!n) throw new Error(`${fig.name} has no network ${net}`);
  return `10.${octet}.${n.subnet}`;
}

/** First group of the lab's IPv6 ULA addresses for a second octet: 70 -> `fd70` (octets 0..99). */
export function ula6Group(octet: number): string {
  if (!Number.isInteger(octet) || octet < 0 || octet > 99) {
    throw new Error(`IPv6 lab addresses need an octet 0..99 (fd<octet>:<net>::<host>), got ${octet}`);
  }
  return `fd${String(octet).padStart(2, '0')}`;
}

/** The /64 of segment `net` in IPv6: `fd70:2::/64` for 10.70.2.0/24. */
export function subnet6Of(octet: number, fig: FigureDef, net: string): string {
  const n = fig.nets.find((x) => x.name === net);
  if (!n) throw new Error(`${fig.name} has no network ${net}`);
  return `${ula6Group(octet)}:${n.subnet}::`;
}

/** A host's IPv6 address on a segment, the same host number as in IPv4: 10.70.2.21 -> fd70:2::21. */
export function addr6Of(octet: number, fig: FigureDef, net: string, host: number): string {
  return `${subnet6Of(octet, fig, net)}${host}`;
}
