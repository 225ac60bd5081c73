// Where the benchmark runs: the machine it describes in its output, and the temporary directory
// it works in (removed at exit, also on Ctrl-C).

import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, realpathSync, rmSync, statfsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

function readText(file) {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

/** The filesystem type holding `dir`: the longest mount point in /proc/mounts that contains it. */
export function filesystemOf(dir) {
  const real = realpathSync(dir);
  let best = { mountPoint: '', type: 'unknown', device: '' };
  for (const line of readText('/proc/mounts').split('\n')) {
    const [device, mountPoint, type] = line.split(' ');
    if (!mountPoint) continue;
    const inside = real === mountPoint || real.startsWith(mountPoint.endsWith('/') ? mountPoint : `${mountPoint}/`);
    if (inside && mountPoint.length >= best.mountPoint.length) best = { mountPoint, type, device };
  }
  return best;
}

function cpuFlags() {
  const flags = readText('/proc/cpuinfo').match(/^flags\s*:\s*(.*)$/m)?.[1].split(/\s+/) ?? [];
  return ['sha_ni', 'avx2', 'avx512f', 'vaes'].filter((flag) => flags.includes(flag));
}

function gitCommit() {
  try {
    const cwd = path.dirname(new URL(import.meta.url).pathname);
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd, stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd, stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
    return dirty ? `${head} (with uncommitted changes)` : head;
  } catch {
    return undefined;
  }
}

export function machineInfo(root) {
  const cpuinfo = readText('/proc/cpuinfo');
  const fsInfo = filesystemOf(root);
  let freeBytes;
  try {
    const s = statfsSync(root);
    freeBytes = s.bavail * s.bsize;
  } catch {}
  return {
    cpuModel: cpuinfo.match(/^model name\s*:\s*(.*)$/m)?.[1] ?? os.cpus()[0]?.model ?? 'unknown',
    cpuVendor: cpuinfo.match(/^vendor_id\s*:\s*(.*)$/m)?.[1],
    cpuFamilyModel: [cpuinfo.match(/^cpu family\s*:\s*(\d+)/m)?.[1], cpuinfo.match(/^model\s*:\s*(\d+)/m)?.[1]].join('/'),
    cpuFlags: cpuFlags(),
    cores: os.availableParallelism?.() ?? os.cpus().length,
    memoryBytes: os.totalmem(),
    node: process.version,
    v8: process.versions.v8,
    kernel: `${os.type()} ${os.release()} ${os.arch()}`,
    root,
    filesystem: fsInfo.type,
    mountPoint: fsInfo.mountPoint,
    freeBytes,
    commit: gitCommit(),
  };
}

/** The default root: tmpfs (/dev/shm) when present, else the OS temp dir. */
export function defaultRoot() {
  try {
    if (existsSync('/dev/shm') && filesystemOf('/dev/shm').type === 'tmpfs') return '/dev/shm';
  } catch {}
  return os.tmpdir();
}

/** A fresh directory for this run under `root`, removed by `cleanup()` and on SIGINT/SIGTERM. */
export function workDirectory(root) {
  const dir = mkdtempSync(path.join(root, 'artifactstore-bench-'));
  let removed = false;
  const cleanup = () => {
    if (removed) return;
    removed = true;
    rmSync(dir, { recursive: true, force: true });
  };
  const onSignal = (signal) => {
    cleanup();
    process.stderr.write(`\nbench: interrupted (${signal}); removed ${dir}\n`);
    process.exit(130);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  process.once('exit', cleanup);
  return { dir, cleanup };
}
