/**
 * `npm start`: the main demo, Figure 1 of uftpproxyd(1) in the lab (src/apps/uftpproxyd/demo.ts): the real uftp server
 * sending a directory through our server proxy and client proxy to two real uftpd clients, with a summary of
 * what crossed each hop (decoded by the inspector) and SHA-256 checks. It needs root (network namespaces).
 *
 * Without root (or with a CAPTURE argument) it shows the inspector demo instead:
 * uftp_inspect on a bundled capture of the real UFTP 4.10 suite
 * (test/fixtures/captures/plain.pcap: a plain transfer, server and two clients). Runs of the same message
 * type (20 ANNOUNCEs, 18 FILESEGs...) are shortened; the full decode is `uftp_inspect FILE`, or
 * `uftp_inspect --json FILE` for JSON lines.
 *
 *   node dist/src/cli/demo.js [CAPTURE]
 */
import { createReadStream, existsSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { newStats, readUdpDatagrams } from '../../pcap/datagrams.js';
import { inspectEvent, InspectSummary, type Inspected } from '../../pcap/inspect.js';
import { proxyDemo } from '../uftpproxyd/demo.js';
import { DEFAULT_PORT } from '../../core/address.js';

const PORT = DEFAULT_PORT;
/** In a run of one message type longer than this, only the first and last lines are shown. */
const RUN_SHOWN = 2;

function repoRoot(): string {
  let d = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(d, 'package.json'))) {
    const up = dirname(d);
    if (up === d) return process.cwd();
    d = up;
  }
  return d;
}

async function main(): Promise<number> {
  if (process.argv[2] === undefined) {
    const code = await proxyDemo((l) => process.stdout.write(`${l}\n`));
    if (code !== undefined) return code;
  }
  return inspectorDemo();
}

async function inspectorDemo(): Promise<number> {
  const root = repoRoot();
  const file = process.argv[2] ?? join(root, 'test', 'fixtures', 'captures', 'plain.pcap');
  if (!existsSync(file)) {
    process.stderr.write(`demo: capture ${file} not found\n`);
    return 1;
  }
  const shown = relative(process.cwd(), file) || file;
  const out: string[] = [];
  out.push(`uftp-ts demo: uftp_inspect on ${shown}`);
  out.push('(a capture of the real UFTP 4.10 programs; full decode: node dist/src/cli/uftp_inspect.js [--json] FILE)');
  out.push('');

  const stats = newStats();
  const summary = new InspectSummary();
  let run: Inspected[] = [];
  const flush = () => {
    if (run.length <= RUN_SHOWN + 1) {
      for (const x of run) out.push(x.line);
    } else {
      for (const x of run.slice(0, RUN_SHOWN)) out.push(x.line);
      out.push(`    ... ${run.length - RUN_SHOWN - 1} more ${run[0].type ?? 'undecodable'} ...`);
      out.push(run[run.length - 1].line);
    }
    run = [];
  };
  for await (const item of readUdpDatagrams(createReadStream(file), { port: PORT }, stats)) {
    if (!item.ok) {
      process.stderr.write(`demo: ${shown}: ${item.error}\n`);
      return 1;
    }
    const x = inspectEvent(item.value, { json: false });
    summary.add(x);
    if (run.length > 0 && run[0].type !== x.type) flush();
    run.push(x);
  }
  flush();
  out.push('');
  out.push('Summary:');
  out.push(summary.toText(stats, PORT));
  const width = process.stdout.isTTY ? process.stdout.columns : 0;
  const lines = width > 20 ? out.map((l) => (l.length > width ? `${l.slice(0, width - 1)}…` : l)) : out;
  process.stdout.write(`${lines.join('\n')}\n`);
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(`demo: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = 1;
  },
);
