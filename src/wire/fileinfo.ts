/**
 * 5.2.9 FILEINFO (server -> clients) and 5.2.10 FILEINFO_ACK (client -> server).
 *
 * FILEINFO                                              FILEINFO_ACK
 *  0 function(1) 1 header length 2 file ID (16)          0 function(1) 1 header length 2 file ID (16)
 *  4 file type  5 reserved (24)                          4 flags 5 reserved (24)
 *  8 name length (words) 9 link length (words)           8 timestamp sec (32) 12 timestamp usec (32)
 * 10 file size (48)                                     16 header extensions;  body: client IDs
 * 16 file timestamp (32)
 * 20 timestamp sec (32) 24 timestamp usec (32)
 * 28 file name (name length * 4 bytes), link name (link length * 4 bytes), NUL padded;
 *    header extensions up to header length;  body: client IDs
 *
 * Names are raw bytes (a POSIX path is bytes, and a proxy must re-encode them unchanged), without the
 * NUL padding. UFTP 4.10 adds no terminating NUL when a name fills its words exactly ("dir/link" is 2 words).
 */
import { MessageType } from './constants.js';
import {
  checkTimestamp, cBytes, decodeIdList, headerBytes, hlenWords, isU16, isU32, isU8, need, pad4, put16, put32,
  putIdList, putTimestamp, readTimestamp, u16, u32, type Timestamp,
} from './fields.js';
import { decodeExtensions, encodeExtensionsInto, extensionsLength, type Extension } from './extensions.js';
import { err, ok, type Result } from './result.js';

const FUNC = 0;
const HLEN = 1;
const FILE_ID = 2;
const FTYPE = 4;
const NAMELEN = 8;
const LINKLEN = 9;
const FSIZE_HI = 10;
const FSIZE_LO = 12;
const FTSTAMP = 16;
const TSTAMP = 20;
const NAME = 28;
const FI_FIXED = 28;

const ACK_FLAGS = 4;
const ACK_TSTAMP = 8;
const ACK_FIXED = 16;

export const MAX_FILE_SIZE = 2 ** 48 - 1;

export interface FileInfo {
  type: 'FILEINFO';
  fileId: number;
  /** FileType: REG, DIR, LINK, DELETE, FREESPACE. */
  fileType: number;
  /** 48-bit size in bytes (a safe integer). */
  fileSize: number;
  /** File modification time, seconds since the epoch. */
  fileTimestamp: number;
  timestamp: Timestamp;
  /** Path bytes ('/'-separated) without NUL padding; decode with TextDecoder for display. */
  name: Uint8Array;
  /** Link target bytes for LINK, otherwise usually empty. */
  linkName: Uint8Array;
  extensions: Extension[];
  clientIds: number[];
}
export interface FileInfoAck {
  type: 'FILEINFO_ACK';
  fileId: number;
  /** 0x01 PARTIAL. */
  flags: number;
  timestamp: Timestamp;
  extensions: Extension[];
  clientIds: number[];
}

export function decodeFileInfo(b: Uint8Array): Result<FileInfo> {
  const N = 'FILEINFO';
  const h = headerBytes(b, N, FI_FIXED);
  if (!h.ok) return h;
  const hlen = h.value;
  const nameBytes = b[NAMELEN] * 4;
  const linkBytes = b[LINKLEN] * 4;
  const extStart = NAME + nameBytes + linkBytes;
  if (extStart > hlen) return err('inconsistent', `${N}: name ${nameBytes} + link ${linkBytes} bytes run past the header (${hlen} bytes)`);
  const exts = decodeExtensions(b, extStart, hlen, N);
  if (!exts.ok) return exts;
  const ids = decodeIdList(b, hlen, N);
  if (!ids.ok) return ids;
  return ok({
    type: 'FILEINFO',
    fileId: u16(b, FILE_ID),
    fileType: b[FTYPE],
    fileSize: u16(b, FSIZE_HI) * 2 ** 32 + u32(b, FSIZE_LO),
    fileTimestamp: u32(b, FTSTAMP),
    timestamp: readTimestamp(b, TSTAMP),
    name: cBytes(b, NAME, NAME + nameBytes),
    linkName: cBytes(b, NAME + nameBytes, extStart),
    extensions: exts.value,
    clientIds: ids.value,
  });
}

export function fileInfoLength(m: FileInfo): number {
  return FI_FIXED + pad4(m.name.length) + pad4(m.linkName.length) + extensionsLength(m.extensions) + 4 * m.clientIds.length;
}

export function encodeFileInfoInto(m: FileInfo, out: Uint8Array, off: number): number {
  need(isU16(m.fileId) && isU8(m.fileType) && isU32(m.fileTimestamp), 'FILEINFO: field out of range');
  need(Number.isInteger(m.fileSize) && m.fileSize >= 0 && m.fileSize <= MAX_FILE_SIZE, 'FILEINFO: file size out of 48-bit range');
  need(!m.name.includes(0) && !m.linkName.includes(0), 'FILEINFO: names must not contain NUL');
  checkTimestamp(m.timestamp, 'FILEINFO');
  const nameBytes = pad4(m.name.length);
  const linkBytes = pad4(m.linkName.length);
  need(nameBytes / 4 <= 255 && linkBytes / 4 <= 255, 'FILEINFO: name or link longer than 255 words');
  const extStart = NAME + nameBytes + linkBytes;
  const hlen = extStart + extensionsLength(m.extensions);
  out[off + FUNC] = MessageType.FILEINFO;
  out[off + HLEN] = hlenWords(hlen, 'FILEINFO');
  put16(out, off + FILE_ID, m.fileId);
  put32(out, off + FTYPE, 0);
  out[off + FTYPE] = m.fileType;
  out[off + NAMELEN] = nameBytes / 4;
  out[off + LINKLEN] = linkBytes / 4;
  put16(out, off + FSIZE_HI, Math.floor(m.fileSize / 2 ** 32));
  put32(out, off + FSIZE_LO, m.fileSize % 2 ** 32);
  put32(out, off + FTSTAMP, m.fileTimestamp);
  putTimestamp(out, off + TSTAMP, m.timestamp);
  out.fill(0, off + NAME, off + extStart);
  out.set(m.name, off + NAME);
  out.set(m.linkName, off + NAME + nameBytes);
  encodeExtensionsInto(m.extensions, out, off + extStart);
  return hlen + putIdList(out, off + hlen, m.clientIds, 'FILEINFO');
}

export function decodeFileInfoAck(b: Uint8Array): Result<FileInfoAck> {
  const N = 'FILEINFO_ACK';
  const h = headerBytes(b, N, ACK_FIXED);
  if (!h.ok) return h;
  const exts = decodeExtensions(b, ACK_FIXED, h.value, N);
  if (!exts.ok) return exts;
  const ids = decodeIdList(b, h.value, N);
  if (!ids.ok) return ids;
  return ok({
    type: 'FILEINFO_ACK', fileId: u16(b, FILE_ID), flags: b[ACK_FLAGS], timestamp: readTimestamp(b, ACK_TSTAMP),
    extensions: exts.value, clientIds: ids.value,
  });
}

export function fileInfoAckLength(m: FileInfoAck): number {
  return ACK_FIXED + extensionsLength(m.extensions) + 4 * m.clientIds.length;
}

export function encodeFileInfoAckInto(m: FileInfoAck, out: Uint8Array, off: number): number {
  need(isU16(m.fileId) && isU8(m.flags), 'FILEINFO_ACK: field out of range');
  checkTimestamp(m.timestamp, 'FILEINFO_ACK');
  const hlen = ACK_FIXED + extensionsLength(m.extensions);
  out[off + FUNC] = MessageType.FILEINFO_ACK;
  out[off + HLEN] = hlenWords(hlen, 'FILEINFO_ACK');
  put16(out, off + FILE_ID, m.fileId);
  put32(out, off + ACK_FLAGS, 0);
  out[off + ACK_FLAGS] = m.flags;
  putTimestamp(out, off + ACK_TSTAMP, m.timestamp);
  encodeExtensionsInto(m.extensions, out, off + ACK_FIXED);
  return hlen + putIdList(out, off + hlen, m.clientIds, 'FILEINFO_ACK');
}
