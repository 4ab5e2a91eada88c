import { test } from 'node:test';
import * as nodeCrypto from 'node:crypto';
import assert from 'node:assert/strict';
import { pHash, pHashUftp, prf, prfRfc, prfTls10, prfTls12 } from './prf.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

// TLS 1.2 PRF vectors published by Joseph Birr-Pixton on the IETF TLS list,
// https://www.ietf.org/mail-archive/web/tls/current/msg03416.html (label "test label").
const TLS12: ReadonlyArray<{ hash: 'sha256' | 'sha384' | 'sha512'; secret: string; seed: string; out: string }> = [
  {
    hash: 'sha256',
    secret: '9bbe436ba940f017b17652849a71db35',
    seed: 'a0ba9f936cda311827a6f796ffd5198c',
    out: `e3f229ba727be17b8d122620557cd453c2aab21d07c3d495329b52d4e61edb5a6b301791e90d35c9c9a46b4e14baf9af
          0fa022f7077def17abfd3797c0564bab4fbc91666e9def9b97fce34f796789baa48082d122ee42c5a72e5a5110fff701
          87347b66`,
  },
  {
    hash: 'sha384',
    secret: 'b80b733d6ceefcdc71566ea48e5567df',
    seed: 'cd665cf6a8447dd6ff8b27555edb7465',
    out: `7b0c18e9ced410ed1804f2cfa34a336a1c14dffb4900bb5fd7942107e81c83cde9ca0faa60be9fe34f82b1233c9146a0
          e534cb400fed2700884f9dc236f80edd8bfa961144c9e8d792eca722a7b32fc3d416d473ebc2c5fd4abfdad05d918425
          9b5bf8cd4d90fa0d31e2dec479e4f1a26066f2eea9a69236a3e52655c9e9aee691c8f3a26854308d5eaa3be85e099070
          3d73e56f`,
  },
  {
    hash: 'sha512',
    secret: 'b0323523c1853599584d88568bbb05eb',
    seed: 'd4640e12e4bcdbfb437f03e6ae418ee5',
    out: `1261f588c798c5c201ff036e7a9cb5edcd7fe3f94c669a122a4638d7d508b283042df6789875c7147e906d868bc75c45
          e20eb40c1cf4a1713b27371f68432592f7dc8ea8ef223e12ea8507841311bf68653d0cfc4056d811f025c45ddfa6e6fe
          c702f054b409d6f28dd0a3233e498da41a3e75c5630eedbe22fe254e33a1b0e9f6b9826675bec7d01a845658dc9c3975
          45401d40b9f46c7a400ee1b8f81ca0a60d1a397a1028bff5d2ef5066126842fb8da4197632bdb54ff6633f86bbc836e6
          40d4d898`,
  },
];

test('TLS 1.2 PRF: published SHA-256/384/512 vectors (IETF TLS list msg03416)', () => {
  for (const v of TLS12) {
    const want = hex(v.out);
    assert.deepEqual(prfTls12(v.hash, hex(v.secret), 'test label', hex(v.seed), want.length), want, v.hash);
    assert.deepEqual(prfRfc(v.hash, hex(v.secret), 'test label', hex(v.seed), want.length), want, v.hash);
    // any prefix is the same PRF output
    assert.deepEqual(prfRfc(v.hash, hex(v.secret), 'test label', hex(v.seed), 17), want.subarray(0, 17), v.hash);
    // UFTP's PRF agrees with the RFC for one hash block and differs after it
    const hlen = { sha256: 32, sha384: 48, sha512: 64 }[v.hash];
    const u = prf(v.hash, hex(v.secret), 'test label', hex(v.seed), want.length);
    assert.deepEqual(u.subarray(0, hlen), want.subarray(0, hlen), v.hash);
    assert.notDeepEqual(u.subarray(hlen), want.subarray(hlen), v.hash);
  }
});

// TLS 1.0 PRF vector "PRF Testvector": secret = 48 x 0xab, seed = 64 x 0xcd, 104 bytes of output; widely
// circulated (e.g. moserware TLS-1.0-Analyzer UnitTests/Prf10Tests.cs, GNU Classpath/Jessie TLS tests).
test('TLS 1.0/1.1 PRF: published "PRF Testvector"', () => {
  const want = hex(`d3d4d1e349b5d515044666d51de32bab258cb521b6b053463e354832fd976754443bcf9a296519bc289abcbc1187e4eb
                    d31e602353776c408aafb74cbc85eff69255f9788faa184cbb957a9819d84a5d7eb006eb459d3ae8de9810454b8b2d8f
                    1afbc655a8c9a013`);
  const out = prfTls10(Buffer.alloc(48, 0xab), 'PRF Testvector', Buffer.alloc(64, 0xcd), want.length);
  assert.deepEqual(out, want);
  assert.deepEqual(prfRfc('sha1', Buffer.alloc(48, 0xab), 'PRF Testvector', Buffer.alloc(64, 0xcd), want.length), want);
});

test('TLS 1.0 PRF splits an odd-length secret with a shared middle byte (RFC 2246 5)', () => {
  const secret = Buffer.from([1, 2, 3, 4, 5]);
  const ls = Buffer.from('xseed', 'latin1');
  const md5 = pHash('md5', Buffer.from([1, 2, 3]), ls, 40);
  const sha1 = pHash('sha1', Buffer.from([3, 4, 5]), ls, 40);
  const want = Buffer.from(md5.map((b, i) => b ^ sha1[i]));
  assert.deepEqual(prfTls10(secret, 'x', Buffer.from('seed', 'latin1'), 40), want);
});

// Values read from the memory of a real uftpd 4.10.2 during a session (-Y aes128-cbc -h sha256 -e rsa), next to
// each other in its session state: server random, client random, premaster, master secret, then the key block
// parts (HMAC key, AES key, salt), then the group master and its key block. They pin UFTP's PRF: the RFC 5246
// PRF gives the same first 32 bytes and different bytes after that.
const REAL = {
  sr: '2250036b99a86d52cbc7df8ecf2b717a1e7e04fd2db2c49fe6bf518273ede728',
  cr: '2250036b140026033da1705c92d6d9e8c471ec77660926925ab672397f37f80c',
  pre: '57ccf1f8b66c0cd86a657e73aa8593163b9f0253886f9f4942395022154c0db0df63283f7f93a916c1b383efe94ccd4a',
  master: 'de0c4cdc250dacbb4392b619f0412afc273e7493a5ebe83d7c0ea89ffaad50960b4f506e3ab4e73233e5426cc119d3b2',
  hmacKey: 'a6419b18aa01afb5608417f2be52f5671c369efa29cb95c1210fd24365f90507',
  key: '1c97a89cfdd2da6d7acd6b22e34a7eba',
  salt: '613d3cd5',
  groupMaster: '40fcbbe9bb6691411e65c44f6a28cc0332cd75caa0c2f2eb1fd31e71a67fb16f02e89001697d5fd2603666d4dd77ec1a',
  groupBlock: '9092fc39dcb6632146dcdfb28f4a1e35646b6554981093c91bec7e5e04e42c9725dabe46c12856f706ea63c34609aab9ac6abbba',
};

test('UFTP PRF reproduces the keys a real uftpd derived (SHA-256 session)', () => {
  const seed = Buffer.concat([hex(REAL.sr), hex(REAL.cr)]);
  const master = prf('sha256', hex(REAL.pre), 'master secret', seed, 48);
  assert.equal(master.toString('hex'), REAL.master);
  const block = prf('sha256', master, 'key expansion', seed, 32 + 16 + 4);
  assert.equal(block.toString('hex'), REAL.hmacKey + REAL.key + REAL.salt);
  const gblock = prf('sha256', hex(REAL.groupMaster), 'key expansion', hex(REAL.sr), 52);
  assert.equal(gblock.toString('hex'), REAL.groupBlock);
  // the RFC PRF does not
  assert.notEqual(prfRfc('sha256', master, 'key expansion', seed, 52).toString('hex'), block.toString('hex'));
});

test('pHashUftp chains on the previous output block', () => {
  const secret = Buffer.from('secret');
  const seed = Buffer.from('seed');
  const out = pHashUftp('sha1', secret, seed, 60);
  const { createHmac } = nodeCrypto;
  const a1 = createHmac('sha1', secret).update(seed).digest();
  const b1 = createHmac('sha1', secret).update(a1).update(seed).digest();
  const b2 = createHmac('sha1', secret).update(b1).update(seed).digest();
  const b3 = createHmac('sha1', secret).update(b2).update(seed).digest();
  assert.deepEqual(out, Buffer.concat([b1, b2, b3]));
  assert.deepEqual(out.subarray(0, 20), pHash('sha1', secret, seed, 20));
});
