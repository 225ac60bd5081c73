// The package where its native addon cannot load (SPEC Part 2: connectDataPlane needs no native
// code): a copy of the package as shipped, without native/*.node, imported and required by a
// child process. Everything but openDataPlane works there, and openDataPlane rejects with
// BACKEND_UNAVAILABLE naming the platform and what to do. The real package, for contrast, loads
// its addon on the first openDataPlane and not at import.

import test from 'ava';
import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { encodeCbor } from '@artifactstore/data-plane';

const run = promisify(execFile);
const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
const PACKAGE = '@artifactstore/data-plane';
const HEX = 'af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262';
const VALUE = { primaryDigest: { algorithm: 'blake3', hex: HEX }, sizeBytes: 2 ** 40 + 3 };

/** The body both module systems run; `pkg` is the package's namespace. Prints a JSON report. */
const BODY = `
const { openDataPlane, parseContentAddress, formatContentAddress, DataPlaneError, encodeCbor, decodeCbor } = pkg;
const { isDeepStrictEqual } = await import('node:util');
const addons = () => process.report.getReport().sharedObjects.filter((file) => file.endsWith('.node'));
const failure = (error) => ({
  isDataPlaneError: error instanceof DataPlaneError, isError: error instanceof Error,
  name: error.name, code: error.code, message: error.message, hasCause: error.cause !== undefined,
});
const report = { exports: Object.keys(pkg).filter((k) => k !== 'default').sort(), addonsAtImport: addons() };
report.parsed = parseContentAddress('blake3:${HEX}');
report.formatted = formatContentAddress(report.parsed);
try { parseContentAddress('md5:${HEX}'); } catch (error) { report.badAddress = failure(error); }
const value = ${JSON.stringify(VALUE)};
report.cbor = Buffer.from(encodeCbor(value)).toString('hex');
report.cborRoundTrip = isDeepStrictEqual(decodeCbor(encodeCbor(value)), value);
try { decodeCbor(Buffer.of(0xf6)); } catch (error) { report.badCbor = failure(error); }
report.constructed = failure(new DataPlaneError('IO', 'made here'));
report.opens = [];
for (let i = 0; i < 2; i++) {
  try {
    const dp = await openDataPlane({ backends: [{ id: 'local', kind: 'fs', root: process.argv[2], durable: false }] });
    report.opens.push('resolved');
    await dp.close();
  } catch (error) {
    report.opens.push(failure(error));
  }
}
report.addonsAfterOpen = addons();
console.log(JSON.stringify(report));
`;

const ESM = `import * as pkg from '${PACKAGE}';\n${BODY}`;
const COMMONJS = `'use strict';\nconst pkg = require('${PACKAGE}');\n(async () => {\n${BODY}\n})().catch((error) => { console.error(error); process.exit(1); });\n`;

/** The environment of the child: nothing that points the loader at another addon. */
function childEnv() {
  const env = { ...process.env };
  delete env.NAPI_RS_NATIVE_LIBRARY_PATH;
  delete env.NAPI_RS_FORCE_WASI;
  delete env.NODE_OPTIONS;
  return env;
}

/** Runs `text` as `name` in `dir` with node; its last stdout line, parsed. */
async function runChild(t, dir, name, text) {
  const file = join(dir, name);
  await writeFile(file, text);
  const root = await mkdtemp(join(tmpdir(), 'dp-no-addon-store-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const { stdout } = await run(process.execPath, [file, root], { cwd: dir, env: childEnv(), timeout: 60_000 });
  return JSON.parse(stdout.trim().split('\n').pop());
}

/**
 * A project with the package installed as it ships (dist/, package.json, the generated loader)
 * but without native/*.node; its dependencies are linked to this repository's copies.
 */
let project;

test.before(async () => {
  project = await mkdtemp(join(tmpdir(), 'dp-no-addon-'));
  const installed = join(project, 'node_modules', ...PACKAGE.split('/'));
  await mkdir(join(installed, 'native'), { recursive: true });
  await cp(join(repo, 'dist'), join(installed, 'dist'), { recursive: true });
  await cp(join(repo, 'package.json'), join(installed, 'package.json'));
  for (const file of ['binding.js', 'binding.d.ts']) await cp(join(repo, 'native', file), join(installed, 'native', file));
  const manifest = JSON.parse(await readFile(join(repo, 'package.json'), 'utf8'));
  for (const dependency of Object.keys(manifest.dependencies ?? {})) {
    const link = join(project, 'node_modules', ...dependency.split('/'));
    await mkdir(dirname(link), { recursive: true });
    await symlink(join(repo, 'node_modules', ...dependency.split('/')), link, 'dir');
  }
  await writeFile(join(project, 'package.json'), `${JSON.stringify({ name: 'consumer', version: '1.0.0', private: true })}\n`);
});

test.after.always(async () => {
  if (project) await rm(project, { recursive: true, force: true });
});

function assertWorksWithoutAddon(t, report) {
  for (const name of ['DataPlaneError', 'decodeCbor', 'encodeCbor', 'formatContentAddress', 'openDataPlane', 'parseContentAddress']) {
    t.true(report.exports.includes(name), `exports ${name}`);
  }
  t.deepEqual(report.addonsAtImport, []);
  t.deepEqual(report.parsed, { algorithm: 'blake3', hex: HEX });
  t.is(report.formatted, `blake3:${HEX}`);
  t.like(report.badAddress, { isDataPlaneError: true, code: 'INVALID_ADDRESS' });
  t.true(report.badAddress.message.includes(`md5:${HEX}`), report.badAddress.message);
  t.is(report.cbor, encodeCbor(VALUE).toString('hex'), 'the same bytes as with the addon');
  t.true(report.cborRoundTrip);
  t.like(report.badCbor, { isDataPlaneError: true, code: 'INVALID_ARGUMENT' });
  t.like(report.constructed, { isDataPlaneError: true, isError: true, name: 'DataPlaneError', code: 'IO' });

  t.is(report.opens.length, 2);
  for (const [i, failure] of report.opens.entries()) {
    t.like(failure, { isDataPlaneError: true, isError: true, name: 'DataPlaneError', code: 'BACKEND_UNAVAILABLE', hasCause: true }, `open ${i + 1}`);
    const { message } = failure;
    t.true(message.includes(`${process.platform}-${process.arch}`), `names the platform: ${message}`);
    if (process.platform === 'linux') t.regex(message, /glibc \d|musl/, 'names the libc');
    t.regex(message, new RegExp(`Install the platform package ${PACKAGE}-${process.platform}-${process.arch}`));
    t.regex(message, /from source with Rust/);
    t.regex(message, /connectDataPlane/);
  }
  t.deepEqual(report.addonsAfterOpen, []);
}

test('without its .node file the package imports, and everything but openDataPlane works (ESM)', async (t) => {
  assertWorksWithoutAddon(t, await runChild(t, project, 'use.mjs', ESM));
});

test('without its .node file the package requires, and everything but openDataPlane works (CommonJS)', async (t) => {
  assertWorksWithoutAddon(t, await runChild(t, project, 'use.cjs', COMMONJS));
});

test('the package loads its addon on the first openDataPlane, not at import', async (t) => {
  // This repository itself, installed by a link: its addon is there.
  const linked = await mkdtemp(join(tmpdir(), 'dp-lazy-addon-'));
  t.teardown(() => rm(linked, { recursive: true, force: true }));
  const link = join(linked, 'node_modules', ...PACKAGE.split('/'));
  await mkdir(dirname(link), { recursive: true });
  await symlink(repo, link, 'dir');
  for (const [name, text] of [['lazy.mjs', ESM], ['lazy.cjs', COMMONJS]]) {
    const report = await runChild(t, linked, name, text);
    t.deepEqual(report.addonsAtImport, [], name);
    t.deepEqual(report.opens, ['resolved', 'resolved'], name);
    t.is(report.addonsAfterOpen.length, 1, `${name}: ${report.addonsAfterOpen}`);
    t.regex(report.addonsAfterOpen[0], /data-plane\.[\w-]+\.node$/, name);
  }
});
