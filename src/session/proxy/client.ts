/**
 * The client proxy (uftpproxyd -c): the downstream end of a multicast tunnel. It re-multicasts every server
 * message UNCHANGED (ANNOUNCE to the public address, everything else to the private one, from its own port so
 * the clients answer to it) and aggregates the clients' responses (aggregate.ts). In an encrypted session the
 * ANNOUNCE carries the proxy's key instead of the server's and the server's ENCRYPTED messages are re-signed
 * with it when signed with a key (-w keyex) (keyex.ts).
 */
import { MessageType } from '../../wire/constants.js';
import { AggregatingProxy, type AggregatingProxyConfig, type Session } from './aggregate.js';
import { groupTag, typeName, type Endpoint } from './common.js';
import type { KeyexResponse } from './keyex.js';

export type ClientProxyConfig = AggregatingProxyConfig;

export class ClientProxy extends AggregatingProxy {
  protected readonly needsSsm = false;
  protected readonly keyexResponse: KeyexResponse | undefined = undefined;

  protected other(): boolean {
    return false;
  }

  protected opened(): void {}

  protected closed(): void {}

  protected announced(s: Session, data: Uint8Array): void {
    this.countDown(s);
    const out = s.enc ? s.enc.rewriteAnnounce(data) : data;
    if (!out) return this.drop(2, `${groupTag(s.groupId, s.groupInst)}: cannot rewrite the encrypted ANNOUNCE`);
    const to: Endpoint = { address: s.publicAddr, port: this.cfg.destPort };
    this.send(to, out);
  }

  protected fromServer(s: Session, func: number, data: Uint8Array): void {
    let out = data;
    if (s.resignDown && s.enc && func === MessageType.ENCRYPTED) {
      const r = s.enc.resignDown(data);
      if (!r) return this.drop(2, `${groupTag(s.groupId, s.groupInst)}: ENCRYPTED from the server does not verify with its key; dropped`);
      out = r;
    }
    this.countDown(s);
    if (func !== MessageType.FILESEG && this.logEnabled(5)) this.log(5, `${groupTag(s.groupId, s.groupInst)}: ${typeName(func)} re-multicast to ${s.privateAddr}`);
    this.send(s.privateDest, out);
  }
}
