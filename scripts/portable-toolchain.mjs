// The tools the portable build links with, installed into .cache/ on first use (a few seconds
// afterwards): zig from PyPI's `ziglang` wheel, whose bundled glibc stubs let us link against an
// old glibc, and cargo-zigbuild, which makes zig cargo's linker and C compiler. Both pinned, so a
// fresh machine builds the same binaries. `toolchainEnv()` installs what is missing and returns the
// environment a `napi build -x` needs.

import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ZIG_VERSION = '0.14.1';
const CARGO_ZIGBUILD_VERSION = '0.24.1';

const root = fileURLToPath(new URL('..', import.meta.url));
const zigDir = join(root, '.cache', `ziglang-${ZIG_VERSION}`);
const zigbuildDir = join(root, '.cache', `cargo-zigbuild-${CARGO_ZIGBUILD_VERSION}`);
const zig = join(zigDir, 'ziglang', 'zig');
const cargoZigbuild = join(zigbuildDir, 'bin', 'cargo-zigbuild');

function install(description, command, args) {
  console.log(`installing ${description}: ${command} ${args.join(' ')}`);
  execFileSync(command, args, { stdio: 'inherit' });
}

function ensureZig() {
  if (existsSync(zig)) return;
  const python = process.env.PYTHON ?? 'python3';
  install(`zig ${ZIG_VERSION}`, python, [
    '-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', '--root-user-action', 'ignore', '--no-deps',
    '--target', zigDir, `ziglang==${ZIG_VERSION}`,
  ]);
}

function ensureCargoZigbuild() {
  if (existsSync(cargoZigbuild)) return;
  install(`cargo-zigbuild ${CARGO_ZIGBUILD_VERSION}`, 'cargo', [
    'install', '--quiet', '--locked', '--version', CARGO_ZIGBUILD_VERSION, '--root', zigbuildDir, 'cargo-zigbuild',
  ]);
}

export function toolchainEnv() {
  ensureZig();
  ensureCargoZigbuild();
  return {
    ...process.env,
    // napi's -x looks for `cargo zigbuild` on PATH, and cargo-zigbuild for zig here first.
    PATH: [join(zigbuildDir, 'bin'), process.env.PATH].join(delimiter),
    CARGO_ZIGBUILD_ZIG_PATH: zig,
  };
}
