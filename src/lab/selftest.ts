/**
 * `uftp-lab selftest`: the real UFTP suite (uftp, uftpd, uftpproxyd) through every figure, plain and
 * encrypted, the NAT figure with signed heartbeats (-s fp=), one run with 5% loss on the tunnel and one over
 * a 250 ms (one way) relayed tunnel, and fig1, fig2 and nat over IPv6 in dual-stack labs. One line per case; it is the reference our programs must later match.
 */
import { runScenario, type ScenarioOptions, type ScenarioResult } from './scenario.js';
import type { FigureName } from './topology.js';

export interface SelftestCase {
  readonly name: string;
  readonly figure: FigureName;
  readonly scenario: Partial<ScenarioOptions>;
}

const ECDH = ['-Y', 'aes256-gcm', '-h', 'sha256', '-e', 'ecdh_ecdsa:prime256v1'];
const RSA = ['-Y', 'aes128-cbc', '-h', 'sha256', '-w', 'hmac', '-e', 'rsa'];

export const SELFTEST_FILES: Readonly<Record<string, number>> = {
  'small.txt': 3000, 'mid.bin': 200_000, 'dir/big.bin': 1_000_000,
};

export const SELFTEST_CASES: readonly SelftestCase[] = [
  { name: 'fig1 plain', figure: 'fig1', scenario: {} },
  { name: 'fig1 encrypted', figure: 'fig1', scenario: { crypto: ECDH } },
  { name: 'fig1 loss5', figure: 'fig1', scenario: { lab: { lossPct: 5 } } },
  { name: 'fig1 delay250', figure: 'fig1', scenario: { lab: { delayMs: 250 }, rateKbps: 8000 } },
  { name: 'fig2 plain', figure: 'fig2', scenario: {} },
  { name: 'fig2 encrypted', figure: 'fig2', scenario: { crypto: RSA, keys: 'rsa', serverKey: true } },
  { name: 'fig3 plain', figure: 'fig3', scenario: {} },
  { name: 'fig3 encrypted', figure: 'fig3', scenario: { crypto: ECDH } },
  { name: 'fig4 plain', figure: 'fig4', scenario: {} },
  { name: 'fig4 encrypted', figure: 'fig4', scenario: { crypto: ECDH } },
  { name: 'nat plain', figure: 'nat', scenario: {} },
  { name: 'nat encrypted', figure: 'nat', scenario: { crypto: ECDH } },
  { name: 'fig1 plain ipv6', figure: 'fig1', scenario: { ipv6: true } },
  { name: 'fig2 plain ipv6', figure: 'fig2', scenario: { ipv6: true } },
  { name: 'nat plain ipv6', figure: 'nat', scenario: { ipv6: true } },
];

export interface SelftestResult extends ScenarioResult {
  readonly name: string;
  readonly line: string;
}

export function formatLine(name: string, r: ScenarioResult): string {
  const mb = (r.bytes / 1e6).toFixed(1);
  const head = `${r.ok ? 'PASS' : 'FAIL'} ${name} ${r.clients} clients ${r.files} files ${mb} MB ${r.seconds.toFixed(1)} s`;
  return r.ok ? head : `${head}: ${r.reason}${r.workDir ? ` (logs in ${r.workDir}/logs)` : ''}`;
}

/** Runs the cases (all, or those whose name, with spaces or dashes, is in `only`), one lab each. */
export async function runSelftest(o: {
  only?: readonly string[]; log?: (line: string) => void; prefix?: string; proxy?: 'real' | 'ours';
} = {}): Promise<SelftestResult[]> {
  const want = (o.only ?? []).map((s) => s.replace(/-/g, ' '));
  const cases = SELFTEST_CASES.filter((c) => want.length === 0 || want.includes(c.name) || want.includes(c.figure));
  if (cases.length === 0) throw new Error(`no selftest case matches ${(o.only ?? []).join(' ')}`);
  const out: SelftestResult[] = [];
  const prefix = o.prefix ?? `ulabst${process.pid % 100000}`;
  for (const [i, c] of cases.entries()) {
    // A prefix per case, so a failed case's logs survive the next case's lab.
    const sc: ScenarioOptions = {
      figure: c.figure, files: SELFTEST_FILES, ...c.scenario, proxy: o.proxy,
      lab: { ...(c.scenario.lab ?? {}), prefix: `${prefix}c${i}` },
    };
    let r: ScenarioResult;
    try {
      r = await runScenario(sc);
    } catch (e) {
      r = { ok: false, reason: (e as Error).message, clients: 0, files: 0, bytes: 0, seconds: 0, commands: [], workDir: '' };
    }
    const line = formatLine(o.proxy === 'ours' ? `${c.name} (our uftpproxyd)` : c.name, r);
    o.log?.(line);
    out.push({ ...r, name: c.name, line });
  }
  const passed = out.filter((r) => r.ok).length;
  o.log?.(`selftest: ${passed} passed, ${out.length - passed} failed`);
  return out;
}
