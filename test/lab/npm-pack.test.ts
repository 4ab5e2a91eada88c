/**
 * The package as a user gets it: `npm pack`, then `npm install -g` of the tarball into a temporary prefix (never
 * the system's), and every program of package.json's `bin` runs from the prefix's bin folder; the native addons
 * the file: dependencies name (DSCP, the batched UDP engine) are in the tarball and load. Needs npm and its cache
 * or registry (the Kerberos binding's dependencies), so it runs with the lab tests.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'uftp-ts-pack-'));
after(() => fs.rmSync(work, { recursive: true, force: true }));

function npm(args: string[], timeout = 240_000): SpawnSyncReturns<string> {
  // npm_config_nodedir (set by scripts/test.sh) lets node-gyp build the addons offline against the installed headers
  return spawnSync('npm', args, { cwd: ROOT, encoding: 'utf8', timeout, env: { ...process.env, npm_config_update_notifier: 'false' } });
}

test('npm pack + npm install -g of the tarball: every bin runs, the native addons load', { timeout: 400_000 }, () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { name: string; version: string; bin: Record<string, string> };
  const pack = npm(['pack', '--pack-destination', work, '--silent']);
  assert.equal(pack.status, 0, pack.stderr);
  const tarball = path.join(work, pack.stdout.trim().split('\n').pop() ?? '');
  assert.ok(fs.existsSync(tarball), `tarball ${tarball}`);
  const prefix = path.join(work, 'prefix');
  const inst = npm(['install', '-g', '--prefix', prefix, '--no-audit', '--no-fund', '--allow-scripts=kerberos,uftp-dscp,uftp-udp', tarball]);
  assert.equal(inst.status, 0, `npm install -g: ${inst.stderr}`);

  const names = Object.keys(pkg.bin).sort();
  assert.ok(names.length >= 6, `bins: ${names.join(', ')}`);
  for (const name of names) {
    const bin = path.join(prefix, 'bin', name);
    assert.ok(fs.existsSync(bin), `${name} installed in ${prefix}/bin`);
    const r = spawnSync(bin, ['--help'], { encoding: 'utf8', timeout: 30_000, cwd: work });
    assert.equal(r.status, 0, `${name} --help: exit ${r.status}, ${r.stderr}`);
    assert.match(r.stdout + r.stderr, new RegExp(`^(usage|Usage): ${name.replace(/[-_]/g, '.')}`, 'm'), `${name} --help prints its usage`);
  }

  // a real command, not only help: a key made and listed by the installed uftp_keymgt
  const key = path.join(work, 'k.pem');
  const g = spawnSync(path.join(prefix, 'bin', 'uftp_keymgt'), ['-g', 'ec:prime256v1', key], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(g.status, 0, g.stderr);
  const l = spawnSync(path.join(prefix, 'bin', 'uftp_keymgt'), [key], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(l.status, 0, l.stderr);
  assert.match(l.stdout + l.stderr, /prime256v1.*([0-9A-F]{2}:){19}[0-9A-F]{2}/);

  // the file: dependencies resolve inside the installed package and their addons were built and load
  const installed = path.join(prefix, 'lib', 'node_modules', pkg.name);
  for (const addon of ['uftp-dscp', 'uftp-udp']) {
    const r = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(path.join(installed, 'node_modules', addon))})`], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.status, 0, `${addon} loads from the installed package: ${r.stderr.split('\n').slice(0, 3).join(' ')}`);
  }
});

test('after the build, every bin runs from dist/src/cli as the README says (executable, with its usage)', { timeout: 120_000 }, () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { bin: Record<string, string> };
  for (const [name, rel] of Object.entries(pkg.bin)) {
    const file = path.join(ROOT, rel);
    assert.match(rel, /^dist\/src\/cli\//);
    fs.accessSync(file, fs.constants.X_OK);
    const r = spawnSync(file, ['--help'], { encoding: 'utf8', timeout: 30_000, cwd: work });
    assert.equal(r.status, 0, `./${rel} --help: exit ${r.status}, ${r.stderr}`);
    assert.match(r.stdout + r.stderr, new RegExp(`^(usage|Usage): ${name.replace(/[-_]/g, '.')}`, 'm'));
  }
});
