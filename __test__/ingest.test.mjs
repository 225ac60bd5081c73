// SPEC Semantics, ingestStream (and Layout): digests, receipts, hints and expectations, what a
// chunk may be, failing, throwing and aborted sources, concurrency. The conformance tests
// (`conformanceTest`) run through every opener on every backend, or on fs where they look at the
// files; the backpressure tests (this process's queue, seen through its descriptors) and the
// child-process test are about the in-process plane only.

import test from 'ava';
import { readdir, readFile, stat } from 'node:fs/promises';
import { isAbsolute, join, relative } from 'node:path';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';

import { DataPlaneError, formatContentAddress } from '@artifactstore/data-plane';
import { conformanceTest } from './conformance.mjs';
import { descriptorsUnder, openPlane, sha256Hex } from './fixtures/support.mjs';
import { bytes, chunked, collect, KiB, MiB, rejects, runWithFreshStore } from './helpers.mjs';
import { newStore } from './stores.mjs';

// ---------------------------------------------------------------------------------------------
// Local helpers

/** The input of the official BLAKE3 test vectors: byte i is i % 251. */
function vectorInput(length) {
  const out = Buffer.alloc(length);
  for (let i = 0; i < length; i++) out[i] = i % 251;
  return out;
}

/** Published BLAKE3 test vectors (github.com/BLAKE3-team/BLAKE3, test_vectors.json), 32-byte output. */
const BLAKE3_VECTORS = {
  0: 'af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262',
  1: '2d3adedff11b61f14c886e35afa036736dcd87a74d27b5c1510225d0f592e213',
  1023: '10108970eeda3eb932baac1428c7a2163b0e924c9a9e25b35bba72b28f70bd11',
  1024: '42214739f095a406f3fc83deb889744ac00df831c10daa55189b5d121c855af7',
  1025: 'd00278ae47eb27b34faecf67b4fe263f82d5412916c1ffd97c8cb7fb814b8444',
  31744: '62b6960e1a44bcc1eb1a611a8d6235b6b4b78f32e7abc4fb4c6cdcce94895c47',
  102400: 'bc3e3d41a1146b069abffad3c0d44860cf664390afce4d9661f7902e7943e085',
};

// A small BLAKE3 (hash mode, 32-byte output) written from the specification, so that digests of
// sizes the published vectors do not cover can be checked against something independent of the
// Rust core. It is checked against the published vectors below before anything relies on it.
const B3_IV = new Uint32Array([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);
const B3_SCHEDULE = (() => {
  const permutation = [2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8];
  const rounds = [];
  let order = [...Array(16).keys()];
  for (let r = 0; r < 7; r++) {
    rounds.push(order);
    order = permutation.map((i) => order[i]);
  }
  return rounds;
})();
const [CHUNK_START, CHUNK_END, PARENT, ROOT] = [1, 2, 4, 8];
const b3s = new Uint32Array(16);
function b3g(a, b, c, d, x, y) {
  const s = b3s;
  s[a] = (s[a] + s[b] + x) | 0; s[d] ^= s[a]; s[d] = (s[d] >>> 16) | (s[d] << 16);
  s[c] = (s[c] + s[d]) | 0; s[b] ^= s[c]; s[b] = (s[b] >>> 12) | (s[b] << 20);
  s[a] = (s[a] + s[b] + y) | 0; s[d] ^= s[a]; s[d] = (s[d] >>> 8) | (s[d] << 24);
  s[c] = (s[c] + s[d]) | 0; s[b] ^= s[c]; s[b] = (s[b] >>> 7) | (s[b] << 25);
}
function b3compress(cv, m, counter, blockLen, flags) {
  const s = b3s;
  s.set(cv, 0);
  s[8] = B3_IV[0]; s[9] = B3_IV[1]; s[10] = B3_IV[2]; s[11] = B3_IV[3];
  s[12] = counter >>> 0; s[13] = Math.floor(counter / 2 ** 32) >>> 0; s[14] = blockLen; s[15] = flags;
  for (const o of B3_SCHEDULE) {
    b3g(0, 4, 8, 12, m[o[0]], m[o[1]]); b3g(1, 5, 9, 13, m[o[2]], m[o[3]]);
    b3g(2, 6, 10, 14, m[o[4]], m[o[5]]); b3g(3, 7, 11, 15, m[o[6]], m[o[7]]);
    b3g(0, 5, 10, 15, m[o[8]], m[o[9]]); b3g(1, 6, 11, 12, m[o[10]], m[o[11]]);
    b3g(2, 7, 8, 13, m[o[12]], m[o[13]]); b3g(3, 4, 9, 14, m[o[14]], m[o[15]]);
  }
  const out = new Uint32Array(8);
  for (let i = 0; i < 8; i++) out[i] = s[i] ^ s[i + 8];
  return out;
}
function blake3Hex(input) {
  const block = Buffer.alloc(64);
  const stack = [];
  const chunks = Math.max(1, Math.ceil(input.length / 1024));
  let last; // the final node, compressed with ROOT at the end: [cv, words, counter, blockLen, flags]
  for (let c = 0; c < chunks; c++) {
    const chunk = input.subarray(c * 1024, Math.min(input.length, (c + 1) * 1024));
    const blocks = Math.max(1, Math.ceil(chunk.length / 64));
    let cv = B3_IV;
    for (let b = 0; b < blocks; b++) {
      const part = chunk.subarray(b * 64, (b + 1) * 64);
      block.fill(0);
      part.copy(block);
      const m = new Uint32Array(16);
      for (let i = 0; i < 16; i++) m[i] = block.readUInt32LE(4 * i);
      const flags = (b === 0 ? CHUNK_START : 0) | (b === blocks - 1 ? CHUNK_END : 0);
      if (c === chunks - 1 && b === blocks - 1) last = [cv, m, c, part.length, flags];
      else cv = b3compress(cv, m, c, part.length, flags);
    }
    if (c === chunks - 1) break;
    for (let total = c + 1; (total & 1) === 0; total >>= 1) {
      const m = new Uint32Array(16);
      m.set(stack.pop(), 0);
      m.set(cv, 8);
      cv = b3compress(B3_IV, m, 0, 64, PARENT);
    }
    stack.push(cv);
  }
  while (stack.length > 0) {
    const m = new Uint32Array(16);
    m.set(stack.pop(), 0);
    m.set(b3compress(...last), 8);
    last = [B3_IV, m, 0, 64, PARENT];
  }
  const [cv, m, counter, blockLen, flags] = last;
  const out = b3compress(cv, m, counter, blockLen, flags | ROOT);
  const digest = Buffer.alloc(32);
  for (let i = 0; i < 8; i++) digest.writeUInt32LE(out[i], 4 * i);
  return digest.toString('hex');
}

/** Yields `buffer` in chunks whose sizes cycle through `sizes` (zero-copy views). */
async function* inChunks(buffer, sizes) {
  let i = 0;
  for (let offset = 0; offset < buffer.length; i++) {
    const size = sizes[i % sizes.length];
    yield buffer.subarray(offset, Math.min(buffer.length, offset + size));
    offset += size;
  }
}

/** The chunkings every digest test goes through: whole, odd sizes, odd sizes as a sync array. */
function chunkings(buffer) {
  const odd = [7, 1000, 4099, 65537, 1];
  const list = [
    ['one chunk', () => (async function* () { yield buffer; })()],
    ['odd-sized chunks', () => inChunks(buffer, odd)],
    ['a sync array of odd-sized chunks', () => {
      const parts = [];
      for (let o = 0, i = 0; o < buffer.length; i++) {
        const size = odd[i % odd.length];
        parts.push(buffer.subarray(o, o + size));
        o += size;
      }
      return parts;
    }],
  ];
  if (buffer.length <= 2048) list.push(['one-byte chunks', () => inChunks(buffer, [1])]);
  return list;
}

/** Nothing is stored under `address` (serve and verify both say NOT_FOUND). */
async function absent(t, store, address, what = '') {
  await rejects(t, store.dp.serveObject(address), 'NOT_FOUND', { what: `serve ${what}` });
  await rejects(t, store.dp.verifyObject(address), 'NOT_FOUND', { what: `verify ${what}` });
}

async function noLeftovers(t, store, what = '') {
  t.deepEqual(await store.leftovers(), [], `no temporary data left ${what}`);
}

/** The object at `address` is intact and serves back `content` whole. */
async function intact(t, store, address, content, what = '') {
  const verified = await store.dp.verifyObject(address);
  t.true(verified.verified, `verifies ${what}`);
  t.is(verified.actualSizeBytes, content.length, `verified size ${what}`);
  const served = await collect(await store.dp.serveObject(address));
  t.true(served.equals(content), `serves back the same bytes ${what}`);
}

const b3 = (hex) => ({ algorithm: 'blake3', hex });
const sha = (hex) => ({ algorithm: 'sha256', hex });

/** An async source over `chunks` that records how it was used. */
function tracked(chunks, { throwAt, error, delayMs = 0 } = {}) {
  const stats = { pulled: 0, finished: false };
  async function* source() {
    try {
      for (let i = 0; i < chunks.length; i++) {
        if (i === throwAt) throw error;
        if (delayMs) await sleep(delayMs);
        stats.pulled++;
        yield chunks[i];
      }
      if (throwAt === chunks.length) throw error;
    } finally {
      stats.finished = true;
    }
  }
  return { source: source(), stats };
}

function split(buffer, size) {
  const parts = [];
  for (let o = 0; o < buffer.length; o += size) parts.push(buffer.subarray(o, o + size));
  return parts;
}

/** Files (not directories) below `dir`, as paths relative to `base`. */
async function filesBelow(dir, base = dir) {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (error) {
    if (error.code === 'ENOENT') return [];
    throw error;
  }
  const files = [];
  for (const entry of entries) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) files.push(...(await filesBelow(path, base)));
    else files.push(relative(base, path));
  }
  return files.sort();
}

// ---------------------------------------------------------------------------------------------
// Digests

test('the local BLAKE3 reference used by these tests reproduces the published vectors', (t) => {
  for (const [length, hex] of Object.entries(BLAKE3_VECTORS)) t.is(blake3Hex(vectorInput(Number(length))), hex, `len ${length}`);
  t.not(blake3Hex(Buffer.from('a')), blake3Hex(Buffer.from('b')));
});

conformanceTest('ingestStream: BLAKE3 test vectors give the published digests in every chunking', async (t, store) => {
  for (const [length, hex] of Object.entries(BLAKE3_VECTORS)) {
    const input = vectorInput(Number(length));
    for (const [how, source] of chunkings(input)) {
      const result = await store.dp.ingestStream(source());
      t.deepEqual(result.primaryDigest, b3(hex), `len ${length}, ${how}`);
      t.deepEqual(result.sha256Digest, sha(sha256Hex(input)), `sha256 of len ${length}, ${how}`);
      t.is(result.sizeBytes, input.length, `size of len ${length}, ${how}`);
    }
    const served = await collect(await store.dp.serveObject(b3(hex)));
    t.true(served.equals(input), `len ${length} serves back`);
  }
});

conformanceTest('ingestStream: sizes 0, 1, 64 KiB - 1 and 1 MiB + 7: digests match, every chunking, and serve back whole', async (t, store) => {
  for (const size of [0, 1, 64 * KiB - 1, MiB + 7]) {
    const content = bytes(size, size + 11);
    const expected = { primary: b3(blake3Hex(content)), sha256: sha(sha256Hex(content)) };
    let first = true;
    for (const [how, source] of [...chunkings(content), ['64 KiB chunks (helpers.chunked)', () => chunked(content)]]) {
      const result = await store.dp.ingestStream(source());
      t.deepEqual(result.primaryDigest, expected.primary, `blake3 of ${size} bytes, ${how}`);
      t.deepEqual(result.sha256Digest, expected.sha256, `sha256 of ${size} bytes, ${how}`);
      t.is(result.sizeBytes, size, `sizeBytes of ${size} bytes, ${how}`);
      t.is(result.receipt.sizeBytes, size, `receipt.sizeBytes of ${size} bytes, ${how}`);
      t.is(result.receipt.deduplicated, !first, `deduplicated of ${size} bytes, ${how}`);
      first = false;
    }
    const stream = await store.dp.serveObject(expected.primary);
    t.is(stream.sizeBytes, size);
    t.is(stream.totalSizeBytes, size);
    t.deepEqual(stream.contentAddress, expected.primary);
    t.true((await collect(stream)).equals(content), `${size} bytes serve back whole`);
  }
});

conformanceTest('ingestStream: 64 MiB: SHA-256 matches node:crypto, BLAKE3 matches the reference, and the bytes serve back', async (t, store) => {
  const content = bytes(64 * MiB, 64);
  const result = await store.dp.ingestStream(inChunks(content, [MiB + 3, 64 * KiB - 1]));
  t.is(result.sizeBytes, 64 * MiB);
  t.deepEqual(result.sha256Digest, sha(sha256Hex(content)));
  t.deepEqual(result.primaryDigest, b3(blake3Hex(content)));
  const stream = await store.dp.serveObject(result.primaryDigest);
  t.is(stream.sizeBytes, 64 * MiB);
  let offset = 0;
  let same = true;
  for await (const chunk of stream) {
    same &&= chunk.equals(content.subarray(offset, offset + chunk.length));
    offset += chunk.length;
  }
  t.is(offset, 64 * MiB);
  t.true(same, 'served bytes equal the ingested ones');
  await noLeftovers(t, store);
});

conformanceTest('ingestStream: primaryAlgorithm sha256: the primary digest is the SHA-256 and names the object', async (t, store) => {
  const content = bytes(MiB + 7, 5);
  const hex = sha256Hex(content);
  const streamed = await store.dp.ingestStream(inChunks(content, [4099]), { hints: { primaryAlgorithm: 'sha256' } });
  t.deepEqual(streamed.primaryDigest, sha(hex));
  t.deepEqual(streamed.sha256Digest, sha(hex));
  t.false(streamed.receipt.deduplicated);
  const whole = await store.dp.ingestStream([content], { hints: { primaryAlgorithm: 'sha256' } });
  t.deepEqual(whole.primaryDigest, sha(hex));
  t.true(whole.receipt.deduplicated);
  await intact(t, store, `sha256:${hex}`, content);
  // The same bytes under BLAKE3 are another object, not yet present.
  await absent(t, store, b3(blake3Hex(content)));
  const asBlake3 = await store.dp.ingestStream([content], { hints: { primaryAlgorithm: 'blake3' } });
  t.deepEqual(asBlake3.primaryDigest, b3(blake3Hex(content)));
  t.deepEqual(asBlake3.sha256Digest, sha(hex));
  t.false(asBlake3.receipt.deduplicated, 'the blake3-addressed object is new');
  t.not(asBlake3.receipt.locator, streamed.receipt.locator);
  // Empty content under sha256.
  const empty = await store.dp.ingestStream([], { hints: { primaryAlgorithm: 'sha256' } });
  t.deepEqual(empty.primaryDigest, sha('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'));
});

conformanceTest('ingestStream: an object is not visible before its ingest has resolved', async (t, store) => {
  const content = bytes(3 * MiB + 1, 6);
  const address = b3(blake3Hex(content));
  const parts = split(content, 256 * KiB);
  let checks = 0;
  async function* source() {
    for (const [i, part] of parts.entries()) {
      if (i > 0 && i % 4 === 0) {
        // Everything yielded so far, even all but the last chunk, is not an object yet.
        await rejects(t, store.dp.serveObject(address), 'NOT_FOUND', { what: `before chunk ${i}` });
        checks++;
      }
      yield part;
    }
    await rejects(t, store.dp.verifyObject(address), 'NOT_FOUND', { what: 'after the last chunk' });
    checks++;
  }
  const result = await store.dp.ingestStream(source());
  t.true(checks >= 3);
  t.deepEqual(result.primaryDigest, address);
  await intact(t, store, address, content);
});

// ---------------------------------------------------------------------------------------------
// Receipts

conformanceTest('ingestStream: the receipt: backend, locator, size, RFC 3339 UTC time, deduplicated false then true', async (t, store) => {
  const content = bytes(3 * MiB + 1, 9);
  const before = Date.now();
  const first = await store.dp.ingestStream(chunked(content));
  const after = Date.now();
  const { receipt } = first;
  t.deepEqual(Object.keys(receipt).sort(), ['backendId', 'deduplicated', 'locator', 'sizeBytes', 'storedAt']);
  t.is(receipt.backendId, store.backendId);
  t.is(typeof receipt.locator, 'string');
  t.true(receipt.locator.includes(first.primaryDigest.hex), `locator ${receipt.locator} names the object`);
  t.is(receipt.sizeBytes, content.length);
  t.is(first.sizeBytes, content.length);
  t.false(receipt.deduplicated);
  t.regex(receipt.storedAt, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/, 'RFC 3339, UTC, ending in Z');
  const storedAt = Date.parse(receipt.storedAt);
  t.true(storedAt >= before - 1000 && storedAt <= after + 1000, `storedAt ${receipt.storedAt} is when it was stored`);

  const again = await store.dp.ingestStream(inChunks(content, [12345]));
  t.true(again.receipt.deduplicated, 're-ingesting present content is deduplicated');
  t.is(again.receipt.locator, receipt.locator);
  t.is(again.receipt.backendId, store.backendId);
  t.is(again.receipt.sizeBytes, content.length);
  t.regex(again.receipt.storedAt, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/);
  t.deepEqual(again.primaryDigest, first.primaryDigest);
  t.deepEqual(again.sha256Digest, first.sha256Digest);

  // After a delete the content is new again.
  t.true((await store.dp.deleteObject(first.primaryDigest)).deleted);
  const third = await store.dp.ingestStream([content]);
  t.false(third.receipt.deduplicated);
  await intact(t, store, first.primaryDigest, content);
});

conformanceTest('ingestStream: hints.backendId naming the backend is honoured; an unknown one rejects with UNKNOWN_BACKEND', async (t, store) => {
  const content = vectorInput(1025);
  const ok = await store.dp.ingestStream([content], { hints: { backendId: store.backendId } });
  t.is(ok.receipt.backendId, store.backendId);
  t.true((await store.dp.deleteObject(ok.primaryDigest)).deleted);
  for (const source of [() => [content], () => inChunks(content, [100])]) {
    const error = await rejects(t, store.dp.ingestStream(source(), { hints: { backendId: 'nowhere' } }), 'UNKNOWN_BACKEND');
    t.true(error.message.includes('nowhere'), `the message names the backend: ${error.message}`);
  }
  await absent(t, store, b3(BLAKE3_VECTORS[1025]));
  await noLeftovers(t, store);
});

conformanceTest('ingestStream: an unsupported primaryAlgorithm rejects with UNSUPPORTED_ALGORITHM and stores nothing', async (t, store) => {
  const content = vectorInput(1025);
  for (const algorithm of ['md5', 'SHA256', 'Blake3', 'sha-256', 'blake2b', 'sha512']) {
    for (const source of [() => [content], () => inChunks(content, [100])]) {
      const error = await rejects(t, store.dp.ingestStream(source(), { hints: { primaryAlgorithm: algorithm } }), 'UNSUPPORTED_ALGORITHM', { what: algorithm });
      t.true(error.message.includes(algorithm), `the message names ${algorithm}: ${error.message}`);
    }
  }
  // Not a string at all: rejected one way or the other, never stored under some default.
  for (const algorithm of [42, { name: 'sha256' }]) {
    const error = await t.throwsAsync(store.dp.ingestStream([content], { hints: { primaryAlgorithm: algorithm } }), { instanceOf: DataPlaneError });
    t.true(['UNSUPPORTED_ALGORITHM', 'INVALID_ARGUMENT'].includes(error.code), error.code);
  }
  await absent(t, store, b3(BLAKE3_VECTORS[1025]));
  await absent(t, store, sha(sha256Hex(content)));
  await noLeftovers(t, store);
});

conformanceTest('ingestStream: options, hints and expectations of the wrong type reject with INVALID_ARGUMENT', async (t, store) => {
  const content = vectorInput(1025);
  const cases = [
    ['options a number', 42],
    ['options a string', 'sha256'],
    ['hints a string', { hints: 'sha256' }],
    ['hints a number', { hints: 1 }],
    ['expect a string', { expect: 'abc' }],
    ['expect a number', { expect: 1025 }],
    ['sizeHint a string', { hints: { sizeHint: '1025' } }],
    ['sizeHint an object', { hints: { sizeHint: {} } }],
    ['sizeHint a boolean', { hints: { sizeHint: true } }],
    ['backendId a number', { hints: { backendId: 42 } }],
    ['backendId an object', { hints: { backendId: { id: 'local' } } }],
    ['expect.sizeBytes a string', { expect: { sizeBytes: '1025' } }],
    ['expect.sizeBytes a boolean', { expect: { sizeBytes: true } }],
    ['expect.sha256 a number', { expect: { sha256: 42 } }],
    ['expect.sha256 a Buffer', { expect: { sha256: Buffer.from(sha256Hex(content), 'hex') } }],
    ['expect.primary an object', { expect: { primary: {} } }],
    ['signal a string', { signal: 'abort' }],
    ['signal a look-alike object', { signal: { aborted: false, addEventListener() {}, removeEventListener() {} } }],
  ];
  for (const [what, options] of cases) {
    for (const source of [() => [content], () => inChunks(content, [100])]) {
      await rejects(t, store.dp.ingestStream(source(), options), 'INVALID_ARGUMENT', { what });
    }
  }
  await absent(t, store, b3(BLAKE3_VECTORS[1025]));
  await noLeftovers(t, store);
});

conformanceTest('ingestStream: a wrong sizeHint is never an error', async (t, store) => {
  const content = bytes(MiB + 7, 21);
  const expected = b3(blake3Hex(content));
  const hints = [0, 1, content.length - 1, content.length, content.length + 1, 2 ** 31, 2 ** 40, Number.MAX_SAFE_INTEGER];
  for (const sizeHint of hints) {
    for (const source of [() => [content], () => inChunks(content, [65537])]) {
      const result = await store.dp.ingestStream(source(), { hints: { sizeHint } });
      t.deepEqual(result.primaryDigest, expected, `sizeHint ${sizeHint}`);
      t.is(result.sizeBytes, content.length, `sizeHint ${sizeHint}`);
    }
    t.true((await store.dp.deleteObject(expected)).deleted);
  }
  // An empty stream with a large hint, and a large stream with a tiny one.
  const empty = await store.dp.ingestStream([], { hints: { sizeHint: 10 * MiB } });
  t.is(empty.sizeBytes, 0);
  const large = bytes(6 * MiB + 3, 22);
  const result = await store.dp.ingestStream(chunked(large, MiB), { hints: { sizeHint: 1 } });
  t.is(result.sizeBytes, large.length);
  await intact(t, store, result.primaryDigest, large);
  await noLeftovers(t, store);
});

// ---------------------------------------------------------------------------------------------
// What a stream and a chunk may be

const NOT_BYTES = [
  ['a string', 'abc'],
  ['a number', 42],
  ['a bigint', 42n],
  ['a boolean', true],
  ['null', null],
  ['undefined', undefined],
  ['a plain object', { length: 3, 0: 1, 1: 2, 2: 3 }],
  ['an array of numbers', [1, 2, 3]],
  ['an ArrayBuffer', new ArrayBuffer(8)],
  ['a SharedArrayBuffer', new SharedArrayBuffer(8)],
  ['a DataView', new DataView(new ArrayBuffer(8))],
  ['a Float64Array', new Float64Array([1.5, 2.5])],
  ['a Uint16Array', new Uint16Array([1, 2, 3])],
  ['an Int8Array', new Int8Array([1, 2, 3])],
  ['a Uint8ClampedArray', new Uint8ClampedArray([1, 2, 3])],
  ['a Blob', new Blob([Buffer.from('abc')])],
];

conformanceTest('ingestStream: a chunk that is not a Uint8Array rejects with INVALID_ARGUMENT, storing nothing', async (t, store) => {
  const prefix = bytes(2 * MiB + 3, 31);
  const prefixAddress = b3(blake3Hex(prefix));
  const small = vectorInput(1025);
  for (const [what, bad] of NOT_BYTES) {
    // As the only chunk, after one small chunk, and after a few MiB (while the ingest is streaming).
    const layouts = [
      ['first', [bad], null],
      ['second', [small, bad], b3(BLAKE3_VECTORS[1025])],
      ['after 2 MiB', [...split(prefix, 64 * KiB), bad, small], prefixAddress],
    ];
    for (const [where, chunks, wouldBe] of layouts) {
      const { source, stats } = tracked(chunks);
      const error = await rejects(t, store.dp.ingestStream(source), 'INVALID_ARGUMENT', { what: `${what}, ${where}` });
      t.true(error instanceof Error);
      await sleep(1);
      t.true(stats.finished, `the source was closed (${what}, ${where})`);
      if (wouldBe) await absent(t, store, wouldBe, `(${what}, ${where})`);
    }
  }
  await noLeftovers(t, store);
  // Nothing was stored: the same content now is new.
  const result = await store.dp.ingestStream(chunked(prefix));
  t.false(result.receipt.deduplicated);
});

conformanceTest('ingestStream: Uint8Array views with a byteOffset, plain Uint8Arrays and subclasses give the right bytes', async (t, store) => {
  const content = bytes(MiB + 7, 41);
  const expected = b3(blake3Hex(content));
  // The content sits at an odd offset inside a larger buffer full of other bytes.
  const backing = new ArrayBuffer(content.length + 1000);
  new Uint8Array(backing).fill(0xee);
  new Uint8Array(backing, 333, content.length).set(content);
  async function* views() {
    for (let o = 0, i = 0; o < content.length; i++) {
      const length = Math.min(content.length - o, [4097, 1, 65536, 333][i % 4]);
      yield new Uint8Array(backing, 333 + o, length);
      o += length;
    }
  }
  const viaViews = await store.dp.ingestStream(views());
  t.deepEqual(viaViews.primaryDigest, expected);
  t.is(viaViews.sizeBytes, content.length);
  await store.dp.deleteObject(expected);

  // One view as the only chunk.
  const single = await store.dp.ingestStream([new Uint8Array(backing, 333, content.length)]);
  t.deepEqual(single.primaryDigest, expected);
  await intact(t, store, expected, content);
  await store.dp.deleteObject(expected);

  // Plain (non-Buffer) Uint8Array copies and a Uint8Array subclass.
  class Bytes extends Uint8Array {}
  const copies = split(content, 100_003).map((part, i) => (i % 2 ? Uint8Array.from(part) : Bytes.from(part)));
  const viaCopies = await store.dp.ingestStream(copies);
  t.deepEqual(viaCopies.primaryDigest, expected);
  await intact(t, store, expected, content);

  // Small Buffers from Node's shared pool (non-zero byteOffset into a shared ArrayBuffer).
  const words = ['content', '-', 'addressed', ' ', 'bytes'];
  const pooled = words.map((w) => Buffer.from(w));
  t.true(pooled.some((b) => b.byteOffset > 0), 'pooled buffers have offsets');
  const text = Buffer.from(words.join(''));
  const viaPool = await store.dp.ingestStream(pooled);
  t.deepEqual(viaPool.primaryDigest, b3(blake3Hex(text)));
  t.true((await collect(await store.dp.serveObject(viaPool.primaryDigest))).equals(text));
});

conformanceTest('ingestStream: the same Buffer may be yielded more than once', async (t, store) => {
  // expect.sizeBytes bounds every ingest here: an implementation that loses track of which chunk it
  // is at fails with INTEGRITY_MISMATCH instead of writing forever.
  const a = bytes(64 * KiB, 44);
  const b = bytes(100 * KiB, 45);
  const zeros = Buffer.alloc(MiB);
  const cases = [
    ['one buffer twice', [a, a]],
    ['one buffer three times', [a, a, a]],
    ['a, b, a', [a, b, a]],
    ['a, b, a, b, a', [a, b, a, b, a]],
    ['b, a, a, b', [b, a, a, b]],
    ['a zero-filled buffer eight times', Array(8).fill(zeros)],
  ];
  for (const [what, chunks] of cases) {
    const content = Buffer.concat(chunks);
    for (const [how, source] of [['array', () => chunks], ['generator', () => (async function* () { yield* chunks; })()]]) {
      const result = await store.dp.ingestStream(source(), { expect: { sizeBytes: content.length } });
      t.is(result.sizeBytes, content.length, `${what}, ${how}`);
      t.deepEqual(result.sha256Digest, sha(sha256Hex(content)), `${what}, ${how}`);
    }
    const whole = await store.dp.ingestStream([content]);
    t.true(whole.receipt.deduplicated, `${what}: the chunked ingests stored the same object`);
    await intact(t, store, whole.primaryDigest, content, what);
  }
});

conformanceTest('ingestStream: empty chunks anywhere in the stream change nothing', async (t, store) => {
  const content = bytes(200 * KiB + 5, 43);
  const expected = b3(blake3Hex(content));
  const parts = split(content, 50 * KiB);
  const withEmpties = [new Uint8Array(0), parts[0], Buffer.alloc(0), Buffer.alloc(0), ...parts.slice(1), new Uint8Array(0)];
  const result = await store.dp.ingestStream(withEmpties);
  t.deepEqual(result.primaryDigest, expected);
  t.is(result.sizeBytes, content.length);
  const onlyEmpties = await store.dp.ingestStream([Buffer.alloc(0), new Uint8Array(0)]);
  t.deepEqual(onlyEmpties.primaryDigest, b3(BLAKE3_VECTORS[0]));
  t.is(onlyEmpties.sizeBytes, 0);
  const nothing = await store.dp.ingestStream((async function* () {})());
  t.deepEqual(nothing.primaryDigest, b3(BLAKE3_VECTORS[0]));
  t.true(nothing.receipt.deduplicated);
  t.is((await collect(await store.dp.serveObject(nothing.primaryDigest))).length, 0);
});

conformanceTest('ingestStream: sync iterables, Node Readables and web ReadableStreams are accepted', async (t, store) => {
  const content = bytes(MiB + 7, 51);
  const expected = b3(blake3Hex(content));
  const parts = split(content, 300_001);
  const sources = [
    ['an array', () => parts],
    ['a Set', () => new Set(parts)],
    ['a sync generator', () => (function* () { yield* parts; })()],
    ['a Node Readable', () => Readable.from(parts)],
    ['a web ReadableStream', () => Readable.toWeb(Readable.from(parts))],
  ];
  for (const [what, source] of sources) {
    const result = await store.dp.ingestStream(source());
    t.deepEqual(result.primaryDigest, expected, what);
    t.is(result.sizeBytes, content.length, what);
  }
  await intact(t, store, expected, content);
});

conformanceTest('ingestStream: a stream that is not iterable rejects with INVALID_ARGUMENT', async (t, store) => {
  const content = vectorInput(1025);
  const streams = [
    ['undefined', undefined],
    ['null', null],
    ['a number', 42],
    ['a string', 'abc'],
    ['a plain object', { data: content }],
    ['an iterator that is not iterable', { next: () => ({ done: true }) }],
    ['a promise of a buffer', Promise.resolve(content)],
    ['an async generator function (not called)', async function* () { yield content; }],
    ['a Uint8Array itself (iterates numbers)', content],
  ];
  for (const [what, stream] of streams) {
    await rejects(t, store.dp.ingestStream(stream), 'INVALID_ARGUMENT', { what });
  }
  await absent(t, store, b3(BLAKE3_VECTORS[1025]));
  await noLeftovers(t, store);
});

// ---------------------------------------------------------------------------------------------
// Failing sources

const isOrCauses = (error, original) => error === original || (error instanceof DataPlaneError && error.cause === original);

conformanceTest('ingestStream: a source that throws: the ingest rejects with that error and stores nothing', async (t, store) => {
  const content = bytes(3 * MiB, 61);
  const parts = split(content, 64 * KiB);
  const cases = [
    ['before the first chunk', 0],
    ['after one chunk', 1],
    ['after two chunks', 2],
    ['after 3 MiB', parts.length],
  ];
  for (const [when, throwAt] of cases) {
    const boom = new Error(`source failed ${when}`);
    const { source, stats } = tracked(parts, { throwAt, error: boom });
    const error = await t.throwsAsync(store.dp.ingestStream(source));
    t.true(isOrCauses(error, boom), `rejects with the source's error (${when}), got ${error}`);
    t.true(stats.finished, `the source's finally ran (${when})`);
    t.is(stats.pulled, throwAt, `the source was read once, up to its failure (${when})`);
    await noLeftovers(t, store, when);
  }
  // Nothing of what was yielded got stored, whole or in part.
  await absent(t, store, b3(blake3Hex(content)), 'whole');
  await absent(t, store, b3(blake3Hex(parts[0])), 'first chunk');
  await absent(t, store, b3(blake3Hex(content.subarray(0, 128 * KiB))), 'two chunks');
  const fresh = await store.dp.ingestStream(chunked(content));
  t.false(fresh.receipt.deduplicated, 'the content was not present');
});

conformanceTest('ingestStream: a thrown non-Error value and a rejecting or throwing iterator pass through too', async (t, store) => {
  const content = bytes(2 * MiB, 62);
  const parts = split(content, 256 * KiB);
  // A thrown string.
  {
    const { source } = tracked(parts, { throwAt: 5, error: 'plain string failure' });
    const error = await t.throwsAsync(store.dp.ingestStream(source), { any: true });
    t.true(isOrCauses(error, 'plain string failure'), `got ${error}`);
  }
  // A hand-written async iterator whose next() rejects after a few chunks.
  {
    const boom = new RangeError('next() rejected');
    let i = 0;
    const iterable = {
      [Symbol.asyncIterator]: () => ({
        next: () => (i < 4 ? Promise.resolve({ value: parts[i++], done: false }) : Promise.reject(boom)),
      }),
    };
    const error = await t.throwsAsync(store.dp.ingestStream(iterable));
    t.true(isOrCauses(error, boom), `got ${error}`);
  }
  // A sync iterator whose next() throws.
  {
    const boom = new TypeError('sync next() threw');
    let i = 0;
    const iterable = {
      [Symbol.iterator]: () => ({
        next: () => {
          if (i < 6) return { value: parts[i++], done: false };
          throw boom;
        },
      }),
    };
    const error = await t.throwsAsync(store.dp.ingestStream(iterable));
    t.true(isOrCauses(error, boom), `got ${error}`);
  }
  await noLeftovers(t, store);
  const fresh = await store.dp.ingestStream(parts);
  t.false(fresh.receipt.deduplicated, 'none of the failed ingests stored anything');
});

// ---------------------------------------------------------------------------------------------
// Abort

conformanceTest('ingestStream: an already-aborted signal rejects with ABORTED without reading the source', async (t, store) => {
  const content = bytes(2 * MiB, 71);
  for (const parts of [[content], split(content, 64 * KiB)]) {
    const controller = new AbortController();
    controller.abort();
    const { source, stats } = tracked(parts);
    await rejects(t, store.dp.ingestStream(source, { signal: controller.signal }), 'ABORTED');
    t.is(stats.pulled, 0, 'no chunk was pulled from the source');
    await rejects(t, store.dp.ingestStream(parts, { signal: AbortSignal.abort() }), 'ABORTED');
  }
  await absent(t, store, b3(blake3Hex(content)));
  await noLeftovers(t, store);
});

test('ingestStream (in-process, fs): an aborted ingest whose source fails leaves no unhandled rejection behind (child process)', async (t) => {
  const body = `
    const sources = [
      ['a generator that throws', async function* () { throw new Error('generator failed'); }],
      ['an iterator whose next() rejects', () => ({ [Symbol.asyncIterator]: () => ({ next: () => Promise.reject(new Error('next rejected')) }) })],
    ];
    for (const [what, make] of sources) {
      try {
        await dp.ingestStream(make(), { signal: AbortSignal.abort() });
        console.log(what + ': resolved');
      } catch (error) {
        console.log(what + ': ' + error.code);
      }
    }
  `;
  const { code: exitCode, stdout, stderr } = await runWithFreshStore(body);
  t.deepEqual(stdout.trim().split('\n'), ['a generator that throws: ABORTED', 'an iterator whose next() rejects: ABORTED', 'done'], stderr);
  t.is(exitCode, 0, stderr);
});

conformanceTest('ingestStream: a signal fired mid-stream rejects with ABORTED, stops reading and stores nothing', async (t, store) => {
  const content = bytes(4 * MiB, 72);
  const parts = split(content, 64 * KiB); // 64 chunks, 3 ms apart: about 200 ms in all
  const controller = new AbortController();
  const { source, stats } = tracked(parts, { delayMs: 3 });
  const ingest = store.dp.ingestStream(source, { signal: controller.signal });
  while (stats.pulled < 10) await sleep(1);
  controller.abort(new Error('the caller gave up'));
  await rejects(t, ingest, 'ABORTED');
  t.true(stats.pulled < parts.length, `the source was not read to its end (${stats.pulled} of ${parts.length})`);
  await sleep(20); // a generator suspended in its delay finishes on its next step
  t.true(stats.finished, 'the source was closed');
  await absent(t, store, b3(blake3Hex(content)));
  await noLeftovers(t, store);
  const fresh = await store.dp.ingestStream(parts);
  t.false(fresh.receipt.deduplicated, 'the aborted ingest stored nothing');
});

conformanceTest('ingestStream: aborting a stalled source rejects promptly, without waiting for its next chunk', async (t, store) => {
  const part = bytes(64 * KiB, 73);
  for (const before of [1, 40]) {
    const controller = new AbortController();
    let release;
    const stall = new Promise((resolve) => { release = resolve; });
    const timer = setTimeout(() => release(), 20_000); // never hang the suite
    let pulled = 0;
    async function* source() {
      for (; pulled < before; ) {
        pulled++;
        yield Buffer.from(part);
      }
      await stall; // a network stream that stopped sending
      yield Buffer.from(part);
    }
    const ingest = store.dp.ingestStream(source(), { signal: controller.signal });
    while (pulled < before) await sleep(1);
    await sleep(20);
    const firedAt = Date.now();
    controller.abort();
    const error = await t.throwsAsync(ingest);
    const took = Date.now() - firedAt;
    release();
    clearTimeout(timer);
    t.is(error.code, 'ABORTED', `${error}`);
    // Far below the stall: the rejection waits only for the cleanup of what was written (on S3, a
    // multipart upload to abort, which a loaded server can take seconds over), never for the source.
    t.true(took < 10_000, `rejected ${took} ms after the abort (stalled after ${before} chunks)`);
  }
  await sleep(20);
  await noLeftovers(t, store);
});

conformanceTest('ingestStream: aborting after the ingest completed has no effect', async (t, store) => {
  const content = bytes(3 * MiB, 74);
  for (const source of [() => [content], () => chunked(content)]) {
    const controller = new AbortController();
    const result = await store.dp.ingestStream(source(), { signal: controller.signal });
    controller.abort();
    await sleep(10);
    await intact(t, store, result.primaryDigest, content);
    t.true((await store.dp.deleteObject(result.primaryDigest)).deleted);
  }
});

conformanceTest(
  'ingestStream: an abort landing while the object is committed either wins wholly or not at all',
  async (t, store) => {
    const content = bytes(24 * MiB, 75);
    const address = sha(sha256Hex(content));
    const outcomes = [];
    for (const delay of [0, 1, 3, 8]) {
      const controller = new AbortController();
      async function* source() {
        for (let o = 0; o < content.length; o += 4 * MiB) yield content.subarray(o, o + 4 * MiB);
        setTimeout(() => controller.abort(), delay); // fires while the last chunks are hashed and committed
      }
      const outcome = await store.dp
        .ingestStream(source(), { signal: controller.signal, hints: { primaryAlgorithm: 'sha256' } })
        .then((result) => ({ result }), (error) => ({ error }));
      if (outcome.error) {
        t.is(outcome.error.code, 'ABORTED', `${outcome.error}`);
        outcomes.push('aborted');
        // An ingest that said ABORTED must never make the object appear, not even a moment later.
        for (let i = 0; i < 10; i++) {
          await rejects(t, store.dp.verifyObject(address), 'NOT_FOUND', { what: `after ABORTED (delay ${delay})` });
          await sleep(30);
        }
      } else {
        outcomes.push('stored');
        t.deepEqual(outcome.result.primaryDigest, address);
        await intact(t, store, address, content);
        await store.dp.deleteObject(address);
      }
      await noLeftovers(t, store, `(delay ${delay})`);
    }
    t.log(`outcomes: ${outcomes.join(', ')}`);
  },
  { durable: true },
);

// ---------------------------------------------------------------------------------------------
// Expectations

conformanceTest('ingestStream: expect mismatches reject with INTEGRITY_MISMATCH and store nothing', async (t, store) => {
  const content = bytes(3 * MiB + 5, 81);
  const size = content.length;
  const sha256 = sha256Hex(content);
  const primary = blake3Hex(content);
  const other = sha256Hex(Buffer.from('other'));
  const cases = [
    ['sizeBytes too small', { sizeBytes: size - 1 }],
    ['sizeBytes far too small', { sizeBytes: 1 }],
    ['sizeBytes zero', { sizeBytes: 0 }],
    ['sizeBytes too large', { sizeBytes: size + 1 }],
    ['wrong sha256', { sha256: other }],
    ['wrong primary', { primary: other }],
    ['the sha256 given as primary', { primary: sha256 }],
    ['the primary given as sha256', { sha256: primary }],
    ['right size and sha256, wrong primary', { sizeBytes: size, sha256, primary: other }],
    ['right size and primary, wrong sha256', { sizeBytes: size, sha256: other, primary }],
    ['right digests, wrong size', { sizeBytes: size + 1, sha256, primary }],
  ];
  for (const [what, expect] of cases) {
    for (const [how, source] of [['one chunk', () => [content]], ['streamed', () => chunked(content)]]) {
      const error = await rejects(t, store.dp.ingestStream(source(), { expect }), 'INTEGRITY_MISMATCH', { what: `${what}, ${how}` });
      t.true(error.message.length > 0);
    }
  }
  await absent(t, store, b3(primary));
  await noLeftovers(t, store);
  // Matching expectations, all or some, succeed.
  const all = await store.dp.ingestStream(chunked(content), { expect: { sizeBytes: size, sha256, primary } });
  t.false(all.receipt.deduplicated, 'nothing was stored by the mismatches');
  t.deepEqual(all.primaryDigest, b3(primary));
  for (const expect of [{ sizeBytes: size }, { sha256 }, { primary }, {}]) {
    const result = await store.dp.ingestStream([content], { expect });
    t.true(result.receipt.deduplicated);
  }
  const empty = await store.dp.ingestStream([], { expect: { sizeBytes: 0, primary: BLAKE3_VECTORS[0] } });
  t.is(empty.sizeBytes, 0);
});

conformanceTest('ingestStream: expect.primary follows primaryAlgorithm', async (t, store) => {
  const content = bytes(MiB + 7, 82);
  const sha256 = sha256Hex(content);
  const hints = { primaryAlgorithm: 'sha256' };
  await rejects(t, store.dp.ingestStream(chunked(content), { hints, expect: { primary: blake3Hex(content) } }), 'INTEGRITY_MISMATCH');
  await absent(t, store, sha(sha256));
  const result = await store.dp.ingestStream(chunked(content), { hints, expect: { primary: sha256, sha256 } });
  t.deepEqual(result.primaryDigest, sha(sha256));
});

conformanceTest('ingestStream: a rejected re-ingest of present content leaves the stored object intact', async (t, store) => {
  const content = bytes(2 * MiB + 1, 83);
  const first = await store.dp.ingestStream(chunked(content));
  for (const expect of [{ sha256: sha256Hex(Buffer.from('x')) }, { sizeBytes: 5 }, { sizeBytes: content.length + 1 }]) {
    for (const source of [() => [content], () => chunked(content)]) {
      await rejects(t, store.dp.ingestStream(source(), { expect }), 'INTEGRITY_MISMATCH', { what: JSON.stringify(expect) });
    }
  }
  const boom = new Error('late failure');
  const { source } = tracked(split(content, 64 * KiB), { throwAt: 20, error: boom });
  t.true(isOrCauses(await t.throwsAsync(store.dp.ingestStream(source)), boom));
  await intact(t, store, first.primaryDigest, content);
  await noLeftovers(t, store);
});

conformanceTest('ingestStream: a malformed expected digest rejects with INVALID_ARGUMENT', async (t, store) => {
  const content = vectorInput(1025);
  const good = sha256Hex(content);
  const malformed = ['', 'abc', good.slice(0, 63), `${good}0`, `g${good.slice(1)}`, `${good.slice(0, 62)} x`, `0x${good.slice(2)}`];
  for (const hex of malformed) {
    for (const field of ['sha256', 'primary']) {
      for (const source of [() => [content], () => inChunks(content, [100])]) {
        const error = await rejects(t, store.dp.ingestStream(source(), { expect: { [field]: hex } }), 'INVALID_ARGUMENT', { what: `${field} ${JSON.stringify(hex)}` });
        t.true(error.message.includes(field), `the message names ${field}: ${error.message}`);
      }
    }
  }
  await absent(t, store, b3(BLAKE3_VECTORS[1025]));
  await noLeftovers(t, store);
});

conformanceTest('ingestStream: expect.sizeBytes that is negative or fractional is rejected, never stored', async (t, store) => {
  const content = vectorInput(1025);
  for (const sizeBytes of [-1, 1024.5, Number.NaN, Infinity]) {
    const error = await t.throwsAsync(store.dp.ingestStream([content], { expect: { sizeBytes } }), { instanceOf: DataPlaneError });
    t.true(['INVALID_ARGUMENT', 'INTEGRITY_MISMATCH'].includes(error.code), `${sizeBytes}: ${error.code}`);
  }
  await absent(t, store, b3(BLAKE3_VECTORS[1025]));
});

// ---------------------------------------------------------------------------------------------
// Concurrency

conformanceTest('ingestStream: 16 concurrent ingests of the same content all succeed and leave one intact object', async (t, store) => {
  const content = bytes(4 * MiB + 17, 91);
  const expected = { primary: b3(blake3Hex(content)), sha256: sha(sha256Hex(content)) };
  const sizes = [64 * KiB, 4099, MiB, 100_000, 65537, 333_333, 2 * MiB, 1 * MiB + 1];
  const results = await Promise.all(
    Array.from({ length: 16 }, (_, i) => store.dp.ingestStream(i === 15 ? [content] : inChunks(content, [sizes[i % sizes.length]]))),
  );
  for (const result of results) {
    t.deepEqual(result.primaryDigest, expected.primary);
    t.deepEqual(result.sha256Digest, expected.sha256);
    t.is(result.sizeBytes, content.length);
    t.is(result.receipt.locator, results[0].receipt.locator);
  }
  const written = results.filter((r) => !r.receipt.deduplicated).length;
  t.true(written >= 1, 'some ingest wrote the object (the store was empty)');
  await intact(t, store, expected.primary, content);
  await noLeftovers(t, store);
});

conformanceTest('ingestStream: concurrent ingests of different contents each store their own bytes', async (t, store) => {
  const contents = Array.from({ length: 12 }, (_, i) => bytes(MiB + i * 1001, 100 + i));
  const results = await Promise.all(contents.map((c, i) => store.dp.ingestStream(i % 3 ? chunked(c, 50_000 + i) : [c])));
  for (const [i, result] of results.entries()) {
    t.deepEqual(result.sha256Digest, sha(sha256Hex(contents[i])), `content ${i}`);
    t.false(result.receipt.deduplicated);
  }
  for (const [i, result] of results.entries()) {
    t.true((await collect(await store.dp.serveObject(result.primaryDigest))).equals(contents[i]), `content ${i} serves back`);
  }
  await noLeftovers(t, store);
});

// ---------------------------------------------------------------------------------------------
// The files themselves (fs)

conformanceTest('Layout: objects live at objects/<alg>/<aa>/<bb>/<hex> and the locator is relative to the root', async (t, store) => {
  const content = vectorInput(1025);
  const hex = BLAKE3_VECTORS[1025];
  const result = await store.dp.ingestStream(inChunks(content, [100]));
  const locator = `objects/blake3/${hex.slice(0, 2)}/${hex.slice(2, 4)}/${hex}`;
  t.is(result.receipt.locator, locator);
  t.false(isAbsolute(result.receipt.locator));
  t.true((await readFile(join(store.root, result.receipt.locator))).equals(content));

  const shaHex = sha256Hex(content);
  const asSha = await store.dp.ingestStream([content], { hints: { primaryAlgorithm: 'sha256' } });
  t.is(asSha.receipt.locator, `objects/sha256/${shaHex.slice(0, 2)}/${shaHex.slice(2, 4)}/${shaHex}`);
  t.true((await readFile(join(store.root, asSha.receipt.locator))).equals(content));

  const empty = await store.dp.ingestStream([]);
  t.is(empty.receipt.locator, `objects/blake3/af/13/${BLAKE3_VECTORS[0]}`);
  t.is((await readFile(join(store.root, empty.receipt.locator))).length, 0);

  const big = bytes(3 * MiB + 3, 111);
  const bigResult = await store.dp.ingestStream(chunked(big));
  t.true((await readFile(join(store.root, bigResult.receipt.locator))).equals(big));

  t.deepEqual(
    await filesBelow(join(store.root, 'objects'), store.root),
    [locator, asSha.receipt.locator, empty.receipt.locator, bigResult.receipt.locator].sort(),
    'objects/ holds the objects and nothing else',
  );
  t.deepEqual(await filesBelow(join(store.root, 'tmp')), []);
  t.deepEqual(store.openFilesUnder(store.root), [], 'no file of the store is left open');
}, { kinds: ['fs'] });

conformanceTest('ingestStream: failed, aborted and rejected ingests leave no file under objects/ or tmp/ and none open', async (t, store) => {
  const content = bytes(3 * MiB, 121);
  const parts = split(content, 64 * KiB);
  const attempts = {
    'source throws after 3 MiB': () => [tracked(parts, { throwAt: parts.length, error: new Error('x') }).source],
    'source throws after one chunk': () => [tracked(parts, { throwAt: 1, error: new Error('x') }).source],
    'invalid chunk after 2 MiB': () => [[...parts.slice(0, 32), 'not bytes']],
    'size mismatch, streamed': () => [chunked(content), { expect: { sizeBytes: 1 } }],
    'size mismatch, one chunk': () => [[content], { expect: { sizeBytes: content.length + 1 } }],
    'sha256 mismatch, streamed': () => [chunked(content), { expect: { sha256: sha256Hex(Buffer.from('y')) } }],
    'unknown backend': () => [chunked(content), { hints: { backendId: 'elsewhere' } }],
    'unsupported algorithm': () => [chunked(content), { hints: { primaryAlgorithm: 'md5' } }],
    'already aborted': () => [chunked(content), { signal: AbortSignal.abort() }],
    'aborted mid-stream': () => {
      const controller = new AbortController();
      const { source, stats } = tracked(parts, { delayMs: 2 });
      const poll = setInterval(() => stats.pulled >= 8 && controller.abort(), 1);
      source.done = () => clearInterval(poll);
      return [source, { signal: controller.signal }];
    },
  };
  for (const [what, make] of Object.entries(attempts)) {
    const [source, options] = make();
    await t.throwsAsync(store.dp.ingestStream(source, options), { any: true }, what);
    source.done?.();
    t.deepEqual(await filesBelow(join(store.root, 'objects')), [], `nothing under objects/ (${what})`);
    t.deepEqual(await readdir(join(store.root, 'tmp')), [], `nothing under tmp/ (${what})`);
    t.deepEqual(store.openFilesUnder(store.root), [], `no temporary file left open (${what})`);
  }
}, { kinds: ['fs'] });

conformanceTest('ingestStream: 16 concurrent ingests of the same content: exactly one writes, the rest deduplicate', async (t, store) => {
  const content = bytes(3 * MiB + 5, 131);
  const results = await Promise.all(Array.from({ length: 16 }, (_, i) => store.dp.ingestStream(chunked(content, 64 * KiB + i))));
  t.is(results.filter((r) => !r.receipt.deduplicated).length, 1);
  t.deepEqual(await filesBelow(join(store.root, 'objects'), store.root), [results[0].receipt.locator]);
  t.true((await readFile(join(store.root, results[0].receipt.locator))).equals(content));
  t.deepEqual(await readdir(join(store.root, 'tmp')), []);
  t.deepEqual(store.openFilesUnder(store.root), []);
}, { kinds: ['fs'] });

// The queue between the source and the ingest is bounded by bytes (4 MiB), not by chunks: small
// chunks keep the ingest as busy as large ones, and large ones do not pile up.
for (const [chunkSize, chunks, bound] of [
  [64 * KiB, 512, 8 * MiB],
  [1 * MiB, 64, 16 * MiB],
  [16 * MiB, 8, 48 * MiB],
]) {
  test(`ingestStream (in-process, fs): a fast source of ${chunkSize / KiB} KiB chunks runs at most ${bound / MiB} MiB ahead of the writes (backpressure)`, async (t) => {
    const store = await newStore(t, 'fs');
    const dp = await openPlane(t, { backends: [store.backend] });
    // How much of the ingest's temporary file is written, seen through its open descriptor.
    const written = async () => {
      const [temp] = descriptorsUnder(join(store.root, 'tmp'));
      try {
        return temp && (await stat(`/proc/self/fd/${temp.fd}`)).size;
      } catch {
        return undefined; // closed while we looked
      }
    };
    const base = bytes(8 * chunkSize, 151);
    let yielded = 0;
    let samples = 0;
    let mostAhead = 0;
    async function* source() {
      for (let i = 0; i < chunks; i++) {
        const done = await written();
        if (done !== undefined) {
          samples++;
          mostAhead = Math.max(mostAhead, yielded - done);
        }
        const chunk = base.subarray((i % 8) * chunkSize, ((i % 8) + 1) * chunkSize); // a new view each time
        yielded += chunk.length;
        yield chunk;
      }
    }
    const result = await dp.ingestStream(source());
    t.is(result.sizeBytes, chunks * chunkSize);
    t.true(samples >= chunks / 2, `the temporary file was seen ${samples} times`);
    t.true(mostAhead <= bound, `the source ran ${mostAhead / MiB} MiB ahead of the file`);
  });
}

conformanceTest('ingestStream: a durable store writes the same objects', async (t, store) => {
  const content = bytes(2 * MiB + 9, 141);
  const result = await store.dp.ingestStream(chunked(content));
  t.deepEqual(result.primaryDigest, b3(blake3Hex(content)));
  t.true((await readFile(join(store.root, result.receipt.locator))).equals(content));
  t.is(formatContentAddress(result.primaryDigest), `blake3:${blake3Hex(content)}`);
}, { kinds: ['fs'], durable: true });
