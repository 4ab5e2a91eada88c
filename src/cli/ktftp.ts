#!/usr/bin/env node
/** ktftp: the KTFTP client (docs/ktftp.md). The program is src/apps/ktftp/main.ts. */
import '../apps/ktftp/main.js';
