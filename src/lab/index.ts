/** The lab's public API (see docs/lab.md). */
export {
  Lab, LabError, withLab, downPrefix, listNamespaces, namespacePids, checkPrereqs, ensureRealSuite, readState,
  treeHashes, sha256File, probeReport, ourBin, nodeModuleArgv, packageRoot, STATE_DIR, DEFAULT_OCTET,
} from './lab.js';
export type { LabOptions, Impairment, HostInfo, Proc, SpawnOptions, UftpdOptions, UftpdProc, LabState, Family } from './lab.js';
export { FIGURES, FIGURE_DEFS, isFigure, addr6Of, subnet6Of } from './topology.js';
export type { FigureName, FigureDef, HostDef, NetDef, Role } from './topology.js';
export { runScenario, runInLab, ipv6InterfaceArgs, IPV6_PUBLIC, IPV6_PRIVATE } from './scenario.js';
export type { ScenarioOptions, ScenarioResult, KeyKind } from './scenario.js';
export { runSelftest, SELFTEST_CASES, SELFTEST_FILES, formatLine } from './selftest.js';
export type { SelftestCase, SelftestResult } from './selftest.js';
export { captureFixtures, FIXTURES } from './fixtures.js';
export { startRelay } from './delay-relay.js';
export type { Relay, RelayOptions, RelayStats } from './delay-relay.js';
export type { RecvReport, PingReport } from './udp-probe.js';
