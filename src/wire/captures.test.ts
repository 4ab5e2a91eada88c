/**
 * Literal datagrams captured from the real UFTP 4.10.2 programs (uftp, uftpd, uftpproxyd) in network
 * namespaces on 2026-11-22 (see docs/protocol-notes.md, "Wire"). Every one must decode, re-encode byte for
 * byte, and show the field values checked below.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import {
  bytesText, decodeMessageBody, decodePacket, describePacket, encodeMessageBody, encodePacket, encodePacketInto,
  signatureSpan, signedBytes, type KeyBlob, type Message, type Packet,
} from './index.js';

const CAPTURED = {
  // ANNOUNCE seq=0 src=0x0a3d0001 group=0x0c267d2c/0 grtt=0.211s gsize=0 flags=0x1 robust=20 cc=0 blocksize=1300 p
  announce_plain_sync: [
    '400100000a3d00010c267d2c0091000001060114000005146b034acd00022b17e6040401e6050575',
  ],
  // ANNOUNCE seq=0 src=0x01000000 group=0x5af558be/0 grtt=0.106s gsize=0 flags=0x4 robust=20 cc=0 blocksize=1300 p
  announce_ipv6: [
    '40010000010000005af558be00880000010c0414000005146b034b52000e9c4eff020000000000000000000100020003',
    'ff020000000000000000000400050006',
  ],
  // ANNOUNCE seq=0 src=0x0a3d0001 group=0x522434ce/0 grtt=0.106s gsize=0 flags=0x0 robust=20 cc=2 blocksize=512 pu
  announce_tfmcc: [
    '400100000a3d0001522434ce0088000001060014020002006b034d00000835fae6040401e60505a8',
  ],
  // ANNOUNCE seq=0 src=0x0a3d0001 group=0x0fbf8e08/0 grtt=0.106s gsize=0 flags=0x0 robust=20 cc=0 blocksize=1300 p
  announce_rsa_hmac: [
    '400100000a3d00010fbf8e080088000001330014000005146b034b42000098d9e6040401e6050509012d011104030088',
    '00000000424b036bd0aa8ca629f515157b869a45380beb9c78df755b55b4828d13d510080100008000010001963b3cc0',
    '940f4a6d32ff31c006b021ebbb6b8af1dc442e14aba170600cff68a1dea3e902a2e66b8946dc057c73bddd57fc0615ac',
    'eb59a44300885ffabda3237708c1feda5d0ff2fc407bb6db504eab963f8b955a6ef4aa98b0ff91996b259354e6a3cece',
    '4626af3946a558f2ba732a2998aff565508455d6d6c115589d1f7e05',
  ],
  // ANNOUNCE seq=0 src=0x0a3d0001 group=0x35c170a2/0 grtt=0.106s gsize=0 flags=0x0 robust=20 cc=0 blocksize=1300 p
  announce_ecdh_ecdsa_gcm: [
    '400100000a3d000135c170a20088000001440014000005146b034b4a00077d0ce6040401e60505e5013e013306030044',
    '004400444a4b036beddd04f0f8f71306a1ff945d610c9b52a1b372a22cb2398eed6b1b650217004034573478d3d8962e',
    'd688d02050aef36cca13b8da513ae44c4c110ec0daf1072467c59b675c94231c9dee46c7991de3814585c704a1ad7f91',
    'fa245467fcac131e021700406b14ef72c1082938df9454073aac0fdac8712ecffed86cabd45b5952554528abff86a34c',
    'd3f526f4aeebfd0187e9d2a7cd7a54a93083213acd9f26718b801e0e002000201eab7bb13024316a965f5f297e4620ea',
    'cb1e00b596429957eabbd47d3fc54939bce524099c737d1e8098c601c26099170f8776d6f84f6cd2fe84b595e7fb1588',
  ],
  // ANNOUNCE seq=0 src=0x0a3d0001 group=0xb3ef0160/0 grtt=0.106s gsize=0 flags=0x0 robust=20 cc=0 blocksize=1300 p
  announce_ecdh_rsa_keyex: [
    '400100000a3d0001b3ef01600088000001640014000005146b034b460004094ce6040401e6050540015e012203020088',
    '00440080464b036bec3b46d30aa946bdf2ec44b2e79216156eef9231b5e3ff6fa6d5af350100008000010001963b3cc0',
    '940f4a6d32ff31c006b021ebbb6b8af1dc442e14aba170600cff68a1dea3e902a2e66b8946dc057c73bddd57fc0615ac',
    'eb59a44300885ffabda3237708c1feda5d0ff2fc407bb6db504eab963f8b955a6ef4aa98b0ff91996b259354e6a3cece',
    '4626af3946a558f2ba732a2998aff565508455d6d6c115589d1f7e0502170040124f6cde0aecb63de6a07065aa5b6454',
    'a3381c21716d8c13fb63a20b35ae136568ea4b4a5ae881ac221ae591929155fb4cec5c45158522167d9a9bbf05909004',
    '94f1db734937f0c517c15fa42f5c494af0fccb23e461bcca4d7049abe024f9e1a350115bbb636ec54b64bd570b21b7a9',
    '6a7022f86749eae14d29bbf225cce754674277a19fbd5a409c1b03c0671160afa76f20514887666c9c9f889241da6ac0',
    '70558ac886f371188dfbdf41131e8dc2f25d1c485fb223eab65a33f1735fd4e7',
  ],
  // REGISTER seq=0 src=0x0a3d0002 group=0x0c267d2c/0 grtt=0.000001s gsize=0 keyinfo=0B
  register_plain: [
    '400200000a3d00020c267d2c00000000020b00006b034acd00022c6d0000000000000000000000000000000000000000',
    '000000000000000000000000',
  ],
  // REGISTER seq=0 src=0x0a3d0002 group=0x0fbf8e08/0 grtt=0.000001s gsize=0 keyinfo=128B
  register_rsa: [
    '400200000a3d00020fbf8e0800000000022b00806b034b4200009d57424b036b46599420395827c655702b48905301a7',
    '929f28055a6df60d512f869c738f6713810920bc23674f11ab781bf6a21432088d9be192f64b86da278a05ee02464677',
    'bc0e6b87da366031dbf1e2cc33388c6a2b8d1a12b2554a46d166d3d90813c01553a2acddb5e67f34e0b8a9e72e493225',
    'b0ebea453b2ea8957d8add928b3c8e4013bc036d5ccc9019f8c5830bed9f37f1903ccd6a1bbc467e05ef78d1',
  ],
  // REGISTER seq=0 src=0x0a3d0002 group=0x35c170a2/0 grtt=0.000001s gsize=0 keyinfo=68B
  register_ecdh: [
    '400200000a3d000235c170a200000000021c00446b034b4a000781914a4b036b80d79be43b2fd70eabff2bc7ea14e734',
    '1bc00104b96a09ba760fb1c7021700404f416ee3c2c81e4988c8c039e1d8e841f17416eb27aee47e342fb226b84150ea',
    '6fde0948d23d79906de5ae525ad1e7af63936b89e9a9777db0d831ff27d0aa44',
  ],
  // REGISTER seq=0 src=0x0a3d0003 group=0x912dbace/0 grtt=0.000001s gsize=0 keyinfo=128B ids=[0x0a3d0002]
  register_via_response_proxy: [
    '400200000a3d0003912dbace00000000022b00806b034b7100052669714b036bce27d27c08d22b0a8f7351e581c2faf7',
    '28582676427f5afdf425608100bffa84c3d337587c165d769184b8a6794430a9b62c70d5c5b45de2b2fe439b3677a56e',
    'a5804eaf9da11d31be0af056b182e416c3cc3f94e150abe935d47b5191f75690f3b231c34c1240e63c2f31554e85af4f',
    '7bc08ea4e3c00c51830291f3231253c8b856c03ba4c947a99cd07169abd7e51389cba6e7784b5202785a5d740a3d0002',
  ],
  // CLIENT_KEY seq=1 src=0x0a3d0002 group=0x35c170a2/0 grtt=0.000001s gsize=0 key=EC(curve 23) verify=68B
  client_key_ec: [
    '400300010a3d000235c170a2000000000324000000440044021700403d54a71844aa98196ee6578d0f214aee21258941',
    '0ba1cd1ba039e60602c90faf8ae105a148352095e8fe57c5feb4593f9dfe946bcf31d446dd0b032d72f1635d00200020',
    '6219dea9e953c9189438952326893eb9adf911395849155f4ba779bd94d11095f51924f1315eb5927410953c276d37b9',
    '7824aac3f197a534d079c5db9e1c30ab',
  ],
  // CLIENT_KEY seq=1 src=0x0a3d0002 group=0x0fbf8e08/0 grtt=0.000001s gsize=0 key=RSA1024 verify=128B
  client_key_rsa: [
    '400300010a3d00020fbf8e080000000003440000008800800100008000010001bad6838ba301581802322408af30ad23',
    '41d6b6de4fdc830386ac29793872bef5201d834606e136af44bc966c05ea5803d24051ea5cb52c6e9b232bc30c6099b3',
    'c23633da83d664af0b12170cb51cc3d2e16c585c9144397e4db3ceca209257e966f5407390e87769ffda57dd131051ae',
    '47656cd5f25daef997f2d7c05525bb65b9026e6ba17a701a71100e8779fbb08d2126b5e6e51abddfbb7494c8c68be152',
    'bbbac54bada77ea231976b1cd259d5004c2405321a160c5aa053d9a82c065adb54757b48ee0b0f2e932485f0fd47da13',
    '52098a4e4d6c6e89d377129255b8cd6c1811a4a369c4de264d236f575cfd245b76ac14e4f082950cf56bc5e8e60ff3d3',
  ],
  // REG_CONF seq=1 src=0x0a3d0001 group=0x0c267d2c/0 grtt=0.0105s gsize=1 ids=[0x0a3d0002]
  reg_conf_one: [
    '400400010a3d00010c267d2c006a1800040100000a3d0002',
  ],
  // REG_CONF seq=1 src=0x0a3d0001 group=0x12583c48/0 grtt=0.0105s gsize=3 ids=[0x0a3d0004,0x0a3d0003,0x0a3d0002]
  reg_conf_three: [
    '400400010a3d000112583c48006a5000040100000a3d00040a3d00030a3d0002',
  ],
  // KEYINFO seq=1 src=0x0a3d0001 group=0x0fbf8e08/0 grtt=0.0105s gsize=1 ivctr=1 keys=[0x0a3d0002]
  keyinfo_rsa: [
    '400500010a3d00010fbf8e08006a18000503000000000000000000010a3d0002fda40d1186c3ef28498746526eea8e0d',
    'c83382cc7fac20480dcd35391eeb870c2fb44b4644485afc7e11de645c8fe41e',
  ],
  // KEYINFO seq=1 src=0x0a3d0001 group=0x912dbace/0 grtt=0.0105s gsize=2 ivctr=1 keys=[0x0a3d0003]
  keyinfo_to_proxy: [
    '400500010a3d0001912dbace006a30000503000000000000000000010a3d0003d111d486d99cc12e426d2fbbe9112e3c',
    '0874c0dfc1bfe58298b4ae629029064e9016371e0d39c9580eb71f4c3b5f971c',
  ],
  // FILEINFO seq=21 src=0x0a3d0001 group=0x0c267d2c/0 grtt=0.0105s gsize=1 file=1 ftype=0 size=22 name="small.txt"
  fileinfo_regular: [
    '400700150a3d00010c267d2c006a1800070a00010000000003000000000000166b034acb6b034ace0004cf83736d616c',
    '6c2e7478740000000a3d0002',
  ],
  // FILEINFO seq=24 src=0x0a3d0001 group=0x0c267d2c/0 grtt=0.0105s gsize=1 file=2 ftype=2 size=0 name="dir/link" l
  fileinfo_link: [
    '400700180a3d00010c267d2c006a1800070c0002020000000203000000000000000000006b034ace0004dad16469722f',
    '6c696e6b2e2e2f736d616c6c2e7478740a3d0002',
  ],
  // FILEINFO seq=34 src=0x0a3d0001 group=0x0c267d2c/0 grtt=0.0105s gsize=1 file=5 ftype=4 size=0 name="." ids=[0x0
  fileinfo_freespace: [
    '400700220a3d00010c267d2c006a180007080005040000000100000000000000000000006b034ace0004f9482e000000',
    '0a3d0002',
  ],
  // FILEINFO_ACK seq=1 src=0x0a3d0002 group=0x0c267d2c/0 grtt=0.000001s gsize=0 file=1 flags=0x0
  fileinfo_ack: [
    '400800010a3d00020c267d2c0000000008040001000000006b034ace0004d040',
  ],
  // FILESEG seq=22 src=0x0a3d0001 group=0x0c267d2c/0 grtt=0.0105s gsize=1 file=1 sec=0 block=0 data=22B
  fileseg_plain: [
    '400900160a3d00010c267d2c006a1800090200010000000068656c6c6f2075667470207769726520636f6465630a',
  ],
  // FILESEG seq=22 src=0x0a3d0001 group=0x522434ce/0 grtt=0.0105s gsize=1 file=1 sec=0 block=0 data=22B ext=TFMCC_
  fileseg_tfmcc: [
    '400900160a3d0001522434ce006a18000904000100000000020292740000481e68656c6c6f2075667470207769726520',
    '636f6465630a',
  ],
  // DONE seq=23 src=0x0a3d0001 group=0x0c267d2c/0 grtt=0.0105s gsize=1 file=1 sec=0 ids=[0x0a3d0002]
  done_section: [
    '400a00170a3d00010c267d2c006a18000a020001000000000a3d0002',
  ],
  // DONE seq=24 src=0x0a3d0001 group=0x12583c48/0 grtt=0.0105s gsize=3 file=0 sec=0 ids=[0x0a3d0004,0x0a3d0003,0x0
  done_session_end: [
    '400a00180a3d000112583c48006a50000a020000000000000a3d00040a3d00030a3d0002',
  ],
  // STATUS seq=2 src=0x0a3d0002 group=0xdb992028/0 grtt=0.000001s gsize=0 file=1 sec=0 naks=38B
  status_naks: [
    '400b00020a3d0002db992028000000000b020001000000000080004080040000c8800200000080480000200000000000',
    '0008001000008000204040000404',
  ],
  // COMPLETE seq=2 src=0x0a3d0002 group=0x0c267d2c/0 grtt=0.000001s gsize=0 file=1 status=0
  complete_normal: [
    '400c00020a3d00020c267d2c000000000c02000100000000',
  ],
  // COMPLETE seq=8 src=0x0a3d0002 group=0x0c267d2c/0 grtt=0.000001s gsize=0 file=5 status=0 ext=FREESPACE(85508419
  complete_freespace: [
    '400c00080a3d00020c267d2c000000000c050005000000000703000000000013e8b2f000',
  ],
  // DONE_CONF seq=25 src=0x0a3d0001 group=0x12583c48/0 grtt=0.0105s gsize=3 ids=[0x0a3d0004,0x0a3d0003,0x0a3d0002]
  done_conf: [
    '400d00190a3d000112583c48006a50000d0100000a3d00040a3d00030a3d0002',
  ],
  // HB_REQ seq=0 src=0x0a3d0002 group=0x00000000/0 grtt=0.000001s gsize=0 nonce=0x00000000 key=none signed=0B
  hb_req_plain: [
    '400e00000a3d000200000000000000000e0300000000000000000000',
  ],
  hb_req_signed: [
    '400e00000a3d000200000000000000000e45000000880080ca452cc80100008000010001a82b5ca6624cdcdf30449a2e',
    '3f367813c65b40ce603c53301bb98197a4115633573e822026a63e75dfae506824be76b9aeff7200c5bfd9893441e060',
    '3390bea5f6c8a8db9803a6de524aff6870930f4d32b8a755aa9e150a49d31bdd3c6affc655d1bee7c6ff6da705b67f5a',
    '475afcf51f13a609c4f8d6c3ed20f4c5cd0287cf3214c598cfb918c3a102d8f5e4270776a66f8f729538330523a370d9',
    'c7408f922139fd025c61e5ca14a7934c3e0fc5c87773b6cbab02deb49c3ed31b43301c1e7167d6da724f4cc7c18f30ae',
    '10204f5c2051754880f557c2161de3fba262f4af31e852da626252108660c9e135944adfd166417b753df07230fe204d',
    'd13e1129',
  ],
  // HB_RESP seq=0 src=0x0a3d0001 group=0x00000000/0 grtt=0.000001s gsize=0 auth=2 nonce=0xca452cc8
  hb_resp_challenge: [
    '400f00000a3d000100000000000000000f020200ca452cc8',
  ],
  // HB_RESP seq=0 src=0x0a3d0001 group=0x00000000/0 grtt=0.000001s gsize=0 auth=1 nonce=0x00000000
  hb_resp_ok: [
    '400f00000a3d000100000000000000000f02010000000000',
  ],
  // KEY_REQ seq=0 src=0x0a3d0002 group=0x00000000/0 grtt=0.000001s gsize=0
  key_req: [
    '401000000a3d0002000000000000000010010000',
  ],
  // PROXY_KEY seq=0 src=0x0a3d0003 group=0x00000000/0 grtt=0.000001s gsize=0 nonce=0x8acbac06 key=RSA1024 dh=none 
  proxy_key: [
    '401100000a3d0003000000000000000011450088000000808acbac060100008000010001a82b5ca6624cdcdf30449a2e',
    '3f367813c65b40ce603c53301bb98197a4115633573e822026a63e75dfae506824be76b9aeff7200c5bfd9893441e060',
    '3390bea5f6c8a8db9803a6de524aff6870930f4d32b8a755aa9e150a49d31bdd3c6affc655d1bee7c6ff6da705b67f5a',
    '475afcf51f13a609c4f8d6c3ed20f4c5cd0287cf8b8eb116dda6c57b215b98244bad86b1aeb3fe2b14f14789ef8471a7',
    '0015cf2e5d2fa0f6e155a51acd097b49e1573380a6642baef2dc90cb3b0ba246cba4270f2952328ee17fa101bf12f9c2',
    '0ec7f4e0c473bc8cb3e6e8dbd41708927fe9bc1d9dcde25bd86517d834e4466decbd3eca21d261f088de7d37f4863d6a',
    '3783fd0a',
  ],
  // ENCRYPTED seq=2 src=0x0a3d0002 group=0x35c170a2/0 grtt=0.000001s gsize=0 ivctr=1 sig=0B payload=32B 293e46f6..
  encrypted_gcm: [
    '401200020a3d000235c170a200000000000000000000000100000020293e46f691c8200dc6d52d984df14d6a49fceb10',
    'bb10a8b8d4cdb617ca031866',
  ],
  // ENCRYPTED seq=1 src=0x0a3d0002 group=0x23c7c128/0 grtt=0.000001s gsize=0 ivctr=1 sig=20B payload=32B fe655897.
  encrypted_hmac: [
    '401200010a3d000223c7c12800000000000000000000000100140020e5dcf30f344cf0fd1faafc0b31b1a101686d5407',
    'fe65589729860cc02b927f7f3ee9da1689aa9d814919f80e62acd13f97aedcb0',
  ],
  // ENCRYPTED seq=2 src=0x0a3d0002 group=0xb3ef0160/0 grtt=0.000001s gsize=0 ivctr=1 sig=128B payload=32B 9fae6820
  encrypted_rsa_sig: [
    '401200020a3d0002b3ef0160000000000000000000000001008000202274320e6f3996a34f36f26907f400eb4333310b',
    '05c6b79033798fb30a96e2e8eba13d989636d5ba18245e76f659d0983e3b9d0f4039ae90fe3e6a4f26c8bffb8f2f3768',
    '2528b24a1ca7e43b754569bcf8b0f8a49dcf285626c10a2729df9e9bf38741353b21aad28c0136742287ac6f9304a5b8',
    '697f7d01798067e362ab58009fae6820b15f28bd672cb0fad6757d665ff51f6c09a2d6608981cbf267aab4f4',
  ],
  // ABORT seq=0 src=0x0a3d0002 group=0xda64a4f2/0 grtt=0.000001s gsize=0 flags=0x0 host=0x00000000 "No unencrypted
  abort_from_client: [
    '401300000a3d0002da64a4f200000000134d0000000000004e6f20756e656e63727970746564207472616e7366657273',
    '20616c6c6f77656400000000000000000000000000000000000000000000000000000000000000000000000000000000',
    '000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000',
    '000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000',
    '000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000',
    '000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000',
    '000000000000000000000000000000000000000000000000000000000000000000000000',
  ],
  // CONG_CTRL seq=23 src=0x0a3d0001 group=0x522434ce/0 grtt=0.0105s gsize=1 ccseq=0 ccrate=18462 items=[0x0a3d0002
  cong_ctrl: [
    '401400170a3d0001522434ce006a1800140400000000481e6b034d0100067f280a3d0002075f0000',
  ],
  // CC_ACK seq=2 src=0x0a3d0002 group=0x522434ce/0 grtt=0.000001s gsize=0 ext=TFMCC_ACK(flags=0x6 ccseq=0 ccrate=7
  cc_ack: [
    '401500020a3d0002522434ce00000000150600000305060000001cf40a3d00026b034d0100067f2a',
  ],
  // STATUS with -C tfmcc and loss: NAK bitmap plus EXT_TFMCC_ACK_INFO
  status_tfmcc: [
    '400b001a0a3d00021287bf46000000000b0700010000000003050200000481b60a3d00026b0350b80001133b00c48000',
    '04000040810044220040000000342004002322120810400000012016000181200000',
  ],
} as const;

type Name = keyof typeof CAPTURED;
function bytes(name: Name): Uint8Array {
  return new Uint8Array(Buffer.from(CAPTURED[name].join(''), 'hex'));
}
function packet(name: Name): Packet {
  const r = decodePacket(bytes(name));
  if (!r.ok) assert.fail(`${name}: ${r.error.kind}: ${r.error.message}`);
  return r.value;
}
function msg<T extends Message['type']>(name: Name, type: T): Extract<Message, { type: T }> {
  const m = packet(name).message;
  assert.equal(m.type, type, name);
  return m as Extract<Message, { type: T }>;
}
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

test('every captured datagram decodes and re-encodes byte for byte (fresh buffer and encodePacketInto)', () => {
  const scratch = new Uint8Array(2048).fill(0xee);
  for (const name of Object.keys(CAPTURED) as Name[]) {
    const d = bytes(name);
    const p = packet(name);
    assert.equal(hex(encodePacket(p)), hex(d), name);
    const n = encodePacketInto(p, scratch);
    assert.equal(hex(scratch.subarray(0, n)), hex(d), `${name} (into)`);
    assert.ok(describePacket(p).startsWith(p.message.type + ' seq='), name);
    if (p.message.type !== 'ENCRYPTED') {
      // the body alone (as after decryption) decodes to the same message
      const body = decodeMessageBody(d.subarray(16));
      assert.ok(body.ok, name);
      assert.equal(hex(encodeMessageBody(body.value)), hex(d.subarray(16)), name);
    }
  }
});

test('header: UFTP ID 0x40, quantized GRTT and group size bytes as sent', () => {
  const h = packet('reg_conf_three').header;
  assert.deepEqual(h, { version: 0x40, func: 4, seq: 1, srcId: 0x0a3d0001, groupId: 0x12583c48, groupInst: 0, grtt: 0x6a, gsize: 0x50, reserved: 0 });
  assert.equal(packet('announce_plain_sync').header.grtt, 0x91); // uftp -r 0.2
});

test('ANNOUNCE: IPv4 and IPv6 addresses, flags, cc type, timestamps', () => {
  const a = msg('announce_plain_sync', 'ANNOUNCE');
  assert.equal(a.flags, 0x01);
  assert.equal(a.robust, 20);
  assert.equal(a.blockSize, 1300);
  assert.deepEqual(a.timestamp, { sec: 0x6b034acd, usec: 0x00022b17 });
  assert.equal(a.publicMcast, '230.4.4.1');
  assert.equal(a.privateMcast, '230.5.5.117');
  assert.deepEqual(a.extensions, []);
  assert.deepEqual(a.clientIds, []);
  const v6 = msg('announce_ipv6', 'ANNOUNCE');
  assert.equal(v6.flags, 0x04);
  assert.equal(v6.publicMcast, 'ff02::1:2:3');
  assert.equal(v6.privateMcast, 'ff02::4:5:6');
  assert.equal(msg('announce_tfmcc', 'ANNOUNCE').ccType, 2);
});

test('ANNOUNCE EXT_ENC_INFO: RSA key exchange, ECDH_ECDSA (EC blobs without 0x04), ECDH_RSA', () => {
  const rsa = msg('announce_rsa_hmac', 'ANNOUNCE').extensions[0];
  assert.equal(rsa.type, 'EXT_ENC_INFO');
  if (rsa.type !== 'EXT_ENC_INFO') return;
  assert.deepEqual([rsa.flags, rsa.keyexType, rsa.sigType, rsa.keyType, rsa.hashType], [1, 1, 1, 4, 3]);
  assert.equal(rsa.serverRandom.length, 32);
  assert.equal(rsa.publicKey.kind, 'RSA');
  if (rsa.publicKey.kind === 'RSA') {
    assert.equal(rsa.publicKey.exponent, 65537);
    assert.equal(rsa.publicKey.modulus.length, 128);
  }
  assert.equal(rsa.dhKey, null);
  assert.equal(rsa.signature.length, 0);

  const ec = msg('announce_ecdh_ecdsa_gcm', 'ANNOUNCE').extensions[0];
  assert.equal(ec.type, 'EXT_ENC_INFO');
  if (ec.type !== 'EXT_ENC_INFO') return;
  assert.deepEqual([ec.flags, ec.keyexType, ec.sigType, ec.keyType, ec.hashType], [1, 3, 3, 6, 3]);
  assert.ok(ec.publicKey.kind === 'EC' && ec.publicKey.curve === 23 && ec.publicKey.key.length === 64);
  assert.ok(ec.dhKey !== null && ec.dhKey.kind === 'EC' && ec.dhKey.key.length === 64);
  // ECDSA signature: r length (16), s length (16), r, s
  assert.equal(ec.signature.length, 68);
  assert.deepEqual([...ec.signature.subarray(0, 4)], [0, 32, 0, 32]);

  const er = msg('announce_ecdh_rsa_keyex', 'ANNOUNCE').extensions[0];
  assert.ok(er.type === 'EXT_ENC_INFO' && er.keyexType === 2 && er.sigType === 2 && er.publicKey.kind === 'RSA');
  assert.ok(er.type === 'EXT_ENC_INFO' && er.dhKey?.kind === 'EC' && er.signature.length === 128);
});

test('REGISTER and CLIENT_KEY: key info, client random, proxy-relayed client IDs', () => {
  const plain = msg('register_plain', 'REGISTER');
  assert.equal(plain.keyInfo.length, 0);
  assert.ok(plain.clientRandom.every((x) => x === 0));
  assert.deepEqual(plain.timestamp, { sec: 0x6b034acd, usec: 0x00022c6d });
  assert.equal(msg('register_rsa', 'REGISTER').keyInfo.length, 128);
  const ecdh = msg('register_ecdh', 'REGISTER').keyInfo;
  assert.deepEqual([...ecdh.subarray(0, 4)], [2, 23, 0, 64]); // an EC key blob, 64-byte X||Y
  assert.deepEqual(msg('register_via_response_proxy', 'REGISTER').clientIds, [0x0a3d0002]);
  const ck = msg('client_key_ec', 'CLIENT_KEY');
  assert.ok(ck.publicKey.kind === 'EC' && ck.publicKey.key.length === 64);
  assert.equal(ck.verifyData.length, 68);
  const ckr = msg('client_key_rsa', 'CLIENT_KEY');
  assert.ok(ckr.publicKey.kind === 'RSA' && ckr.verifyData.length === 128);
});

test('REG_CONF, KEYINFO, DONE, DONE_CONF client lists', () => {
  assert.deepEqual(msg('reg_conf_one', 'REG_CONF').clientIds, [0x0a3d0002]);
  assert.deepEqual(msg('reg_conf_three', 'REG_CONF').clientIds, [0x0a3d0004, 0x0a3d0003, 0x0a3d0002]);
  const ki = msg('keyinfo_rsa', 'KEYINFO');
  assert.equal(ki.ivCounter, 1n);
  assert.equal(ki.keys.length, 1);
  assert.equal(ki.keys[0].clientId, 0x0a3d0002);
  assert.equal(ki.keys[0].encryptedGroupMaster.length, 48);
  assert.equal(msg('keyinfo_to_proxy', 'KEYINFO').keys[0].clientId, 0x0a3d0003);
  const d = msg('done_section', 'DONE');
  assert.deepEqual([d.fileId, d.section, d.clientIds], [1, 0, [0x0a3d0002]]);
  assert.equal(msg('done_session_end', 'DONE').fileId, 0);
  assert.equal(msg('done_conf', 'DONE_CONF').clientIds.length, 3);
});

test('FILEINFO: names NUL padded to words, no terminator when they fill it; link; FREESPACE', () => {
  const f = msg('fileinfo_regular', 'FILEINFO');
  assert.deepEqual([f.fileId, f.fileType, f.fileSize], [1, 0, 22]);
  assert.equal(bytesText(f.name), 'small.txt');
  assert.equal(f.linkName.length, 0);
  assert.equal(f.fileTimestamp, 0x6b034acb);
  const l = msg('fileinfo_link', 'FILEINFO');
  assert.equal(l.fileType, 2);
  assert.equal(bytesText(l.name), 'dir/link'); // 8 bytes, name length 2 words
  assert.equal(bytesText(l.linkName), '../small.txt'); // 12 bytes, link length 3 words
  assert.equal(bytes('fileinfo_link')[16 + 8], 2);
  const fs = msg('fileinfo_freespace', 'FILEINFO');
  assert.deepEqual([fs.fileType, bytesText(fs.name)], [4, '.']);
  const fa = msg('fileinfo_ack', 'FILEINFO_ACK');
  assert.deepEqual([fa.fileId, fa.flags, fa.clientIds], [1, 0, []]);
});

test('FILESEG with and without EXT_TFMCC_DATA_INFO; STATUS NAK bitmap; COMPLETE with EXT_FREESPACE_INFO', () => {
  const s = msg('fileseg_plain', 'FILESEG');
  assert.deepEqual([s.fileId, s.section, s.secBlock, s.extensions.length], [1, 0, 0, 0]);
  assert.equal(bytesText(s.data), 'hello uftp wire codec\n');
  const t = msg('fileseg_tfmcc', 'FILESEG');
  assert.deepEqual(t.extensions, [{ type: 'EXT_TFMCC_DATA_INFO', sendRate: 37492, ccSeq: 0, ccRate: 18462 }]);
  const st = msg('status_naks', 'STATUS');
  assert.equal(st.naks.length, 38);
  assert.ok(st.naks.some((x) => x !== 0));
  const tf = msg('status_tfmcc', 'STATUS');
  assert.equal(tf.extensions.length, 1);
  const ta = tf.extensions[0];
  assert.ok(ta.type === 'EXT_TFMCC_ACK_INFO' && ta.clientId === 0x0a3d0002 && (ta.flags & 0x02) !== 0);
  assert.ok(tf.naks.length > 0);
  const c = msg('complete_freespace', 'COMPLETE');
  assert.deepEqual(c.extensions, [{ type: 'EXT_FREESPACE_INFO', freespace: 85508419584n }]);
  assert.equal(msg('complete_normal', 'COMPLETE').status, 0);
});

test('HB_REQ / HB_RESP / KEY_REQ / PROXY_KEY from uftpproxyd', () => {
  const hb = msg('hb_req_plain', 'HB_REQ');
  assert.deepEqual([hb.nonce, hb.publicKey, hb.signedNonce.length], [0, null, 0]);
  const signed = msg('hb_req_signed', 'HB_REQ');
  assert.equal(signed.nonce, 0xca452cc8); // the nonce of the HB_RESP challenge, echoed
  assert.ok(signed.publicKey?.kind === 'RSA' && signed.signedNonce.length === 128);
  const ch = msg('hb_resp_challenge', 'HB_RESP');
  assert.deepEqual([ch.authenticated, ch.nonce], [2, 0xca452cc8]);
  assert.equal(msg('hb_resp_ok', 'HB_RESP').authenticated, 1);
  assert.deepEqual(msg('key_req', 'KEY_REQ').extensions, []);
  const pk = msg('proxy_key', 'PROXY_KEY');
  assert.equal(pk.nonce, 0x8acbac06);
  assert.ok(pk.publicKey.kind === 'RSA' && pk.dhKey === null && pk.signedNonce.length === 128);
});

test('ENCRYPTED: GCM (no signature), HMAC-SHA1 (20 bytes), RSA signature (128 bytes)', () => {
  const g = msg('encrypted_gcm', 'ENCRYPTED');
  assert.deepEqual([g.ivCounter, g.signature.length, g.payload.length], [1n, 0, 32]);
  const h = msg('encrypted_hmac', 'ENCRYPTED');
  assert.deepEqual([h.signature.length, h.payload.length], [20, 32]);
  assert.equal(msg('encrypted_rsa_sig', 'ENCRYPTED').signature.length, 128);
});

test('ABORT: 300-byte NUL padded message; CONG_CTRL items; CC_ACK with EXT_TFMCC_ACK_INFO', () => {
  const a = msg('abort_from_client', 'ABORT');
  assert.deepEqual([a.flags, a.host, a.message], [0, 0, 'No unencrypted transfers allowed']);
  assert.equal(bytes('abort_from_client').length, 16 + 308);
  const cc = msg('cong_ctrl', 'CONG_CTRL');
  assert.deepEqual([cc.ccSeq, cc.ccRate], [0, 18462]);
  assert.equal(cc.items.length, 1);
  assert.deepEqual([cc.items[0].clientId, cc.items[0].flags], [0x0a3d0002, 7]);
  const ack = msg('cc_ack', 'CC_ACK').extensions[0];
  assert.ok(ack.type === 'EXT_TFMCC_ACK_INFO');
  if (ack.type === 'EXT_TFMCC_ACK_INFO') assert.deepEqual([ack.flags, ack.ccSeq, ack.ccRate, ack.clientId], [6, 0, 7412, 0x0a3d0002]);
});

function decoded(d: Uint8Array): Packet {
  const r = decodePacket(d);
  if (!r.ok) assert.fail(r.error.message);
  return r.value;
}
function rsaPublicKey(b: KeyBlob): KeyObject {
  assert.ok(b.kind === 'RSA');
  const e = Buffer.alloc(4);
  e.writeUInt32BE(b.exponent);
  const n = Buffer.from(b.modulus).toString('base64url');
  return createPublicKey({ key: { kty: 'RSA', n, e: e.subarray(e.findIndex((x) => x !== 0)).toString('base64url') }, format: 'jwk' });
}

test('signatures cover the whole datagram with the signature bytes zeroed (checked with node:crypto)', () => {
  // ANNOUNCE, ECDH_RSA, -h sha1: the server's RSA key is in the same EXT_ENC_INFO
  const ad = bytes('announce_ecdh_rsa_keyex');
  const ap = decoded(ad);
  const ext = ap.message.type === 'ANNOUNCE' ? ap.message.extensions[0] : undefined;
  assert.ok(ext?.type === 'EXT_ENC_INFO');
  const span = signatureSpan(ad, ap);
  assert.deepEqual(span, { offset: ad.length - 128, length: 128 });
  assert.ok(verify('sha1', signedBytes(ad, ap), rsaPublicKey(ext.publicKey), ext.signature));
  assert.ok(!verify('sha1', ad, rsaPublicKey(ext.publicKey), ext.signature));
  // ENCRYPTED from the client, -w keyex: signed with the client's RSA key (the one its CLIENT_KEY carries)
  const ed = bytes('encrypted_rsa_sig');
  const ep = decoded(ed);
  assert.deepEqual(signatureSpan(ed, ep), { offset: 28, length: 128 });
  const ck = msg('client_key_rsa', 'CLIENT_KEY');
  assert.ok(ep.message.type === 'ENCRYPTED');
  assert.ok(verify('sha1', signedBytes(ed, ep), rsaPublicKey(ck.publicKey), ep.message.signature));
  const gd = bytes('encrypted_gcm');
  assert.equal(signatureSpan(gd, decoded(gd)), null);
  assert.throws(() => signatureSpan(bytes('encrypted_rsa_sig'), ep), RangeError);
});

/**
 * Bodies of ENCRYPTED datagrams from the same real session (uftp -Y aes256-cbc -h sha256, RSA key exchange with
 * persisted keys), decrypted offline with the group key: KEYINFO_ACK is only ever sent encrypted.
 */
const DECRYPTED = {
  keyinfo_ack: '060400001820d6bafefe5857df0d0f45',
  fileinfo: '070a00010000000003000000000000166b034acb6b034b42000dea23736d616c6c2e7478740000000a3d0002',
  fileinfo_ack: '08040001000000006b034b42000deb2c',
  fileseg: '090200010000000068656c6c6f2075667470207769726520636f6465630a',
  done_end: '0a020000000000000a3d0002',
  complete_end: '0c02000000000000',
  done_conf: '0d0100000a3d0002',
} as const;

test('decrypted ENCRYPTED payloads decode as message bodies and re-encode byte for byte', () => {
  for (const [name, h] of Object.entries(DECRYPTED)) {
    const r = decodeMessageBody(new Uint8Array(Buffer.from(h, 'hex')));
    if (!r.ok) assert.fail(`${name}: ${r.error.message}`);
    assert.equal(hex(encodeMessageBody(r.value)), h, name);
  }
  const ack = decodeMessageBody(new Uint8Array(Buffer.from(DECRYPTED.keyinfo_ack, 'hex')));
  assert.ok(ack.ok && ack.value.type === 'KEYINFO_ACK');
  if (ack.ok && ack.value.type === 'KEYINFO_ACK') {
    assert.equal(hex(ack.value.verifyData), '1820d6bafefe5857df0d0f45');
    assert.deepEqual(ack.value.extensions, []);
  }
  const fi = decodeMessageBody(new Uint8Array(Buffer.from(DECRYPTED.fileinfo, 'hex')));
  assert.ok(fi.ok && fi.value.type === 'FILEINFO' && bytesText(fi.value.name) === 'small.txt' && fi.value.fileSize === 22);
});
