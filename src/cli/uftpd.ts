#!/usr/bin/env node
/** uftpd: the UFTP client daemon, a drop-in for the C uftpd 4.10. See docs/uftpd.md. */
import { runUftpd } from '../apps/uftpd/run.js';

void runUftpd(process.argv.slice(2));
