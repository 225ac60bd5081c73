// Builds what the platform packages ship, for every target in package.json's napi.targets (or the
// triples given as arguments), into npm/<platform>/: release builds, stripped, linked by zig
// against glibc 2.17 (GLIBC_BASELINE, portable.mjs) so they load on every distribution Node 20 runs
// on (RHEL/Alma 8, Amazon Linux 2, Ubuntu 20.04 included). `npm install` in a clone keeps building natively (faster,
// for this machine only); this is what `npm run pack:portable` and `npm test` ship and check.
//
// Usage: node scripts/build-portable.mjs [target-triple ...]

import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { readNapiConfig } from '@napi-rs/cli';

import { debianRustc } from './debian-rust.mjs';
import { GLIBC_BASELINE } from './portable.mjs';
import { toolchainEnv } from './portable-toolchain.mjs';

/**
 * Every binary a platform package carries: the `napi build` arguments that make it and the name it
 * is shipped under, which must also be in each npm/<platform>/package.json `files` (pack-portable
 * fails otherwise).
 */
const BINARIES = [
  {
    args: ['--manifest-path', 'crates/node/Cargo.toml', '--platform', '--no-js', '--dts', 'binding.d.ts'],
    file: (target, binaryName) => `${binaryName}.${target.platformArchABI}.node`,
  },
  // bin/artifactstore-daemon.js finds it in the platform package.
  { args: ['--manifest-path', 'crates/daemon/Cargo.toml', '--bin', 'artifactstore-daemon'], file: () => 'artifactstore-daemon' },
];

const root = fileURLToPath(new URL('..', import.meta.url));
const HOST_TRIPLE = { x64: 'x86_64-unknown-linux-gnu' }[process.arch];

/** The rustc for `triple`: rustup's for this machine's own, Debian's for others (see debian-rust.mjs). */
function rustcEnv(triple) {
  return triple === HOST_TRIPLE ? {} : { RUSTC: debianRustc(triple) };
}

function buildTarget(target, binaryName, env) {
  const started = Date.now();
  // napi writes the binary and a .d.ts we do not ship into a scratch folder; the binary is copied.
  const scratch = join(root, 'target', 'portable', target.platformArchABI);
  const packageDir = join(root, 'npm', target.platformArchABI);
  mkdirSync(scratch, { recursive: true });
  for (const binary of BINARIES) {
    const args = ['build', '--release', '--strip', '-x', '--target', `${target.triple}.${GLIBC_BASELINE}`, '--output-dir', scratch, ...binary.args];
    console.log(`napi ${args.join(' ')}`);
    execFileSync(join(root, 'node_modules', '.bin', 'napi'), args, { cwd: root, stdio: 'inherit', env: { ...env, ...rustcEnv(target.triple) } });
    const file = binary.file(target, binaryName);
    copyFileSync(join(scratch, file), join(packageDir, file));
    console.log(`built npm/${target.platformArchABI}/${file}`);
  }
  console.log(`${target.triple}: built in ${((Date.now() - started) / 1000).toFixed(0)} s`);
}

const { targets, binaryName } = await readNapiConfig(join(root, 'package.json'));
const wanted = process.argv.slice(2);
const unknown = wanted.filter((triple) => !targets.some((target) => target.triple === triple));
if (unknown.length > 0) throw new Error(`not in package.json's napi.targets: ${unknown.join(', ')}`);

const env = toolchainEnv();
for (const target of targets.filter((t) => wanted.length === 0 || wanted.includes(t.triple))) {
  buildTarget(target, binaryName, env);
}
