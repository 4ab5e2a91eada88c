/**
 * -H / -h: heartbeats to upstream proxies. Every interval an (unsigned) HB_REQ goes to each -H proxy; an
 * HB_AUTH_CHALLENGE is answered at once with an HB_REQ signed by the first -k key (heartbeat.ts). No I/O.
 */
import type { KeyObject } from 'node:crypto';
import { HbAuth } from '../wire/constants.js';
import type { KeyBlob } from '../wire/keyblob.js';
import { buildHbReq, readHbResp } from './heartbeat.js';
import { endpointText, type Endpoint, type ProxyIo } from './proxy-common.js';

export interface HeartbeatConfig {
  readonly uid: number;
  readonly servers: readonly Endpoint[];
  readonly intervalMs: number;
  /** The first -k key; without one, challenges cannot be answered. */
  readonly key?: { readonly privateKey: KeyObject; readonly blob: KeyBlob };
}

export class HeartbeatSender {
  private next = 0;
  /** Per server: authenticated by the last response? */
  readonly state = new Map<string, 'unknown' | 'ok' | 'failed' | 'challenged'>();

  constructor(
    private readonly cfg: HeartbeatConfig,
    private readonly io: ProxyIo,
  ) {}

  handleTimeout(now: number): void {
    if (this.cfg.servers.length === 0 || now < this.next) return;
    this.next = now + this.cfg.intervalMs;
    const req = buildHbReq(this.cfg.uid, 0);
    for (const s of this.cfg.servers) {
      this.io.send(s, req, false);
      this.io.log(4, `Sent HB_REQ to ${endpointText(s)}`);
    }
  }

  nextDeadline(): number | undefined {
    return this.cfg.servers.length === 0 ? undefined : this.next;
  }

  /** True if `from` is one of our heartbeat servers (then the HB_RESP was ours to handle). */
  handleResponse(from: Endpoint, data: Uint8Array): boolean {
    const server = this.cfg.servers.find((s) => s.address === from.address && s.port === from.port);
    const who = endpointText(from);
    if (!server) {
      this.io.log(3, `HB_RESP from ${who}, which is not a heartbeat server; ignored`);
      return false;
    }
    const r = readHbResp(data);
    if (!r.ok) {
      this.io.log(2, `Malformed HB_RESP from ${who}: ${r.error.message}`);
      return true;
    }
    const prev = this.state.get(who);
    if (r.value.auth === HbAuth.CHALLENGE) {
      this.io.log(3, `Heartbeat authentication required by ${who}`);
      if (!this.cfg.key) {
        this.io.log(1, `Cannot answer the heartbeat challenge of ${who}: no key (-k)`);
        this.state.set(who, 'failed');
        return true;
      }
      this.state.set(who, 'challenged');
      this.io.send(server, buildHbReq(this.cfg.uid, r.value.nonce, this.cfg.key), false);
      this.io.log(4, `Sent authenticated HB_REQ to ${who}`);
    } else if (r.value.auth === HbAuth.OK) {
      if (prev === 'challenged') this.io.log(2, `Heartbeat authentication with ${who} successful`);
      this.state.set(who, 'ok');
    } else {
      this.io.log(1, `Heartbeat authentication with ${who} failed`);
      this.state.set(who, 'failed');
    }
    return true;
  }
}
