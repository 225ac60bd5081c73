// A rustc that can build for aarch64-unknown-linux-gnu on this x86_64 machine. rustup cannot add
// targets here (its download host is out of reach), but Debian ships its own rustc (rustc-web)
// with a std for each architecture (libstd-rust-web-dev, Multi-Arch: same), so Debian's amd64
// compiler plus Debian's arm64 std is a cross compiler. Unpacked into .cache/debian-rust (about
// 600 MB, a minute on first use); cargo stays rustup's.

import { chmodSync, existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { dependencies, unpackDebianPackages } from './debian-packages.mjs';

const dir = join(fileURLToPath(new URL('..', import.meta.url)), '.cache', 'debian-rust');

const DEBIAN_ARCH = { 'aarch64-unknown-linux-gnu': 'arm64' };

/** rustc-web, its std for amd64 and `arch`, and the versioned libraries they load (librustc_driver's LLVM). */
function packages(arch) {
  const versioned = (pkg) => dependencies(pkg).filter((name) => /^(libstd-rust-web-[\d.]+|libllvm\d+)$/.test(name));
  const std = versioned('libstd-rust-web-dev:amd64'); // libstd-rust-web-1.NN
  const llvm = versioned(`${std[0]}:amd64`); // libllvmNN
  return [
    'rustc-web:amd64',
    'libstd-rust-web-dev:amd64',
    `libstd-rust-web-dev:${arch}`,
    ...std.flatMap((name) => [`${name}:amd64`, `${name}:${arch}`]),
    ...llvm.map((name) => `${name}:amd64`),
  ];
}

/** The path of a rustc (a wrapper script) whose std covers `triple`. */
export function debianRustc(triple) {
  const arch = DEBIAN_ARCH[triple];
  if (!arch) throw new Error(`no Debian architecture known for ${triple}`);
  unpackDebianPackages(dir, () => packages(arch));
  const targetLib = join(dir, 'usr', 'lib', 'rustlib', triple, 'lib');
  if (!existsSync(targetLib) || !readdirSync(targetLib).some((f) => f.startsWith('libstd-'))) {
    throw new Error(`Debian's rust std for ${triple} is missing from ${targetLib}: delete ${dir} and run again`);
  }
  // librustc_driver and libLLVM live in the unpacked usr/lib/x86_64-linux-gnu, where the loader
  // does not look; the wrapper points it there for rustc alone.
  const wrapper = join(dir, 'rustc');
  writeFileSync(
    wrapper,
    `#!/bin/sh\nLD_LIBRARY_PATH='${join(dir, 'usr', 'lib', 'x86_64-linux-gnu')}' exec '${join(dir, 'usr', 'bin', 'rustc')}' "$@"\n`,
  );
  chmodSync(wrapper, 0o755);
  return wrapper;
}
