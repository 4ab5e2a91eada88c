#!/usr/bin/env node
/** uftp-lab: the namespace lab after the uftpproxyd manual's figures (docs/lab.md). The program is src/apps/uftp-lab/main.ts. */
import '../apps/uftp-lab/main.js';
