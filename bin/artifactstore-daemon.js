#!/usr/bin/env node
// `npx artifactstore-daemon ...`: finds the daemon binary and runs it with the same arguments,
// stdio inherited and signals passed on, exiting as it exits. Where it looks, first found wins:
//   1. $ARTIFACTSTORE_DAEMON_BIN, when set;
//   2. native/artifactstore-daemon in this package (what `npm run build` copies there, and what
//      the packed package carries);
//   3. the platform package (@artifactstore/data-plane-<platform>, as npm/<platform>/ in a clone);
//   4. target/release/artifactstore-daemon in a clone built with cargo.
'use strict';

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const NAME = 'artifactstore-daemon';
const packageRoot = path.join(__dirname, '..');

/** The platform package's suffix, as napi names it (only glibc builds exist for Linux). */
function platformSuffix() {
  const libc = process.platform === 'linux' ? '-gnu' : '';
  return `${process.platform}-${process.arch}${libc}`;
}

function platformPackageBinary() {
  const suffix = platformSuffix();
  try {
    const manifest = require.resolve(`@artifactstore/data-plane-${suffix}/package.json`, { paths: [packageRoot] });
    return path.join(path.dirname(manifest), NAME);
  } catch {
    return path.join(packageRoot, 'npm', suffix, NAME);
  }
}

function candidates() {
  return [
    process.env.ARTIFACTSTORE_DAEMON_BIN,
    path.join(packageRoot, 'native', NAME),
    platformPackageBinary(),
    path.join(packageRoot, 'target', 'release', NAME),
  ].filter(Boolean);
}

function isExecutable(file) {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

const binary = candidates().find(isExecutable);
if (!binary) {
  process.stderr.write(
    `${NAME}: no daemon binary for ${platformSuffix()}; looked in:\n` +
      candidates().map((file) => `  ${file}\n`).join('') +
      'Build it with `npm run build:daemon` (needs cargo), or set ARTIFACTSTORE_DAEMON_BIN.\n',
  );
  process.exit(1);
}

const child = spawn(binary, process.argv.slice(2), { stdio: 'inherit' });
for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT']) {
  process.on(signal, () => child.kill(signal));
}
child.on('error', (error) => {
  process.stderr.write(`${NAME}: cannot run ${binary}: ${error.message}\n`);
  process.exit(1);
});
child.on('exit', (code, signal) => {
  if (signal) {
    // Die of the same signal, so that our parent sees what the daemon's would have.
    process.removeAllListeners(signal);
    process.kill(process.pid, signal);
  } else {
    process.exit(code ?? 1);
  }
});
