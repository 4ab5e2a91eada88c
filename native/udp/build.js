'use strict';
// Builds build/Release/udp.node offline: node-gyp with --nodedir pointing at the headers of the running
// Node (so node-gyp never tries to download them), and a plain compiler call if node-gyp is not there.
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const here = __dirname;
const candidates = [process.env.npm_config_nodedir, path.resolve(path.dirname(process.execPath), '..')].filter(Boolean);
const nodedir = candidates.find((d) => fs.existsSync(path.join(d, 'include', 'node', 'node_api.h')));
if (!nodedir) {
  console.error(`uftp-udp: Node headers (include/node/node_api.h) not found under ${candidates.join(', ')}`);
  process.exit(1);
}

function run(cmd, args) {
  const r = spawnSync(cmd, args, { cwd: here, stdio: 'inherit' });
  return r.status === 0;
}

const gypCandidates = [
  process.env.npm_config_node_gyp,
  path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
].filter((p) => p && fs.existsSync(p));
if (gypCandidates.length > 0 && fs.existsSync(path.join(nodedir, 'include', 'node', 'common.gypi'))) {
  if (run(process.execPath, [gypCandidates[0], 'rebuild', `--nodedir=${nodedir}`])) process.exit(0);
  console.error('uftp-udp: node-gyp failed; trying the compiler directly');
}
fs.mkdirSync(path.join(here, 'build', 'Release'), { recursive: true });
const cc = process.env.CC || 'cc';
const ok = run(cc, [
  '-O2', '-Wall', '-fPIC', '-shared', `-I${path.join(nodedir, 'include', 'node')}`, '-DNODE_GYP_MODULE_NAME=udp',
  '-o', path.join('build', 'Release', 'udp.node'), 'udp.c', 'cipher.c',
]);
process.exit(ok ? 0 : 1);
