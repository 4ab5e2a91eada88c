/**
 * The test vectors of docs/ktftp-protocol.md, checked against the code. Ephemeral keys are RFC 7748's
 * X25519 example keys; the static keys are throw-away P-256 keys. ECDSA signatures are randomized, so the
 * signatures here are examples that must verify; everything else is deterministic and must match exactly.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { fingerprint } from '../crypto/pubkey.js';
import { agree, CLIENT_SIG_LABEL, deriveKeys, ephemeralFromPrivate, Opener, publicKeyDer, Sealer, SERVER_SIG_LABEL, sha256, verifyWith } from './crypto.js';
import { decode, encode } from './wire.js';

const SERVER_KEY_PEM = `-----BEGIN EC PRIVATE KEY-----
MHcCAQEEILVloCbLXxrvIAfq/rWik5UP3kkaKLjsYP1Fw4BLfpNqoAoGCCqGSM49
AwEHoUQDQgAEIx58kQ17N9YoAtjno5IJVBg7OCDcuoHtpaT+3SziaeQc5rXDpBxV
tvJ14qCh3AoOgLqOMjri3egUXvKyNDPN+g==
-----END EC PRIVATE KEY-----`;
const CLIENT_KEY_PEM = `-----BEGIN EC PRIVATE KEY-----
MHcCAQEEIBQCQfvcyHicaVUv8yJNGo8QzJ1Uecj3AupZUpcRDqwhoAoGCCqGSM49
AwEHoUQDQgAEgKQV2biD2UVkvzdEfxQS49BYS4YEeOWgk4CoCKzaOd5W6BJBEAkH
Ng4jNdTD9TGF46EwUeXChbJXxfRe0u+S0w==
-----END EC PRIVATE KEY-----`;
const hex = (s: string) => Buffer.from(s, 'hex');

const V = {
  clientEphPriv: '77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a',
  serverEphPriv: '5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb',
  clientEphPub: '8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a',
  serverEphPub: 'de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f',
  shared: '4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742',
  serverFingerprint: 'FC:87:FA:57:E2:C8:97:55:74:33:EF:56:76:98:04:F1:8D:C5:9D:97',
  clientFingerprint: 'BC:71:59:5D:E2:7B:63:F9:16:15:83:F2:AD:E4:0F:40:41:68:D5:3E',
  request: '00016c6f67006f6374657400626c6b73697a6500313430380077696e646f7773697a650031360074696d656f75740031006b746674700031006b78006853447743596b777031523069333363744437335767322f4f67306d4f427230363653706a717162546d6f3d0061757468006b657900',
  oackPrefix: '0006626c6b73697a6500313430380077696e646f7773697a650031360074696d656f75740031006b746674700031006b780033703762665874397762545457324843374f51314e7a2b44513868626547644e7266782b46472b494b30383d00736b004d466b77457759484b6f5a497a6a3043415159494b6f5a497a6a30444151634451674145497835386b5131374e39596f41746a6e6f35494a564267374f434463756f48747061542b33537a6961655163357258447042785674764a313471436833416f4f674c714f4d6a72693365675558764b794e44504e2b673d3d00',
  sigDigest: '9eeeb8950f60cd7fef64942af3368bcb122ba7fa82572ca3b7cee68d7c93ba04',
  oack: '0006626c6b73697a6500313430380077696e646f7773697a650031360074696d656f75740031006b746674700031006b780033703762665874397762545457324843374f51314e7a2b44513868626547644e7266782b46472b494b30383d00736b004d466b77457759484b6f5a497a6a3043415159494b6f5a497a6a30444151634451674145497835386b5131374e39596f41746a6e6f35494a564267374f434463756f48747061542b33537a6961655163357258447042785674764a313471436833416f4f674c714f4d6a72693365675558764b794e44504e2b673d3d00736967004d45514349463054334c4f347a5943373278707371644c33444d6c4644515a556e65745768657a48616c62346969624e41694267667a705873705241665177374974686566574362334577346a5561777177336b497567795441663935413d3d00',
  transcript: '46bef9cf7974e5c70fb2a7bef1e38da04b99705b3c50bbad0f007b7b2843fc80',
  clientKey: '1317c35c5dc033faf38711914774c582f3466f3798655f1d944591455833634a',
  serverKey: 'd9cf502bb0485d0ba21f1d218a3550fdfc0c4269d54f51271489032147ef4cc8',
  clientIv: 'dfb324f8',
  serverIv: 'c863dd03',
  clientSig: '3045022040351d56d08a57d1f7eca54981f3a62ac5c093995ed5cb0f7a5594d5c12484bb022100995f8ed77ebdda01c9ca813cbe5248de8cb4c94f4abe584213d6174a05f2b600',
  sealedAuth: '001000000000000000009d9b301c09cd462d2ad52680bc36f44ec306ba6d77803aa93df6ea4ea8c920ea01f4424b05984ade543b364c833c3f79711679868cf7cfdfa97d57232f0fc50b1700d3244ba965e25b16ab5db3ad8b1136aa8facc2a187525e8902282539d609f1e17bf39469687ae289131b2c7d102e1cf00f2234ef2414b7bf6b4feac347db464950c6e694c5f77b9ea3b6a62e6c8f5584ff2a346826888dc880f9099796664d807fe8e9c3a6f1bcc4bbbbc7d56c15f1fccce563cef26feb',
  sealedData1: '001000000000000000004086573005774be3f96e472fed32c96b4820c8cec295e5c2b188',
  sealedAck1: '0010000000000000000170f4260fa8922b74e42395d7be507fd8b6c1ab4a',
};

test('protocol test vectors: key agreement, request, OACK, transcript, key schedule, sealing', () => {
  const c = ephemeralFromPrivate(hex(V.clientEphPriv));
  const s = ephemeralFromPrivate(hex(V.serverEphPriv));
  assert.equal(c.publicRaw.toString('hex'), V.clientEphPub);
  assert.equal(s.publicRaw.toString('hex'), V.serverEphPub);
  assert.equal(agree(c, s.publicRaw)!.toString('hex'), V.shared);
  const skPub = createPublicKey(createPrivateKey(SERVER_KEY_PEM));
  const ckPub = createPublicKey(createPrivateKey(CLIENT_KEY_PEM));
  assert.deepEqual(fingerprint(skPub), { ok: true, value: V.serverFingerprint });
  assert.deepEqual(fingerprint(ckPub), { ok: true, value: V.clientFingerprint });
  const req = encode({
    type: 'REQUEST',
    op: 'RRQ',
    tag: 'log',
    mode: 'octet',
    options: [['blksize', '1408'], ['windowsize', '16'], ['timeout', '1'], ['ktftp', '1'], ['kx', c.publicRaw.toString('base64')], ['auth', 'key']],
  });
  assert.equal(req.toString('hex'), V.request);
  const prefix = encode({
    type: 'OACK',
    options: [['blksize', '1408'], ['windowsize', '16'], ['timeout', '1'], ['ktftp', '1'], ['kx', s.publicRaw.toString('base64')], ['sk', publicKeyDer(skPub).toString('base64')]],
  });
  assert.equal(prefix.toString('hex'), V.oackPrefix);
  assert.equal(sha256(req, prefix).toString('hex'), V.sigDigest);
  const oack = hex(V.oack);
  assert.ok(oack.subarray(0, prefix.length).equals(prefix));
  const d = decode(oack);
  assert.ok(d.ok && d.value.type === 'OACK');
  const sig = Buffer.from(d.value.options[d.value.options.length - 1][1], 'base64');
  assert.ok(verifyWith(skPub, SERVER_SIG_LABEL, hex(V.sigDigest), sig));
  assert.equal(sha256(req, oack).toString('hex'), V.transcript);
  const k = deriveKeys(hex(V.shared), hex(V.transcript));
  assert.equal(k.clientKey.toString('hex'), V.clientKey);
  assert.equal(k.serverKey.toString('hex'), V.serverKey);
  assert.equal(k.clientIv.toString('hex'), V.clientIv);
  assert.equal(k.serverIv.toString('hex'), V.serverIv);
  assert.ok(verifyWith(ckPub, CLIENT_SIG_LABEL, hex(V.transcript), hex(V.clientSig)));
  // Sealing is deterministic given key, iv and sequence number.
  const ss = new Sealer(k.serverKey, k.serverIv);
  assert.equal(ss.seal(encode({ type: 'DATA', block: 1, data: Buffer.from('hello\n') })).toString('hex'), V.sealedData1);
  const cs = new Sealer(k.clientKey, k.clientIv);
  const auth = encode({ type: 'AUTH', method: 'key', credential: publicKeyDer(ckPub), proof: hex(V.clientSig) });
  assert.equal(cs.seal(auth).toString('hex'), V.sealedAuth);
  assert.equal(cs.seal(encode({ type: 'ACK', block: 1 })).toString('hex'), V.sealedAck1);
  const o = new Opener(k.clientKey, k.clientIv);
  const a = o.open(hex(V.sealedAuth));
  assert.ok(a.ok && a.seq === 0);
  const ack = o.open(hex(V.sealedAck1));
  assert.ok(ack.ok && ack.seq === 1 && ack.inner.toString('hex') === '00040001');
});
