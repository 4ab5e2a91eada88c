/**
 * Constants of UFTP protocol version 4, as named in protocol.txt section 5.3.
 * Where the real 4.10 programs disagree with protocol.txt, the programs win (see docs/protocol-notes.md).
 */

/** protocol.txt says 0x30; UFTP 4.10 sends and expects 0x40. */
export const UFTP_VER_NUM = 0x40;
export { DEFAULT_PORT } from '../core/address.js';
export const DEFAULT_PUBLIC_MCAST = '230.4.4.1';
/** Size of the fixed UFTP header (5.2.1). */
export const UFTP_HEADER_LEN = 16;
/** ABORT's message field is a fixed 300 bytes (5.2.16). */
export const ABORT_MESSAGE_LEN = 300;
/** A UDP payload can never exceed this. */
export const MAX_DATAGRAM = 65507;

/** 5.3.1 Message type numbers. */
export const MessageType = {
  ANNOUNCE: 1,
  REGISTER: 2,
  CLIENT_KEY: 3,
  REG_CONF: 4,
  KEYINFO: 5,
  KEYINFO_ACK: 6,
  FILEINFO: 7,
  FILEINFO_ACK: 8,
  FILESEG: 9,
  DONE: 10,
  STATUS: 11,
  COMPLETE: 12,
  DONE_CONF: 13,
  HB_REQ: 14,
  HB_RESP: 15,
  KEY_REQ: 16,
  PROXY_KEY: 17,
  ENCRYPTED: 18,
  ABORT: 19,
  CONG_CTRL: 20,
  CC_ACK: 21,
} as const;
export type MessageTypeName = keyof typeof MessageType;
export const MESSAGE_NAMES: ReadonlyMap<number, MessageTypeName> = new Map(
  (Object.entries(MessageType) as [MessageTypeName, number][]).map(([k, v]) => [v, k]),
);

/** 5.3.2 Key (symmetric cipher) type numbers. */
export const KeyType = {
  NONE: 0,
  DES: 1,
  DES_EDE3: 2,
  AES128_CBC: 3,
  AES256_CBC: 4,
  AES128_GCM: 5,
  AES256_GCM: 6,
  AES128_CCM: 7,
  AES256_CCM: 8,
} as const;

/** 5.3.3 Hash type numbers. */
export const HashType = { NONE: 0, MD5: 1, SHA1: 2, SHA256: 3, SHA384: 4, SHA512: 5 } as const;

/** 5.3.4 Signature type numbers. */
export const SigType = { NONE: 0, HMAC: 1, KEYEX: 2, AUTHENC: 3 } as const;

/** 5.3.5 Key exchange type numbers. */
export const KeyexType = { NONE: 0, RSA: 1, ECDH_RSA: 2, ECDH_ECDSA: 3 } as const;

/** 5.3.6 Key blob type numbers. */
export const KeyBlobType = { NONE: 0, RSA: 1, EC: 2 } as const;

/** 5.3.7 Heartbeat authentication codes. */
export const HbAuth = { FAILED: 0, OK: 1, CHALLENGE: 2 } as const;

/** 5.3.8 File types. */
export const FileType = { REG: 0, DIR: 1, LINK: 2, DELETE: 3, FREESPACE: 4 } as const;

/** 5.3.9 Completion status. */
export const CompStat = { NORMAL: 0, SKIPPED: 1, OVERWRITE: 2, REJECTED: 3 } as const;

/** 5.3.10 Extension types. */
export const ExtType = {
  ENC_INFO: 1,
  TFMCC_DATA_INFO: 2,
  TFMCC_ACK_INFO: 3,
  PGMCC_DATA_INFO: 4,
  PGMCC_NAK_INFO: 5,
  PGMCC_ACK_INFO: 6,
  FREESPACE_INFO: 7,
} as const;

/** 5.3.11 Congestion control types. */
export const CcType = { NONE: 0, UFTP3: 1, TFMCC: 2, PGMCC: 3 } as const;

/** ANNOUNCE flags (5.2.3). */
export const AnnounceFlag = { SYNC_MODE: 0x01, SYNC_PREVIEW: 0x02, IPV6: 0x04 } as const;
/** EXT_ENC_INFO flags (5.2.3.1). */
export const EncInfoFlag = { CLIENT_AUTH: 0x01 } as const;
/** FILEINFO_ACK flags (5.2.10). */
export const FileInfoAckFlag = { PARTIAL: 0x01 } as const;
/** ABORT flags (5.2.16). */
export const AbortFlag = { CURRENT_FILE: 0x01 } as const;
/** Congestion-control flags in EXT_TFMCC_ACK_INFO and CONG_CTRL items. */
export const CcFlag = { CLR: 0x01, RTT: 0x02, START: 0x04, LEAVE: 0x08 } as const;

/**
 * 5.3.12 Elliptic curve numbers and their OpenSSL names (the names uftp_keymgt accepts and prints).
 * secp192r1 is also prime192v1 and secp256r1 is also prime256v1; OpenSSL names them prime*.
 */
export const CURVES: ReadonlyArray<{ readonly id: number; readonly name: string; readonly alias?: string }> = [
  { id: 1, name: 'sect163k1' },
  { id: 2, name: 'sect163r1' },
  { id: 3, name: 'sect163r2' },
  { id: 4, name: 'sect193r1' },
  { id: 5, name: 'sect193r2' },
  { id: 6, name: 'sect233k1' },
  { id: 7, name: 'sect233r1' },
  { id: 8, name: 'sect239k1' },
  { id: 9, name: 'sect283k1' },
  { id: 10, name: 'sect283r1' },
  { id: 11, name: 'sect409k1' },
  { id: 12, name: 'sect409r1' },
  { id: 13, name: 'sect571k1' },
  { id: 14, name: 'sect571r1' },
  { id: 15, name: 'secp160k1' },
  { id: 16, name: 'secp160r1' },
  { id: 17, name: 'secp160r2' },
  { id: 18, name: 'secp192k1' },
  { id: 19, name: 'prime192v1', alias: 'secp192r1' },
  { id: 20, name: 'secp224k1' },
  { id: 21, name: 'secp224r1' },
  { id: 22, name: 'secp256k1' },
  { id: 23, name: 'prime256v1', alias: 'secp256r1' },
  { id: 24, name: 'secp384r1' },
  { id: 25, name: 'secp521r1' },
];

export function curveById(id: number): { readonly id: number; readonly name: string; readonly alias?: string } | undefined {
  return CURVES.find((c) => c.id === id);
}

export function curveByName(name: string): { readonly id: number; readonly name: string; readonly alias?: string } | undefined {
  const n = name.toLowerCase();
  return CURVES.find((c) => c.name === n || c.alias === n);
}
