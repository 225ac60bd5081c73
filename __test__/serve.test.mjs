// SPEC Semantics, serveObject: whole objects and every edge of a byte range, INVALID_RANGE,
// INVALID_ADDRESS and NOT_FOUND before any byte, breaking out of the loop, aborting. The conformance
// tests (`conformanceTest`) run through every opener; the ones at the end that count this
// process's descriptors and threads, or need a child process, are about the in-process plane only.

import test from 'ava';
import { readdir } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';

import { DataPlaneError, formatContentAddress, parseContentAddress } from '@artifactstore/data-plane';
import { conformanceTest } from './conformance.mjs';
import { openDescriptorCount, openFilesUnder, openPlane, sha256Hex } from './fixtures/support.mjs';
import { bytes, chunked, collect, KiB, MiB, rejects, runWithFreshStore } from './helpers.mjs';
import { newStore } from './stores.mjs';

// ---------------------------------------------------------------------------------------------
// Local helpers

/** Ingests `content` (in 64 KiB chunks) and returns its address. */
async function put(store, content, options) {
  const result = await store.dp.ingestStream(chunked(content), options);
  return result.primaryDigest;
}

/** Serves `range` of `address` and checks the stream's fields and bytes against `content`. */
async function serves(t, store, address, content, range) {
  const [start, end] = range ?? [0, content.length];
  const what = range ? `[${start}, ${end})` : 'whole';
  const stream = await store.dp.serveObject(address, range ? { byteRange: range } : undefined);
  t.is(stream.sizeBytes, end - start, `sizeBytes of ${what}`);
  t.is(stream.totalSizeBytes, content.length, `totalSizeBytes of ${what}`);
  t.deepEqual(stream.contentAddress, typeof address === 'string' ? parseContentAddress(address) : address, `contentAddress of ${what}`);
  const chunks = [];
  for await (const chunk of stream) {
    t.true(Buffer.isBuffer(chunk), `chunks are Buffers (${what})`);
    chunks.push(chunk);
  }
  const served = Buffer.concat(chunks);
  t.is(served.length, end - start, `length of ${what}`);
  t.true(served.equals(content.subarray(start, end)), `bytes of ${what}`);
}

const threadCount = async () => (await readdir('/proc/self/task')).length;

const A_HEX = 'a'.repeat(64);
const MISSING = [`blake3:${A_HEX}`, { algorithm: 'blake3', hex: A_HEX }, { algorithm: 'sha256', hex: A_HEX }, `sha256:${'0'.repeat(64)}`];

// ---------------------------------------------------------------------------------------------
// Missing objects

conformanceTest('serveObject: a missing object rejects with NOT_FOUND before any byte, with or without a range', async (t, store) => {
  await put(store, bytes(MiB, 1)); // the store is not empty
  for (const address of MISSING) {
    const error = await rejects(t, store.dp.serveObject(address), 'NOT_FOUND', { what: JSON.stringify(address) });
    t.true(error.message.includes(A_HEX) || error.message.includes('0'.repeat(64)), `the message names the address: ${error.message}`);
    await rejects(t, store.dp.serveObject(address, { byteRange: [0, 0] }), 'NOT_FOUND');
    await rejects(t, store.dp.serveObject(address, { byteRange: [0, 10] }), 'NOT_FOUND');
  }
  // The BLAKE3 hex under the other algorithm names nothing; the object's SHA-256 names it
  // (SPEC Part 2, Either digest), and the stream names it by its primary address.
  const content = bytes(1000, 2);
  const address = await put(store, content);
  t.is(address.algorithm, 'blake3');
  await rejects(t, store.dp.serveObject({ algorithm: 'sha256', hex: address.hex }), 'NOT_FOUND');
  const bySha256 = await store.dp.serveObject(`sha256:${sha256Hex(content)}`, { byteRange: [10, 20] });
  t.deepEqual(bySha256.contentAddress, address);
  t.deepEqual(await collect(bySha256), content.subarray(10, 20));
  // A deleted object is missing again.
  await store.dp.deleteObject(address);
  await rejects(t, store.dp.serveObject(address), 'NOT_FOUND');
});

// ---------------------------------------------------------------------------------------------
// Whole objects and ranges

conformanceTest('serveObject: whole objects of many sizes serve back exactly, as Buffers, with their fields', async (t, store) => {
  for (const size of [0, 1, 1000, 64 * KiB - 1, MiB - 1, MiB, MiB + 1, 2 * MiB + 7]) {
    const content = bytes(size, size + 3);
    const address = await put(store, content);
    await serves(t, store, address, content);
    await serves(t, store, formatContentAddress(address), content);
  }
});

conformanceTest('serveObject: byte ranges at every edge of a 3 MiB object, across its chunk boundaries', async (t, store) => {
  const size = 3 * MiB;
  const content = bytes(size, 11);
  const address = await put(store, content);
  const ranges = [
    [0, 0],
    [0, size],
    [size, size],
    [1, size - 1],
    [size - 1, size],
    [0, 1],
    [MiB, MiB],
    [MiB - 10, MiB + 10],
    [MiB - 1, 2 * MiB + 1],
    [MiB, 2 * MiB],
    [MiB + 1, 3 * MiB - 1],
    [2 * MiB - 1, size],
    [12345, 12345 + MiB],
    [size - MiB - 1, size],
    [7, 8],
  ];
  for (const range of ranges) await serves(t, store, address, content, range);
  // The same ranges by the text address.
  await serves(t, store, formatContentAddress(address), content, [MiB - 10, MiB + 10]);
});

conformanceTest('serveObject: byte ranges of tiny and empty objects', async (t, store) => {
  const empty = await put(store, Buffer.alloc(0));
  await serves(t, store, empty, Buffer.alloc(0), [0, 0]);
  await rejects(t, store.dp.serveObject(empty, { byteRange: [0, 1] }), 'INVALID_RANGE');
  await rejects(t, store.dp.serveObject(empty, { byteRange: [1, 1] }), 'INVALID_RANGE');
  const content = bytes(10, 12);
  const address = await put(store, content);
  for (let start = 0; start <= 10; start++) {
    for (let end = start; end <= 10; end++) await serves(t, store, address, content, [start, end]);
  }
});

conformanceTest('serveObject: ranges of a sha256-addressed object', async (t, store) => {
  const content = bytes(2 * MiB + 3, 13);
  const address = await put(store, content, { hints: { primaryAlgorithm: 'sha256' } });
  t.deepEqual(address, { algorithm: 'sha256', hex: sha256Hex(content) });
  await serves(t, store, address, content);
  await serves(t, store, `sha256:${sha256Hex(content)}`, content, [MiB - 3, MiB + 3]);
  await serves(t, store, address, content, [content.length, content.length]);
});

conformanceTest('serveObject: every kind of bad range rejects with INVALID_RANGE', async (t, store) => {
  const size = 3 * MiB;
  const address = await put(store, bytes(size, 21));
  const bad = [
    ['start after end', [5, 4]],
    ['start after end at the end', [size, size - 1]],
    ['end past the size', [0, size + 1]],
    ['start and end past the size', [size + 1, size + 1]],
    ['far past the size', [2 ** 40, 2 ** 40 + 1]],
    ['negative start', [-1, 5]],
    ['negative end', [0, -1]],
    ['both negative', [-5, -1]],
    ['fractional start', [1.5, 3]],
    ['fractional end', [0, 2.5]],
    ['NaN start', [Number.NaN, 1]],
    ['NaN end', [0, Number.NaN]],
    ['infinite end', [0, Infinity]],
    ['negative infinite start', [-Infinity, 1]],
    ['unsafe integer', [0, 2 ** 53 + 2]],
    ['strings', ['0', '5']],
    ['one string', [0, '5']],
    ['bigints', [0n, 5n]],
    ['null bounds', [null, null]],
    ['one element', [0]],
    ['three elements', [0, 1, 2]],
    ['empty array', []],
    ['a string', '0-5'],
    ['a number', 5],
    ['an object', { start: 0, end: 5 }],
    ['a typed array', new Uint32Array([0, 5])],
    ['a boolean', true],
  ];
  for (const [what, byteRange] of bad) {
    await rejects(t, store.dp.serveObject(address, { byteRange }), 'INVALID_RANGE', { what });
  }
  // The message says what was wrong, with the values.
  const error = await rejects(t, store.dp.serveObject(address, { byteRange: [7, 3] }), 'INVALID_RANGE');
  t.true(error.message.includes('7') && error.message.includes('3'), error.message);
  const past = await rejects(t, store.dp.serveObject(address, { byteRange: [0, size + 1] }), 'INVALID_RANGE');
  t.true(past.message.includes(String(size + 1)), past.message);
});

// ---------------------------------------------------------------------------------------------
// Addresses

const HEX = 'b'.repeat(64);
const MALFORMED = [
  ['uppercase hex', `blake3:${'B'.repeat(64)}`],
  ['mixed-case hex', `blake3:${'b'.repeat(63)}F`],
  ['uppercase algorithm', `BLAKE3:${HEX}`],
  ['63 hex digits', `blake3:${HEX.slice(1)}`],
  ['65 hex digits', `blake3:${HEX}b`],
  ['no hex', 'blake3:'],
  ['non-hex digit', `blake3:${HEX.slice(1)}g`],
  ['unknown algorithm', `md5:${HEX}`],
  ['sha-256 spelling', `sha-256:${HEX}`],
  ['missing colon', `blake3${HEX}`],
  ['a dash instead of a colon', `blake3-${HEX}`],
  ['two colons', `blake3::${HEX}`],
  ['leading space', ` blake3:${HEX}`],
  ['trailing newline', `blake3:${HEX}\n`],
  ['just hex', HEX],
  ['empty string', ''],
  ['object with uppercase hex', { algorithm: 'blake3', hex: 'B'.repeat(64) }],
  ['object with unknown algorithm', { algorithm: 'md5', hex: HEX }],
  ['object with short hex', { algorithm: 'blake3', hex: 'b'.repeat(62) }],
  ['object without hex', { algorithm: 'blake3' }],
  ['object without algorithm', { hex: HEX }],
  ['object with a numeric hex', { algorithm: 'blake3', hex: 123 }],
  ['object with the hex as bytes', { algorithm: 'blake3', hex: Buffer.from(HEX, 'hex') }],
  ['object with a text address inside', { algorithm: 'blake3', hex: `blake3:${HEX}` }],
  ['empty object', {}],
  ['an array', ['blake3', HEX]],
  ['null', null],
  ['undefined', undefined],
  ['a number', 42],
  ['a boolean', true],
];

conformanceTest('Content address: malformed addresses reject with INVALID_ADDRESS on serve, verify and delete', async (t, store) => {
  const content = bytes(1000, 31);
  const address = await put(store, content);
  for (const [what, bad] of MALFORMED) {
    await rejects(t, store.dp.serveObject(bad), 'INVALID_ADDRESS', { what: `serve: ${what}` });
    await rejects(t, store.dp.serveObject(bad, { byteRange: [0, 0] }), 'INVALID_ADDRESS', { what: `serve with a range: ${what}` });
    await rejects(t, store.dp.verifyObject(bad), 'INVALID_ADDRESS', { what: `verify: ${what}` });
    await rejects(t, store.dp.deleteObject(bad), 'INVALID_ADDRESS', { what: `delete: ${what}` });
  }
  // An uppercase rendering of a stored object's address is not another name for it.
  const upper = `blake3:${address.hex.toUpperCase()}`;
  const error = await rejects(t, store.dp.serveObject(upper), 'INVALID_ADDRESS');
  t.true(error.message.includes(address.hex.toUpperCase()), `the message names the value: ${error.message}`);
  // Nothing was deleted by any of it.
  await serves(t, store, address, content);
});

conformanceTest('Content address: an AddressLike works as an object and as a string, on serve, verify and delete', async (t, store) => {
  const content = bytes(MiB + 5, 41);
  const address = await put(store, content);
  const text = formatContentAddress(address);
  t.is(text, `blake3:${address.hex}`);
  for (const like of [address, text, parseContentAddress(text), { ...address }, Object.freeze({ hex: address.hex, algorithm: 'blake3' })]) {
    await serves(t, store, like, content);
    await serves(t, store, like, content, [3, MiB + 4]);
    t.true((await store.dp.verifyObject(like)).verified);
  }
  t.deepEqual((await store.dp.deleteObject(text)).contentAddress, address);
  t.false((await store.dp.deleteObject(address)).deleted);
  await rejects(t, store.dp.serveObject(text), 'NOT_FOUND');
});

// ---------------------------------------------------------------------------------------------
// Options

conformanceTest('serveObject: options: the backend by id, unknown ids, wrong types', async (t, store) => {
  const content = bytes(5000, 51);
  const address = await put(store, content);
  const stream = await store.dp.serveObject(address, { backendId: store.backendId });
  t.true((await collect(stream)).equals(content));
  const unknown = await rejects(t, store.dp.serveObject(address, { backendId: 'nowhere' }), 'UNKNOWN_BACKEND');
  t.true(unknown.message.includes('nowhere'), unknown.message);
  await rejects(t, store.dp.serveObject(address, { backendId: 42 }), 'INVALID_ARGUMENT');
  await rejects(t, store.dp.serveObject(address, { signal: 'abort' }), 'INVALID_ARGUMENT');
  await rejects(t, store.dp.serveObject(address, 'whole'), 'INVALID_ARGUMENT');
  // Empty options and an undefined range serve the whole object.
  t.true((await collect(await store.dp.serveObject(address, {}))).equals(content));
  t.true((await collect(await store.dp.serveObject(address, { byteRange: undefined }))).equals(content));
});

// ---------------------------------------------------------------------------------------------
// Leaving early, concurrent readers, aborting

conformanceTest('serveObject: breaking out of the loop early, then deleting and ingesting again, works', async (t, store) => {
  const content = bytes(3 * MiB + 1, 61);
  const address = await put(store, content);
  for (const range of [undefined, [10, 3 * MiB], [0, 100]]) {
    const stream = await store.dp.serveObject(address, range ? { byteRange: range } : undefined);
    let seen = 0;
    for await (const chunk of stream) {
      seen += chunk.length;
      break;
    }
    t.true(seen > 0);
  }
  const deletion = await store.dp.deleteObject(address);
  t.true(deletion.deleted);
  await rejects(t, store.dp.serveObject(address), 'NOT_FOUND');
  const again = await store.dp.ingestStream(chunked(content));
  t.false(again.receipt.deduplicated, 'the object really was deleted');
  await serves(t, store, address, content);
  // Break out of several streams, then all other operations still work.
  const streams = await Promise.all(Array.from({ length: 8 }, () => store.dp.serveObject(address)));
  for (const stream of streams) {
    // eslint-disable-next-line no-unreachable-loop
    for await (const _ of stream) break;
  }
  t.true((await store.dp.verifyObject(address)).verified);
  t.true((await store.dp.deleteObject(address)).deleted);
});

conformanceTest('serveObject: concurrent readers of one object each get all of it', async (t, store) => {
  const content = bytes(4 * MiB + 3, 62);
  const address = await put(store, content);
  const ranges = [undefined, [0, 1], [MiB - 1, 3 * MiB + 1], undefined, [content.length - 5, content.length], undefined];
  const served = await Promise.all(ranges.map(async (byteRange) => collect(await store.dp.serveObject(address, { byteRange }))));
  for (const [i, range] of ranges.entries()) {
    const [start, end] = range ?? [0, content.length];
    t.true(served[i].equals(content.subarray(start, end)), `reader ${i}`);
  }
});

conformanceTest('serveObject: an already-aborted signal rejects with ABORTED', async (t, store) => {
  const address = await put(store, bytes(3 * MiB, 71));
  await rejects(t, store.dp.serveObject(address, { signal: AbortSignal.abort() }), 'ABORTED');
  const controller = new AbortController();
  const serving = store.dp.serveObject(address, { signal: controller.signal });
  controller.abort();
  // Either the open lost the race (ABORTED now) or the stream is aborted on its first read.
  const outcome = await serving.then((stream) => collect(stream), (error) => error);
  t.true(outcome instanceof DataPlaneError && outcome.code === 'ABORTED', `got ${outcome}`);
  // Let any open the abort overtook settle before the store closes (what such an abandoned open
  // does is the subject of the fs tests below).
  await sleep(100);
});

conformanceTest('serveObject: a signal fired mid-iteration rejects the loop with ABORTED', async (t, store) => {
  const content = bytes(8 * MiB, 72);
  const address = await put(store, content);
  for (const range of [undefined, [1, 8 * MiB - 1]]) {
    const controller = new AbortController();
    const stream = await store.dp.serveObject(address, { signal: controller.signal, byteRange: range });
    let received = 0;
    const error = await rejects(
      t,
      (async () => {
        for await (const chunk of stream) {
          received += chunk.length;
          if (received >= MiB) controller.abort();
        }
      })(),
      'ABORTED',
    );
    t.truthy(error);
    t.true(received < stream.sizeBytes, `the stream stopped early (${received} of ${stream.sizeBytes})`);
  }
  // The object is unharmed and other reads go on.
  await serves(t, store, address, content, [MiB - 1, MiB + 1]);
  t.true((await store.dp.verifyObject(address)).verified);
});

conformanceTest('serveObject: aborting after the stream ended has no effect', async (t, store) => {
  const content = bytes(2 * MiB + 1, 73);
  const address = await put(store, content);
  const controller = new AbortController();
  const served = await collect(await store.dp.serveObject(address, { signal: controller.signal }));
  controller.abort();
  await sleep(10);
  t.true(served.equals(content));
  await serves(t, store, address, content);
});

// ---------------------------------------------------------------------------------------------
// Open files: the conformance tests look at the plane's process, the others at this one's

test.serial('serveObject (in-process, fs): 200 break-outs of the loop leave the fd and thread counts flat', async (t) => {
  const store = await newStore(t, 'fs');
  store.dp = await openPlane(t, { backends: [store.backend] });
  const big = bytes(3 * MiB, 81);
  const small = bytes(1000, 82);
  const bigAddress = await put(store, big);
  const smallAddress = await put(store, small);
  await collect(await store.dp.serveObject(bigAddress)); // warm up lazily created threads
  await sleep(50);
  const fdsBefore = openDescriptorCount();
  const threadsBefore = await threadCount();
  for (let i = 0; i < 200; i++) {
    const address = i % 4 === 3 ? smallAddress : bigAddress;
    const byteRange = i % 2 ? [1, (i % 4 === 3 ? small : big).length - 1] : undefined;
    for await (const chunk of await store.dp.serveObject(address, { byteRange })) {
      t.true(chunk.length > 0);
      break;
    }
  }
  await sleep(100);
  const fdsAfter = openDescriptorCount();
  const threadsAfter = await threadCount();
  t.true(fdsAfter - fdsBefore <= 5, `fds ${fdsBefore} -> ${fdsAfter}`);
  t.true(threadsAfter - threadsBefore <= 5, `threads ${threadsBefore} -> ${threadsAfter}`);
  t.deepEqual(openFilesUnder(store.root), []);
  // Everything still works afterwards.
  t.true((await store.dp.deleteObject(bigAddress)).deleted);
  t.false((await store.dp.ingestStream(chunked(big))).receipt.deduplicated);
  t.true((await collect(await store.dp.serveObject(bigAddress))).equals(big));
});

conformanceTest('serveObject: the object file is closed by the time a break, an abort, a throw or the end of the loop completes', async (t, store) => {
  const content = bytes(3 * MiB, 83);
  const address = await put(store, content);
  const settle = async () => {
    for (let i = 0; i < 200 && store.openFilesUnder(store.root).length > 0; i++) await sleep(5);
  };
  const stillOpen = { break: 0, abort: 0, throw: 0, end: 0 };
  for (let round = 0; round < 40; round++) {
    for await (const _ of await store.dp.serveObject(address)) break;
    if (store.openFilesUnder(store.root).length > 0) stillOpen.break++;
    await settle();

    const controller = new AbortController();
    const stream = await store.dp.serveObject(address, { signal: controller.signal });
    await rejects(
      t,
      (async () => {
        for await (const _ of stream) controller.abort();
      })(),
      'ABORTED',
    );
    if (store.openFilesUnder(store.root).length > 0) stillOpen.abort++;
    await settle();

    const thrower = new Error('the consumer failed');
    await t.throwsAsync(
      (async () => {
        for await (const _ of await store.dp.serveObject(address)) throw thrower;
      })(),
      { is: thrower },
    );
    if (store.openFilesUnder(store.root).length > 0) stillOpen.throw++;
    await settle();

    await collect(await store.dp.serveObject(address));
    if (store.openFilesUnder(store.root).length > 0) stillOpen.end++;
    await settle();
  }
  t.deepEqual(stillOpen, { break: 0, abort: 0, throw: 0, end: 0 }, 'times (of 40) the file was still open right after the loop');
}, { kinds: ['fs'], serial: true });

test.serial('serveObject (in-process, fs): serves rejected by an aborted signal leave no file open (100 times)', async (t) => {
  const store = await newStore(t, 'fs');
  store.dp = await openPlane(t, { backends: [store.backend] });
  const address = await put(store, bytes(3 * MiB, 84));
  const fdsBefore = openDescriptorCount();
  for (let i = 0; i < 100; i++) {
    await rejects(t, store.dp.serveObject(address, { signal: AbortSignal.abort() }), 'ABORTED');
  }
  for (let i = 0; i < 100; i++) {
    const controller = new AbortController();
    const serving = store.dp.serveObject(address, { signal: controller.signal });
    controller.abort();
    const outcome = await serving.then((stream) => collect(stream), (error) => error);
    t.is(outcome.code, 'ABORTED');
  }
  // The opens the aborts overtook finish in the background (100 of them overlap): give them time,
  // then nothing of theirs may still be open.
  for (let i = 0; i < 100 && openFilesUnder(store.root).length > 0; i++) await sleep(50);
  const open = openFilesUnder(store.root);
  const fdsAfter = openDescriptorCount();
  t.is(open.length, 0, `object files still open: ${open.length}`);
  t.true(fdsAfter - fdsBefore <= 5, `fds ${fdsBefore} -> ${fdsAfter}`);
  // (No thread count here: the 100 opens above overlap, and a runtime's idle worker threads
  // outlive them for a while without being leaks. The sequential test above counts threads.)
});

test('serveObject (in-process, fs): an aborted serve whose open fails leaves no unhandled rejection behind (child process)', async (t) => {
  const body = `
    const stored = await dp.ingestStream([Buffer.alloc(3 * 1024 * 1024, 7)]);
    const attempts = [
      ['missing object', 'blake3:${A_HEX}', {}],
      ['bad range', stored.primaryDigest, { byteRange: [5, 1] }],
      ['range past the end', stored.primaryDigest, { byteRange: [0, 4 * 1024 * 1024] }],
    ];
    for (const [what, address, options] of attempts) {
      try {
        await dp.serveObject(address, { ...options, signal: AbortSignal.abort() });
        console.log(what + ': resolved');
      } catch (error) {
        console.log(what + ': ' + error.code);
      }
    }
  `;
  const { code: exitCode, stdout, stderr } = await runWithFreshStore(body);
  const lines = stdout.trim().split('\n');
  t.deepEqual(lines, ['missing object: ABORTED', 'bad range: ABORTED', 'range past the end: ABORTED', 'done'], stderr);
  t.is(exitCode, 0, stderr);
});

conformanceTest('serveObject: a stream already open keeps serving the whole object when it is deleted meanwhile', async (t, store) => {
  const content = bytes(8 * MiB + 3, 91);
  const address = await put(store, content);
  // Deleted after the first chunk was read.
  {
    const stream = await store.dp.serveObject(address);
    const chunks = [];
    for await (const chunk of stream) {
      if (chunks.length === 0) {
        t.true((await store.dp.deleteObject(address)).deleted);
        await rejects(t, store.dp.serveObject(address), 'NOT_FOUND');
      }
      chunks.push(chunk);
    }
    t.true(Buffer.concat(chunks).equals(content));
  }
  // Deleted before the first read, and a range; then ingested again while the stream is open.
  await put(store, content);
  {
    const stream = await store.dp.serveObject(address, { byteRange: [5, content.length - 5] });
    t.true((await store.dp.deleteObject(address)).deleted);
    const other = bytes(MiB, 92);
    await put(store, other);
    t.true((await collect(stream)).equals(content.subarray(5, content.length - 5)));
  }
  await rejects(t, store.dp.serveObject(address), 'NOT_FOUND');
  await sleep(100);
  t.deepEqual(store.openFilesUnder(store.root), []);
}, { kinds: ['fs'] });
