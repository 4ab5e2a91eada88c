/**
 * Running short management commands (ip, nft, tc, ss) from the lab, always bounded in time.
 * These are configuration tools: they act on the lab's namespaces and exit. Programs that listen, join
 * multicast or send are never started here; they go through Lab.spawn, inside a namespace.
 */
import { spawn } from 'node:child_process';

export interface RunResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export class LabError extends Error {
  override readonly name = 'LabError';
}

/** Runs argv[0] with the rest as arguments, killed after timeoutMs; never throws for a non-zero exit. */
export function run(argv: readonly string[], opts: { timeoutMs?: number; input?: string } = {}): Promise<RunResult> {
  const timeoutMs = opts.timeoutMs ?? 20_000;
  return new Promise((resolve) => {
    const [cmd, ...args] = argv;
    if (cmd === undefined) throw new LabError('run: empty command');
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    const timer = setTimeout(() => { child.kill('SIGKILL'); stderr += `\n(killed after ${timeoutMs} ms)`; }, timeoutMs);
    child.on('error', (e) => { clearTimeout(timer); resolve({ code: 127, stdout, stderr: stderr + e.message }); });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr });
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(opts.input ?? '');
  });
}

/** Like run, but a non-zero exit is a LabError naming the command and its stderr. */
export async function must(argv: readonly string[], opts: { timeoutMs?: number; input?: string } = {}): Promise<string> {
  const r = await run(argv, opts);
  if (r.code !== 0) {
    throw new LabError(`${argv.join(' ')}: exit ${r.code}: ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`);
  }
  return r.stdout;
}

/** True when the command exists on PATH. */
export async function haveCommand(cmd: string): Promise<boolean> {
  const r = await run(['sh', '-c', `command -v ${cmd}`], { timeoutMs: 5000 });
  return r.code === 0 && r.stdout.trim() !== '';
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
