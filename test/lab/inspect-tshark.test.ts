/**
 * uftp_inspect against an independent decoder: Wireshark's UFTP4 dissector (tshark -T json).
 *
 * For every fixture capture of the real UFTP 4.10 programs (test/fixtures/captures/), both decoders run
 * on the same file; datagrams are matched by frame number and every field both decoders expose is
 * compared (the mapping table is in docs/uftp_inspect.md). The test fails on any difference, on a frame
 * one decoder sees and the other does not, and if fewer fields than expected were compared (so it cannot
 * pass vacuously). It lists the message types each fixture holds, and the tshark fields left uncompared.
 * The fixtures include IPv6 through proxies (ipv6.pcap), ABORT (abort.pcap) and TFMCC with loss (tfmcc-loss.pcap:
 * STATUS, CONG_CTRL, CC_ACK). Two captures are also made at test time in the lab's namespaces: a fresh TFMCC run
 * with loss (different rates and timings every run) and IPv4 fragments, which no fixture holds. The same comparison runs on a nanosecond pcap copy (tcpdump)
 * and a pcapng copy (editcap) of one fixture, so those readers are checked against tshark too.
 *
 * Needs tshark, editcap and tcpdump (Debian packages tshark, wireshark-common, tcpdump) and the compiled CLI
 * (npx tsc -p . first: dist/src/cli/uftp_inspect.js).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { runScenario } from '../../src/lab/index.js';
import { unquantizeGrtt, unquantizeRate } from '../../src/wire/quantize.js';

type J = null | boolean | number | string | J[] | { [k: string]: J };
type JObj = { [k: string]: J };

function repoRoot(): string {
  let d = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(d, 'package.json')) || !existsSync(join(d, 'src', 'pcap'))) {
    const up = dirname(d);
    if (up === d) throw new Error('repository root not found');
    d = up;
  }
  return d;
}

const ROOT = repoRoot();
const CLI = join(ROOT, 'dist', 'src', 'cli', 'uftp_inspect.js');
const FIXTURES = process.env.UFTP_INSPECT_FIXTURES ?? join(ROOT, 'test', 'fixtures', 'captures');
const PORT = 1044;

/** Fixture, and message types it must contain (a wrong or truncated fixture fails loudly). */
const CASES: { file: string; mustHave: string[] }[] = [
  { file: 'plain.pcap', mustHave: ['ANNOUNCE', 'REGISTER', 'REG_CONF', 'FILEINFO', 'FILEINFO_ACK', 'FILESEG', 'DONE', 'COMPLETE', 'DONE_CONF'] },
  { file: 'rsa-hmac.pcap', mustHave: ['ANNOUNCE', 'REGISTER', 'KEYINFO', 'ENCRYPTED'] },
  { file: 'ecdh-ecdsa-gcm-clientauth.pcap', mustHave: ['ANNOUNCE', 'REGISTER', 'CLIENT_KEY', 'KEYINFO', 'ENCRYPTED'] },
  { file: 'proxies-heartbeat.pcap', mustHave: ['ANNOUNCE', 'REGISTER', 'HB_REQ', 'HB_RESP', 'FILESEG', 'DONE_CONF'] },
  { file: 'response-proxy.pcap', mustHave: ['ANNOUNCE', 'REGISTER', 'KEY_REQ', 'PROXY_KEY', 'KEYINFO', 'ENCRYPTED'] },
  { file: 'ipv6.pcap', mustHave: ['ANNOUNCE', 'REGISTER', 'REG_CONF', 'FILEINFO', 'FILEINFO_ACK', 'FILESEG', 'DONE', 'COMPLETE', 'DONE_CONF'] },
  { file: 'abort.pcap', mustHave: ['ANNOUNCE', 'REGISTER', 'ABORT', 'FILESEG', 'DONE_CONF'] },
  { file: 'tfmcc-loss.pcap', mustHave: ['ANNOUNCE', 'FILESEG', 'STATUS', 'CONG_CTRL', 'CC_ACK', 'COMPLETE', 'DONE_CONF'] },
];

/** Each datagram gets at least: 9 header fields + time, src, dst. */
const MIN_FIELDS_PER_DATAGRAM = 12;
const MIN_FIELDS_PER_FIXTURE = 500;

// ---- running the decoders ----

function run(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, {
    encoding: 'utf8',
    maxBuffer: 1 << 30,
    timeout: 120_000,
    env: { ...process.env, TZ: 'UTC', LC_ALL: 'C' },
  });
  if (r.error) throw r.error;
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return r.stdout;
}

interface TsharkFrame {
  frame: number;
  timeEpoch: string;
  src: string;
  dst: string;
  /** The uftp4 layer, or null when tshark did not dissect UFTP in this frame. */
  uftp: JObj | null;
  malformed: boolean;
  /** udp.payload as hex, for the one field tshark's dissector gets wrong (CC_ACK function byte). */
  payload: string;
}

function obj(v: J | undefined): JObj | undefined {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? v : undefined;
}
function str(v: J | undefined): string | undefined {
  return typeof v === 'string' ? v : undefined;
}
function list(v: J | undefined): J[] {
  return v === undefined ? [] : Array.isArray(v) ? v : [v];
}

function tsharkFrames(file: string): TsharkFrame[] {
  const out = run('tshark', ['-r', file, '-T', 'json', '--no-duplicate-keys', '-d', `udp.port==${PORT},uftp`]);
  const packets = JSON.parse(out) as J[];
  const frames: TsharkFrame[] = [];
  for (const p of packets) {
    const layers = obj(obj(obj(p)?._source)?.layers);
    if (!layers) continue;
    const udp = obj(layers.udp);
    if (!udp) continue;
    const sport = Number(str(udp['udp.srcport']));
    const dport = Number(str(udp['udp.dstport']));
    if (sport !== PORT && dport !== PORT) continue;
    const frameLayer = obj(layers.frame) ?? {};
    const ip4 = obj(layers.ip);
    const ip6 = obj(layers.ipv6);
    const srcIp = ip4 ? str(ip4['ip.src']) : `[${str(ip6?.['ipv6.src'])}]`;
    const dstIp = ip4 ? str(ip4['ip.dst']) : `[${str(ip6?.['ipv6.dst'])}]`;
    frames.push({
      frame: Number(str(frameLayer['frame.number'])),
      timeEpoch: str(frameLayer['frame.time_epoch']) ?? '',
      src: `${srcIp}:${sport}`,
      dst: `${dstIp}:${dport}`,
      uftp: obj(layers.uftp4) ?? null,
      payload: bytes(udp['udp.payload']) ?? '',
      malformed: '_ws.malformed' in layers || JSON.stringify(layers.uftp4 ?? {}).includes('_ws.malformed'),
    });
  }
  return frames;
}

function ourRecords(file: string): JObj[] {
  const out = run('node', [CLI, '--json', file]);
  return out
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l) as JObj);
}

// ---- normalizing values ----

function int(v: J | undefined): bigint | undefined {
  if (typeof v === 'number') return BigInt(v);
  if (typeof v !== 'string' || v === '') return undefined;
  if (/^0x[0-9a-f]+$/i.test(v)) return BigInt(v);
  if (/^-?\d+$/.test(v)) return BigInt(v);
  return undefined;
}
function bytes(v: J | undefined): string | undefined {
  if (typeof v !== 'string') return undefined;
  return v.replace(/:/g, '').toLowerCase();
}
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
/** tshark's FT_ABSOLUTE_TIME text (TZ=UTC) -> "sec.usec". */
function tsharkTime(v: J | undefined): string | undefined {
  const s = str(v);
  if (s === undefined) return undefined;
  const m = /^(\w{3}) +(\d+), (\d+) (\d\d):(\d\d):(\d\d)(?:\.(\d+))? UTC$/.exec(s);
  if (!m) return `unparsed:${s}`;
  const sec = Date.UTC(Number(m[3]), MONTHS.indexOf(m[1]), Number(m[2]), Number(m[4]), Number(m[5]), Number(m[6])) / 1000;
  const usec = Number(((m[7] ?? '') + '000000').slice(0, 6));
  return `${sec}.${usec}`;
}
function ourTime(v: J | undefined): string | undefined {
  const o = obj(v);
  if (!o) return undefined;
  return `${o.sec}.${o.usec}`;
}
/** Our ISO 8601 time -> "sec.usec" for the frame time. */
function isoToSecUsec(v: J | undefined): string | undefined {
  const s = str(v);
  if (s === undefined) return undefined;
  const m = /^(.*T\d\d:\d\d:\d\d)\.(\d{6})Z$/.exec(s);
  if (!m) return undefined;
  return `${Date.parse(`${m[1]}Z`) / 1000}.${Number(m[2])}`;
}
function epochToSecUsec(v: string): string {
  const [sec, frac = ''] = v.split('.');
  return `${Number(sec)}.${Number((frac + '000000').slice(0, 6))}`;
}
/**
 * A TFMCC rate as tshark shows it. Ours: the decoded rate (NORM float, see docs/protocol-notes.md), and the
 * 16-bit value as sent in `<name>_q`; tshark keeps the decoded rate in a 32-bit field, so rates of 2^32 and
 * more wrap. Both of ours are checked: the decoded value against tshark, and that it is what `_q` decodes to.
 */
function rate(obj: JObj | undefined, key: string): bigint | undefined {
  const v = obj?.[key];
  const q = obj?.[`${key}_q`];
  if (typeof v !== 'number' || typeof q !== 'number' || v !== unquantizeRate(q)) return undefined;
  return BigInt(Math.floor(v)) % 2n ** 32n;
}
function blobLen(v: J | undefined): bigint {
  const b = obj(v);
  if (!b) return 0n;
  const key = str(b.modulus) ?? str(b.key) ?? '';
  return BigInt((str(b.kind) === 'RSA' ? 8 : 4) + key.length / 2);
}

// ---- the comparison ----

export interface Comparison {
  compared: number;
  mismatches: string[];
  byType: Map<string, number>;
  fieldsByType: Map<string, number>;
  /** tshark leaf fields we did not compare, with counts. */
  uncompared: Map<string, number>;
  datagrams: number;
  minPerDatagram: number;
}

class Checker {
  compared = 0;
  readonly mismatches: string[] = [];
  /** tshark keys consumed for the current frame. */
  readonly used = new Set<string>();
  readonly flagBits = new Set<string>();
  constructor(private readonly where: string) {}

  field(label: string, tkey: string | null, tv: unknown, ov: unknown): void {
    if (tkey !== null) this.used.add(tkey);
    // A flags byte compared whole covers tshark's per-bit breakdown of it.
    if (tkey !== null && tkey.endsWith('.flags')) this.flagBits.add(`${tkey}.`);
    this.compared++;
    if (tv === undefined || ov === undefined || tv !== ov) {
      this.mismatches.push(`${this.where} ${label}: tshark=${String(tv)} ours=${String(ov)}`);
    }
  }

  float(label: string, tkey: string, tv: J | undefined, ov: number | undefined): void {
    this.used.add(tkey);
    this.compared++;
    const t = Number(str(tv));
    if (ov === undefined || !Number.isFinite(t) || Math.abs(t - ov) > 1e-12 + 1e-9 * Math.abs(ov)) {
      this.mismatches.push(`${this.where} ${label}: tshark=${String(tv)} ours=${String(ov)}`);
    }
  }
}

const BLOB_KEYS = ['uftp4.rsablob.blobtype', 'uftp4.rsablob.reserved', 'uftp4.rsablob.modlen', 'uftp4.rsablob.exponent', 'uftp4.rsablob.modulus',
  'uftp4.ecblob.blobtype', 'uftp4.ecblob.curve', 'uftp4.ecblob.keylen', 'uftp4.ecblob.key'];

/** A key blob subtree of tshark against our {kind, exponent, modulus} / {kind, curve, key}. */
function compareBlob(c: Checker, label: string, t: JObj | undefined, o: J | undefined): void {
  if (!t) {
    c.field(`${label} present`, null, 'absent', obj(o) ? 'present' : 'absent');
    return;
  }
  const b = obj(o);
  if (t['uftp4.rsablob.blobtype'] !== undefined) {
    c.field(`${label}.blobtype`, 'uftp4.rsablob.blobtype', int(t['uftp4.rsablob.blobtype']), b?.kind === 'RSA' ? 1n : b?.kind === 'EC' ? 2n : undefined);
    c.field(`${label}.modlen`, 'uftp4.rsablob.modlen', int(t['uftp4.rsablob.modlen']), b ? BigInt((str(b.modulus) ?? '').length / 2) : undefined);
    c.field(`${label}.exponent`, 'uftp4.rsablob.exponent', int(t['uftp4.rsablob.exponent']), int(b?.exponent));
    c.field(`${label}.modulus`, 'uftp4.rsablob.modulus', bytes(t['uftp4.rsablob.modulus']), str(b?.modulus));
  } else {
    c.field(`${label}.blobtype`, 'uftp4.ecblob.blobtype', int(t['uftp4.ecblob.blobtype']), b?.kind === 'EC' ? 2n : b?.kind === 'RSA' ? 1n : undefined);
    c.field(`${label}.curve`, 'uftp4.ecblob.curve', int(t['uftp4.ecblob.curve']), int(b?.curve));
    c.field(`${label}.keylen`, 'uftp4.ecblob.keylen', int(t['uftp4.ecblob.keylen']), b ? BigInt((str(b.key) ?? '').length / 2) : undefined);
    c.field(`${label}.key`, 'uftp4.ecblob.key', bytes(t['uftp4.ecblob.key']), str(b?.key));
  }
  for (const k of BLOB_KEYS) if (t[k] !== undefined) c.used.add(k);
}

function ext(o: JObj, type: string): JObj | undefined {
  return list(o.extensions).map(obj).find((e) => e?.type === type);
}

function compareIdList(c: Checker, t: JObj, prefix: string, ours: J | undefined): void {
  const destlist = obj(t['uftp4.destlist']);
  const theirs = list(destlist?.['uftp4.dest']).map((x) => str(x) ?? '');
  if (destlist) c.used.add('uftp4.destlist');
  if (theirs.length > 0) c.used.add('uftp4.dest');
  const mine = list(ours).map((x) => str(x) ?? '');
  c.field(`${prefix}.client_ids.count`, null, theirs.length, mine.length);
  theirs.forEach((id, i) => c.field(`${prefix}.client_ids[${i}]`, 'uftp4.dest', id.toLowerCase(), mine[i]));
}

function compareTfmccAck(c: Checker, t: JObj | undefined, o: JObj): void {
  if (!t) return;
  const e = ext(o, 'EXT_TFMCC_ACK_INFO');
  c.field('EXT_TFMCC_ACK_INFO.flags', 'uftp4.tfmccack.flags', int(t['uftp4.tfmccack.flags']), int(e?.flags));
  c.field('EXT_TFMCC_ACK_INFO.cc_seq', 'uftp4.tfmccack.cc_seq', int(t['uftp4.tfmccack.cc_seq']), int(e?.cc_seq));
  c.field('EXT_TFMCC_ACK_INFO.exttype', 'uftp4.tfmccack.exttype', int(t['uftp4.tfmccack.exttype']), e ? 3n : undefined);
  c.field('EXT_TFMCC_ACK_INFO.cc_rate', 'uftp4.tfmccack.cc_rate', int(t['uftp4.tfmccack.cc_rate']), rate(e, 'cc_rate'));
  c.field('EXT_TFMCC_ACK_INFO.client_id', 'uftp4.tfmccack.client_id', str(t['uftp4.tfmccack.client_id'])?.toLowerCase(), str(e?.client_id));
  c.field('EXT_TFMCC_ACK_INFO.timestamp', 'uftp4.tfmccack.tstamp', tsharkTime(t['uftp4.tfmccack.tstamp']), ourTime(e?.timestamp));
}

/** The message body: tshark's subtree for the message against our record. */
function compareBody(c: Checker, type: string, u: JObj, o: JObj, payload: string): void {
  const sub = (name: string): JObj => {
    const key = `uftp4.${name}`;
    const t = obj(u[key]);
    c.field(`${name} subtree present`, key, t ? 'present' : 'absent', 'present');
    // The message's own function byte (ENCRYPTED has none). tshark 4.0's CC_ACK shows the header length in
    // bytes there instead (docs/protocol-notes.md, Inspector): checked against the raw byte below instead.
    if (t && t[`${key}.func`] !== undefined && name !== 'ccack') c.field(`${name}.func`, `${key}.func`, int(t[`${key}.func`]), BigInt(MESSAGE_NUMBERS[type] ?? -1));
    return t ?? {};
  };
  const I = (label: string, t: JObj, tkey: string, ov: J | undefined) => c.field(label, tkey, int(t[tkey]), int(ov));
  const B = (label: string, t: JObj, tkey: string, ov: J | undefined) => c.field(label, tkey, bytes(t[tkey]), str(ov));
  const T = (label: string, t: JObj, tkey: string, ov: J | undefined) => c.field(label, tkey, tsharkTime(t[tkey]), ourTime(ov));
  switch (type) {
    case 'ANNOUNCE': {
      const t = sub('announce');
      I('flags', t, 'uftp4.announce.flags', o.flags);
      I('robust', t, 'uftp4.announce.robust', o.robust);
      I('cc_type', t, 'uftp4.announce.cc_type', o.cc_type);
      I('block_size', t, 'uftp4.announce.blocksize', o.block_size);
      T('timestamp', t, 'uftp4.announce.tstamp', o.timestamp);
      const v6 = t['uftp4.announce.publicmcast.ipv6'] !== undefined;
      const pk = v6 ? 'uftp4.announce.publicmcast.ipv6' : 'uftp4.announce.publicmcast.ipv4';
      const qk = v6 ? 'uftp4.announce.privatemcast.ipv6' : 'uftp4.announce.privatemcast.ipv4';
      c.field('public_mcast', pk, str(t[pk]), str(o.public_mcast));
      c.field('private_mcast', qk, str(t[qk]), str(o.private_mcast));
      const enc = obj(t['uftp4.encinfo']);
      const e = ext(o, 'EXT_ENC_INFO');
      c.field('EXT_ENC_INFO present', enc ? 'uftp4.encinfo' : null, enc ? 'present' : 'absent', e ? 'present' : 'absent');
      if (enc && e) {
        c.field('EXT_ENC_INFO.exttype', 'uftp4.encinfo.exttype', int(enc['uftp4.encinfo.exttype']), 1n);
        I('EXT_ENC_INFO.flags', enc, 'uftp4.encinfo.flags', e.flags);
        I('EXT_ENC_INFO.keyex_type', enc, 'uftp4.encinfo.keyextype', e.keyex_type);
        I('EXT_ENC_INFO.sig_type', enc, 'uftp4.encinfo.sigtype', e.sig_type);
        I('EXT_ENC_INFO.key_type', enc, 'uftp4.encinfo.keytype', e.key_type);
        I('EXT_ENC_INFO.hash_type', enc, 'uftp4.encinfo.hashtype', e.hash_type);
        c.field('EXT_ENC_INFO.keylen', 'uftp4.encinfo.keylen', int(enc['uftp4.encinfo.keylen']), blobLen(e.public_key));
        c.field('EXT_ENC_INFO.dhlen', 'uftp4.encinfo.dhlen', int(enc['uftp4.encinfo.dhlen']), blobLen(e.dh_key));
        c.field('EXT_ENC_INFO.siglen', 'uftp4.encinfo.siglen', int(enc['uftp4.encinfo.siglen']), BigInt((str(e.signature) ?? '').length / 2));
        B('EXT_ENC_INFO.server_random', enc, 'uftp4.encinfo.rand1', e.server_random);
        compareBlob(c, 'EXT_ENC_INFO.public_key', obj(enc['uftp4.encinfo.keyblob']), e.public_key);
        c.used.add('uftp4.encinfo.keyblob');
        if (enc['uftp4.encinfo.dhblob'] !== undefined || e.dh_key !== null) {
          compareBlob(c, 'EXT_ENC_INFO.dh_key', obj(enc['uftp4.encinfo.dhblob']), e.dh_key);
          c.used.add('uftp4.encinfo.dhblob');
        }
        if (enc['uftp4.encinfo.sig'] !== undefined) B('EXT_ENC_INFO.signature', enc, 'uftp4.encinfo.sig', e.signature);
      }
      compareIdList(c, t, type, o.client_ids);
      break;
    }
    case 'REGISTER': {
      const t = sub('register');
      c.field('key_info length', 'uftp4.register.keyinfo_len', int(t['uftp4.register.keyinfo_len']), BigInt((str(o.key_info) ?? '').length / 2));
      T('timestamp', t, 'uftp4.register.tstamp', o.timestamp);
      B('client_random', t, 'uftp4.register.rand2', o.client_random);
      if (t['uftp4.register.keyinfo'] !== undefined) B('key_info', t, 'uftp4.register.keyinfo', o.key_info);
      compareIdList(c, t, type, o.client_ids);
      break;
    }
    case 'CLIENT_KEY': {
      const t = sub('clientkey');
      c.field('bloblen', 'uftp4.clientkey.bloblen', int(t['uftp4.clientkey.bloblen']), blobLen(o.public_key));
      c.field('siglen', 'uftp4.clientkey.siglen', int(t['uftp4.clientkey.siglen']), BigInt((str(o.verify_data) ?? '').length / 2));
      compareBlob(c, 'public_key', obj(t['uftp4.clientkey.keyblob']), o.public_key);
      c.used.add('uftp4.clientkey.keyblob');
      B('verify_data', t, 'uftp4.clientkey.verify', o.verify_data);
      break;
    }
    case 'REG_CONF':
      compareIdList(c, sub('regconf'), type, o.client_ids);
      break;
    case 'KEYINFO': {
      const t = sub('keyinfo');
      I('iv_counter', t, 'uftp4.keyinfo.ivctr', o.iv_counter);
      const dl = obj(t['uftp4.destlist']);
      if (dl) c.used.add('uftp4.destlist');
      const theirs = list(dl?.['uftp4.keyinfo.destkey']).map(obj);
      if (theirs.length > 0) c.used.add('uftp4.keyinfo.destkey');
      const mine = list(o.keys).map(obj);
      c.field('keys.count', null, theirs.length, mine.length);
      theirs.forEach((k, i) => {
        c.field(`keys[${i}].client_id`, 'uftp4.keyinfo.destid', str(k?.['uftp4.keyinfo.destid'])?.toLowerCase(), str(mine[i]?.client_id));
        c.field(`keys[${i}].encrypted_group_master`, 'uftp4.keyinfo.groupmaster', bytes(k?.['uftp4.keyinfo.groupmaster']), str(mine[i]?.encrypted_group_master));
      });
      break;
    }
    case 'KEYINFO_ACK':
      B('verify_data', sub('keyinfoack'), 'uftp4.keyinfoack.verify_data', o.verify_data);
      break;
    case 'FILEINFO': {
      const t = sub('fileinfo');
      I('file_id', t, 'uftp4.fileinfo.file_id', o.file_id);
      I('file_type', t, 'uftp4.fileinfo.ftype', o.file_type);
      I('file_size', t, 'uftp4.fileinfo.fsize', o.file_size);
      c.field('file_timestamp', 'uftp4.fileinfo.ftstamp', tsharkTime(t['uftp4.fileinfo.ftstamp']), `${o.file_timestamp}.0`);
      T('timestamp', t, 'uftp4.fileinfo.tstamp', o.timestamp);
      c.field('name', 'uftp4.fileinfo.name', str(t['uftp4.fileinfo.name']), str(o.name));
      if (t['uftp4.fileinfo.link'] !== undefined || str(o.link_name) !== '') {
        c.field('link_name', 'uftp4.fileinfo.link', str(t['uftp4.fileinfo.link']), str(o.link_name));
      }
      compareIdList(c, t, type, o.client_ids);
      break;
    }
    case 'FILEINFO_ACK': {
      const t = sub('fileinfoack');
      I('file_id', t, 'uftp4.fileinfoack.file_id', o.file_id);
      I('flags', t, 'uftp4.fileinfoack.flags', o.flags);
      T('timestamp', t, 'uftp4.fileinfoack.tstamp', o.timestamp);
      compareIdList(c, t, type, o.client_ids);
      break;
    }
    case 'FILESEG': {
      const t = sub('fileseg');
      I('file_id', t, 'uftp4.fileseg.file_id', o.file_id);
      I('section', t, 'uftp4.fileseg.section', o.section);
      I('sec_block', t, 'uftp4.fileseg.sec_block', o.sec_block);
      B('data', t, 'uftp4.fileseg.data', o.data);
      const td = obj(t['uftp4.tfmccdata']);
      if (td) {
        c.used.add('uftp4.tfmccdata');
        const e = ext(o, 'EXT_TFMCC_DATA_INFO');
        c.field('EXT_TFMCC_DATA_INFO.exttype', 'uftp4.tfmccdata.exttype', int(td['uftp4.tfmccdata.exttype']), e ? 2n : undefined);
        c.field('EXT_TFMCC_DATA_INFO.send_rate', 'uftp4.tfmccdata.send_rate', int(td['uftp4.tfmccdata.send_rate']), rate(e, 'send_rate'));
        I('EXT_TFMCC_DATA_INFO.cc_seq', td, 'uftp4.tfmccdata.cc_seq', e?.cc_seq);
        c.field('EXT_TFMCC_DATA_INFO.cc_rate', 'uftp4.tfmccdata.cc_rate', int(td['uftp4.tfmccdata.cc_rate']), rate(e, 'cc_rate'));
      }
      break;
    }
    case 'DONE': {
      const t = sub('done');
      I('file_id', t, 'uftp4.done.file_id', o.file_id);
      I('section', t, 'uftp4.done.section', o.section);
      compareIdList(c, t, type, o.client_ids);
      break;
    }
    case 'STATUS': {
      const t = sub('status');
      I('file_id', t, 'uftp4.status.file_id', o.file_id);
      I('section', t, 'uftp4.status.section', o.section);
      B('naks', t, 'uftp4.status.naks', o.naks);
      compareTfmccAck(c, obj(t['uftp4.tfmccack']), o);
      if (t['uftp4.tfmccack'] !== undefined) c.used.add('uftp4.tfmccack');
      break;
    }
    case 'COMPLETE': {
      const t = sub('complete');
      I('file_id', t, 'uftp4.complete.file_id', o.file_id);
      I('status', t, 'uftp4.complete.status', o.status);
      const fs = obj(t['uftp4.freespace']);
      if (fs) {
        c.used.add('uftp4.freespace');
        I('EXT_FREESPACE_INFO.freespace', fs, 'uftp4.freespace.freespace', ext(o, 'EXT_FREESPACE_INFO')?.freespace);
      }
      compareIdList(c, t, type, o.client_ids);
      break;
    }
    case 'DONE_CONF':
      compareIdList(c, sub('doneconf'), type, o.client_ids);
      break;
    case 'HB_REQ': {
      const t = sub('hbreq');
      I('nonce', t, 'uftp4.hbreq.nonce', o.nonce);
      c.field('bloblen', 'uftp4.hbreq.bloblen', int(t['uftp4.hbreq.bloblen']), blobLen(o.public_key));
      c.field('siglen', 'uftp4.hbreq.siglen', int(t['uftp4.hbreq.siglen']), BigInt((str(o.signed_nonce) ?? '').length / 2));
      if (t['uftp4.hbreq.keyblob'] !== undefined || obj(o.public_key)) {
        compareBlob(c, 'public_key', obj(t['uftp4.hbreq.keyblob']), o.public_key);
        c.used.add('uftp4.hbreq.keyblob');
      }
      if (t['uftp4.hbreq.verify'] !== undefined) B('signed_nonce', t, 'uftp4.hbreq.verify', o.signed_nonce);
      break;
    }
    case 'HB_RESP': {
      const t = sub('hbresp');
      I('authenticated', t, 'uftp4.hbresp.authenticated', o.authenticated);
      I('nonce', t, 'uftp4.hbresp.nonce', o.nonce);
      break;
    }
    case 'KEY_REQ':
      sub('keyreq');
      break;
    case 'PROXY_KEY': {
      const t = sub('proxykey');
      I('nonce', t, 'uftp4.proxykey.nonce', o.nonce);
      c.field('bloblen', 'uftp4.proxykey.bloblen', int(t['uftp4.proxykey.bloblen']), blobLen(o.public_key));
      c.field('dhlen', 'uftp4.proxykey.dhlen', int(t['uftp4.proxykey.dhlen']), blobLen(o.dh_key));
      c.field('siglen', 'uftp4.proxykey.siglen', int(t['uftp4.proxykey.siglen']), BigInt((str(o.signed_nonce) ?? '').length / 2));
      compareBlob(c, 'public_key', obj(t['uftp4.proxykey.keyblob']), o.public_key);
      c.used.add('uftp4.proxykey.keyblob');
      if (t['uftp4.proxykey.dhblob'] !== undefined || obj(o.dh_key)) {
        compareBlob(c, 'dh_key', obj(t['uftp4.proxykey.dhblob']), o.dh_key);
        c.used.add('uftp4.proxykey.dhblob');
      }
      if (t['uftp4.proxykey.verify'] !== undefined) B('signed_nonce', t, 'uftp4.proxykey.verify', o.signed_nonce);
      break;
    }
    case 'ENCRYPTED': {
      const t = sub('encrypted');
      I('iv_counter', t, 'uftp4.encrypted.ivctr', o.iv_counter);
      c.field('sig_len', 'uftp4.encrypted.sig_len', int(t['uftp4.encrypted.sig_len']), BigInt((str(o.signature) ?? '').length / 2));
      c.field('payload_len', 'uftp4.encrypted.payload_len', int(t['uftp4.encrypted.payload_len']), BigInt((str(o.payload) ?? '').length / 2));
      B('signature', t, 'uftp4.encrypted.signature', o.signature);
      B('payload', t, 'uftp4.encrypted.payload', o.payload);
      break;
    }
    case 'ABORT': {
      const t = sub('abort');
      I('flags', t, 'uftp4.abort.flags', o.flags);
      c.field('host', 'uftp4.abort.clientid', str(t['uftp4.abort.clientid'])?.toLowerCase(), str(o.host));
      c.field('message', 'uftp4.abort.message', str(t['uftp4.abort.message']), str(o.message));
      break;
    }
    case 'CONG_CTRL': {
      const t = sub('congctrl');
      I('cc_seq', t, 'uftp4.congctrl.cc_seq', o.cc_seq);
      c.field('cc_rate', 'uftp4.congctrl.cc_rate', int(t['uftp4.congctrl.cc_rate']), rate(o, 'cc_rate'));
      T('timestamp', t, 'uftp4.congctrl.tstamp', o.timestamp);
      const cclist = obj(t['uftp4.congctrl.cclist']);
      if (cclist) c.used.add('uftp4.congctrl.cclist');
      const items = list(cclist?.['uftp4.congctrl.item']).map(obj);
      if (items.length > 0) c.used.add('uftp4.congctrl.item');
      const mine = list(o.items).map(obj);
      c.field('items.count', null, items.length, mine.length);
      items.forEach((it, i) => {
        c.field(`items[${i}].client_id`, 'uftp4.congctrl.item.destid', str(it?.['uftp4.congctrl.item.destid'])?.toLowerCase(), str(mine[i]?.client_id));
        c.field(`items[${i}].flags`, 'uftp4.congctrl.item.flags', int(it?.['uftp4.congctrl.item.flags']), int(mine[i]?.flags));
        const rtt = mine[i]?.rtt;
        const rttQ = mine[i]?.rtt_q;
        const consistent = typeof rtt === 'number' && typeof rttQ === 'number' && rtt === unquantizeGrtt(rttQ);
        c.float(`items[${i}].rtt`, 'uftp4.congctrl.item.rtt', it?.['uftp4.congctrl.item.rtt'], consistent ? rtt : undefined);
      });
      break;
    }
    case 'CC_ACK': {
      const t = sub('ccack');
      // The function byte itself, from the raw UDP payload (offset 16), since tshark's field is not it.
      c.field('ccack.func (raw byte)', 'uftp4.ccack.func', payload.length >= 34 ? BigInt(parseInt(payload.slice(32, 34), 16)) : undefined, 21n);
      compareTfmccAck(c, obj(t['uftp4.tfmccack']), o);
      if (t['uftp4.tfmccack'] !== undefined) c.used.add('uftp4.tfmccack');
      break;
    }
    default:
      c.field('known message type', null, 'known', type);
  }
}

const HEADER_FIELDS: [string, string][] = [
  ['seq', 'uftp4.seq'],
  ['group_inst', 'uftp4.group_inst'],
  ['reserved', 'uftp4.reserved'],
  ['version', 'uftp4.version'],
];

const MESSAGE_NUMBERS: Record<string, number> = {
  ANNOUNCE: 1, REGISTER: 2, CLIENT_KEY: 3, REG_CONF: 4, KEYINFO: 5, KEYINFO_ACK: 6, FILEINFO: 7, FILEINFO_ACK: 8,
  FILESEG: 9, DONE: 10, STATUS: 11, COMPLETE: 12, DONE_CONF: 13, HB_REQ: 14, HB_RESP: 15, KEY_REQ: 16,
  PROXY_KEY: 17, ENCRYPTED: 18, ABORT: 19, CONG_CTRL: 20, CC_ACK: 21,
};

/** All leaf keys of a tshark subtree (for the "not compared" list). */
function leafKeys(v: J, out: string[]): void {
  const o = obj(v);
  if (o) {
    for (const [k, x] of Object.entries(o)) {
      if (obj(x) || Array.isArray(x)) {
        if (Array.isArray(x) && x.every((y) => typeof y === 'string')) out.push(k);
        else leafKeys(x, out);
      } else out.push(k);
    }
  } else if (Array.isArray(v)) {
    for (const x of v) leafKeys(x, out);
  }
}

export function compareDecoders(tshark: TsharkFrame[], ours: JObj[]): Comparison {
  const res: Comparison = {
    compared: 0, mismatches: [], byType: new Map(), fieldsByType: new Map(), uncompared: new Map(), datagrams: 0,
    minPerDatagram: Number.POSITIVE_INFINITY,
  };
  const mine = new Map<number, JObj>();
  for (const o of ours) mine.set(Number(o.frame), o);
  const theirs = new Set(tshark.map((f) => f.frame));
  for (const o of ours) {
    if (!theirs.has(Number(o.frame))) res.mismatches.push(`frame ${o.frame}: uftp_inspect has a datagram tshark does not see on port ${PORT}`);
  }
  for (const f of tshark) {
    const o = mine.get(f.frame);
    const type = str(o?.type) ?? '?';
    const c = new Checker(`frame ${f.frame} ${type}`);
    if (!o) {
      res.mismatches.push(`frame ${f.frame}: tshark sees a UDP datagram on port ${PORT} that uftp_inspect does not report`);
      continue;
    }
    res.datagrams++;
    c.field('time', null, epochToSecUsec(f.timeEpoch), isoToSecUsec(o.time));
    c.field('src', null, f.src, str(o.src));
    c.field('dst', null, f.dst, str(o.dst));
    const u = f.uftp;
    if (u === null || o.error !== undefined) {
      c.field('decodes', null, u === null ? 'tshark: no UFTP4' : f.malformed ? 'tshark: malformed' : 'ok', o.error !== undefined ? `ours: ${str(o.error)}` : 'ok');
    } else {
      if (f.malformed) c.field('malformed', null, 'tshark: malformed', 'ours: decoded');
      c.field('func', 'uftp4.func', int(u['uftp4.func']), BigInt(MESSAGE_NUMBERS[type] ?? -1));
      for (const [ok, tk] of HEADER_FIELDS) c.field(ok, tk, int(u[tk]), int(o[ok]));
      c.field('src_id', 'uftp4.src_id', str(u['uftp4.src_id']), str(o.src_id));
      c.field('group_id', 'uftp4.group_id', str(u['uftp4.group_id']), str(o.group_id));
      c.float('grtt', 'uftp4.grtt', u['uftp4.grtt'], typeof o.grtt === 'number' ? o.grtt : undefined);
      c.field('gsize', 'uftp4.gsize', int(u['uftp4.gsize']), int(o.gsize));
      compareBody(c, type, u, o, f.payload);
      const leaves: string[] = [];
      leafKeys(u, leaves);
      const covered = (k: string) => c.used.has(k) || [...c.flagBits].some((p) => k.startsWith(p));
      for (const k of leaves) if (!covered(k)) res.uncompared.set(k, (res.uncompared.get(k) ?? 0) + 1);
    }
    res.byType.set(type, (res.byType.get(type) ?? 0) + 1);
    res.fieldsByType.set(type, (res.fieldsByType.get(type) ?? 0) + c.compared);
    res.compared += c.compared;
    res.minPerDatagram = Math.min(res.minPerDatagram, c.compared);
    res.mismatches.push(...c.mismatches);
  }
  return res;
}

function report(name: string, r: Comparison): string {
  const types = [...r.byType].map(([k, v]) => `${k} ${v} (${r.fieldsByType.get(k)} fields)`).join(', ');
  const unc = [...r.uncompared].map(([k, v]) => `${k.replace(/^uftp4\./, '')}${v > 1 ? ` x${v}` : ''}`).join(', ');
  return `${name}: ${r.datagrams} datagrams, ${r.compared} fields compared, ${r.mismatches.length} differences\n` +
    `  message types: ${types}\n  tshark fields not compared: ${unc || 'none'}`;
}

function checkFixture(path: string, name: string, mustHave: string[]): Comparison {
  const r = compareDecoders(tsharkFrames(path), ourRecords(path));
  console.log(report(name, r));
  assert.deepEqual(r.mismatches.slice(0, 30), [], `${name}: uftp_inspect and tshark disagree (${r.mismatches.length} differences)`);
  assert.ok(r.datagrams >= 10, `${name}: only ${r.datagrams} UFTP datagrams`);
  assert.ok(r.compared >= MIN_FIELDS_PER_FIXTURE, `${name}: only ${r.compared} fields compared`);
  assert.ok(r.minPerDatagram >= MIN_FIELDS_PER_DATAGRAM, `${name}: a datagram had only ${r.minPerDatagram} fields compared`);
  for (const t of mustHave) assert.ok(r.byType.has(t), `${name}: expected ${t} in the capture; has ${[...r.byType.keys()].join(', ')}`);
  return r;
}

const work = mkdtempSync(join(tmpdir(), 'ui-tshark-'));
after(() => rmSync(work, { recursive: true, force: true }));

test('the compiled CLI and tshark are there', () => {
  assert.ok(existsSync(CLI), `${CLI} missing: run npx tsc -p . first`);
  assert.match(run('tshark', ['--version']), /TShark/);
});

for (const c of CASES) {
  test(`uftp_inspect matches tshark field by field: ${c.file}`, { timeout: 300_000 }, () => {
    checkFixture(join(FIXTURES, c.file), c.file, c.mustHave);
  });
}

// UFTP_INSPECT_EXTRA=a.pcap,b.pcapng compares more captures the same way (for checking any capture by hand).
for (const extra of (process.env.UFTP_INSPECT_EXTRA ?? '').split(',').filter((x) => x !== '')) {
  test(`uftp_inspect matches tshark field by field: ${extra}`, { timeout: 300_000 }, () => {
    checkFixture(extra, extra, []);
  });
}

/**
 * Captures made now, in the lab's namespaces (second octet 64), for what the fixtures do not hold:
 * TFMCC with 10 % loss on the segment (STATUS with NAKs, CONG_CTRL, CC_ACK, EXT_TFMCC_DATA_INFO) and
 * FILESEGs larger than the MTU (IPv4 fragments, reassembled by both decoders).
 */
const LIVE: { name: string; serverArgs: string[]; files: Record<string, number>; lossPct: number; mustHave: string[] }[] = [
  {
    name: 'live-tfmcc-loss', serverArgs: ['-C', 'tfmcc'], files: { 'big.bin': 200_000 }, lossPct: 10,
    mustHave: ['ANNOUNCE', 'FILESEG', 'STATUS', 'CONG_CTRL', 'CC_ACK', 'COMPLETE'],
  },
  { name: 'live-fragments', serverArgs: ['-b', '8000'], files: { 'frag.bin': 50_000 }, lossPct: 0, mustHave: ['FILESEG', 'DONE_CONF'] },
];
for (const l of LIVE) {
  test(`uftp_inspect matches tshark field by field: ${l.name} (captured now)`, { timeout: 300_000 }, async () => {
    const file = join(work, `${l.name}.pcap`);
    const r = await runScenario({
      figure: 'fig2', noProxies: true, hub: true, clients: ['client1', 'client2'], files: l.files, rateKbps: 20_000,
      serverArgs: [...l.serverArgs, '-P', '230.5.5.1'], keys: 'ec', timeoutMs: 90_000,
      captures: [{ host: 'server', iface: 'eS', file }],
      lab: { prefix: `ui${process.pid % 10000}`, octet: 64, lossPct: l.lossPct, workDir: join(work, l.name) },
    });
    assert.ok(r.ok, `${l.name}: transfer failed: ${r.reason}`);
    checkFixture(file, l.name, l.mustHave);
    if (l.name === 'live-fragments') {
      const sum = JSON.parse(run('node', [CLI, '--json', '--summary', file])) as JObj;
      assert.ok(Number(sum.reassembled) > 0, `${l.name}: no datagram was reassembled from fragments`);
    }
  });
}

test('nanosecond pcap (tcpdump) and its pcapng copy (editcap) decode the same as tshark', { timeout: 300_000 }, () => {
  const src = join(FIXTURES, 'ecdh-ecdsa-gcm-clientauth.pcap');
  const nano = join(work, 'ecdh-nano.pcap');
  const ng = join(work, 'ecdh-nano.pcapng');
  run('tcpdump', ['-r', src, '--time-stamp-precision=nano', '-w', nano]);
  run('editcap', ['-F', 'pcapng', nano, ng]);
  checkFixture(nano, 'ecdh-ecdsa-gcm-clientauth, nanosecond pcap', ['CLIENT_KEY', 'ENCRYPTED']);
  checkFixture(ng, 'ecdh-ecdsa-gcm-clientauth, nanosecond pcapng', ['CLIENT_KEY', 'ENCRYPTED']);
});

test('the comparison fails when a field differs (it is not vacuous)', { timeout: 300_000 }, () => {
  const path = join(FIXTURES, 'plain.pcap');
  const tshark = tsharkFrames(path);
  const ours = ourRecords(path);
  assert.deepEqual(compareDecoders(tshark, ours).mismatches, []);
  const fileseg = ours.findIndex((o) => o.type === 'FILESEG');
  assert.ok(fileseg >= 0);
  const changed = ours.map((o, i) => (i === fileseg ? { ...o, sec_block: Number(o.sec_block) + 1 } : o));
  const r = compareDecoders(tshark, changed);
  assert.equal(r.mismatches.length, 1);
  assert.match(r.mismatches[0], /FILESEG sec_block: tshark=\d+ ours=\d+/);
  const dropped = compareDecoders(tshark, ours.slice(1));
  assert.match(dropped.mismatches.join('\n'), /uftp_inspect does not report/);
});
