// Unpacks Debian packages into a folder of .cache/ without installing them: the arm64 build and its
// test need a few packages of another architecture (Rust's aarch64 std, arm64 cross libraries),
// which the system's apt cannot download while arm64 is not one of its architectures. So apt runs
// with its own lists and cache under .cache/apt, from the system's own sources, for amd64 and
// arm64; the system's package state is never touched.

import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const cache = join(fileURLToPath(new URL('..', import.meta.url)), '.cache');
const aptDir = join(cache, 'apt');

function aptOptions() {
  for (const dir of ['lists/partial', 'archives/partial']) mkdirSync(join(aptDir, dir), { recursive: true });
  const status = join(aptDir, 'status');
  if (!existsSync(status)) writeFileSync(status, '');
  return [
    '-o', `Dir::State=${aptDir}`,
    '-o', `Dir::State::Lists=${join(aptDir, 'lists')}`,
    '-o', `Dir::State::status=${status}`,
    '-o', `Dir::Cache=${aptDir}`,
    '-o', `Dir::Cache::archives=${join(aptDir, 'archives')}`,
    '-o', 'APT::Architectures::=amd64',
    '-o', 'APT::Architectures::=arm64',
    // apt's sandbox user cannot write into .cache/.
    '-o', 'APT::Sandbox::User=root',
    '-qq',
  ];
}

let updated = false;

function apt(tool, args, options = {}) {
  if (!updated) {
    execFileSync('apt-get', [...aptOptions(), 'update'], { stdio: ['ignore', 'ignore', 'inherit'] });
    updated = true;
  }
  return execFileSync(tool, [...aptOptions(), ...args], { encoding: 'utf8', ...options });
}

/** The field `name` of the candidate version of `pkg` ("name:arch"). */
export function packageField(pkg, name) {
  const text = apt('apt-cache', ['show', '--no-all-versions', pkg]);
  const match = text.match(new RegExp(`^${name}: (.*)$`, 'm'));
  if (!match) throw new Error(`apt-cache show ${pkg} has no ${name} field`);
  return match[1];
}

/** The names `pkg` depends on (alternatives and version constraints dropped). */
export function dependencies(pkg) {
  return packageField(pkg, 'Depends')
    .split(',')
    .map((dependency) => dependency.trim().split(/[\s|(]/)[0]);
}

/**
 * Unpacks the Debian packages `packages()` names ("name:arch") into `dir` (`dpkg -x`: files only,
 * no maintainer scripts), unless an earlier run finished doing so; returns `dir`. A folder left
 * half-made by an interrupted run is made again.
 */
export function unpackDebianPackages(dir, packages) {
  const done = join(dir, '.unpacked');
  if (existsSync(done)) return dir;
  rmSync(dir, { recursive: true, force: true });
  const debs = join(dir, '.debs');
  mkdirSync(debs, { recursive: true });
  const names = packages();
  console.log(`downloading Debian packages into ${dir}: ${names.join(' ')}`);
  apt('apt-get', ['download', ...names], { cwd: debs, stdio: ['ignore', 'ignore', 'inherit'] });
  for (const deb of readdirSync(debs)) execFileSync('dpkg', ['-x', join(debs, deb), dir]);
  rmSync(debs, { recursive: true });
  writeFileSync(done, `${names.join('\n')}\n`);
  return dir;
}
