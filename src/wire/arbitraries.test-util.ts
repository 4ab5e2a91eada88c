/**
 * fast-check arbitraries for valid UFTP messages: every value they produce must survive
 * decode(encode(m)) deep-equal. Shared by property.test.ts and fuzz.test.ts (test-only module).
 */
import fc from 'fast-check';
import { formatIPv4, formatIPv6, textBytes } from './fields.js';
import type { Extension } from './extensions.js';
import type { KeyBlob } from './keyblob.js';
import { messageFunc, type Message, type Packet } from './packet.js';
import { UFTP_VER_NUM } from './constants.js';

// plain objects (fast-check may otherwise build null-prototype records, which deepStrictEqual rejects)
function rec<T>(model: { [K in keyof T]: fc.Arbitrary<T[K]> }): fc.Arbitrary<T> {
  return fc.record(model, { noNullPrototype: true });
}
const u8 = fc.integer({ min: 0, max: 0xff });
const u16 = fc.integer({ min: 0, max: 0xffff });
const u32 = fc.integer({ min: 0, max: 0xffffffff });
const u64 = fc.bigInt({ min: 0n, max: 0xffffffffffffffffn });
const bytes = (min: number, max: number): fc.Arbitrary<Uint8Array> => fc.uint8Array({ minLength: min, maxLength: max });
const timestamp = rec({ sec: u32, usec: u32 });
const ids = fc.array(u32, { maxLength: 6 });

export const keyBlob: fc.Arbitrary<KeyBlob> = fc.oneof(
  rec({ kind: fc.constant('RSA' as const), exponent: u32, modulus: bytes(1, 80) }),
  rec({ kind: fc.constant('EC' as const), curve: u8, key: bytes(1, 70) }),
);

const encInfo = rec({
  type: fc.constant('EXT_ENC_INFO' as const),
  flags: u8,
  keyexType: fc.integer({ min: 0, max: 15 }),
  sigType: fc.integer({ min: 0, max: 15 }),
  keyType: u8,
  hashType: u8,
  serverRandom: bytes(32, 32),
  publicKey: keyBlob,
  dhKey: fc.option(keyBlob, { nil: null }),
  signature: bytes(0, 72),
});
const tfmccData = rec({ type: fc.constant('EXT_TFMCC_DATA_INFO' as const), sendRate: u16, ccSeq: u16, ccRate: u16 });
const tfmccAck = rec({
  type: fc.constant('EXT_TFMCC_ACK_INFO' as const), flags: u8, ccSeq: u16, ccRate: u16, clientId: u32, timestamp,
});
const freespace = rec({ type: fc.constant('EXT_FREESPACE_INFO' as const), freespace: u64 });
const unknown = rec({
  type: fc.constant('UNKNOWN' as const),
  extType: u8.filter((t) => t !== 1 && t !== 2 && t !== 3 && t !== 7),
  data: fc.integer({ min: 0, max: 8 }).chain((w) => bytes(4 * w + 2, 4 * w + 2)),
});
export const extension: fc.Arbitrary<Extension> = fc.oneof(encInfo, tfmccData, tfmccAck, freespace, unknown);
/** Extensions small enough that any message header stays within 255 words. */
const small = fc.oneof(tfmccData, tfmccAck, freespace, unknown);
const exts = fc.oneof({ weight: 2, arbitrary: fc.constant([] as Extension[]) }, { weight: 3, arbitrary: fc.array(small, { maxLength: 3 }) });

const ipv4 = bytes(4, 4).map((b) => formatIPv4(b, 0));
const ipv6 = bytes(16, 16).map((b) => formatIPv6(b, 0));
const announce = fc.boolean().chain((v6) =>
  rec({
    type: fc.constant('ANNOUNCE' as const),
    flags: u8.map((f) => (v6 ? f | 0x04 : f & ~0x04)),
    robust: u8,
    ccType: u8,
    blockSize: u16,
    timestamp,
    publicMcast: v6 ? ipv6 : ipv4,
    privateMcast: v6 ? ipv6 : ipv4,
    extensions: fc.oneof(exts, fc.tuple(encInfo).map((x): Extension[] => x)),
    clientIds: ids,
  }),
);
const noNul = (b: Uint8Array): Uint8Array => b.map((x) => (x === 0 ? 1 : x));
const abortText = fc.string({ unit: 'grapheme', maxLength: 80 }).filter((s) => !s.includes('\0') && textBytes(s).length <= 300);

export const messages: { [K in Message['type']]: fc.Arbitrary<Extract<Message, { type: K }>> } = {
  ANNOUNCE: announce,
  REGISTER: rec({ type: fc.constant('REGISTER' as const), timestamp, clientRandom: bytes(32, 32), keyInfo: bytes(0, 140), extensions: exts, clientIds: ids }),
  CLIENT_KEY: rec({ type: fc.constant('CLIENT_KEY' as const), publicKey: keyBlob, verifyData: bytes(0, 140), extensions: exts }),
  REG_CONF: rec({ type: fc.constant('REG_CONF' as const), extensions: exts, clientIds: ids }),
  KEYINFO: rec({
    type: fc.constant('KEYINFO' as const), ivCounter: u64, extensions: exts,
    keys: fc.array(rec({ clientId: u32, encryptedGroupMaster: bytes(48, 48) }), { maxLength: 4 }),
  }),
  KEYINFO_ACK: rec({ type: fc.constant('KEYINFO_ACK' as const), verifyData: bytes(12, 12), extensions: exts }),
  FILEINFO: rec({
    type: fc.constant('FILEINFO' as const), fileId: u16, fileType: u8, fileSize: fc.integer({ min: 0, max: 2 ** 48 - 1 }),
    fileTimestamp: u32, timestamp, name: bytes(0, 120).map(noNul), linkName: bytes(0, 60).map(noNul), extensions: exts, clientIds: ids,
  }),
  FILEINFO_ACK: rec({ type: fc.constant('FILEINFO_ACK' as const), fileId: u16, flags: u8, timestamp, extensions: exts, clientIds: ids }),
  FILESEG: rec({ type: fc.constant('FILESEG' as const), fileId: u16, section: u16, secBlock: u16, extensions: exts, data: bytes(0, 300) }),
  DONE: rec({ type: fc.constant('DONE' as const), fileId: u16, section: u16, extensions: exts, clientIds: ids }),
  STATUS: rec({ type: fc.constant('STATUS' as const), fileId: u16, section: u16, extensions: exts, naks: bytes(0, 100) }),
  COMPLETE: rec({ type: fc.constant('COMPLETE' as const), fileId: u16, status: u8, extensions: exts, clientIds: ids }),
  DONE_CONF: rec({ type: fc.constant('DONE_CONF' as const), extensions: exts, clientIds: ids }),
  HB_REQ: rec({ type: fc.constant('HB_REQ' as const), nonce: u32, publicKey: fc.option(keyBlob, { nil: null }), signedNonce: bytes(0, 140), extensions: exts }),
  HB_RESP: rec({ type: fc.constant('HB_RESP' as const), authenticated: u8, nonce: u32, extensions: exts }),
  KEY_REQ: rec({ type: fc.constant('KEY_REQ' as const), extensions: exts }),
  PROXY_KEY: rec({
    type: fc.constant('PROXY_KEY' as const), nonce: u32, publicKey: keyBlob, dhKey: fc.option(keyBlob, { nil: null }),
    signedNonce: bytes(0, 140), extensions: exts,
  }),
  ENCRYPTED: rec({ type: fc.constant('ENCRYPTED' as const), ivCounter: u64, signature: bytes(0, 140), payload: bytes(0, 400) }),
  ABORT: rec({ type: fc.constant('ABORT' as const), flags: u8, host: u32, message: abortText, extensions: exts }),
  CONG_CTRL: rec({
    type: fc.constant('CONG_CTRL' as const), ccSeq: u16, ccRate: u16, timestamp, extensions: exts,
    items: fc.array(rec({ clientId: u32, flags: u8, rtt: u8 }), { maxLength: 5 }),
  }),
  CC_ACK: rec({ type: fc.constant('CC_ACK' as const), extensions: exts }),
};

export const message: fc.Arbitrary<Message> = fc.oneof(...Object.values(messages) as fc.Arbitrary<Message>[]);

export function packetOf(m: fc.Arbitrary<Message>): fc.Arbitrary<Packet> {
  return rec({ m, seq: u16, srcId: u32, groupId: u32, groupInst: u8, grtt: u8, gsize: u8, reserved: u8 }).map(
    ({ m: message, ...h }) => ({ header: { version: UFTP_VER_NUM, func: messageFunc(message), ...h }, message }),
  );
}
export const packet: fc.Arbitrary<Packet> = packetOf(message);
