/** Each kind of bad datagram becomes the right typed error with a message that names the problem. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeMessageBody, decodePacket } from './packet.js';
import type { WireErrorKind } from './result.js';

const H = (func: number): string => `40${func.toString(16).padStart(2, '0')}00010a3d00010c267d2c006a1800`;
const REG_CONF = '400400010a3d00010c267d2c006a1800040100000a3d0002'; // real, from uftp 4.10
const ENC_GCM = '401200020a3d000235c170a200000000000000000000000100000020293e46f691c8200dc6d52d984df14d6a49fceb10bb10a8b8d4cdb617ca031866';

function expectErr(hex: string | Uint8Array, kind: WireErrorKind, text: RegExp): void {
  const d = typeof hex === 'string' ? new Uint8Array(Buffer.from(hex, 'hex')) : hex;
  const r = decodePacket(d);
  assert.equal(r.ok, false, `expected ${kind}`);
  if (r.ok) return;
  assert.equal(r.error.kind, kind, r.error.message);
  assert.match(r.error.message, text);
}

test('the real REG_CONF decodes (baseline for the mutations below)', () => {
  assert.ok(decodePacket(new Uint8Array(Buffer.from(REG_CONF, 'hex'))).ok);
  assert.ok(decodePacket(new Uint8Array(Buffer.from(ENC_GCM, 'hex'))).ok);
});

test('truncated: short header, message cut inside its fixed part, header length past the end, ENCRYPTED cut', () => {
  expectErr('', 'truncated', /UFTP header: 0 bytes/);
  expectErr(REG_CONF.slice(0, 30), 'truncated', /UFTP header: 15 bytes/);
  expectErr(H(4), 'truncated', /no message/);
  expectErr(H(4) + '0401', 'truncated', /REG_CONF: 2 bytes, need at least 4/);
  expectErr(H(4) + '04030000', 'truncated', /REG_CONF: header length 12 bytes exceeds message of 4/);
  expectErr(H(1) + '01060000', 'truncated', /ANNOUNCE: 4 bytes/);
  expectErr(ENC_GCM.slice(0, -2), 'truncated', /ENCRYPTED: signature 0 \+ payload 32 bytes exceed the 31/);
});

test('oversized: a datagram longer than any UDP payload', () => {
  const big = new Uint8Array(70000);
  big.set(Buffer.from(REG_CONF, 'hex'));
  expectErr(big, 'oversized', /70000 bytes exceeds 65507/);
});

test('bad-version: UFTP ID 0x30 (what protocol.txt says) and 0x50 are refused', () => {
  expectErr('30' + REG_CONF.slice(2), 'bad-version', /UFTP ID 0x30, expected 0x40/);
  expectErr('50' + REG_CONF.slice(2), 'bad-version', /UFTP ID 0x50/);
});

test('bad-type: unknown function, unknown key blob type, ENCRYPTED nested in a body', () => {
  expectErr(H(0) + '00010000', 'bad-type', /unknown function 0/);
  expectErr(H(22) + '16010000', 'bad-type', /unknown function 22/);
  // CLIENT_KEY whose key blob says type 9
  expectErr(H(3) + '03030000' + '00040000' + '09000000', 'bad-type', /CLIENT_KEY: public key: key blob: unknown blob type 9/);
  const r = decodeMessageBody(new Uint8Array([18, 1, 0, 0]));
  assert.ok(!r.ok && r.error.kind === 'bad-type' && /ENCRYPTED/.test(r.error.message));
});

test('inconsistent: header/message function, header length below fixed part, ragged lists, trailing bytes', () => {
  expectErr(H(4) + '05010000', 'inconsistent', /header function 4 but message function 5/);
  expectErr(H(10) + '0a010001' + '00000000', 'inconsistent', /DONE: header length 1 words < fixed part of 8 bytes/);
  expectErr(REG_CONF + 'ff', 'inconsistent', /REG_CONF: client ID list of 5 bytes is not a multiple of 4/);
  expectErr(ENC_GCM + '00', 'inconsistent', /ENCRYPTED: 1 bytes after signature 0 \+ payload 32/);
  expectErr(H(16) + '10010000' + '00000000', 'inconsistent', /KEY_REQ: 4 bytes after the header/);
  expectErr(H(5) + '05030000' + '0000000000000001' + '0a3d0002', 'inconsistent', /KEYINFO: key list of 4 bytes is not a multiple of 52/);
  // an extension claiming 3 words inside a 1-word extension area
  expectErr(H(4) + '04020000' + '03030000', 'inconsistent', /extension type 3 of 12 bytes runs past the header end \(4 bytes left\)/);
  // a known extension with the wrong length
  expectErr(H(4) + '04040000' + '02030000' + '00000000' + '00000000', 'inconsistent', /REG_CONF: EXT_TFMCC_DATA_INFO length 12 bytes, must be 8/);
  // FILEINFO name length past the header
  expectErr(H(7) + '07070001' + '00000000' + '09000000' + '00000000' + '00000000' + '00000000' + '00000000', 'inconsistent', /FILEINFO: name 36 \+ link 0 bytes run past the header \(28 bytes\)/);
});

test('bad-value: an extension of length 0 (would never advance)', () => {
  expectErr(H(4) + '04020000' + '05000000', 'bad-value', /extension type 5 at offset 4 has length 0/);
});

test('encoding an invalid message is a caller bug: RangeError naming the problem', async () => {
  const { encodePacket, encodePacketInto } = await import('./packet.js');
  const header = { version: 0x40, func: 0, seq: 1, srcId: 1, groupId: 2, groupInst: 0, grtt: 0, gsize: 0, reserved: 0 };
  const reg = { type: 'REGISTER' as const, timestamp: { sec: 0, usec: 0 }, clientRandom: new Uint8Array(31), keyInfo: new Uint8Array(0), extensions: [], clientIds: [] };
  assert.throws(() => encodePacket({ header, message: reg }), /REGISTER: client random must be 32 bytes/);
  assert.throws(() => encodePacket({ header: { ...header, seq: 70000 }, message: { type: 'KEY_REQ', extensions: [] } }), /UFTP header: field out of range/);
  assert.throws(() => encodePacketInto({ header, message: { type: 'KEY_REQ', extensions: [] } }, new Uint8Array(19)), /needs 20 bytes, buffer has 19/);
  assert.throws(() => encodePacket({ header, message: { type: 'DONE_CONF', extensions: [], clientIds: [-1] } }), /client ID -1/);
  const big = { type: 'UNKNOWN' as const, extType: 99, data: new Uint8Array(1022) };
  assert.throws(() => encodePacket({ header, message: { type: 'CC_ACK', extensions: [big] } }), RangeError);
  assert.throws(() => encodePacket({ header, message: { type: 'CLIENT_KEY', publicKey: { kind: 'EC', curve: 300, key: new Uint8Array(4) }, verifyData: new Uint8Array(0), extensions: [] } }), /EC key blob field out of range/);
});
