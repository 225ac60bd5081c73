// Packs what a release publishes into target/portable/packed/, with packed.json naming the
// tarballs: the main package (the JS loader, dist/ and the types, no binary) with the
// optionalDependencies `napi prepublish` writes, and one package per napi target from npm/<platform>/
// with the binaries build-portable.mjs put there. It packs a staged copy, so the checkout's
// package.json is left as it is. Run `npm run build` first (dist/ and native/binding.js).

import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { readNapiConfig } from '@napi-rs/cli';

import { PACK_DIR } from './portable.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const stage = join(root, 'target', 'portable', 'stage');

/** npm pack's report on the package in `dir` (packing it unless `dryRun`). */
function npmPack(dir, dryRun = false) {
  const args = ['pack', '--json', '--ignore-scripts', ...(dryRun ? ['--dry-run'] : ['--pack-destination', PACK_DIR])];
  const [report] = JSON.parse(execFileSync('npm', args, { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }));
  return report;
}

function stageMainPackage(targets) {
  for (const needed of ['dist/index.js', 'native/binding.js']) {
    if (!existsSync(join(root, needed))) throw new Error(`${needed} is missing: run \`npm run build\` first`);
  }
  rmSync(stage, { recursive: true, force: true });
  for (const { path } of npmPack(root, true).files) cpSync(join(root, path), join(stage, path));
  for (const { platformArchABI } of targets) cpSync(join(root, 'npm', platformArchABI), join(stage, 'npm', platformArchABI), { recursive: true });
}

/**
 * The published manifest drops `prepare`: it builds from sources the tarball does not hold (it is
 * for clones and git installs), and npm 11 asks every consumer to approve it.
 */
function dropPrepare() {
  const manifest = join(stage, 'package.json');
  const json = JSON.parse(readFileSync(manifest, 'utf8'));
  delete json.scripts.prepare;
  writeFileSync(manifest, `${JSON.stringify(json, null, 2)}\n`);
}

/** Fails when npm/<platform> holds a file (a binary built for it) that its package would not ship. */
function assertShipsEverything(platformArchABI, report) {
  const packed = new Set(report.files.map((f) => f.path));
  const left = readdirSync(join(root, 'npm', platformArchABI)).filter((f) => !packed.has(f) && f !== 'README.md');
  if (left.length > 0) throw new Error(`npm/${platformArchABI} holds ${left.join(', ')}, which its package.json "files" leaves out`);
}

const { targets } = await readNapiConfig(join(root, 'package.json'));
stageMainPackage(targets);
dropPrepare();
// Writes optionalDependencies (one per target, this version) into the staged package.json and
// checks each platform package is complete; publishes nothing.
execFileSync(join(root, 'node_modules', '.bin', 'napi'), ['prepublish', '--cwd', stage, '-t', 'npm', '--skip-optional-publish'], { stdio: 'inherit' });

rmSync(PACK_DIR, { recursive: true, force: true });
mkdirSync(PACK_DIR, { recursive: true });
const packed = { main: npmPack(stage).filename, platforms: {} };
for (const { platformArchABI } of targets) {
  const report = npmPack(join(stage, 'npm', platformArchABI));
  assertShipsEverything(platformArchABI, report);
  packed.platforms[platformArchABI] = report.filename;
}
writeFileSync(join(PACK_DIR, 'packed.json'), `${JSON.stringify(packed, null, 2)}\n`);
console.log(`packed into ${PACK_DIR}: ${[packed.main, ...Object.values(packed.platforms)].join(', ')}`);
