// After tsc: make every program named in package.json's "bin" executable (tsc drops the run bit), so that
// dist/src/cli/<prog>.js runs as the README says. A bin whose file is missing is an error.
import { readFileSync, chmodSync, existsSync } from 'node:fs';
const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
let missing = 0;
for (const [name, file] of Object.entries(pkg.bin ?? {})) {
  const path = new URL(`../${file}`, import.meta.url);
  if (!existsSync(path)) { console.error(`bin-modes: ${name}: ${file} was not built`); missing++; continue; }
  chmodSync(path, 0o755);
}
process.exit(missing ? 1 : 0);
