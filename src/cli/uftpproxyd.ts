#!/usr/bin/env node
/** uftpproxyd: the UFTP proxy daemon (server, client and response proxy). See docs/uftpproxyd.md. */
import v8 from 'node:v8';

// Compile every function of the program when its modules load (V8's --no-lazy) instead of on its first call. A
// proxy's first session otherwise pays for compiling its forwarding and aggregation paths while the first
// ANNOUNCE and REGISTER are in flight, and the server takes that delay for the round trip: its GRTT, and with it
// the spacing of its ANNOUNCEs, comes out above the real one (docs/benchmarks.md, Figure 1 at full speed). It
// costs ~30 ms more at start-up. Only our modules (the static graph under run.js): lazy compilation is back on
// before anything else loads, since Node's own modules loaded on first use (node:crypto's key handling, say) take
// several times longer to load compiled eagerly. --no-flush-bytecode keeps the compiled code over long idle spells
// (V8 otherwise drops the bytecode of functions that have not run for a few GCs). UFTPPROXYD_LAZY=1 keeps V8's
// defaults (to measure). The flags only affect code compiled after they are set: hence the dynamic import.
const eager = process.env.UFTPPROXYD_LAZY !== '1';
if (eager) v8.setFlagsFromString('--no-lazy');
const { runProxy } = await import('../apps/uftpproxyd/run.js');
if (eager) {
  v8.setFlagsFromString('--lazy');
  v8.setFlagsFromString('--no-flush-bytecode');
}

void runProxy(process.argv.slice(2));
