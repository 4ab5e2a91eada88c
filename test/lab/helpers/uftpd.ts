// Helpers for the uftpd lab tests: start OUR uftpd in a lab host like lab.realUftpd starts the real one, and
// make source trees with every kind of entry. Needs root and the compiled bins.
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { LabError, ourBin, treeHashes, type Lab, type UftpdOptions, type UftpdProc } from '../../../src/lab/lab.js';

/** Starts our uftpd (-d, foreground) in `host`, receiving into a fresh directory; waits for UDP 1044 (or -p). */
export async function ourUftpd(lab: Lab, host: string, o: UftpdOptions & { nodeArgs?: readonly string[] } = {}): Promise<UftpdProc> {
  const dest = o.dest ?? path.join(lab.workDir, host, 'ours');
  fs.rmSync(dest, { recursive: true, force: true });
  fs.mkdirSync(dest, { recursive: true });
  // -U defaults to the host's lab ID unless the caller gives -U or -I (then ours derives it as uftpd does)
  const own = o.args?.some((a) => a === '-U' || a === '-I') ?? false;
  const args = ['-d', '-q', '-D', dest, ...(own ? [] : ['-U', lab.uidOf(host)]), ...(o.args ?? [])];
  const spawnOpts = { ...o, logFile: o.logFile ?? path.join(lab.workDir, 'logs', `${host}-our-uftpd-${path.basename(dest)}.log`) };
  // nodeArgs (benchmarks: --cpu-prof) go to node before the script
  const p = o.nodeArgs ? lab.spawn(host, [process.execPath, ...o.nodeArgs, ourBin('uftpd'), ...args], spawnOpts) : lab.ours(host, 'uftpd', args, spawnOpts);
  if (o.waitReady ?? true) {
    try {
      await lab.waitFor(() => p.exitCode !== null || p.log().includes('Listening on port'), 15_000, `our uftpd on ${host}`);
    } catch (e) {
      await p.kill();
      throw e;
    }
    if (p.exitCode !== null) throw new LabError(`our uftpd on ${host} exited ${p.exitCode}: ${p.log().trim().split('\n').slice(-5).join(' | ')}`);
  }
  return Object.assign(p, { dest });
}

/**
 * A source tree: a random file of `big` bytes, a small file two directories down, an empty file, a symlink to
 * the big file. Returns the SHA-256 of every regular file by relative path (treeHashes).
 */
export function makeTree(dir: string, big = 3_000_000): Map<string, string> {
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(path.join(dir, 'd', 'e'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'big.bin'), randomBytes(big));
  fs.writeFileSync(path.join(dir, 'd', 'e', 'small.txt'), 'hello from the real uftp\n');
  fs.writeFileSync(path.join(dir, 'empty'), '');
  fs.writeFileSync(path.join(dir, 'd', 'mid.bin'), randomBytes(70_000));
  fs.symlinkSync('big.bin', path.join(dir, 'lnk'));
  return treeHashes(dir);
}

export { treeHashes };
