// The package as users get it: `npm pack` the repository, install the tarball into a fresh project,
// and use it from CommonJS, from ESM and from TypeScript (through the shipped .d.ts only).
// Slow-ish: one pack and one npm install of the local tarballs (and of cbor-x, the package's one
// runtime dependency, from npm's cache or registry).

import test from 'ava';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, realpath, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { openDataPlane } from '@artifactstore/data-plane';

import { PACK_DIR } from '../scripts/portable.mjs';

const run = promisify(execFile);
const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
const tsc = join(repo, 'node_modules', '.bin', 'tsc');
const PACKAGE = '@artifactstore/data-plane';

/** The environment of a fresh shell: without the npm_* variables of the `npx ava` that runs us. */
function cleanEnv() {
  const env = { ...process.env };
  for (const key of Object.keys(env)) if (/^npm_/i.test(key) && !/^npm_config_(cache|registry|userconfig)$/i.test(key)) delete env[key];
  delete env.NAPI_RS_NATIVE_LIBRARY_PATH;
  delete env.NODE_OPTIONS;
  return env;
}

async function sh(file, args, options = {}) {
  try {
    return await run(file, args, { env: cleanEnv(), maxBuffer: 64 * 1024 * 1024, timeout: 240_000, ...options });
  } catch (error) {
    error.message += `\n--- stdout ---\n${error.stdout ?? ''}\n--- stderr ---\n${error.stderr ?? ''}`;
    throw error;
  }
}

/** Set up once: the packed tarball (and its file list) and a project with it installed. */
let setup;

test.before(async () => {
  const work = await realpath(await mkdtemp(join(tmpdir(), 'dp-package-')));
  const packDir = join(work, 'pack');
  const project = join(work, 'consumer');
  await mkdir(packDir);
  await mkdir(project);

  const { stdout: packJson } = await sh('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', packDir], { cwd: repo });
  const [packed] = JSON.parse(packJson);
  const tarball = join(packDir, packed.filename);
  // The addon comes in its platform package, as `npm run pack:portable` packs it (npm test runs it first).
  const { platforms } = JSON.parse(await readFile(join(PACK_DIR, 'packed.json'), 'utf8'));
  const platformTarball = join(PACK_DIR, platforms[`linux-${process.arch}-gnu`]);

  await writeFile(join(project, 'package.json'), `${JSON.stringify({ name: 'consumer', version: '1.0.0', private: true }, null, 2)}\n`);
  await sh('npm', ['install', '--ignore-scripts', '--no-audit', '--no-fund', tarball, platformTarball], { cwd: project });

  setup = { work, tarball, packed, project, installed: join(project, 'node_modules', ...PACKAGE.split('/')) };
});

test.after.always(async () => {
  if (setup) await rm(setup.work, { recursive: true, force: true });
});

test('Entry points (package): the tarball holds the build and the .d.ts, and no binary, sources or tests', (t) => {
  const files = setup.packed.files.map((f) => f.path);
  t.is(setup.packed.name, PACKAGE);
  for (const required of ['package.json', 'dist/index.js', 'dist/index.d.ts', 'dist/types.d.ts', 'native/binding.js']) {
    t.true(files.includes(required), `${required} is in the tarball`);
  }
  t.deepEqual(files.filter((f) => f.endsWith('.node')), [], 'the addon is in the platform package, not here');

  const unwanted = files.filter(
    (f) =>
      /^(lib|src|crates|__test__|test|tests|bench|scripts|target|npm|node_modules)\//.test(f) ||
      /\.(ts|rs|mts|cts)$/.test(f.replace(/\.d\.(ts|mts|cts)$/, '.js')) ||
      /\.test\.|\.spec\./.test(f) ||
      /(^|\/)(Cargo\.(toml|lock)|tsconfig\.json|\.npmrc|\.env)$/.test(f),
  );
  t.deepEqual(unwanted, [], 'no sources, tests or build inputs in the tarball');
  // Every shipped .js in dist/ has its declaration next to it.
  for (const js of files.filter((f) => /^dist\/.*\.js$/.test(f))) {
    t.true(files.includes(js.replace(/\.js$/, '.d.ts')), `${js} has a .d.ts`);
  }
});

test('Entry points (package): the installed package declares its runtime dependencies and ships its types', async (t) => {
  const manifest = JSON.parse(await readFile(join(setup.installed, 'package.json'), 'utf8'));
  t.is(manifest.name, PACKAGE);
  // cbor-x, the CBOR codec; the command line's argument parser, progress bar and byte units.
  t.deepEqual(Object.keys(manifest.dependencies ?? {}).sort(), ['bytes', 'cbor-x', 'cli-progress', 'commander']);
  t.deepEqual(Object.keys(manifest.peerDependencies ?? {}), []);
  t.truthy(manifest.types ?? manifest.exports?.['.']?.types, 'types are declared');
  const lock = JSON.parse(await readFile(join(setup.project, 'package-lock.json'), 'utf8'));
  const installed = Object.keys(lock.packages).filter((p) => p !== '');
  const ours = installed.filter((p) => p.startsWith('node_modules/@artifactstore/'));
  t.deepEqual(ours, [`node_modules/${PACKAGE}`, `node_modules/${PACKAGE}-linux-${process.arch}-gnu`], 'the package and its platform package');
  t.true(installed.includes('node_modules/cbor-x'), 'and its dependency');
});

/** The body both module systems run: prints a JSON report of what it saw. */
function scriptBody(moduleSystem) {
  return `
const root = process.argv[2];
const report = { moduleSystem: ${JSON.stringify(moduleSystem)} };
const dp = await openDataPlane({ backends: [{ id: 'local', kind: 'fs', root }] });
async function* source() {
  for (let i = 0; i < 40; i++) yield Buffer.alloc(64 * 1024, i);
}
const expected = Buffer.concat(Array.from({ length: 40 }, (_, i) => Buffer.alloc(64 * 1024, i)));
const result = await dp.ingestStream(source());
report.sizeBytes = result.sizeBytes;
report.sha256 = result.sha256Digest.hex;
report.primary = formatContentAddress(result.primaryDigest);
report.deduplicated = result.receipt.deduplicated;
report.parsed = parseContentAddress(report.primary);

const parts = [];
for await (const chunk of await dp.serveObject(report.primary)) parts.push(chunk);
report.servedEqual = Buffer.concat(parts).equals(expected);
const range = await dp.serveObject(result.primaryDigest, { byteRange: [10, 20] });
const rangeParts = [];
for await (const chunk of range) rangeParts.push(chunk);
report.range = Buffer.concat(rangeParts).toString('hex');

report.verified = (await dp.verifyObject(result.primaryDigest)).verified;
report.health = (await dp.backendHealth()).healthy;

const cbor = encodeCbor(result);
report.cborIsBytes = cbor instanceof Uint8Array;
report.cborRoundTrip = (await import('node:util')).isDeepStrictEqual(decodeCbor(cbor), result);

report.deleted = (await dp.deleteObject(result.primaryDigest)).deleted;
try {
  await dp.verifyObject(result.primaryDigest);
  report.afterDelete = 'resolved';
} catch (error) {
  report.afterDelete = { isDataPlaneError: error instanceof DataPlaneError, isError: error instanceof Error, code: error.code, name: error.name };
}
try {
  parseContentAddress('md5:nope');
} catch (error) {
  report.badAddress = { isDataPlaneError: error instanceof DataPlaneError, code: error.code };
}
await dp.close();
try {
  await dp.backendHealth();
} catch (error) {
  report.afterClose = error.code;
}
`;
}

const COMMONJS = `'use strict';
const { openDataPlane, parseContentAddress, formatContentAddress, DataPlaneError, encodeCbor, decodeCbor } = require('${PACKAGE}');
(async () => {
${scriptBody('commonjs')}
report.resolved = require.resolve('${PACKAGE}');
report.sameClassFromImport = (await import('${PACKAGE}')).DataPlaneError === DataPlaneError;
report.version = require('${PACKAGE}/package.json').version;
console.log(JSON.stringify(report));
})().catch((error) => { console.error(error); process.exit(1); });
`;

const ESM = `import { openDataPlane, parseContentAddress, formatContentAddress, DataPlaneError, encodeCbor, decodeCbor } from '${PACKAGE}';
import * as namespace from '${PACKAGE}';
import { createRequire } from 'node:module';
${scriptBody('esm')}
report.resolved = import.meta.resolve('${PACKAGE}');
report.sameClassFromRequire = createRequire(import.meta.url)('${PACKAGE}').DataPlaneError === DataPlaneError;
report.exports = Object.keys(namespace).sort();
console.log(JSON.stringify(report));
`;

/** What the data plane in this process says about the same bytes, to compare the installed copy with. */
async function expectedDigests(t) {
  const root = await mkdtemp(join(tmpdir(), 'dp-package-ref-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const dp = await openDataPlane({ backends: [{ id: 'local', kind: 'fs', root, durable: false }] });
  try {
    const data = Buffer.concat(Array.from({ length: 40 }, (_, i) => Buffer.alloc(64 * 1024, i)));
    return await dp.ingestStream([data]);
  } finally {
    await dp.close();
  }
}

function assertReport(t, report, reference) {
  t.is(report.sizeBytes, 40 * 64 * 1024);
  t.is(report.sha256, reference.sha256Digest.hex);
  t.is(report.primary, `blake3:${reference.primaryDigest.hex}`);
  t.false(report.deduplicated);
  t.deepEqual(report.parsed, reference.primaryDigest);
  t.true(report.servedEqual);
  t.is(report.range, '00'.repeat(10));
  t.true(report.verified);
  t.true(report.health);
  t.true(report.cborIsBytes);
  t.true(report.cborRoundTrip);
  t.true(report.deleted);
  t.deepEqual(report.afterDelete, { isDataPlaneError: true, isError: true, code: 'NOT_FOUND', name: 'DataPlaneError' });
  t.deepEqual(report.badAddress, { isDataPlaneError: true, code: 'INVALID_ADDRESS' });
  t.is(report.afterClose, 'CLOSED');
}

async function runScript(t, name, text) {
  const file = join(setup.project, name);
  await writeFile(file, text);
  const root = await mkdtemp(join(tmpdir(), 'dp-package-store-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const { stdout } = await sh(process.execPath, [file, root], { cwd: setup.project });
  return JSON.parse(stdout.trim().split('\n').pop());
}

test('Entry points (package): the installed package\'s artifactstore command stores a file and gets it back', async (t) => {
  const bin = join(setup.project, 'node_modules', '.bin', 'artifactstore');
  const root = join(setup.work, 'cli-store');
  const file = join(setup.work, 'cli-source.txt');
  await writeFile(file, 'bytes from the command line\n');
  const { stdout: address } = await sh(bin, ['--root', root, 'put', file], { cwd: setup.project });
  t.regex(address, /^blake3:[0-9a-f]{64}\n$/);
  const { stdout } = await sh(bin, ['--root', root, 'get', address.trim()], { cwd: setup.project });
  t.is(stdout, 'bytes from the command line\n');
});

test('Entry points (package): CommonJS: require() the installed package and use every operation', async (t) => {
  const report = await runScript(t, 'use.cjs', COMMONJS);
  t.is(report.moduleSystem, 'commonjs');
  assertReport(t, report, await expectedDigests(t));
  t.true(report.resolved.startsWith(join(setup.project, 'node_modules')), `resolved from the install: ${report.resolved}`);
  t.true(report.sameClassFromImport, 'import and require give the same DataPlaneError class');
  t.is(report.version, JSON.parse(await readFile(join(repo, 'package.json'), 'utf8')).version);
});

test('Entry points (package): ESM: import the installed package and use every operation', async (t) => {
  const report = await runScript(t, 'use.mjs', ESM);
  t.is(report.moduleSystem, 'esm');
  assertReport(t, report, await expectedDigests(t));
  t.true(fileURLToPath(report.resolved).startsWith(join(setup.project, 'node_modules')), `resolved from the install: ${report.resolved}`);
  t.true(report.sameClassFromRequire);
  for (const name of ['openDataPlane', 'parseContentAddress', 'formatContentAddress', 'DataPlaneError', 'encodeCbor', 'decodeCbor']) {
    t.true(report.exports.includes(name), `ESM named export ${name}`);
  }
});

// ---------------------------------------------------------------------------------------------
// TypeScript, against the shipped declarations

const TS_GOOD = `
import {
  openDataPlane, parseContentAddress, formatContentAddress, DataPlaneError, encodeCbor, decodeCbor,
  type HashAlgorithm, type Digest, type ContentAddress, type AddressLike,
  type IngestHints, type IngestExpectations, type IngestOptions, type StorageReceipt, type IngestResult,
  type VerifyResult, type DeletionResult, type BackendHealth, type BackendStatus, type ObjectStream,
  type DataPlane,
} from '${PACKAGE}';

type IsAny<T> = 0 extends 1 & T ? true : false;
const notAny: [IsAny<IngestResult>, IsAny<DataPlane>, IsAny<typeof openDataPlane>, IsAny<Awaited<ReturnType<typeof openDataPlane>>>,
  IsAny<VerifyResult>, IsAny<ObjectStream>, IsAny<DataPlaneError>, IsAny<ReturnType<typeof parseContentAddress>>] =
  [false, false, false, false, false, false, false, false];

async function* chunks(): AsyncIterable<Uint8Array> {
  yield new Uint8Array([1, 2, 3]);
  yield Buffer.from('four');
}

export async function main(root: string): Promise<void> {
  const dp = await openDataPlane({
    backends: [
      { id: 'local', kind: 'fs', root, durable: true },
      { id: 'bucket', kind: 's3', bucket: 'artifacts', prefix: 'cas/', endpoint: 'http://127.0.0.1:7070', region: 'us-east-1',
        accessKeyId: 'a', secretAccessKey: 'b' },
    ],
    defaultBackend: 'local',
  });
  const plane: DataPlane = dp;

  const hints: IngestHints = { sizeHint: 7, primaryAlgorithm: 'sha256', backendId: 'local' };
  const expect: IngestExpectations = { sizeBytes: 7, sha256: 'ab', primary: 'cd' };
  const options: IngestOptions = { hints, expect, signal: AbortSignal.timeout(1000) };
  const result: IngestResult = await plane.ingestStream(chunks(), options);
  const fromFile: IngestResult = await dp.ingestFile('/etc/hostname', { hints: { primaryAlgorithm: 'blake3' } });

  const primary: Digest = result.primaryDigest;
  const algorithm: HashAlgorithm = primary.algorithm;
  const hex: string = primary.hex;
  const size: number = result.sizeBytes;
  const receipt: StorageReceipt = result.receipt;
  const fields: [string, string, number, string, boolean] =
    [receipt.backendId, receipt.locator, receipt.sizeBytes, receipt.storedAt, receipt.deduplicated];

  const address: ContentAddress = parseContentAddress(formatContentAddress(primary));
  const text: AddressLike = formatContentAddress(address);
  const stream: ObjectStream = await plane.serveObject(text, { byteRange: [0, 3], backendId: 'local', signal: new AbortController().signal });
  const streamSizes: number[] = [stream.sizeBytes, stream.totalSizeBytes];
  const streamAddress: ContentAddress = stream.contentAddress;
  for await (const chunk of stream) {
    const b: Buffer = chunk;
    void b;
  }
  const verify: VerifyResult = await plane.verifyObject(address, { backendId: 'local' });
  const verified: boolean = verify.verified;
  const mismatch: string | undefined = verify.mismatch;
  const actual: [Digest, Digest, number] = [verify.actualPrimaryDigest, verify.actualSha256Digest, verify.actualSizeBytes];
  const deletion: DeletionResult = await plane.deleteObject(address);
  const deleted: boolean = deletion.deleted;
  const status: BackendStatus = await plane.backendHealth();
  const health: BackendHealth = status.backends[0];
  const kind: 'fs' | 's3' = health.kind;
  const optional: [number | undefined, number | undefined, string | undefined] = [health.freeBytes, health.totalBytes, health.detail];
  const latency: number = health.latencyMicros;

  const encoded = encodeCbor(result);
  const asBytes: Uint8Array = encoded;
  const decoded: unknown = decodeCbor(asBytes);

  try {
    await dp.close();
  } catch (error) {
    if (error instanceof DataPlaneError) {
      const code: string = error.code;
      const asError: Error = error;
      void code, asError;
    }
  }
  void [notAny, fromFile, algorithm, hex, size, fields, streamSizes, streamAddress, verified, mismatch, actual, deleted, kind,
    optional, latency, decoded];

  // The types are real: each of these is an error (an unused directive fails the compile).
  // @ts-expect-error a size is a number
  const wrongSize: string = result.sizeBytes;
  // @ts-expect-error md5 is not a HashAlgorithm
  await plane.ingestStream(chunks(), { hints: { primaryAlgorithm: 'md5' } });
  // @ts-expect-error a byte range has two ends
  await plane.serveObject(text, { byteRange: [0] });
  // @ts-expect-error an address is not a number
  await plane.verifyObject(42);
  // @ts-expect-error digests are readonly
  primary.hex = 'x';
  // @ts-expect-error an fs backend needs a root
  await openDataPlane({ backends: [{ id: 'x', kind: 'fs' }] });
  // @ts-expect-error no such kind
  await openDataPlane({ backends: [{ id: 'x', kind: 'ftp', root: '/x' }] });
  // @ts-expect-error health has no such field
  void health.uptime;
  // @ts-expect-error verified is a boolean
  const wrongVerified: number = verify.verified;
  // @ts-expect-error parse takes a string
  parseContentAddress(5);
  // @ts-expect-error the plain DataPlane has no close (ingestFile and close come with openDataPlane's result)
  await plane.close();
  void [wrongSize, wrongVerified];
}
`;

const TS_BAD = `
import { openDataPlane, type IngestResult } from '${PACKAGE}';

export async function main(root: string): Promise<string> {
  const dp = await openDataPlane({ backends: [{ id: 'local', kind: 'fs', root }] });
  const result: IngestResult = await dp.ingestStream([new Uint8Array([1])] as unknown as AsyncIterable<Uint8Array>);
  const receiptSize: string = result.receipt.sizeBytes;
  return receiptSize;
}
`;

async function tsProject(t, name, source, moduleKind) {
  const dir = join(setup.project, name);
  await mkdir(dir, { recursive: true });
  const extension = moduleKind === 'esm' ? 'mts' : 'cts';
  await writeFile(join(dir, `check.${extension}`), source);
  await writeFile(
    join(dir, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        target: 'ES2022',
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        lib: ['ES2022'],
        types: ['node'],
        typeRoots: [join(repo, 'node_modules', '@types')],
        strict: true,
        noEmit: true,
        skipLibCheck: false, // the shipped declarations must compile too
        noUnusedLocals: false,
      },
      files: [`check.${extension}`],
    }),
  );
  try {
    const { stdout } = await sh(tsc, ['-p', join(dir, 'tsconfig.json'), '--pretty', 'false'], { cwd: dir });
    return { ok: true, output: stdout };
  } catch (error) {
    return { ok: false, output: `${error.stdout ?? ''}${error.stderr ?? ''}` };
  }
}

for (const moduleKind of ['esm', 'commonjs']) {
  test(`Entry points (package): TypeScript (${moduleKind}): the shipped .d.ts types the SPEC's names, and not as any`, async (t) => {
    const { ok, output } = await tsProject(t, `ts-good-${moduleKind}`, TS_GOOD, moduleKind);
    t.true(ok, output);
    t.notRegex(output, /error TS/);
  });
}

test('Entry points (package): TypeScript: a wrong use of the shipped types fails to compile', async (t) => {
  const { ok, output } = await tsProject(t, 'ts-bad', TS_BAD, 'esm');
  t.false(ok, 'the compile must fail');
  t.regex(output, /check\.mts\(7,\d+\): error TS2322: Type 'number' is not assignable to type 'string'/);
  t.is(output.match(/error TS/g)?.length, 1, `exactly the one planted error:\n${output}`);
});
