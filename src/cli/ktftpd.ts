#!/usr/bin/env node
/** ktftpd: the KTFTP server (docs/ktftp.md). The program is src/apps/ktftpd/main.ts. */
import '../apps/ktftpd/main.js';
