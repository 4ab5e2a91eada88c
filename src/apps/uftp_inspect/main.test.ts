/**
 * uftp_inspect's command line: options, stdin, exit status and one-line errors. Runs the compiled CLI
 * beside this file (dist/src/cli/uftp_inspect.js), or the TypeScript source through tsx in development.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { LinkType } from '../../pcap/link.js';
import { linkFrame, udpIpPacket, writePcap } from '../../pcap/writer.js';
import { encodePacket, type Message } from '../../wire/index.js';

const self = fileURLToPath(import.meta.url);
const fromSource = self.endsWith('.ts');
const cli = self.replace(/apps\/uftp_inspect\/main\.test\.(ts|js)$/, `cli/uftp_inspect.$1`);

function inspect(args: string[], input?: Uint8Array): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [...(fromSource ? ['--import', 'tsx'] : []), cli, ...args], {
    input, encoding: 'utf8', timeout: 60_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const dir = mkdtempSync(join(tmpdir(), 'ui-cli-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const messages: Message[] = [
  { type: 'REG_CONF', extensions: [], clientIds: [0x0a400002] },
  { type: 'DONE', fileId: 1, section: 0, extensions: [], clientIds: [0x0a400002] },
  { type: 'DONE_CONF', extensions: [], clientIds: [0x0a400002] },
];
const frames = messages.map((message, i) => ({
  timeNs: 1_795_378_063_000_000_000n + BigInt(i) * 1000n,
  data: linkFrame(
    LinkType.LINUX_SLL2,
    udpIpPacket({
      srcAddr: '10.64.0.1', dstAddr: '230.5.5.1', srcPort: 50000, dstPort: 1044,
      payload: encodePacket({
        header: { version: 0x40, func: 0, seq: i, srcId: 0x0a400001, groupId: 0x12345678, groupInst: 0, grtt: 0, gsize: 0, reserved: 0 },
        message,
      }),
    }),
  ),
}));
// Plus one datagram on another port, which must not show up.
frames.push({ timeNs: 1_795_378_064_000_000_000n, data: linkFrame(LinkType.LINUX_SLL2, udpIpPacket({ srcAddr: '10.64.0.1', dstAddr: '10.64.0.2', srcPort: 53, dstPort: 53, payload: Uint8Array.of(1) })) });
const capture = writePcap({ linkType: LinkType.LINUX_SLL2 }, frames);
const capFile = join(dir, 'cap.pcap');
writeFileSync(capFile, capture);

test('--help prints usage and exits 0', () => {
  const r = inspect(['--help']);
  assert.equal(r.status, 0);
  assert.match(r.stdout, /^Usage: uftp_inspect \[--json\] \[--port N\] \[--summary\] FILE\|-/);
});

test('text output: one line per datagram, then the summary', () => {
  const r = inspect([capFile]);
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.trimEnd().split('\n');
  assert.match(lines[0], /^20:07:43\.000000 10\.64\.0\.1:50000 -> 230\.5\.5\.1:1044 REG_CONF seq=0 /);
  assert.match(lines[2], / DONE_CONF /);
  assert.equal(lines[3], '');
  assert.match(lines[4], /^4 frames, 4 UDP datagrams, 3 on port 1044: 3 decoded, 0 errors/);
  assert.match(r.stdout, /by type: DONE 1, DONE_CONF 1, REG_CONF 1/);
  assert.match(r.stdout, /group 0x12345678 \(instance 0\): 3 messages from 1 source: 0x0a400001/);
});

test('--json from stdin: one object per line; --summary --json: one object', () => {
  const r = inspect(['--json', '-'], capture);
  assert.equal(r.status, 0, r.stderr);
  const recs = r.stdout.trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.deepEqual(recs.map((x) => x.type), ['REG_CONF', 'DONE', 'DONE_CONF']);
  assert.equal(recs[1].file_id, 1);
  const s = inspect(['-j', '-s', capFile]);
  assert.equal(s.status, 0);
  const lines = s.stdout.trimEnd().split('\n');
  assert.equal(lines.length, 1);
  const sum = JSON.parse(lines[0]) as Record<string, unknown>;
  assert.equal(sum.datagrams, 3);
  assert.deepEqual(sum.by_type, { DONE: 1, DONE_CONF: 1, REG_CONF: 1 });
});

test('--port selects another port', () => {
  const r = inspect(['--json', '--port', '53', capFile]);
  assert.equal(r.status, 0);
  const recs = r.stdout.trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.equal(recs.length, 1);
  assert.match(String(recs[0].error), /UFTP header/);
});

test('errors: one line on stderr, exit 1', () => {
  const cases: [string[], RegExp][] = [
    [[join(dir, 'missing.pcap')], /^uftp_inspect: cannot read .*missing\.pcap: no such file\n$/],
    [[dir], /^uftp_inspect: cannot read .*: is a directory\n$/],
    [['--bogus', capFile], /^uftp_inspect: Unknown option '--bogus' \(try --help\)\n$/],
    [['--port', 'x', capFile], /^uftp_inspect: --port: "x" is not a port number \(1-65535\)\n$/],
    [[], /^uftp_inspect: no capture file given/],
    [[capFile, capFile], /^uftp_inspect: one capture file expected, got 2\n$/],
  ];
  for (const [args, re] of cases) {
    const r = inspect(args);
    assert.equal(r.status, 1, args.join(' '));
    assert.match(r.stderr, re);
  }
  const junk = join(dir, 'junk.pcap');
  writeFileSync(junk, 'not a capture at all');
  const r = inspect([junk]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /^uftp_inspect: .*junk\.pcap: not a pcap or pcapng capture \(starts with 0x6e6f7420\)\n$/);
});

test('a capture cut short: what was read is printed, then the error, exit 1', () => {
  const r = inspect(['--json', '-'], capture.subarray(0, capture.length - 5));
  assert.equal(r.status, 1);
  assert.equal(r.stdout.trimEnd().split('\n').length, 3);
  assert.match(r.stderr, /^uftp_inspect: standard input: file ends inside a packet record .*cut short\n$/);
});
