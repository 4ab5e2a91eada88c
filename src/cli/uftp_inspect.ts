#!/usr/bin/env node
/** uftp_inspect: decodes UFTP traffic in pcap/pcapng captures (docs/uftp_inspect.md). The program is src/apps/uftp_inspect/main.ts. */
import '../apps/uftp_inspect/main.js';
