/** The UFTP crypto layer on node:crypto (OpenSSL): everything other layers need, from one module. */
export * from './prf.js';
export * from './suites.js';
export * from './keys.js';
export * from './cipher.js';
export { nativePacketCiphers } from './packet-cipher.js';
export * from './sign.js';
export * from './pubkey.js';
export * from './keyfile.js';
export * from './handshake.js';
export * from './encrypted.js';
