#!/usr/bin/env node
/** uftp_keymgt: creates and lists UFTP key files like the C tool (docs/uftp_keymgt.md). The program is src/apps/uftp_keymgt/main.ts. */
import '../apps/uftp_keymgt/main.js';
