// The data plane's life: configuration, backend routing, health, close; content-address parsing
// and formatting; DataPlaneError; ingestFile.

import test from 'ava';
import { execFileSync } from 'node:child_process';
import { chmod, mkdir, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import {
  DataPlaneError,
  formatContentAddress,
  openDataPlane,
  parseContentAddress,
} from '@artifactstore/data-plane';

import { bytes, chunked, collect, KiB, MiB, openStore } from './helpers.mjs';
import { openPlane, sha256Hex, tempDir } from './fixtures/support.mjs';

const HEX = 'a'.repeat(64);

const exists = (path) => stat(path).then(() => true, () => false);

/** Asserts `promise` rejects with a DataPlaneError of `code` whose message contains every string in `mentions`. */
async function rejectsWith(t, promise, code, mentions = [], what = '') {
  const error = await t.throwsAsync(promise, { instanceOf: DataPlaneError }, what);
  if (!error) return undefined;
  t.is(error.code, code, `${what}: ${error.message}`);
  for (const text of mentions) t.true(error.message.includes(text), `${what}: message ${JSON.stringify(error.message)} names ${JSON.stringify(text)}`);
  return error;
}

// ---------------------------------------------------------------------------------------------
// openDataPlane: configuration rejections

test('openDataPlane rejects configurations it cannot honour with INVALID_ARGUMENT naming the field', async (t) => {
  const root = await tempDir(t);
  const fs = (extra = {}) => ({ id: 'local', kind: 'fs', root, ...extra });
  const cases = [
    ['missing backends', {}, ['backends']],
    ['backends undefined', { backends: undefined }, ['backends']],
    ['empty backends', { backends: [] }, ['backends']],
    ['backends not an array', { backends: fs() }, ['backends']],
    ['backends null', { backends: null }, ['backends']],
    ['a backend that is not an object', { backends: ['local'] }, ['backends']],
    ['two backends with one id', { backends: [fs({ id: 'twin' }), fs({ id: 'twin', root: join(root, 'b') })] }, ['id', 'twin']],
    ['unknown kind', { backends: [fs({ kind: 'ftp' })] }, ['kind', 'ftp']],
    ['missing kind', { backends: [{ id: 'local', root }] }, ['kind']],
    ['missing root', { backends: [{ id: 'local', kind: 'fs' }] }, ['root']],
    ['empty root', { backends: [fs({ root: '' })] }, ['root']],
    ['missing id', { backends: [{ kind: 'fs', root }] }, ['id']],
    ['empty id', { backends: [fs({ id: '' })] }, ['id']],
    ['s3 without a bucket', { backends: [{ id: 'bucket', kind: 's3' }] }, ['bucket']],
    ['defaultBackend naming none', { backends: [fs()], defaultBackend: 'elsewhere' }, ['defaultBackend', 'elsewhere']],
    ['defaultBackend of the wrong type', { backends: [fs()], defaultBackend: 7 }, ['defaultBackend']],
    ['root: 5', { backends: [fs({ root: 5 })] }, ['root', '5']],
    ["durable: 'yes'", { backends: [fs({ durable: 'yes' })] }, ['durable', 'yes']],
    ['id: 1', { backends: [fs({ id: 1 })] }, ['id']],
    ['kind: null', { backends: [fs({ kind: null })] }, ['kind']],
  ];
  for (const [what, config, mentions] of cases) {
    await rejectsWith(t, openDataPlane(config), 'INVALID_ARGUMENT', mentions, what);
  }
});

test('openDataPlane rejects a configuration that is not an object', async (t) => {
  for (const config of [undefined, null, 'fs', 42, true]) {
    const error = await rejectsWith(t, openDataPlane(config), 'INVALID_ARGUMENT', [], String(config));
    t.regex(error?.message ?? '', /config/i, 'the message says it is the configuration that is wrong');
  }
  const error = await rejectsWith(t, openDataPlane(), 'INVALID_ARGUMENT', [], 'no argument');
  t.regex(error?.message ?? '', /config/i);
});

test('openDataPlane: the second of two backends is named in a duplicate-id or bad-field message', async (t) => {
  const root = await tempDir(t);
  const ok = { id: 'first', kind: 'fs', root: join(root, 'a') };
  // The field is named precisely enough to find it: the second backend (index 1), not the first.
  await rejectsWith(t, openDataPlane({ backends: [ok, { id: 'second', kind: 'fs' }] }), 'INVALID_ARGUMENT', ['root', '1']);
  await rejectsWith(t, openDataPlane({ backends: [ok, { id: 'second', kind: 'nfs', root }] }), 'INVALID_ARGUMENT', ['kind', 'nfs', '1']);
});

// ---------------------------------------------------------------------------------------------
// Routing between two backends

async function twoBackends(t, defaultBackend) {
  const rootA = await tempDir(t, 'dp-a-');
  const rootB = await tempDir(t, 'dp-b-');
  const config = {
    backends: [
      { id: 'alpha', kind: 'fs', root: rootA, durable: false },
      { id: 'beta', kind: 'fs', root: rootB, durable: false },
    ],
  };
  if (defaultBackend !== undefined) config.defaultBackend = defaultBackend;
  const dp = await openPlane(t, config);
  return { dp, rootA, rootB };
}

test('defaultBackend routes calls without a backendId; backendId routes to the other', async (t) => {
  const { dp, rootA, rootB } = await twoBackends(t, 'beta');
  const dataDefault = bytes(100 * KiB + 1, 31);
  const dataOther = bytes(100 * KiB + 2, 32);

  const toDefault = await dp.ingestStream(chunked(dataDefault));
  t.is(toDefault.receipt.backendId, 'beta');
  t.true(await exists(join(rootB, toDefault.receipt.locator)));
  t.false(await exists(join(rootA, toDefault.receipt.locator)));

  const toOther = await dp.ingestStream(chunked(dataOther), { hints: { backendId: 'alpha' } });
  t.is(toOther.receipt.backendId, 'alpha');
  t.true(await exists(join(rootA, toOther.receipt.locator)));
  t.false(await exists(join(rootB, toOther.receipt.locator)));

  // serve: routed by backendId; the default without it.
  t.deepEqual(await collect(await dp.serveObject(toDefault.primaryDigest)), dataDefault);
  t.deepEqual(await collect(await dp.serveObject(toOther.primaryDigest, { backendId: 'alpha' })), dataOther);
  await rejectsWith(t, dp.serveObject(toOther.primaryDigest), 'NOT_FOUND', [], 'alpha object on the default');
  await rejectsWith(t, dp.serveObject(toDefault.primaryDigest, { backendId: 'alpha' }), 'NOT_FOUND', [], 'beta object on alpha');

  // verify: routed.
  t.true((await dp.verifyObject(toDefault.primaryDigest)).verified);
  t.true((await dp.verifyObject(toDefault.primaryDigest, { backendId: 'beta' })).verified);
  t.true((await dp.verifyObject(toOther.primaryDigest, { backendId: 'alpha' })).verified);
  await rejectsWith(t, dp.verifyObject(toOther.primaryDigest), 'NOT_FOUND');

  // The same content on both backends: one ingest per backend, neither deduplicated.
  const copy = await dp.ingestStream(chunked(dataDefault), { hints: { backendId: 'alpha' } });
  t.false(copy.receipt.deduplicated, 'a different backend holds its own copy');
  t.is(copy.receipt.backendId, 'alpha');

  // delete: routed, and the result names the backend.
  t.deepEqual(await dp.deleteObject(toOther.primaryDigest), {
    contentAddress: toOther.primaryDigest, backendId: 'beta', deleted: false,
  });
  t.deepEqual(await dp.deleteObject(toDefault.primaryDigest, { backendId: 'alpha' }), {
    contentAddress: toDefault.primaryDigest, backendId: 'alpha', deleted: true,
  });
  t.true((await dp.verifyObject(toDefault.primaryDigest)).verified, 'the default backend still has its copy');
  t.deepEqual(await dp.deleteObject(toDefault.primaryDigest), {
    contentAddress: toDefault.primaryDigest, backendId: 'beta', deleted: true,
  });
  t.true((await dp.deleteObject(toOther.primaryDigest, { backendId: 'alpha' })).deleted);
});

test('without defaultBackend the first backend is the default', async (t) => {
  const { dp, rootA } = await twoBackends(t);
  const result = await dp.ingestStream(chunked(bytes(5000, 33)));
  t.is(result.receipt.backendId, 'alpha');
  t.true(await exists(join(rootA, result.receipt.locator)));
  t.is((await dp.deleteObject(result.primaryDigest)).backendId, 'alpha');
});

test('ingestFile routes by hints.backendId too', async (t) => {
  const { dp, rootA, rootB } = await twoBackends(t, 'alpha');
  const dir = await tempDir(t);
  const file = join(dir, 'input.bin');
  await writeFile(file, bytes(20 * KiB, 34));
  const result = await dp.ingestFile(file, { hints: { backendId: 'beta' } });
  t.is(result.receipt.backendId, 'beta');
  t.true(await exists(join(rootB, result.receipt.locator)));
  t.false(await exists(join(rootA, result.receipt.locator)));
});

test('an unknown backendId rejects with UNKNOWN_BACKEND on every operation', async (t) => {
  const { dp, rootA, rootB } = await twoBackends(t, 'beta');
  const dir = await tempDir(t);
  const file = join(dir, 'input.bin');
  await writeFile(file, bytes(10 * KiB, 35));
  const stored = await dp.ingestStream(chunked(bytes(10 * KiB, 35)));
  const address = stored.primaryDigest;
  const ghost = 'gamma';
  const calls = {
    ingestStream: () => dp.ingestStream(chunked(bytes(10 * KiB, 36)), { hints: { backendId: ghost } }),
    'ingestStream (one chunk)': () => dp.ingestStream([Buffer.from('small')], { hints: { backendId: ghost } }),
    ingestFile: () => dp.ingestFile(file, { hints: { backendId: ghost } }),
    serveObject: () => dp.serveObject(address, { backendId: ghost }),
    verifyObject: () => dp.verifyObject(address, { backendId: ghost }),
    deleteObject: () => dp.deleteObject(address, { backendId: ghost }),
  };
  for (const [name, call] of Object.entries(calls)) {
    await rejectsWith(t, call(), 'UNKNOWN_BACKEND', [ghost], name);
  }
  // Nothing was stored, and the object in the default backend is untouched.
  t.true((await dp.verifyObject(address)).verified);
  t.deepEqual(await readdir(join(rootA, 'objects')), []);
  for (const root of [rootA, rootB]) {
    t.deepEqual(await readdir(join(root, 'tmp')).catch(() => []), [], 'no temporary files left');
  }
});

// ---------------------------------------------------------------------------------------------
// durable

test('durable defaults to true and works (ingest, serve, verify, delete)', async (t) => {
  for (const durable of [undefined, true, false]) {
    const root = await tempDir(t);
    const backend = { id: 'local', kind: 'fs', root };
    if (durable !== undefined) backend.durable = durable;
    const dp = await openPlane(t, { backends: [backend] });
    const data = bytes(MiB + 3, 37);
    const result = await dp.ingestStream(chunked(data));
    t.is(result.sha256Digest.hex, sha256Hex(data));
    t.deepEqual(await collect(await dp.serveObject(result.primaryDigest)), data);
    t.true((await dp.verifyObject(result.primaryDigest)).verified);
    t.true((await dp.backendHealth()).healthy);
    t.true((await dp.deleteObject(result.primaryDigest)).deleted);
    await dp.close();
  }
});

test('objects outlive the data plane: reopening the same root finds them', async (t) => {
  const root = await tempDir(t);
  const config = { backends: [{ id: 'local', kind: 'fs', root }] };
  const data = bytes(70 * KiB, 38);
  const first = await openDataPlane(config);
  const stored = await first.ingestStream(chunked(data));
  await first.close();
  const second = await openPlane(t, config);
  t.deepEqual(await collect(await second.serveObject(stored.primaryDigest)), data);
  t.true((await second.ingestStream(chunked(data))).receipt.deduplicated);
});

// ---------------------------------------------------------------------------------------------
// backendHealth

function assertProbe(t, health, backendId) {
  t.is(health.backendId, backendId);
  t.is(health.kind, 'fs');
  t.true(Number.isSafeInteger(health.latencyMicros), `latencyMicros ${health.latencyMicros} is whole`);
  t.true(health.latencyMicros >= 0);
}

test('backendHealth probes every backend: healthy, with space and latency', async (t) => {
  const { dp } = await twoBackends(t, 'beta');
  const status = await dp.backendHealth();
  t.true(status.healthy);
  t.is(status.backends.length, 2);
  t.deepEqual(status.backends.map((b) => b.backendId).sort(), ['alpha', 'beta']);
  for (const health of status.backends) {
    assertProbe(t, health, health.backendId);
    t.true(health.healthy);
    t.true(Number.isSafeInteger(health.freeBytes) && health.freeBytes > 0, `freeBytes ${health.freeBytes}`);
    t.true(Number.isSafeInteger(health.totalBytes) && health.totalBytes > 0, `totalBytes ${health.totalBytes}`);
    t.true(health.totalBytes >= health.freeBytes);
  }
});

test('backendHealth leaves nothing behind in the store', async (t) => {
  const store = await openStore('fs');
  t.teardown(() => store.close());
  for (let i = 0; i < 3; i++) t.true((await store.dp.backendHealth()).healthy);
  t.deepEqual(await store.leftovers(), []);
  t.deepEqual(await readdir(join(store.root, 'objects')), []);
});

test('backendHealth: a removed root is unhealthy with a detail, and health still resolves', async (t) => {
  const { dp, rootB } = await twoBackends(t, 'alpha');
  await rm(rootB, { recursive: true, force: true });
  const status = await dp.backendHealth();
  t.false(status.healthy, 'overall unhealthy when one backend is');
  const alpha = status.backends.find((b) => b.backendId === 'alpha');
  const beta = status.backends.find((b) => b.backendId === 'beta');
  t.true(alpha?.healthy);
  assertProbe(t, beta, 'beta');
  t.false(beta.healthy);
  t.is(typeof beta.detail, 'string');
  t.true(beta.detail.length > 0);
  t.false(await exists(rootB), 'the probe does not silently recreate the root');
});

test('backendHealth: a root replaced by a file is unhealthy with a detail', async (t) => {
  const store = await openStore('fs');
  t.teardown(() => store.close());
  await rm(store.root, { recursive: true, force: true });
  await writeFile(store.root, 'not a directory');
  const status = await store.dp.backendHealth();
  t.false(status.healthy);
  t.is(status.backends.length, 1);
  assertProbe(t, status.backends[0], store.backendId);
  t.false(status.backends[0].healthy);
  t.true(typeof status.backends[0].detail === 'string' && status.backends[0].detail.length > 0);
  await rm(store.root, { force: true });
  await mkdir(store.root); // so that store.close() has something to remove
});

test('backendHealth: an unreachable s3 backend is unhealthy with a detail, never a rejection', async (t) => {
  const root = await tempDir(t);
  const dp = await openPlane(t, {
    backends: [
      { id: 'local', kind: 'fs', root },
      // Nothing listens on the discard port of the loopback: the connection is refused.
      { id: 'bucket', kind: 's3', bucket: 'artifacts', prefix: 'cas/', endpoint: 'http://127.0.0.1:9', region: 'us-east-1',
        accessKeyId: 'test', secretAccessKey: 'test-secret' },
    ],
  });
  const status = await dp.backendHealth();
  t.false(status.healthy);
  const local = status.backends.find((b) => b.backendId === 'local');
  const bucket = status.backends.find((b) => b.backendId === 'bucket');
  t.true(local?.healthy);
  t.is(bucket?.kind, 's3');
  t.false(bucket?.healthy);
  t.true(typeof bucket?.detail === 'string' && bucket.detail.length > 0);
  t.true(Number.isSafeInteger(bucket?.latencyMicros) && bucket.latencyMicros >= 0);
});

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

// Root ignores file modes, so as root the store gets a filesystem of its own that is then
// remounted read-only; as anyone else, chmod does it.
async function makeReadOnly(root) {
  if (!isRoot) {
    await chmod(join(root, 'tmp'), 0o555);
    await chmod(root, 0o555);
    return async () => {
      await chmod(join(root, 'tmp'), 0o755).catch(() => {});
      await chmod(root, 0o755).catch(() => {});
    };
  }
  execFileSync('mount', ['-o', 'remount,ro', root]);
  return async () => execFileSync('umount', [root]);
}

test('backendHealth: a read-only root is unhealthy with a detail', async (t) => {
  const root = await tempDir(t);
  if (isRoot) execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', root]);
  const dp = await openDataPlane({ backends: [{ id: 'local', kind: 'fs', root }] });
  const restore = await makeReadOnly(root);
  t.teardown(async () => {
    await dp.close();
    await restore();
  });
  const status = await dp.backendHealth();
  t.false(status.healthy);
  t.false(status.backends[0].healthy);
  t.regex(status.backends[0].detail ?? '', /read-only|permission denied/i);
});

// ---------------------------------------------------------------------------------------------
// close

test('after close every call rejects with CLOSED; close twice is fine', async (t) => {
  const store = await openStore('fs');
  t.teardown(() => rm(store.root, { recursive: true, force: true }));
  const { dp } = store;
  const stored = await dp.ingestStream(chunked(bytes(10 * KiB, 41)));
  const dir = await tempDir(t);
  const file = join(dir, 'input.bin');
  await writeFile(file, bytes(1000, 42));

  await dp.close();
  await t.notThrowsAsync(dp.close(), 'a second close resolves');

  const calls = {
    ingestStream: () => dp.ingestStream(chunked(bytes(10 * KiB, 43))),
    ingestFile: () => dp.ingestFile(file),
    serveObject: () => dp.serveObject(stored.primaryDigest),
    verifyObject: () => dp.verifyObject(stored.primaryDigest),
    deleteObject: () => dp.deleteObject(stored.primaryDigest),
    backendHealth: () => dp.backendHealth(),
  };
  for (const [name, call] of Object.entries(calls)) {
    await rejectsWith(t, call(), 'CLOSED', [], name);
  }
  // Nothing happened to the store: the object is still there, nothing new was written.
  t.true(await exists(join(store.root, stored.receipt.locator)));
  t.deepEqual(await store.leftovers(), []);
  await t.notThrowsAsync(dp.close());
});

test('ingestStream after close does not consume the iterable', async (t) => {
  const store = await openStore('fs');
  await store.close();
  let pulled = 0;
  let iteratorAsked = 0;
  const source = {
    [Symbol.asyncIterator]() {
      iteratorAsked++;
      return {
        next: async () => {
          pulled++;
          return pulled > 3 ? { done: true, value: undefined } : { done: false, value: Buffer.from('chunk') };
        },
      };
    },
  };
  await rejectsWith(t, store.dp.ingestStream(source), 'CLOSED');
  t.is(pulled, 0, 'no chunk was pulled');
  t.is(iteratorAsked, 0, 'the iterable was not even opened');

  let started = false;
  const generator = (async function* () {
    started = true;
    yield Buffer.from('x');
  })();
  await rejectsWith(t, store.dp.ingestStream(generator), 'CLOSED');
  t.false(started, 'the generator body never ran');
  // The generator is still usable by its owner.
  t.deepEqual(await generator.next(), { done: false, value: Buffer.from('x') });
});

test('CLOSED takes precedence over bad arguments after close', async (t) => {
  const store = await openStore('fs');
  await store.close();
  await rejectsWith(t, store.dp.verifyObject('not an address'), 'CLOSED');
  await rejectsWith(t, store.dp.ingestFile(''), 'CLOSED');
});

// ---------------------------------------------------------------------------------------------
// parseContentAddress / formatContentAddress

const SAMPLES = [
  { algorithm: 'blake3', hex: 'af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262' },
  { algorithm: 'sha256', hex: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855' },
  { algorithm: 'blake3', hex: '0'.repeat(64) },
  { algorithm: 'sha256', hex: 'f'.repeat(64) },
];

test('formatContentAddress gives "<algorithm>:<hex>" and parseContentAddress reads it back', (t) => {
  for (const address of SAMPLES) {
    const text = formatContentAddress(address);
    t.is(text, `${address.algorithm}:${address.hex}`);
    const parsed = parseContentAddress(text);
    t.deepEqual(parsed, address);
    t.deepEqual(Object.keys(parsed).sort(), ['algorithm', 'hex']);
    t.is(formatContentAddress(parsed), text);
  }
});

test('a real ingest result round-trips through the text form', async (t) => {
  const store = await openStore('fs');
  t.teardown(() => store.close());
  const result = await store.dp.ingestStream(chunked(bytes(3000, 44)));
  for (const digest of [result.primaryDigest, result.sha256Digest]) {
    t.deepEqual(parseContentAddress(formatContentAddress(digest)), { algorithm: digest.algorithm, hex: digest.hex });
  }
  t.true(result.receipt.locator.endsWith(result.primaryDigest.hex));
});

function assertInvalidAddress(t, run, mentions, what) {
  const error = t.throws(run, { instanceOf: DataPlaneError }, what);
  if (!error) return;
  t.is(error.code, 'INVALID_ADDRESS', what);
  t.true(
    mentions.some((text) => error.message.includes(text)),
    `${what}: message ${JSON.stringify(error.message)} contains one of ${JSON.stringify(mentions)}`,
  );
}

test('parseContentAddress accepts exactly the SPEC form; anything else is INVALID_ADDRESS naming the value', (t) => {
  const hex = SAMPLES[0].hex;
  const bad = [
    `blake3:${hex.slice(1)}`, // 63 hex
    `blake3:${hex}0`, // 65 hex
    `BLAKE3:${hex}`,
    `Blake3:${hex}`,
    `blake3:${hex.toUpperCase()}`,
    `blake3:${hex.slice(0, 63)}A`,
    `blake3:${hex.slice(0, 63)}g`,
    `blake3:${'z'.repeat(64)}`,
    `blake3:${hex.slice(0, 30)}-${hex.slice(31)}`,
    `blake3::${hex}`,
    `blake3:${hex}:`,
    `blake3:a:${hex}`,
    `:${hex}`,
    `blake3:`,
    `blake3${hex}`,
    hex,
    ` blake3:${hex}`,
    `blake3:${hex} `,
    `blake3: ${hex}`,
    `blake3 :${hex}`,
    `blake3:${hex}\n`,
    `\tsha256:${hex}`,
    `md5:${'a'.repeat(32)}`,
    `md5:${hex}`,
    `sha512:${hex}`,
    `sha-256:${hex}`,
    `blake3:0x${hex.slice(2)}`,
    `blake3:${hex.slice(0, 63)}\u0000`,
    `blake3:${hex.slice(0, 63)}\u0661`, // an Arabic-Indic digit
  ];
  for (const text of bad) {
    // A control character may be shown escaped; the rest of the value must be there as it is.
    const printable = text.replace(/[\u0000-\u001f]/g, '');
    assertInvalidAddress(t, () => parseContentAddress(text), [text, JSON.stringify(text), printable], JSON.stringify(text));
  }
  assertInvalidAddress(t, () => parseContentAddress(''), ['""', "''"], 'empty string');
});

test('parseContentAddress rejects non-string input with INVALID_ADDRESS', (t) => {
  const values = [undefined, null, 5, true, {}, [], SAMPLES[0], Buffer.from(`blake3:${HEX}`), Symbol('x')];
  for (const value of values) {
    const mentions = typeof value === 'symbol' ? ['Symbol', 'symbol'] : [String(value), JSON.stringify(value) ?? 'undefined'];
    assertInvalidAddress(t, () => parseContentAddress(value), mentions, typeof value === 'symbol' ? 'symbol' : String(JSON.stringify(value)));
  }
});

test('formatContentAddress rejects malformed objects with INVALID_ADDRESS naming the bad value', (t) => {
  const cases = [
    [{ algorithm: 'md5', hex: HEX }, ['md5']],
    [{ algorithm: 'BLAKE3', hex: HEX }, ['BLAKE3']],
    [{ algorithm: 'blake3', hex: HEX.toUpperCase() }, [HEX.toUpperCase()]],
    [{ algorithm: 'blake3', hex: HEX.slice(1) }, [HEX.slice(1)]],
    [{ algorithm: 'blake3', hex: `${HEX}0` }, [`${HEX}0`]],
    [{ algorithm: 'blake3', hex: 'xyz' }, ['xyz']],
    [{ algorithm: 'blake3', hex: ` ${HEX.slice(1)}` }, [` ${HEX.slice(1)}`]],
    [{ algorithm: 'blake3:x', hex: HEX }, ['blake3:x']],
    [{ algorithm: 'blake3' }, ['blake3']],
    [{ hex: HEX }, [HEX]],
    [{ algorithm: 5, hex: HEX }, ['5']],
    [{ algorithm: 'blake3', hex: 12345 }, ['12345']],
    [{}, ['{}']],
    [[], ['[]']],
    [null, ['null']],
    [undefined, ['undefined']],
    [42, ['42']],
  ];
  for (const [value, mentions] of cases) {
    assertInvalidAddress(t, () => formatContentAddress(value), mentions, String(JSON.stringify(value)));
  }
});

test('operations reject a malformed AddressLike with INVALID_ADDRESS before touching a backend', async (t) => {
  const store = await openStore('fs');
  t.teardown(() => store.close());
  const { dp } = store;
  const bad = [
    { algorithm: 'blake3' },
    { algorithm: 'blake3', hex: HEX.toUpperCase() },
    { algorithm: 'md5', hex: HEX },
    `blake3:${HEX.slice(1)}`,
    '',
    null,
    42,
  ];
  for (const address of bad) {
    for (const [name, call] of Object.entries({
      serveObject: () => dp.serveObject(address),
      verifyObject: () => dp.verifyObject(address),
      deleteObject: () => dp.deleteObject(address),
    })) {
      await rejectsWith(t, call(), 'INVALID_ADDRESS', [], `${name}(${JSON.stringify(address)})`);
    }
  }
});

// ---------------------------------------------------------------------------------------------
// DataPlaneError

test('DataPlaneError is an Error subclass with code and name', async (t) => {
  t.true(typeof DataPlaneError === 'function');
  t.true(DataPlaneError.prototype instanceof Error);
  const thrown = t.throws(() => parseContentAddress('nope'));
  t.true(thrown instanceof Error);
  t.true(thrown instanceof DataPlaneError);
  t.is(thrown.name, 'DataPlaneError');
  t.is(thrown.code, 'INVALID_ADDRESS');
  t.is(typeof thrown.message, 'string');
  t.is(typeof thrown.stack, 'string');
  t.true(Object.prototype.toString.call(thrown) === '[object Error]');

  // The same class comes out of the native side (a rejection produced in Rust).
  const store = await openStore('fs');
  t.teardown(() => store.close());
  const missing = await t.throwsAsync(store.dp.verifyObject({ algorithm: 'blake3', hex: HEX }));
  t.true(missing instanceof DataPlaneError);
  t.true(missing instanceof Error);
  t.is(missing.name, 'DataPlaneError');
  t.is(missing.code, 'NOT_FOUND');
  t.true(missing.message.includes(HEX), 'the message names the address');
  t.false(/^NOT_FOUND: /.test(missing.message), 'the code is not left in the message text');
});

// ---------------------------------------------------------------------------------------------
// ingestFile

test('ingestFile gives the same digests as ingestStream of the same bytes', async (t) => {
  const store = await openStore('fs');
  t.teardown(() => store.close());
  const dir = await tempDir(t);
  const data = bytes(5 * MiB + 12345, 51);
  const file = join(dir, 'artifact.bin');
  await writeFile(file, data);

  const fromFile = await store.dp.ingestFile(file);
  t.is(fromFile.sizeBytes, data.length);
  t.deepEqual(fromFile.sha256Digest, { algorithm: 'sha256', hex: sha256Hex(data) });
  t.is(fromFile.primaryDigest.algorithm, 'blake3');
  t.false(fromFile.receipt.deduplicated);
  t.is(fromFile.receipt.sizeBytes, data.length);
  t.is(fromFile.receipt.backendId, store.backendId);

  const fromStream = await store.dp.ingestStream(chunked(data, 100 * KiB));
  t.deepEqual(fromStream.primaryDigest, fromFile.primaryDigest);
  t.deepEqual(fromStream.sha256Digest, fromFile.sha256Digest);
  t.is(fromStream.sizeBytes, fromFile.sizeBytes);
  t.is(fromStream.receipt.locator, fromFile.receipt.locator);
  t.true(fromStream.receipt.deduplicated);

  t.deepEqual(await collect(await store.dp.serveObject(fromFile.primaryDigest)), data);
  t.true((await store.dp.verifyObject(fromFile.primaryDigest)).verified);
  t.deepEqual(await store.leftovers(), []);

  // On a fresh store, stream first then file: the same again.
  const other = await openStore('fs');
  t.teardown(() => other.close());
  const streamFirst = await other.dp.ingestStream(chunked(data, 64 * KiB));
  const fileSecond = await other.dp.ingestFile(file);
  t.deepEqual(fileSecond.primaryDigest, streamFirst.primaryDigest);
  t.true(fileSecond.receipt.deduplicated);
});

test('ingestFile honours primaryAlgorithm and expectations', async (t) => {
  const store = await openStore('fs');
  t.teardown(() => store.close());
  const dir = await tempDir(t);
  const data = bytes(MiB + 1, 52);
  const file = join(dir, 'artifact.bin');
  await writeFile(file, data);

  await rejectsWith(t, store.dp.ingestFile(file, { expect: { sha256: 'b'.repeat(64) } }), 'INTEGRITY_MISMATCH');
  await rejectsWith(t, store.dp.ingestFile(file, { expect: { sizeBytes: data.length - 1 } }), 'INTEGRITY_MISMATCH');
  t.deepEqual(await readdir(join(store.root, 'objects')), [], 'a rejected ingest stores nothing');
  t.deepEqual(await store.leftovers(), []);

  const result = await store.dp.ingestFile(file, {
    hints: { primaryAlgorithm: 'sha256', sizeHint: 7 },
    expect: { sha256: sha256Hex(data), sizeBytes: data.length, primary: sha256Hex(data) },
  });
  t.deepEqual(result.primaryDigest, { algorithm: 'sha256', hex: sha256Hex(data) });
  t.deepEqual(result.sha256Digest, result.primaryDigest);
});

test('ingestFile of an empty file stores the empty object', async (t) => {
  const store = await openStore('fs');
  t.teardown(() => store.close());
  const dir = await tempDir(t);
  const file = join(dir, 'empty');
  await writeFile(file, '');
  const result = await store.dp.ingestFile(file);
  t.is(result.sizeBytes, 0);
  t.is(result.sha256Digest.hex, sha256Hex(Buffer.alloc(0)));
  const streamed = await store.dp.ingestStream([]);
  t.deepEqual(streamed.primaryDigest, result.primaryDigest);
});

test('ingestFile of a missing file rejects with IO naming the path; an empty path is INVALID_ARGUMENT', async (t) => {
  const store = await openStore('fs');
  t.teardown(() => store.close());
  const dir = await tempDir(t);
  const missing = join(dir, 'no-such-file.bin');
  await rejectsWith(t, store.dp.ingestFile(missing), 'IO', [missing]);
  await rejectsWith(t, store.dp.ingestFile(''), 'INVALID_ARGUMENT');
  // A directory is not a file either.
  const error = await t.throwsAsync(store.dp.ingestFile(dir), { instanceOf: DataPlaneError });
  t.true(error?.message.includes(dir));
  t.deepEqual(await readdir(join(store.root, 'objects')), []);
  t.deepEqual(await store.leftovers(), []);
});
