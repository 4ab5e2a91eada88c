/**
 * The UFTP protocol version 4 wire codec: everything other layers need, from one module.
 *
 * - decodePacket(datagram) / encodePacket(packet) / encodePacketInto(packet, buffer) for whole UDP payloads;
 *   decodeMessageBody / encodeMessageBody for a body that starts with its function byte (decrypted payloads).
 * - Decoding never throws: every problem is a Result error { kind, message } (see result.ts).
 * - Decoded Uint8Array fields are subarrays of the input (zero copy): copy them before reusing the input buffer.
 *   Decoded objects and arrays are otherwise fresh and owned by the caller.
 * - Encoding always writes fresh bytes (or into the caller's buffer); an invalid message (a field out of range, a
 *   header over 255 words, a buffer too small) is a caller bug and throws RangeError.
 * - Timestamps are { sec, usec } (the two 32-bit fields as sent). 64-bit fields (IV counters, free space) are bigint.
 * - FILEINFO names are raw bytes (bytesText() for display), ABORT text a string.
 */
export * from './constants.js';
export * from './result.js';
export * from './quantize.js';
export * from './header.js';
export * from './keyblob.js';
export * from './extensions.js';
export * from './announce.js';
export * from './register.js';
export * from './clientkey.js';
export * from './regconf.js';
export * from './keyinfo.js';
export * from './fileinfo.js';
export * from './fileseg.js';
export * from './done.js';
export * from './status.js';
export * from './complete.js';
export * from './doneconf.js';
export * from './heartbeat.js';
export * from './proxykey.js';
export * from './encrypted.js';
export * from './abort.js';
export * from './congestion.js';
export * from './packet.js';
export { type Timestamp, formatIPv4, formatIPv6, parseIPv4, parseIPv6, bytesText, textBytes } from './fields.js';
