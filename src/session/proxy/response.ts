/**
 * The response proxy (uftpproxyd -r): it sits beside its clients and hears the server's multicast itself, as
 * they do. Server messages reach the clients directly and are not re-multicast (the private address is joined
 * only to follow the session); the clients' responses come to the proxy and are aggregated (aggregate.ts); a
 * client's KEY_REQ is answered with PROXY_KEY (at most once per PROXY_KEY_INTERVAL_MS) to the public addresses,
 * carrying the proxy's key (and with -e its ECDH key) for the clients' side of the key exchange.
 */
import { MessageType } from '../../wire/constants.js';
import { AggregatingProxy, type AggregatingProxyConfig, type Session } from './aggregate.js';
import { endpointText, type Endpoint } from './common.js';
import { buildProxyKey, type HeartbeatKey } from './heartbeat.js';
import type { KeyexResponse } from './keyex.js';

/** A response proxy sends PROXY_KEY at most this often (protocol.txt 5.2.20). */
export const PROXY_KEY_INTERVAL_MS = 5000;

export interface ResponseProxyConfig extends AggregatingProxyConfig {
  /** The public multicast addresses PROXY_KEY goes to. */
  readonly publicAddrs: readonly string[];
  /** The key PROXY_KEY carries and signs with (the first -k key). */
  readonly key: HeartbeatKey & KeyexResponse['key'];
  /** The ECDH key PROXY_KEY advertises (-e), for ECDH sessions. */
  readonly dhKey?: HeartbeatKey;
}

export class ResponseProxy extends AggregatingProxy {
  protected readonly needsSsm = true;
  protected readonly keyexResponse: KeyexResponse;
  private lastProxyKey = -Infinity;

  constructor(private readonly rcfg: ResponseProxyConfig) {
    super(rcfg);
    this.keyexResponse = { key: rcfg.key, clientDh: rcfg.dhKey };
  }

  protected other(now: number, from: Endpoint, func: number): boolean {
    if (func !== MessageType.KEY_REQ) return false;
    this.log(3, `Received KEY_REQ from ${endpointText(from)}`);
    if (now - this.lastProxyKey < PROXY_KEY_INTERVAL_MS) {
      this.drop(4, `PROXY_KEY sent less than ${PROXY_KEY_INTERVAL_MS / 1000} s ago; KEY_REQ from ${endpointText(from)} not answered`);
      return true;
    }
    this.lastProxyKey = now;
    const d = buildProxyKey(this.rcfg.uid, this.rcfg.random.u32(), this.rcfg.key, this.rcfg.dhKey?.blob);
    for (const a of this.rcfg.publicAddrs) this.send({ address: a, port: this.rcfg.destPort }, d);
    this.log(2, `Sent PROXY_KEY to ${this.rcfg.publicAddrs.join(', ')}`);
    return true;
  }

  /** Joins the private address (source-specific from the server with -S). */
  protected opened(s: Session): void {
    this.join(s.privateAddr, this.rcfg.serverList ? s.upstream.address : undefined);
  }

  protected closed(s: Session): void {
    this.leave(s.privateAddr, this.rcfg.serverList ? s.upstream.address : undefined);
  }

  /** The clients hear the server themselves. */
  protected announced(): void {}

  protected fromServer(): void {}
}
