#!/usr/bin/env node
/** demo: npm start: the main demo (Figure 1 of uftpproxyd(1) in the lab). The program is src/apps/demo/main.ts. */
import '../apps/demo/main.js';
