/**
 * Whole datagrams: the UFTP header plus one message, and message bodies on their own (a decrypted
 * ENCRYPTED payload is a body starting with its function byte).
 *
 * Decoded byte fields (Uint8Array) are subarrays of the input: copy them if the input buffer is reused.
 * Encoders always produce fresh bytes (or write into the caller's buffer). Encoding an invalid message
 * (a field out of range, a header over 255 words) is a caller bug and throws RangeError; decoding never
 * throws: every problem comes back as a typed WireError.
 */
import { MAX_DATAGRAM, MESSAGE_NAMES, MessageType, UFTP_HEADER_LEN, UFTP_VER_NUM, type MessageTypeName } from './constants.js';
import { abortLength, decodeAbort, encodeAbortInto, type Abort } from './abort.js';
import { announceLength, decodeAnnounce, encodeAnnounceInto, type Announce } from './announce.js';
import { clientKeyLength, decodeClientKey, encodeClientKeyInto, type ClientKey } from './clientkey.js';
import { completeLength, decodeComplete, encodeCompleteInto, type Complete } from './complete.js';
import {
  ccAckLength, congCtrlLength, decodeCcAck, decodeCongCtrl, encodeCcAckInto, encodeCongCtrlInto, type CcAck, type CongCtrl,
} from './congestion.js';
import { decodeDone, doneLength, encodeDoneInto, type Done } from './done.js';
import { decodeDoneConf, doneConfLength, encodeDoneConfInto, type DoneConf } from './doneconf.js';
import { decodeEncrypted, describeEncrypted, encodeEncryptedInto, encryptedLength, type Encrypted } from './encrypted.js';
import { describeExtension, type Extension } from './extensions.js';
import { bytesText, hex, hex32, u16, u32 } from './fields.js';
import {
  decodeFileInfo, decodeFileInfoAck, encodeFileInfoAckInto, encodeFileInfoInto, fileInfoAckLength, fileInfoLength,
  type FileInfo, type FileInfoAck,
} from './fileinfo.js';
import { decodeFileSeg, encodeFileSegInto, fileSegLength, type FileSeg } from './fileseg.js';
import { decodeHeader, describeHeader, encodeHeaderInto, HeaderField, HeaderView, type UftpHeader } from './header.js';
import { decodeHbReq, decodeHbResp, encodeHbReqInto, encodeHbRespInto, hbReqLength, hbRespLength, type HbReq, type HbResp } from './heartbeat.js';
import {
  decodeKeyInfo, decodeKeyInfoAck, encodeKeyInfoAckInto, encodeKeyInfoInto, keyInfoAckLength, keyInfoLength,
  type KeyInfo, type KeyInfoAck,
} from './keyinfo.js';
import {
  decodeKeyReq, decodeProxyKey, encodeKeyReqInto, encodeProxyKeyInto, keyReqLength, proxyKeyLength, type KeyReq, type ProxyKey,
} from './proxykey.js';
import { decodeRegConf, encodeRegConfInto, regConfLength, type RegConf } from './regconf.js';
import { decodeRegister, encodeRegisterInto, registerLength, type Register } from './register.js';
import { err, type Result } from './result.js';
import { decodeStatus, encodeStatusInto, statusLength, type Status } from './status.js';
import { type KeyBlob } from './keyblob.js';
import { unquantizeGrtt } from './quantize.js';

export type Message =
  | Announce | Register | ClientKey | RegConf | KeyInfo | KeyInfoAck | FileInfo | FileInfoAck | FileSeg
  | Done | Status | Complete | DoneConf | HbReq | HbResp | KeyReq | ProxyKey | Encrypted | Abort | CongCtrl | CcAck;

export interface Packet {
  header: UftpHeader;
  message: Message;
}

/** The function number of a message (5.3.1). */
export function messageFunc(m: Message): number {
  return MessageType[m.type as MessageTypeName];
}

/**
 * Decodes a message body that starts with its function byte. ENCRYPTED has no function byte and cannot
 * be nested, so function 18 here is a 'bad-type' error; use decodePacket for datagrams.
 */
export function decodeMessageBody(body: Uint8Array): Result<Message> {
  if (body.length < 1) return err('truncated', 'message: empty body, need a function byte');
  switch (body[0]) {
    case MessageType.ANNOUNCE: return decodeAnnounce(body);
    case MessageType.REGISTER: return decodeRegister(body);
    case MessageType.CLIENT_KEY: return decodeClientKey(body);
    case MessageType.REG_CONF: return decodeRegConf(body);
    case MessageType.KEYINFO: return decodeKeyInfo(body);
    case MessageType.KEYINFO_ACK: return decodeKeyInfoAck(body);
    case MessageType.FILEINFO: return decodeFileInfo(body);
    case MessageType.FILEINFO_ACK: return decodeFileInfoAck(body);
    case MessageType.FILESEG: return decodeFileSeg(body);
    case MessageType.DONE: return decodeDone(body);
    case MessageType.STATUS: return decodeStatus(body);
    case MessageType.COMPLETE: return decodeComplete(body);
    case MessageType.DONE_CONF: return decodeDoneConf(body);
    case MessageType.HB_REQ: return decodeHbReq(body);
    case MessageType.HB_RESP: return decodeHbResp(body);
    case MessageType.KEY_REQ: return decodeKeyReq(body);
    case MessageType.PROXY_KEY: return decodeProxyKey(body);
    case MessageType.ABORT: return decodeAbort(body);
    case MessageType.CONG_CTRL: return decodeCongCtrl(body);
    case MessageType.CC_ACK: return decodeCcAck(body);
    case MessageType.ENCRYPTED: return err('bad-type', 'message: ENCRYPTED (18) cannot appear inside a message body');
    default: return err('bad-type', `message: unknown function ${body[0]}`);
  }
}

/** Decodes a whole UDP payload: header, then the message the header's function names. */
export function decodePacket(datagram: Uint8Array): Result<Packet> {
  if (datagram.length > MAX_DATAGRAM) return err('oversized', `datagram: ${datagram.length} bytes exceeds ${MAX_DATAGRAM}`);
  const h = decodeHeader(datagram);
  if (!h.ok) return h;
  const header = h.value;
  const body = datagram.subarray(UFTP_HEADER_LEN);
  let m: Result<Message>;
  if (header.func === MessageType.ENCRYPTED) {
    m = decodeEncrypted(body);
  } else {
    if (body.length < 1) return err('truncated', `datagram: header says function ${header.func} but there is no message`);
    if (body[0] !== header.func) {
      return err('inconsistent', `datagram: header function ${header.func} but message function ${body[0]}`);
    }
    m = decodeMessageBody(body);
  }
  if (!m.ok) return m;
  return { ok: true, value: { header, message: m.value } };
}

/** The function byte and header length (in words) at the start of every message body but ENCRYPTED's. */
const MSG_FUNC = UFTP_HEADER_LEN;
const MSG_HLEN = UFTP_HEADER_LEN + 1;

/**
 * The lightest check a datagram gets before a proxy forwards it: a valid UFTP header (HeaderView.check) and, unless
 * it is ENCRYPTED (whose body is not looked into), a message whose function byte repeats the header's and whose
 * header length fits in the datagram. Nothing is decoded or copied.
 */
export function viewDatagram(b: Uint8Array): Result<HeaderView> {
  const h = HeaderView.check(b);
  if (!h.ok) return h;
  const func = h.value.func;
  if (func !== MessageType.ENCRYPTED) {
    const name = MESSAGE_NAMES.get(func) ?? `type ${func}`;
    if (b.length < UFTP_HEADER_LEN + 4) return err('truncated', `${name}: ${b.length} bytes, no message header`);
    if (b[MSG_FUNC] !== func) return err('inconsistent', `${name}: message function ${b[MSG_FUNC]} differs from header function ${func}`);
    const hlen = b[MSG_HLEN] * 4;
    if (hlen < 4 || UFTP_HEADER_LEN + hlen > b.length) {
      return err('inconsistent', `${name}: header length ${hlen} does not fit in ${b.length - UFTP_HEADER_LEN} bytes`);
    }
  }
  return h;
}

/**
 * viewDatagram without an allocation, for the receive path of a data stream: one reader is kept, and `read(b)`
 * makes viewDatagram's checks and fills this object's fields with the header's (false where viewDatagram returns
 * an error; the fields are then meaningless).
 */
export class DatagramReader {
  func = 0;
  seq = 0;
  srcId = 0;
  groupId = 0;
  groupInst = 0;

  read(b: Uint8Array): boolean {
    if (b.length < UFTP_HEADER_LEN || b[HeaderField.VERSION] !== UFTP_VER_NUM) return false;
    const func = b[HeaderField.FUNC];
    if (!MESSAGE_NAMES.has(func)) return false;
    if (func !== MessageType.ENCRYPTED) {
      if (b.length < UFTP_HEADER_LEN + 4 || b[MSG_FUNC] !== func) return false;
      const hlen = b[MSG_HLEN] * 4;
      if (hlen < 4 || UFTP_HEADER_LEN + hlen > b.length) return false;
    }
    this.func = func;
    this.seq = u16(b, HeaderField.SEQ);
    this.srcId = u32(b, HeaderField.SRC_ID);
    this.groupId = u32(b, HeaderField.GROUP_ID);
    this.groupInst = b[HeaderField.GROUP_INST];
    return true;
  }
}

/**
 * A datagram of `header` and an already encoded message body (function byte first): e.g. a decrypted inner
 * message put back behind its ENCRYPTED datagram's header. The header's function is taken from the body.
 */
export function joinDatagram(header: UftpHeader, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(UFTP_HEADER_LEN + body.length);
  encodeHeaderInto({ ...header, func: body.length > 0 ? body[0] : header.func }, out, 0);
  out.set(body, UFTP_HEADER_LEN);
  return out;
}

/** Encoded length of a message body (for ENCRYPTED: without a function byte). */
export function messageLength(m: Message): number {
  switch (m.type) {
    case 'ANNOUNCE': return announceLength(m);
    case 'REGISTER': return registerLength(m);
    case 'CLIENT_KEY': return clientKeyLength(m);
    case 'REG_CONF': return regConfLength(m);
    case 'KEYINFO': return keyInfoLength(m);
    case 'KEYINFO_ACK': return keyInfoAckLength(m);
    case 'FILEINFO': return fileInfoLength(m);
    case 'FILEINFO_ACK': return fileInfoAckLength(m);
    case 'FILESEG': return fileSegLength(m);
    case 'DONE': return doneLength(m);
    case 'STATUS': return statusLength(m);
    case 'COMPLETE': return completeLength(m);
    case 'DONE_CONF': return doneConfLength(m);
    case 'HB_REQ': return hbReqLength(m);
    case 'HB_RESP': return hbRespLength(m);
    case 'KEY_REQ': return keyReqLength(m);
    case 'PROXY_KEY': return proxyKeyLength(m);
    case 'ENCRYPTED': return encryptedLength(m);
    case 'ABORT': return abortLength(m);
    case 'CONG_CTRL': return congCtrlLength(m);
    case 'CC_ACK': return ccAckLength(m);
  }
}

/** Writes a message body at `off`; returns its length. Throws RangeError if `out` is too small. */
export function encodeMessageInto(m: Message, out: Uint8Array, off: number): number {
  const len = messageLength(m);
  if (out.length - off < len) throw new RangeError(`wire encode: ${m.type} needs ${len} bytes, buffer has ${out.length - off}`);
  switch (m.type) {
    case 'ANNOUNCE': return encodeAnnounceInto(m, out, off);
    case 'REGISTER': return encodeRegisterInto(m, out, off);
    case 'CLIENT_KEY': return encodeClientKeyInto(m, out, off);
    case 'REG_CONF': return encodeRegConfInto(m, out, off);
    case 'KEYINFO': return encodeKeyInfoInto(m, out, off);
    case 'KEYINFO_ACK': return encodeKeyInfoAckInto(m, out, off);
    case 'FILEINFO': return encodeFileInfoInto(m, out, off);
    case 'FILEINFO_ACK': return encodeFileInfoAckInto(m, out, off);
    case 'FILESEG': return encodeFileSegInto(m, out, off);
    case 'DONE': return encodeDoneInto(m, out, off);
    case 'STATUS': return encodeStatusInto(m, out, off);
    case 'COMPLETE': return encodeCompleteInto(m, out, off);
    case 'DONE_CONF': return encodeDoneConfInto(m, out, off);
    case 'HB_REQ': return encodeHbReqInto(m, out, off);
    case 'HB_RESP': return encodeHbRespInto(m, out, off);
    case 'KEY_REQ': return encodeKeyReqInto(m, out, off);
    case 'PROXY_KEY': return encodeProxyKeyInto(m, out, off);
    case 'ENCRYPTED': return encodeEncryptedInto(m, out, off);
    case 'ABORT': return encodeAbortInto(m, out, off);
    case 'CONG_CTRL': return encodeCongCtrlInto(m, out, off);
    case 'CC_ACK': return encodeCcAckInto(m, out, off);
  }
}

/** A fresh encoding of a message body (what gets encrypted into an ENCRYPTED payload). */
export function encodeMessageBody(m: Message): Uint8Array {
  const out = new Uint8Array(messageLength(m));
  encodeMessageInto(m, out, 0);
  return out;
}

/** Encoded datagram length of a packet. */
export function packetLength(p: Packet): number {
  return UFTP_HEADER_LEN + messageLength(p.message);
}

/**
 * Writes header + message into `out` (from offset 0); returns the datagram length. The header's function
 * byte is taken from the message type, whatever `p.header.func` says. Throws RangeError if `out` is too small.
 */
export function encodePacketInto(p: Packet, out: Uint8Array): number {
  const len = packetLength(p);
  if (out.length < len) throw new RangeError(`wire encode: ${p.message.type} datagram needs ${len} bytes, buffer has ${out.length}`);
  encodeHeaderInto(p.header, out, 0);
  out[1] = messageFunc(p.message);
  return UFTP_HEADER_LEN + encodeMessageInto(p.message, out, UFTP_HEADER_LEN);
}

/** A fresh datagram for a packet; header.func is set from message.type. */
export function encodePacket(p: Packet): Uint8Array {
  const out = new Uint8Array(packetLength(p));
  encodePacketInto(p, out);
  return out;
}

function ids(xs: readonly number[]): string {
  if (xs.length === 0) return '';
  const shown = xs.slice(0, 4).map(hex32).join(',');
  return ` ids=[${shown}${xs.length > 4 ? `,+${xs.length - 4}` : ''}]`;
}
function exts(xs: readonly Extension[]): string {
  return xs.length === 0 ? '' : ` ext=${xs.map(describeExtension).join(',')}`;
}
function blob(k: KeyBlob | null): string {
  if (!k) return 'none';
  return k.kind === 'RSA' ? `RSA${k.modulus.length * 8}` : `EC(curve ${k.curve})`;
}

/** One-line human summary of a message's own fields (no header). */
export function describeMessage(m: Message): string {
  switch (m.type) {
    case 'ANNOUNCE':
      return `flags=0x${m.flags.toString(16)} robust=${m.robust} cc=${m.ccType} blocksize=${m.blockSize} pub=${m.publicMcast} priv=${m.privateMcast}${exts(m.extensions)}${ids(m.clientIds)}`;
    case 'REGISTER':
      return `keyinfo=${m.keyInfo.length}B${exts(m.extensions)}${ids(m.clientIds)}`;
    case 'CLIENT_KEY':
      return `key=${blob(m.publicKey)} verify=${m.verifyData.length}B${exts(m.extensions)}`;
    case 'REG_CONF':
    case 'DONE_CONF':
      return `${exts(m.extensions)}${ids(m.clientIds)}`.trim();
    case 'KEYINFO':
      return `ivctr=${m.ivCounter} keys=[${m.keys.map((k) => hex32(k.clientId)).join(',')}]${exts(m.extensions)}`;
    case 'KEYINFO_ACK':
      return `verify=${hex(m.verifyData)}${exts(m.extensions)}`;
    case 'FILEINFO':
      return `file=${m.fileId} ftype=${m.fileType} size=${m.fileSize} name=${JSON.stringify(bytesText(m.name))}${m.linkName.length ? ` link=${JSON.stringify(bytesText(m.linkName))}` : ''}${exts(m.extensions)}${ids(m.clientIds)}`;
    case 'FILEINFO_ACK':
      return `file=${m.fileId} flags=0x${m.flags.toString(16)}${exts(m.extensions)}${ids(m.clientIds)}`;
    case 'FILESEG':
      return `file=${m.fileId} sec=${m.section} block=${m.secBlock} data=${m.data.length}B${exts(m.extensions)}`;
    case 'DONE':
      return `file=${m.fileId} sec=${m.section}${exts(m.extensions)}${ids(m.clientIds)}`;
    case 'STATUS':
      return `file=${m.fileId} sec=${m.section} naks=${m.naks.length}B${exts(m.extensions)}`;
    case 'COMPLETE':
      return `file=${m.fileId} status=${m.status}${exts(m.extensions)}${ids(m.clientIds)}`;
    case 'HB_REQ':
      return `nonce=${hex32(m.nonce)} key=${blob(m.publicKey)} signed=${m.signedNonce.length}B${exts(m.extensions)}`;
    case 'HB_RESP':
      return `auth=${m.authenticated} nonce=${hex32(m.nonce)}${exts(m.extensions)}`;
    case 'KEY_REQ':
    case 'CC_ACK':
      return exts(m.extensions).trim();
    case 'PROXY_KEY':
      return `nonce=${hex32(m.nonce)} key=${blob(m.publicKey)} dh=${blob(m.dhKey)} signed=${m.signedNonce.length}B${exts(m.extensions)}`;
    case 'ENCRYPTED':
      return describeEncrypted(m);
    case 'ABORT':
      return `flags=0x${m.flags.toString(16)} host=${hex32(m.host)} ${JSON.stringify(m.message)}${exts(m.extensions)}`;
    case 'CONG_CTRL':
      return `ccseq=${m.ccSeq} ccrate=${m.ccRate} items=[${m.items.map((i) => `${hex32(i.clientId)}:0x${i.flags.toString(16)}:${Number(unquantizeGrtt(i.rtt).toPrecision(3))}s`).join(',')}]${exts(m.extensions)}`;
  }
}

/** e.g. "ANNOUNCE seq=3 src=0x0a630001 group=0x039a4ee2/0 grtt=0.5s gsize=0 flags=0x0 robust=20 ..." */
export function describePacket(p: Packet): string {
  const d = describeMessage(p.message);
  return `${p.message.type} ${describeHeader(p.header)}${d ? ' ' + d : ''}`;
}

/**
 * Where the signature of a signed datagram sits: the EXT_ENC_INFO signature of an ANNOUNCE (ECDH key exchange) or
 * the signature of an ENCRYPTED message. `p` must have been decoded from `datagram` (its fields are subarrays of it).
 * UFTP 4.10 signs / HMACs the whole datagram with these bytes zeroed (see docs/protocol-notes.md, Wire).
 * Returns null when the packet carries no signature.
 */
export function signatureSpan(datagram: Uint8Array, p: Packet): { offset: number; length: number } | null {
  let sig: Uint8Array | undefined;
  const m = p.message;
  if (m.type === 'ENCRYPTED') sig = m.signature;
  else if (m.type === 'ANNOUNCE') {
    for (const x of m.extensions) if (x.type === 'EXT_ENC_INFO') sig = x.signature;
  }
  if (!sig || sig.length === 0) return null;
  const offset = sig.byteOffset - datagram.byteOffset;
  if (sig.buffer !== datagram.buffer || offset < 0 || offset + sig.length > datagram.length) {
    throw new RangeError('signatureSpan: the packet was not decoded from this datagram');
  }
  return { offset, length: sig.length };
}

/** A copy of `datagram` with its signature bytes zeroed: the bytes that are signed or HMACed. */
export function signedBytes(datagram: Uint8Array, p: Packet): Uint8Array {
  const out = Uint8Array.from(datagram);
  const span = signatureSpan(datagram, p);
  if (span) out.fill(0, span.offset, span.offset + span.length);
  return out;
}
