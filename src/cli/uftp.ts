#!/usr/bin/env node
// uftp: the UFTP server (src/apps/uftp/run.ts), a drop-in for the C uftp 4.10.
import { main } from '../apps/uftp/run.js';

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`uftp: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(5);
  },
);
