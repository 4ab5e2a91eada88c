#!/usr/bin/env node
/** uftpproxyd: the UFTP proxy daemon (server, client and response proxy). See docs/uftpproxyd.md. */
import v8 from 'node:v8';

// Compile every function of the program when its module loads (V8's --no-lazy) instead of on its first call. A
// proxy's first session otherwise pays for compiling its forwarding and aggregation paths while the first
// ANNOUNCE and REGISTER are in flight, and the server takes that delay for the round trip: its GRTT, and with it
// the spacing of its ANNOUNCEs and every later wait, comes out up to 3x the real one (docs/benchmarks.md, Figure 1
// at full speed). It costs ~30 ms more at start-up. UFTPPROXYD_LAZY=1 keeps V8's lazy compilation (to measure).
// The flag only affects code parsed after it is set: hence the dynamic import.
if (process.env.UFTPPROXYD_LAZY !== '1') v8.setFlagsFromString('--no-lazy');
const { runProxy } = await import('../apps/uftpproxyd/run.js');

void runProxy(process.argv.slice(2));
