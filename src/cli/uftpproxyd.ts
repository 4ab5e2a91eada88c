#!/usr/bin/env node
/** uftpproxyd: the UFTP proxy daemon (server, client and response proxy). See docs/uftpproxyd.md. */
import { runProxy } from '../apps/uftpproxyd/run.js';

void runProxy(process.argv.slice(2));
