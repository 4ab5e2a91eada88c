/**
 * uftp_inspect: decode UFTP traffic in pcap/pcapng captures (docs/uftp_inspect.md).
 *
 *   uftp_inspect [--json] [--port N] [--summary] FILE|-
 *
 * Exit status: 0 when the capture was read to its end (datagrams that do not decode are reported and
 * counted, not fatal); 1 for a bad command line or a file that cannot be read (missing, not a capture,
 * corrupt or cut short: what could be decoded before the problem is still printed).
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { parseArgs } from 'node:util';
import { newStats, readUdpDatagrams } from '../../pcap/datagrams.js';
import { inspectEvent, InspectSummary } from '../../pcap/inspect.js';
import { DEFAULT_PORT } from '../../core/address.js';

const PROG = 'uftp_inspect';

const USAGE = `Usage: ${PROG} [--json] [--port N] [--summary] FILE|-

Decodes every UDP datagram to or from the UFTP port in a pcap or pcapng capture
(FILE, or - for standard input) with uftp-ts's wire codec.

  -j, --json      one JSON object per datagram and line, instead of text
  -p, --port N    UFTP port (default ${DEFAULT_PORT}); a datagram matches on either port
  -s, --summary   print only the summary (with --json: one JSON object)
  -h, --help      show this help

Text output: one line per datagram ("time src -> dst message"), then a summary
of message types, groups and errors. Datagrams that do not decode are shown
with their error and the tool goes on. Exit status 1 if the file cannot be read.
Link types: Ethernet (VLAN tags), Linux cooked v1/v2 (tcpdump -i any), raw IP,
loopback. IP fragments are reassembled. See docs/uftp_inspect.md.
`;

class Output {
  private buf: string[] = [];
  private size = 0;
  constructor(private readonly stream: NodeJS.WritableStream) {}

  async line(s: string): Promise<void> {
    this.buf.push(s, '\n');
    this.size += s.length + 1;
    if (this.size >= 1 << 16) await this.flush();
  }

  async flush(): Promise<void> {
    if (this.buf.length === 0) return;
    const text = this.buf.join('');
    this.buf = [];
    this.size = 0;
    if (!this.stream.write(text)) {
      await new Promise<void>((resolve) => this.stream.once('drain', resolve));
    }
  }
}

function fail(message: string): never {
  process.stderr.write(`${PROG}: ${message}\n`);
  process.exit(1);
}

function fsReason(e: unknown): string {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  switch (code) {
    case 'ENOENT':
      return 'no such file';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'EISDIR':
      return 'is a directory';
    default:
      return e instanceof Error ? e.message : String(e);
  }
}

async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        json: { type: 'boolean', short: 'j' },
        port: { type: 'string', short: 'p' },
        summary: { type: 'boolean', short: 's' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (e) {
    // parseArgs names the bad option ("Unknown option '--x'"); keep its first sentence.
    const msg = e instanceof Error ? e.message.split('. ')[0] : String(e);
    fail(`${msg} (try --help)`);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  let port = DEFAULT_PORT;
  if (values.port !== undefined) {
    if (!/^\d+$/.test(values.port) || Number(values.port) < 1 || Number(values.port) > 65535) {
      fail(`--port: "${values.port}" is not a port number (1-65535)`);
    }
    port = Number(values.port);
  }
  if (positionals.length !== 1) {
    fail(positionals.length === 0 ? 'no capture file given (FILE, or - for stdin; try --help)' : `one capture file expected, got ${positionals.length}`);
  }
  const file = positionals[0];
  let source: Readable;
  if (file === '-') {
    source = process.stdin;
  } else {
    try {
      const st = await stat(file);
      if (st.isDirectory()) fail(`cannot read ${file}: is a directory`);
    } catch (e) {
      fail(`cannot read ${file}: ${fsReason(e)}`);
    }
    source = createReadStream(file, { highWaterMark: 1 << 20 });
  }
  const name = file === '-' ? 'standard input' : file;

  const out = new Output(process.stdout);
  const stats = newStats();
  const summary = new InspectSummary();
  const json = values.json === true;
  const summaryOnly = values.summary === true;
  let fatal: string | null = null;
  try {
    for await (const item of readUdpDatagrams(source as AsyncIterable<Uint8Array>, { port }, stats)) {
      if (!item.ok) {
        fatal = item.error;
        break;
      }
      const x = inspectEvent(item.value, { json: json && !summaryOnly, line: !json && !summaryOnly });
      summary.add(x);
      if (summaryOnly) continue;
      await out.line(json ? JSON.stringify(x.json) : x.line);
    }
  } catch (e) {
    fatal = `cannot read ${name}: ${fsReason(e)}`;
  }
  if (json) {
    if (summaryOnly) await out.line(JSON.stringify(summary.toJson(stats, port)));
  } else {
    if (!summaryOnly && summary.datagrams > 0) await out.line('');
    await out.line(summary.toText(stats, port));
  }
  await out.flush();
  if (fatal !== null) {
    process.stderr.write(`${PROG}: ${fatal.startsWith('cannot read') ? fatal : `${name}: ${fatal}`}\n`);
    return 1;
  }
  return 0;
}

process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  // A closed pipe (| head) is the reader's choice, not our failure.
  if (e.code === 'EPIPE') process.exit(0);
  fail(`writing output: ${e.message}`);
});

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    // A bug: still one line, but with enough to find it.
    process.stderr.write(`${PROG}: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exitCode = 70;
  },
);
