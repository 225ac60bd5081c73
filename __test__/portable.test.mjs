// The release tarballs as `npm run pack:portable` leaves them (npm test packs them before ava runs):
// every binary in a platform package loads on glibc GLIBC_BASELINE and links nothing beyond
// glibc and libgcc_s, the main package carries no binary, and the main package with its platform
// package installs offline into an empty project and works from require, import and TypeScript:
// natively on this machine, and the arm64 pair under qemu with the official arm64 Node.

import test from 'ava';
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, open, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';

import { readNapiConfig } from '@napi-rs/cli';

import { arm64Node, arm64Runner } from '../scripts/arm64-node.mjs';
import { ALLOWED_LIBRARIES, GLIBC_BASELINE, PACK_DIR } from '../scripts/portable.mjs';
import { PACKAGE_ROOT } from './fixtures/support.mjs';

const run = promisify(execFile);
const PACKAGE = '@artifactstore/data-plane';
const MACHINE = { x64: 'X86-64', arm64: 'AArch64' };

async function sh(file, args, options = {}) {
  try {
    return await run(file, args, { maxBuffer: 64 * 1024 * 1024, timeout: 240_000, ...options });
  } catch (error) {
    error.message += `\n--- stdout ---\n${error.stdout ?? ''}\n--- stderr ---\n${error.stderr ?? ''}`;
    throw error;
  }
}

const napi = await readNapiConfig(join(PACKAGE_ROOT, 'package.json'));
let work;
let packed;

test.before(async () => {
  const manifest = join(PACK_DIR, 'packed.json');
  if (!existsSync(manifest)) throw new Error(`${manifest} is missing: run \`npm run pack:portable\` (npm test does) before this test`);
  packed = JSON.parse(await readFile(manifest, 'utf8'));
  work = await mkdtemp(join(tmpdir(), 'dp-portable-'));
});

test.after.always(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

const tarball = (file) => join(PACK_DIR, file);

async function isElf(path) {
  const handle = await open(path);
  try {
    const { buffer } = await handle.read(Buffer.alloc(4), 0, 4, 0);
    return buffer.equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46]));
  } finally {
    await handle.close();
  }
}

/** Unpacks the tarball `file` into a folder of its own and returns the folder. */
async function unpack(file) {
  const dir = join(work, `unpacked-${file}`);
  await mkdir(dir, { recursive: true });
  await sh('tar', ['-xzf', tarball(file), '-C', dir, '--strip-components=1']);
  return dir;
}

/** The ELF files below `dir`, as { name (relative to `dir`), path }. */
async function elfFiles(dir) {
  const found = [];
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    const path = join(entry.parentPath ?? entry.path, entry.name);
    if (entry.isFile() && (await isElf(path))) found.push({ name: relative(dir, path), path });
  }
  return found;
}

const versionParts = (version) => version.split('.').map(Number);
function newerThan(version, baseline) {
  const [a, b] = [versionParts(version), versionParts(baseline)];
  for (let i = 0; i < Math.max(a.length, b.length); i++) if ((a[i] ?? 0) !== (b[i] ?? 0)) return (a[i] ?? 0) > (b[i] ?? 0);
  return false;
}

/** What readelf says a binary needs: its machine, glibc symbol versions, shared libraries, symbol table. */
async function elfNeeds(path) {
  const { stdout: header } = await sh('readelf', ['-h', '-W', path]);
  const { stdout: versions } = await sh('readelf', ['-V', '-W', path]);
  const { stdout: dynamic } = await sh('readelf', ['-d', '-W', path]);
  const { stdout: sections } = await sh('readelf', ['-S', '-W', path]);
  return {
    machine: header.match(/Machine:\s+(.*)/)[1].trim(),
    glibc: [...new Set([...versions.matchAll(/Name: GLIBC_([\d.]+)/g)].map((m) => m[1]))].sort((a, b) => (newerThan(a, b) ? 1 : -1)),
    libraries: [...dynamic.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1]),
    symtab: /\s\.symtab\s/.test(sections),
  };
}

test('the main tarball carries the JS loader and types but no binary and no install script, and names every platform package at its version', async (t) => {
  const dir = await unpack(packed.main);
  for (const required of ['package.json', 'native/binding.js', 'native/binding.d.ts', 'dist/index.js', 'dist/index.d.ts']) {
    t.true(existsSync(join(dir, required)), `${required} is in ${packed.main}`);
  }
  t.deepEqual(await elfFiles(dir), [], 'no binary (no ELF file) in the main package');

  const manifest = JSON.parse(await readFile(join(dir, 'package.json'), 'utf8'));
  const expected = Object.fromEntries(napi.targets.map(({ platformArchABI }) => [`${PACKAGE}-${platformArchABI}`, manifest.version]));
  t.deepEqual(manifest.optionalDependencies, expected, 'one optional dependency per napi target, at this version');
  const installScripts = ['preinstall', 'install', 'postinstall', 'prepare'].filter((name) => manifest.scripts?.[name]);
  t.deepEqual(installScripts, [], 'nothing builds or runs on the consumer at install');
  t.deepEqual(Object.keys(packed.platforms).sort(), napi.targets.map((target) => target.platformArchABI).sort(), 'a tarball per target');
});

for (const target of napi.targets) {
  const platform = target.platformArchABI;
  test(`${platform}: every binary is stripped, for ${target.arch}, needs at most GLIBC_${GLIBC_BASELINE} and links only glibc and libgcc_s`, async (t) => {
    const binaries = await elfFiles(await unpack(packed.platforms[platform]));
    const names = binaries.map((b) => b.name);
    t.true(names.includes(`${napi.binaryName}.${platform}.node`), `the addon is in ${packed.platforms[platform]} (ELF files: ${names.join(', ')})`);
    for (const { name, path } of binaries) {
      const needs = await elfNeeds(path);
      t.true(needs.machine.includes(MACHINE[target.arch]), `${name} is built for ${target.arch} (readelf: ${needs.machine})`);
      t.deepEqual(needs.glibc.filter((v) => newerThan(v, GLIBC_BASELINE)), [], `${name} needs no glibc newer than ${GLIBC_BASELINE} (needs ${needs.glibc.join(', ')})`);
      t.deepEqual(needs.libraries.filter((lib) => !ALLOWED_LIBRARIES.includes(lib)), [], `${name} links only ${ALLOWED_LIBRARIES.join(', ')}`);
      t.false(needs.symtab, `${name} is stripped`);
    }
  });
}

// What a consumer does with the installed package, printed as JSON: ingest, serve back, a bad address.
const USE_BODY = `
const root = process.argv[2];
const data = Buffer.from('portable bytes '.repeat(4096));
const dp = await openDataPlane({ backends: [{ id: 'local', kind: 'fs', root }] });
const result = await dp.ingestStream([data]);
const parts = [];
for await (const chunk of await dp.serveObject(result.primaryDigest)) parts.push(chunk);
let badAddress;
try {
  parseContentAddress('blake3:not-hex');
} catch (error) {
  badAddress = { isDataPlaneError: error instanceof DataPlaneError, code: error.code };
}
await dp.close();
console.log(JSON.stringify({ sha256: result.sha256Digest.hex, sizeBytes: result.sizeBytes, servedEqual: Buffer.concat(parts).equals(data), badAddress }));
`;
const USE_CJS = `const { openDataPlane, parseContentAddress, DataPlaneError } = require('${PACKAGE}');\n(async () => {${USE_BODY}})();\n`;
const USE_ESM = `import { openDataPlane, parseContentAddress, DataPlaneError } from '${PACKAGE}';\n${USE_BODY}`;
const USE_TS = `import { openDataPlane, type IngestResult } from '${PACKAGE}';
export async function main(root: string): Promise<number> {
  const dp = await openDataPlane({ backends: [{ id: 'local', kind: 'fs', root }] });
  async function* bytes(): AsyncIterable<Uint8Array> {
    yield new Uint8Array([1, 2, 3]);
  }
  const result: IngestResult = await dp.ingestStream(bytes());
  // @ts-expect-error sizeBytes is a number: were the types missing or any, this directive would be unused
  const wrong: string = result.sizeBytes;
  void wrong;
  return result.sizeBytes;
}
`;

// A script that only uses the daemon's client, against a daemon the installed package started.
const CLIENT_ONLY = `import { connectDataPlane } from '${PACKAGE}';
const dp = await connectDataPlane({ socketPath: process.argv[2] });
const data = Buffer.from('through the daemon '.repeat(4096));
const result = await dp.ingestStream([data]);
const parts = [];
for await (const chunk of await dp.serveObject(result.primaryDigest)) parts.push(chunk);
const info = await dp.statObject(result.sha256Digest);
await dp.close();
console.log(JSON.stringify({ sha256: result.sha256Digest.hex, servedEqual: Buffer.concat(parts).equals(data), statSize: info.sizeBytes }));
`;

/** Starts `npx artifactstore-daemon --config` in `project` over an fs store; resolves once it listens. */
async function installedDaemon(project) {
  const socketPath = join(project, 'daemon.sock');
  const config = join(project, 'daemon.json');
  await writeFile(config, JSON.stringify({ socketPath, backends: [{ id: 'local', kind: 'fs', root: join(project, 'daemon-store') }] }));
  // In a process group of its own (npx, the package's launcher, the daemon): stopped as a whole,
  // as a service manager stops it, whatever npx passes on.
  const child = spawn('npx', ['--offline', 'artifactstore-daemon', '--config', config], { cwd: project, stdio: ['ignore', 'ignore', 'pipe'], detached: true });
  // 'close': every process holding its stderr, the daemon included, has ended.
  const closed = new Promise((resolve) => child.once('close', resolve));
  const stop = async () => {
    try {
      process.kill(-child.pid, 'SIGTERM');
    } catch {
      // already gone
    }
    await closed;
  };
  let said = '';
  try {
    await new Promise((resolve, reject) => {
      child.stderr.on('data', (data) => {
        said += data;
        if (/listening on/.test(said)) resolve();
      });
      closed.then(() => reject(new Error(`npx artifactstore-daemon ended before listening: ${said}`)));
    });
  } catch (error) {
    await stop();
    throw error;
  }
  return { socketPath, stop };
}

function expectedUse(t, report) {
  const data = Buffer.from('portable bytes '.repeat(4096));
  t.is(report.sha256, createHash('sha256').update(data).digest('hex'));
  t.is(report.sizeBytes, data.length);
  t.true(report.servedEqual, 'served bytes equal the ingested ones');
  t.deepEqual(report.badAddress, { isDataPlaneError: true, code: 'INVALID_ADDRESS' });
}

/**
 * An empty project with the main tarball and `platform`'s installed offline (the main package's own
 * dependencies, if any, from npm's cache, which the clone's `npm install` filled), and which of
 * this package's packages it got.
 */
async function consumer(platform, npmFlags = []) {
  const project = join(work, `consumer-${platform}`);
  await mkdir(project);
  await writeFile(join(project, 'package.json'), JSON.stringify({ name: `consumer-${platform}`, version: '1.0.0', private: true }));
  await sh('npm', ['install', '--offline', '--no-audit', '--no-fund', ...npmFlags, tarball(packed.main), tarball(packed.platforms[platform])], { cwd: project });
  const installed = JSON.parse(await readFile(join(project, 'package-lock.json'), 'utf8')).packages;
  const ours = Object.keys(installed).filter((p) => p.startsWith(`node_modules/${PACKAGE}`));
  return { project, installed: ours.sort() };
}

/** The names of the commands (`bin`) the installed main package declares. */
async function declaredCommands(project) {
  const manifest = JSON.parse(await readFile(join(project, 'node_modules', ...PACKAGE.split('/'), 'package.json'), 'utf8'));
  return Object.keys(manifest.bin ?? {});
}

async function useScripts(project) {
  await writeFile(join(project, 'use.cjs'), USE_CJS);
  await writeFile(join(project, 'use.mjs'), USE_ESM);
  const store = join(project, 'store');
  await mkdir(store);
  return store;
}

const host = napi.targets.find((target) => target.arch === process.arch);
if (!host) throw new Error(`no napi target for this machine (${process.arch}) in package.json`);

test(`the tarballs install offline into an empty project, require, import and TypeScript use them, npx artifactstore-daemon --config serves a script that only uses connectDataPlane, and their commands run (${host.platformArchABI})`, async (t) => {
  const { project, installed } = await consumer(host.platformArchABI);
  t.deepEqual(installed, [`node_modules/${PACKAGE}`, `node_modules/${PACKAGE}-${host.platformArchABI}`].sort(), 'the package and its platform package, no other');
  const store = await useScripts(project);
  for (const script of ['use.cjs', 'use.mjs']) {
    const { stdout } = await sh(process.execPath, [join(project, script), store], { cwd: project });
    expectedUse(t, JSON.parse(stdout));
  }

  await writeFile(join(project, 'use.mts'), USE_TS);
  const tsc = join(PACKAGE_ROOT, 'node_modules', '.bin', 'tsc');
  const options = ['--strict', '--noEmit', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022', '--types', 'node', '--typeRoots', join(PACKAGE_ROOT, 'node_modules', '@types')];
  const { stdout } = await sh(tsc, [...options, '--pretty', 'false', 'use.mts'], { cwd: project });
  t.is(stdout, '', 'tsc compiles against the shipped types');

  const daemon = await installedDaemon(project);
  try {
    await writeFile(join(project, 'client-only.mjs'), CLIENT_ONLY);
    const { stdout: through } = await sh(process.execPath, [join(project, 'client-only.mjs'), daemon.socketPath], { cwd: project });
    const data = Buffer.from('through the daemon '.repeat(4096));
    t.deepEqual(JSON.parse(through), { sha256: createHash('sha256').update(data).digest('hex'), servedEqual: true, statSize: data.length });
  } finally {
    await daemon.stop();
  }

  const commands = await declaredCommands(project);
  t.true(commands.length > 0, 'the package declares its commands');
  for (const name of commands) {
    const { stdout: version } = await sh(join(project, 'node_modules', '.bin', name), ['--version'], { cwd: project });
    t.true(version.startsWith(name), `${name} --version runs from the install: ${version}`);
  }
});

test('arm64: the tarballs install for arm64, the official arm64 Node under qemu uses them from require and import, and their commands run', async (t) => {
  const arm64 = napi.targets.find((target) => target.arch === 'arm64');
  t.truthy(arm64, 'arm64 is a napi target');
  // npm checks an explicitly named tarball against this machine's cpu whatever --cpu says: --force
  // installs it as npm on an arm64 machine would.
  const { project, installed } = await consumer(arm64.platformArchABI, ['--force']);
  t.deepEqual(installed, [`node_modules/${PACKAGE}`, `node_modules/${PACKAGE}-${arm64.platformArchABI}`].sort());
  const store = await useScripts(project);
  const node = arm64Node();
  const { stdout: arch } = await sh(node.command, [...node.args, '-p', 'process.arch'], { cwd: project });
  t.is(arch.trim(), 'arm64', 'the node under qemu is an arm64 one');
  for (const script of ['use.cjs', 'use.mjs']) {
    const { stdout: report } = await sh(node.command, [...node.args, join(project, script), store], { cwd: project });
    expectedUse(t, JSON.parse(report));
  }
  // A command that wraps a binary of the platform package spawns it, which qemu cannot follow
  // here (no binfmt): that binary runs under qemu itself. A command that is only JS runs on the
  // arm64 Node.
  const qemu = arm64Runner();
  const manifest = JSON.parse(await readFile(join(project, 'node_modules', ...PACKAGE.split('/'), 'package.json'), 'utf8'));
  for (const name of await declaredCommands(project)) {
    const binary = join(project, 'node_modules', `${PACKAGE}-${arm64.platformArchABI}`, name);
    const script = join(project, 'node_modules', ...PACKAGE.split('/'), manifest.bin[name]);
    const [command, args] = existsSync(binary) ? [qemu.command, [...qemu.args, binary]] : [node.command, [...node.args, script]];
    const { stdout: version } = await sh(command, [...args, '--version'], { cwd: project });
    t.true(version.startsWith(name), `the arm64 ${name} --version runs: ${version}`);
  }
});
