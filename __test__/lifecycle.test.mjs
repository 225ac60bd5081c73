// The data plane's life, SPEC Entry points and Semantics: Configuration (what openDataPlane
// rejects), routing between backends (defaultBackend, backendId, UNKNOWN_BACKEND), durable,
// backendHealth, close (CLOSED), and Errors (DataPlaneError). Every rule runs in the conformance
// suite, through every opener; the fs-only ones (a root removed, read-only) on fs alone.

import test from 'ava';
import { execFileSync } from 'node:child_process';
import { chmod, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { DataPlaneError, openDataPlane, parseContentAddress } from '@artifactstore/data-plane';

import { conformanceTest, openerTest } from './conformance.mjs';
import { bytes, chunked, collect, KiB, MiB, rejects } from './helpers.mjs';
import { sha256Hex, tempDir } from './fixtures/support.mjs';

const HEX = 'a'.repeat(64);

const exists = (path) => stat(path).then(() => true, () => false);

// ---------------------------------------------------------------------------------------------
// Configuration

openerTest('Configuration: openDataPlane rejects configurations it cannot honour with INVALID_ARGUMENT naming the field', async (t, { open }) => {
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
    await rejects(t, open(config), 'INVALID_ARGUMENT', { message: mentions, what });
  }
});

openerTest('Configuration: openDataPlane rejects a configuration that is not an object', async (t, { open }) => {
  for (const config of [undefined, null, 'fs', 42, true]) {
    const error = await rejects(t, open(config), 'INVALID_ARGUMENT', { what: String(config) });
    t.regex(error?.message ?? '', /config/i, 'the message says it is the configuration that is wrong');
  }
});

// No argument at all is a call of the in-process entry point itself (an opener always passes one).
test('Configuration (in-process): openDataPlane() without an argument rejects with INVALID_ARGUMENT', async (t) => {
  const error = await rejects(t, openDataPlane(), 'INVALID_ARGUMENT', { what: 'no argument' });
  t.regex(error?.message ?? '', /config/i);
});

openerTest('Configuration: the second of two backends is named in a duplicate-id or bad-field message', async (t, { open }) => {
  const root = await tempDir(t);
  const ok = { id: 'first', kind: 'fs', root: join(root, 'a') };
  // The field is named precisely enough to find it: the second backend (index 1), not the first.
  await rejects(t, open({ backends: [ok, { id: 'second', kind: 'fs' }] }), 'INVALID_ARGUMENT', { message: ['root', '1'] });
  await rejects(t, open({ backends: [ok, { id: 'second', kind: 'nfs', root }] }), 'INVALID_ARGUMENT', { message: ['kind', 'nfs', '1'] });
});

// ---------------------------------------------------------------------------------------------
// Routing between two backends of one kind

/** A plane over two fresh stores of the context's kind, 'alpha' and 'beta'. */
async function twoBackends({ newStore, open }, defaultBackend) {
  const alpha = await newStore({ id: 'alpha' });
  const beta = await newStore({ id: 'beta' });
  const config = { backends: [alpha.backend, beta.backend] };
  if (defaultBackend !== undefined) config.defaultBackend = defaultBackend;
  const dp = await open(config);
  return { dp, alpha, beta };
}

conformanceTest('defaultBackend routes calls without a backendId; backendId routes to the other', async (t, context) => {
  const { dp, alpha, beta } = await twoBackends(context, 'beta');
  const dataDefault = bytes(100 * KiB + 1, 31);
  const dataOther = bytes(100 * KiB + 2, 32);

  const toDefault = await dp.ingestStream(chunked(dataDefault));
  t.is(toDefault.receipt.backendId, 'beta');
  t.true(await beta.holds(toDefault.receipt.locator));
  t.false(await alpha.holds(toDefault.receipt.locator));

  const toOther = await dp.ingestStream(chunked(dataOther), { hints: { backendId: 'alpha' } });
  t.is(toOther.receipt.backendId, 'alpha');
  t.true(await alpha.holds(toOther.receipt.locator));
  t.false(await beta.holds(toOther.receipt.locator));

  // serve: routed by backendId; the default without it.
  t.deepEqual(await collect(await dp.serveObject(toDefault.primaryDigest)), dataDefault);
  t.deepEqual(await collect(await dp.serveObject(toOther.primaryDigest, { backendId: 'alpha' })), dataOther);
  await rejects(t, dp.serveObject(toOther.primaryDigest), 'NOT_FOUND', { what: 'alpha object on the default' });
  await rejects(t, dp.serveObject(toDefault.primaryDigest, { backendId: 'alpha' }), 'NOT_FOUND', { what: 'beta object on alpha' });

  // verify: routed.
  t.true((await dp.verifyObject(toDefault.primaryDigest)).verified);
  t.true((await dp.verifyObject(toDefault.primaryDigest, { backendId: 'beta' })).verified);
  t.true((await dp.verifyObject(toOther.primaryDigest, { backendId: 'alpha' })).verified);
  await rejects(t, dp.verifyObject(toOther.primaryDigest), 'NOT_FOUND');

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

conformanceTest('defaultBackend: without it the first backend is the default', async (t, context) => {
  const { dp, alpha } = await twoBackends(context);
  const result = await dp.ingestStream(chunked(bytes(5000, 33)));
  t.is(result.receipt.backendId, 'alpha');
  t.true(await alpha.holds(result.receipt.locator));
  t.is((await dp.deleteObject(result.primaryDigest)).backendId, 'alpha');
});

conformanceTest('ingestFile: routes by hints.backendId too', async (t, context) => {
  const { dp, alpha, beta } = await twoBackends(context, 'alpha');
  const dir = await tempDir(t);
  const file = join(dir, 'input.bin');
  await writeFile(file, bytes(20 * KiB, 34));
  const result = await dp.ingestFile(file, { hints: { backendId: 'beta' } });
  t.is(result.receipt.backendId, 'beta');
  t.true(await beta.holds(result.receipt.locator));
  t.false(await alpha.holds(result.receipt.locator));
});

conformanceTest('Errors: an unknown backendId rejects with UNKNOWN_BACKEND on every operation', async (t, context) => {
  const { dp, alpha, beta } = await twoBackends(context, 'beta');
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
    await rejects(t, call(), 'UNKNOWN_BACKEND', { message: ghost, what: name });
  }
  // Nothing was stored, and the object in the default backend is untouched.
  t.true((await dp.verifyObject(address)).verified);
  t.deepEqual(await alpha.stored(), []);
  for (const store of [alpha, beta]) {
    t.deepEqual(await store.leftovers(), [], 'no temporary files left');
  }
});

// ---------------------------------------------------------------------------------------------
// durable, and objects outliving the plane

conformanceTest('Entry points: durable defaults to true and works (ingest, serve, verify, delete)', async (t, { newStore, open }) => {
  for (const durable of [undefined, true, false]) {
    const { root } = await newStore();
    const backend = { id: 'local', kind: 'fs', root };
    if (durable !== undefined) backend.durable = durable;
    const dp = await open({ backends: [backend] });
    const data = bytes(MiB + 3, 37);
    const result = await dp.ingestStream(chunked(data));
    t.is(result.sha256Digest.hex, sha256Hex(data));
    t.deepEqual(await collect(await dp.serveObject(result.primaryDigest)), data);
    t.true((await dp.verifyObject(result.primaryDigest)).verified);
    t.true((await dp.backendHealth()).healthy);
    t.true((await dp.deleteObject(result.primaryDigest)).deleted);
    await dp.close();
  }
}, { kinds: ['fs'] });

conformanceTest('Entry points: objects outlive the data plane: reopening the same store finds them', async (t, { dp: first, config, open }) => {
  const data = bytes(70 * KiB, 38);
  const stored = await first.ingestStream(chunked(data));
  await first.close();
  const second = await open(config);
  t.deepEqual(await collect(await second.serveObject(stored.primaryDigest)), data);
  t.true((await second.ingestStream(chunked(data))).receipt.deduplicated);
});

// ---------------------------------------------------------------------------------------------
// backendHealth

function assertProbe(t, health, backendId, kind = 'fs') {
  t.is(health.backendId, backendId);
  t.is(health.kind, kind);
  t.true(Number.isSafeInteger(health.latencyMicros), `latencyMicros ${health.latencyMicros} is whole`);
  t.true(health.latencyMicros >= 0);
}

conformanceTest('backendHealth: probes every backend: healthy, with latency, and space on fs', async (t, context) => {
  const { dp } = await twoBackends(context, 'beta');
  const status = await dp.backendHealth();
  t.true(status.healthy);
  t.is(status.backends.length, 2);
  t.deepEqual(status.backends.map((b) => b.backendId).sort(), ['alpha', 'beta']);
  for (const health of status.backends) {
    assertProbe(t, health, health.backendId, context.kind);
    t.true(health.healthy);
    if (context.kind !== 'fs') {
      t.is(health.freeBytes, undefined, 'a bucket has no free space to tell');
      continue;
    }
    t.true(Number.isSafeInteger(health.freeBytes) && health.freeBytes > 0, `freeBytes ${health.freeBytes}`);
    t.true(Number.isSafeInteger(health.totalBytes) && health.totalBytes > 0, `totalBytes ${health.totalBytes}`);
    t.true(health.totalBytes >= health.freeBytes);
  }
});

conformanceTest('backendHealth: leaves nothing behind in the store', async (t, store) => {
  for (let i = 0; i < 3; i++) t.true((await store.dp.backendHealth()).healthy);
  t.deepEqual(await store.leftovers(), []);
  t.deepEqual(await store.stored(), []);
});

conformanceTest('backendHealth: a removed root is unhealthy with a detail, and health still resolves', async (t, context) => {
  const { dp, beta } = await twoBackends(context, 'alpha');
  await rm(beta.root, { recursive: true, force: true });
  const status = await dp.backendHealth();
  t.false(status.healthy, 'overall unhealthy when one backend is');
  const alphaHealth = status.backends.find((b) => b.backendId === 'alpha');
  const betaHealth = status.backends.find((b) => b.backendId === 'beta');
  t.true(alphaHealth?.healthy);
  assertProbe(t, betaHealth, 'beta');
  t.false(betaHealth.healthy);
  t.is(typeof betaHealth.detail, 'string');
  t.true(betaHealth.detail.length > 0);
  t.false(await exists(beta.root), 'the probe does not silently recreate the root');
}, { kinds: ['fs'] });

conformanceTest('backendHealth: a root replaced by a file is unhealthy with a detail', async (t, store) => {
  await rm(store.root, { recursive: true, force: true });
  await writeFile(store.root, 'not a directory');
  const status = await store.dp.backendHealth();
  t.false(status.healthy);
  t.is(status.backends.length, 1);
  assertProbe(t, status.backends[0], store.backendId);
  t.false(status.backends[0].healthy);
  t.true(typeof status.backends[0].detail === 'string' && status.backends[0].detail.length > 0);
}, { kinds: ['fs'] });

openerTest('backendHealth: an unreachable s3 backend is unhealthy with a detail, never a rejection', async (t, { open }) => {
  const root = await tempDir(t);
  const dp = await open({
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

openerTest('backendHealth: a read-only root is unhealthy with a detail', async (t, { open }) => {
  const root = await tempDir(t);
  if (isRoot) execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', root]);
  let restore = async () => {};
  t.teardown(() => restore()); // after the plane is closed (teardowns run last first)
  const dp = await open({ backends: [{ id: 'local', kind: 'fs', root }] });
  restore = await makeReadOnly(root);
  const status = await dp.backendHealth();
  t.false(status.healthy);
  t.false(status.backends[0].healthy);
  t.regex(status.backends[0].detail ?? '', /read-only|permission denied/i);
});

// ---------------------------------------------------------------------------------------------
// close

conformanceTest('close: after close every call rejects with CLOSED; close twice is fine', async (t, store) => {
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
    await rejects(t, call(), 'CLOSED', { what: name });
  }
  // Nothing happened to the store: the object is still there, nothing new was written.
  t.true(await store.holds(stored.receipt.locator));
  t.deepEqual(await store.leftovers(), []);
  await t.notThrowsAsync(dp.close());
});

conformanceTest('close: ingestStream after close does not consume the iterable', async (t, { dp }) => {
  await dp.close();
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
  await rejects(t, dp.ingestStream(source), 'CLOSED');
  t.is(pulled, 0, 'no chunk was pulled');
  t.is(iteratorAsked, 0, 'the iterable was not even opened');

  let started = false;
  const generator = (async function* () {
    started = true;
    yield Buffer.from('x');
  })();
  await rejects(t, dp.ingestStream(generator), 'CLOSED');
  t.false(started, 'the generator body never ran');
  // The generator is still usable by its owner.
  t.deepEqual(await generator.next(), { done: false, value: Buffer.from('x') });
});

conformanceTest('close: CLOSED takes precedence over bad arguments after close', async (t, { dp }) => {
  await dp.close();
  await rejects(t, dp.verifyObject('not an address'), 'CLOSED');
  await rejects(t, dp.ingestFile(''), 'CLOSED');
});

// ---------------------------------------------------------------------------------------------
// Errors: DataPlaneError

test('Errors: DataPlaneError is an Error subclass with code and name', (t) => {
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
});

conformanceTest('Errors: a rejection by the plane is the same DataPlaneError, its message naming the value and not the code', async (t, { dp }) => {
  const missing = await t.throwsAsync(dp.verifyObject({ algorithm: 'blake3', hex: HEX }));
  t.true(missing instanceof DataPlaneError);
  t.true(missing instanceof Error);
  t.is(missing.name, 'DataPlaneError');
  t.is(missing.code, 'NOT_FOUND');
  t.true(missing.message.includes(HEX), 'the message names the address');
  t.false(/^NOT_FOUND: /.test(missing.message), 'the code is not left in the message text');
});
