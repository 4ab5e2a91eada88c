/**
 * The tail shared by REG_CONF, DONE, COMPLETE and DONE_CONF: after the message's fixed part come header
 * extensions up to the header length, then a body of 32-bit client IDs to the end of the message.
 *
 *  0 function(1)  1 header length (words)  2 ... message-specific fixed part up to `fixed`
 *  fixed  header extensions up to header length;  body: client IDs
 */
import { decodeIdList, headerBytes, hlenWords, put16, putIdList } from './fields.js';
import { decodeExtensions, encodeExtensionsInto, extensionsLength, type Extension } from './extensions.js';
import { err, ok, type Result } from './result.js';

export interface ExtensionsAndIds {
  extensions: Extension[];
  clientIds: number[];
}

/** Checks the header length against `fixed` and the message, then decodes extensions and the ID list. */
export function decodeExtensionsAndIds(b: Uint8Array, fixed: number, name: string): Result<ExtensionsAndIds> {
  const h = headerBytes(b, name, fixed);
  if (!h.ok) return h;
  const exts = decodeExtensions(b, fixed, h.value, name);
  if (!exts.ok) return exts;
  const ids = decodeIdList(b, h.value, name);
  if (!ids.ok) return ids;
  return ok({ extensions: exts.value, clientIds: ids.value });
}

export function extensionsAndIdsLength(fixed: number, m: ExtensionsAndIds): number {
  return fixed + extensionsLength(m.extensions) + 4 * m.clientIds.length;
}

/**
 * Writes the function byte, the header length, the extensions and the ID list; the caller writes its own
 * fixed fields (bytes 2 to `fixed`). Returns the message length.
 */
export function encodeExtensionsAndIdsInto(
  m: ExtensionsAndIds, func: number, fixed: number, name: string, out: Uint8Array, off: number,
): number {
  const hlen = fixed + extensionsLength(m.extensions);
  out[off] = func;
  out[off + 1] = hlenWords(hlen, name);
  encodeExtensionsInto(m.extensions, out, off + fixed);
  return hlen + putIdList(out, off + hlen, m.clientIds, name);
}

/**
 * KEY_REQ and CC_ACK: a 4-byte fixed part (function, header length, 16 reserved bits), header extensions, no body.
 */
const BARE_FIXED = 4;

export function decodeBareMessage(b: Uint8Array, name: string): Result<Extension[]> {
  const h = headerBytes(b, name, BARE_FIXED);
  if (!h.ok) return h;
  if (b.length !== h.value) return err('inconsistent', `${name}: ${b.length - h.value} bytes after the header; ${name} has no body`);
  return decodeExtensions(b, BARE_FIXED, h.value, name);
}

export function bareMessageLength(extensions: readonly Extension[]): number {
  return BARE_FIXED + extensionsLength(extensions as Extension[]);
}

export function encodeBareMessageInto(func: number, name: string, extensions: Extension[], out: Uint8Array, off: number): number {
  const hlen = BARE_FIXED + extensionsLength(extensions);
  out[off] = func;
  out[off + 1] = hlenWords(hlen, name);
  put16(out, off + 2, 0);
  encodeExtensionsInto(extensions, out, off + BARE_FIXED);
  return hlen;
}
