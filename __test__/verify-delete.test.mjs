// SPEC Semantics, verifyObject and deleteObject: re-reading an object (corruption is a result, a
// missing object NOT_FOUND) and removing it (idempotent). Every test is in the conformance suite;
// the corruption cases tamper with files under an fs root, so they run on the fs backend only.

import { chmod, mkdir, open, readFile, rm, stat, symlink, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { formatContentAddress } from '@artifactstore/data-plane';

import { conformanceTest } from './conformance.mjs';
import { bytes, chunked, collect, KiB, MiB, rejects } from './helpers.mjs';
import { sha256Hex } from './fixtures/support.mjs';

const HEX64 = /^[0-9a-f]{64}$/;

/** An address of the given algorithm that no test ever ingests. */
const absent = (algorithm = 'blake3') => ({ algorithm, hex: sha256Hex(Buffer.from(`absent ${Math.random()}`)) });

/** Checks the shape every VerifyResult must have. */
function assertVerifyShape(t, result) {
  t.is(typeof result.verified, 'boolean');
  for (const digest of [result.contentAddress, result.actualPrimaryDigest, result.actualSha256Digest]) {
    t.true(digest !== null && typeof digest === 'object', 'digests are objects');
    t.regex(digest.hex, HEX64);
  }
  t.is(result.actualSha256Digest.algorithm, 'sha256');
  t.is(result.actualPrimaryDigest.algorithm, result.contentAddress.algorithm);
  t.true(Number.isSafeInteger(result.actualSizeBytes) && result.actualSizeBytes >= 0, 'actualSizeBytes is a count');
}

/** Asserts `result` reports corruption: a result (not an exception) with an explanation. */
function assertCorrupt(t, result, address) {
  assertVerifyShape(t, result);
  t.false(result.verified);
  t.deepEqual(result.contentAddress, address);
  t.is(typeof result.mismatch, 'string');
  t.true(result.mismatch.trim().length > 0, 'mismatch explains the failure');
  t.notDeepEqual(result.actualPrimaryDigest, address, 'a corrupt object cannot digest to its address');
}

// ---------------------------------------------------------------------------------------------
// verifyObject, per backend

conformanceTest('verifyObject: an intact object verifies, with the digests and size of its ingest', async (t, { dp }) => {
  const data = bytes(3 * MiB + 17, 11);
  const ingested = await dp.ingestStream(chunked(data, 256 * KiB));
  t.is(ingested.sha256Digest.hex, sha256Hex(data));

  const result = await dp.verifyObject(ingested.primaryDigest);
  assertVerifyShape(t, result);
  t.true(result.verified);
  t.deepEqual(result.contentAddress, ingested.primaryDigest);
  t.deepEqual(result.actualPrimaryDigest, ingested.primaryDigest);
  t.deepEqual(result.actualSha256Digest, ingested.sha256Digest);
  t.is(result.actualSizeBytes, ingested.sizeBytes);
  t.is(result.actualSizeBytes, data.length);
  t.is(result.mismatch, undefined, 'no mismatch on an intact object');

  // The text form of the address works the same way.
  const byText = await dp.verifyObject(formatContentAddress(ingested.primaryDigest));
  t.deepEqual(byText, result);
});

conformanceTest('verifyObject: the empty object verifies', async (t, { dp }) => {
  const ingested = await dp.ingestStream((async function* () {})());
  t.is(ingested.sizeBytes, 0);
  t.is(ingested.sha256Digest.hex, sha256Hex(Buffer.alloc(0)));
  const result = await dp.verifyObject(ingested.primaryDigest);
  t.true(result.verified);
  t.is(result.actualSizeBytes, 0);
  t.deepEqual(result.actualSha256Digest, ingested.sha256Digest);
  t.deepEqual(result.actualPrimaryDigest, ingested.primaryDigest);
});

conformanceTest('verifyObject: a sha256-primary object verifies', async (t, { dp }) => {
  const data = bytes(200 * KiB + 3, 12);
  const ingested = await dp.ingestStream(chunked(data, 64 * KiB), { hints: { primaryAlgorithm: 'sha256' } });
  t.is(ingested.primaryDigest.algorithm, 'sha256');
  t.is(ingested.primaryDigest.hex, sha256Hex(data));

  const result = await dp.verifyObject(ingested.primaryDigest);
  assertVerifyShape(t, result);
  t.true(result.verified);
  t.deepEqual(result.contentAddress, { algorithm: 'sha256', hex: sha256Hex(data) });
  t.deepEqual(result.actualPrimaryDigest, { algorithm: 'sha256', hex: sha256Hex(data) });
  t.deepEqual(result.actualSha256Digest, { algorithm: 'sha256', hex: sha256Hex(data) });
  t.is(result.actualSizeBytes, data.length);
  t.is(result.mismatch, undefined);
  t.true((await dp.verifyObject(`sha256:${sha256Hex(data)}`)).verified);
});

conformanceTest('verifyObject: a missing object rejects with NOT_FOUND (blake3 and sha256, object and text)', async (t, { dp }) => {
  for (const address of [absent('blake3'), absent('sha256')]) {
    await rejects(t, dp.verifyObject(address), 'NOT_FOUND');
    await rejects(t, dp.verifyObject(formatContentAddress(address)), 'NOT_FOUND');
  }
  // The BLAKE3 hex under the other algorithm names nothing; the SHA-256 of a BLAKE3-primary
  // object names it (SPEC Part 2, Either digest), and the result names it by its primary address.
  const data = bytes(1000, 13);
  const stored = await dp.ingestStream(chunked(data));
  await rejects(t, dp.verifyObject({ algorithm: 'sha256', hex: stored.primaryDigest.hex }), 'NOT_FOUND');
  const bySha256 = await dp.verifyObject({ algorithm: 'sha256', hex: sha256Hex(data) });
  t.true(bySha256.verified);
  t.deepEqual(bySha256.contentAddress, stored.primaryDigest);
});

conformanceTest('verifyObject, deleteObject: a malformed address rejects with INVALID_ADDRESS', async (t, { dp }) => {
  for (const bad of ['blake3:xyz', `BLAKE3:${'a'.repeat(64)}`, { algorithm: 'md5', hex: 'a'.repeat(64) }, { hex: 'a'.repeat(64) }]) {
    await rejects(t, dp.verifyObject(bad), 'INVALID_ADDRESS');
    await rejects(t, dp.deleteObject(bad), 'INVALID_ADDRESS');
  }
});

// ---------------------------------------------------------------------------------------------
// verifyObject on a tampered fs store

/** An fs store holding one object; hands the body its bytes, result and absolute path. */
function tamperTest(title, body, { size = 256 * KiB + 5, primaryAlgorithm } = {}) {
  conformanceTest(`verifyObject: ${title}`, async (t, store) => {
    const data = bytes(size, size);
    const hints = primaryAlgorithm ? { primaryAlgorithm } : undefined;
    const ingested = await store.dp.ingestStream(chunked(data, 64 * KiB), { hints });
    const path = join(store.root, ingested.receipt.locator);
    t.deepEqual(await readFile(path), data, 'the receipt locator names the object file below the root');
    await chmod(path, 0o644); // objects may be stored read-only; the tampering needs to write
    await body(t, { ...store, data, ingested, path, address: ingested.primaryDigest });
  }, { kinds: ['fs'] });
}

tamperTest('a flipped byte is reported as a mismatch with the actual digests', async (t, { dp, data, path, address }) => {
  const handle = await open(path, 'r+');
  const at = Math.floor(data.length / 2);
  await handle.write(Buffer.from([data[at] ^ 0x01]), 0, 1, at);
  await handle.close();
  const corrupted = Buffer.from(data);
  corrupted[at] ^= 0x01;

  const result = await dp.verifyObject(address);
  assertCorrupt(t, result, address);
  t.is(result.actualSizeBytes, data.length);
  t.deepEqual(result.actualSha256Digest, { algorithm: 'sha256', hex: sha256Hex(corrupted) });
});

tamperTest('a truncated object is reported as a mismatch', async (t, { dp, data, path, address }) => {
  await truncate(path, data.length - 1);
  const result = await dp.verifyObject(address);
  assertCorrupt(t, result, address);
  t.is(result.actualSizeBytes, data.length - 1);
  t.deepEqual(result.actualSha256Digest, { algorithm: 'sha256', hex: sha256Hex(data.subarray(0, data.length - 1)) });
});

tamperTest('a truncation to nothing is reported as a mismatch', async (t, { dp, path, address }) => {
  await truncate(path, 0);
  const result = await dp.verifyObject(address);
  assertCorrupt(t, result, address);
  t.is(result.actualSizeBytes, 0);
  t.deepEqual(result.actualSha256Digest, { algorithm: 'sha256', hex: sha256Hex(Buffer.alloc(0)) });
});

tamperTest('an extended object (one appended byte) is reported as a mismatch', async (t, { dp, data, path, address }) => {
  await writeFile(path, Buffer.from([0x42]), { flag: 'a' });
  const extended = Buffer.concat([data, Buffer.from([0x42])]);
  const result = await dp.verifyObject(address);
  assertCorrupt(t, result, address);
  t.is(result.actualSizeBytes, data.length + 1);
  t.deepEqual(result.actualSha256Digest, { algorithm: 'sha256', hex: sha256Hex(extended) });
});

tamperTest('an object replaced by a directory is reported as a mismatch, not an exception', async (t, { dp, path, address }) => {
  await rm(path);
  await mkdir(path);
  await writeFile(join(path, 'inside'), 'not the object');
  const result = await dp.verifyObject(address);
  assertCorrupt(t, result, address);
});

tamperTest('an object replaced by a symlink to identical content is reported as a mismatch', async (t, { dp, data, root, path, address }) => {
  const elsewhere = join(root, 'elsewhere.bin');
  await writeFile(elsewhere, data);
  await rm(path);
  await symlink(elsewhere, path);
  t.deepEqual(await readFile(path), data, 'the symlink leads to the very same bytes');
  const result = await dp.verifyObject(address);
  assertCorrupt(t, result, address);
});

tamperTest('a relative symlink to identical content is reported as a mismatch too', async (t, { dp, data, path, address }) => {
  const sibling = `${path}.copy`;
  await writeFile(sibling, data);
  await rm(path);
  await symlink(`./${sibling.split('/').pop()}`, path);
  t.deepEqual(await readFile(path), data);
  const result = await dp.verifyObject(address);
  assertCorrupt(t, result, address);
});

tamperTest(
  'a sha256-primary object with a flipped byte is reported with both actual digests',
  async (t, { dp, data, path, address }) => {
    t.is(address.algorithm, 'sha256');
    t.true((await dp.verifyObject(address)).verified);
    const handle = await open(path, 'r+');
    await handle.write(Buffer.from([data[0] ^ 0x80]), 0, 1, 0);
    await handle.close();
    const corrupted = Buffer.from(data);
    corrupted[0] ^= 0x80;

    const result = await dp.verifyObject(address);
    assertCorrupt(t, result, address);
    t.is(result.actualSizeBytes, data.length);
    t.deepEqual(result.actualPrimaryDigest, { algorithm: 'sha256', hex: sha256Hex(corrupted) });
    t.deepEqual(result.actualSha256Digest, { algorithm: 'sha256', hex: sha256Hex(corrupted) });
  },
  { primaryAlgorithm: 'sha256', size: 70 * KiB },
);

tamperTest('a repaired object verifies again', async (t, { dp, data, path, address }) => {
  await truncate(path, 10);
  t.false((await dp.verifyObject(address)).verified);
  await writeFile(path, data);
  const result = await dp.verifyObject(address);
  t.true(result.verified);
  t.is(result.actualSizeBytes, data.length);
});

// ---------------------------------------------------------------------------------------------
// deleteObject, per backend

conformanceTest('deleteObject: deletes, then reports false; serve and verify then say NOT_FOUND', async (t, { dp, backendId }) => {
  const data = bytes(300 * KiB + 1, 21);
  const ingested = await dp.ingestStream(chunked(data));
  const address = ingested.primaryDigest;
  t.deepEqual(await collect(await dp.serveObject(address)), data);

  const first = await dp.deleteObject(address);
  t.deepEqual(first, { contentAddress: address, backendId, deleted: true });

  const second = await dp.deleteObject(address);
  t.deepEqual(second, { contentAddress: address, backendId, deleted: false });

  await rejects(t, dp.serveObject(address), 'NOT_FOUND');
  await rejects(t, dp.verifyObject(address), 'NOT_FOUND');
  await rejects(t, dp.serveObject(address, { byteRange: [0, 0] }), 'NOT_FOUND');
});

conformanceTest('deleteObject: an object never stored resolves with deleted false', async (t, { dp, backendId }) => {
  const address = absent();
  t.deepEqual(await dp.deleteObject(address), { contentAddress: address, backendId, deleted: false });
  const text = absent('sha256');
  t.deepEqual(await dp.deleteObject(formatContentAddress(text)), { contentAddress: text, backendId, deleted: false });
});

conformanceTest('deleteObject: the text form of the address works and the result carries the parsed address', async (t, { dp, backendId }) => {
  const ingested = await dp.ingestStream(chunked(bytes(5000, 22)), { hints: { primaryAlgorithm: 'sha256' } });
  const result = await dp.deleteObject(formatContentAddress(ingested.primaryDigest));
  t.deepEqual(result, { contentAddress: ingested.primaryDigest, backendId, deleted: true });
  await rejects(t, dp.verifyObject(ingested.primaryDigest), 'NOT_FOUND');
});

conformanceTest('deleteObject: only the named object goes', async (t, { dp }) => {
  const a = await dp.ingestStream(chunked(bytes(10 * KiB, 23)));
  const b = await dp.ingestStream(chunked(bytes(10 * KiB, 24)));
  t.true((await dp.deleteObject(a.primaryDigest)).deleted);
  t.true((await dp.verifyObject(b.primaryDigest)).verified);
  t.deepEqual(await collect(await dp.serveObject(b.primaryDigest)), bytes(10 * KiB, 24));
});

conformanceTest('deleteObject: re-ingesting after a delete stores the object anew (not deduplicated)', async (t, { dp }) => {
  const data = bytes(MiB + 9, 25);
  const first = await dp.ingestStream(chunked(data));
  t.false(first.receipt.deduplicated);
  const again = await dp.ingestStream(chunked(data));
  t.true(again.receipt.deduplicated, 'sanity: a second ingest while present is deduplicated');

  t.true((await dp.deleteObject(first.primaryDigest)).deleted);

  const fresh = await dp.ingestStream(chunked(data));
  t.false(fresh.receipt.deduplicated, 'the object was gone, so it was written again');
  t.deepEqual(fresh.primaryDigest, first.primaryDigest);
  t.deepEqual(fresh.sha256Digest, first.sha256Digest);
  t.is(fresh.sizeBytes, data.length);
  t.is(fresh.receipt.locator, first.receipt.locator);

  const verified = await dp.verifyObject(fresh.primaryDigest);
  t.true(verified.verified);
  t.is(verified.actualSizeBytes, data.length);
  t.deepEqual(await collect(await dp.serveObject(fresh.primaryDigest)), data);
  t.true((await dp.deleteObject(fresh.primaryDigest)).deleted);
});

conformanceTest('deleteObject: concurrent deletes of one object all resolve and the object is gone', async (t, { dp }) => {
  // Unconditional and conditional deletes together, round after round: each finds keys (the
  // object, its index entry, its touch record) that another has just deleted.
  const future = new Date(Date.now() + 3_600_000).toISOString();
  for (let round = 0; round < 40; round++) {
    const ingested = await dp.ingestStream(chunked(bytes(64 * KiB, 26)));
    const deletes = Array.from({ length: 32 }, (_, i) =>
      dp.deleteObject(ingested.primaryDigest, i % 2 ? { unlessTouchedSince: future } : undefined),
    );
    const results = await Promise.all(deletes);
    t.true(results.some((r) => r.deleted), `round ${round}: one of them deleted it`);
    await rejects(t, dp.verifyObject(ingested.primaryDigest), 'NOT_FOUND');
    await rejects(t, dp.statObject(ingested.sha256Digest), 'NOT_FOUND');
  }
});

conformanceTest('deleteObject: the object file is gone from the root', async (t, store) => {
  const ingested = await store.dp.ingestStream(chunked(bytes(4 * KiB, 27)));
  const path = join(store.root, ingested.receipt.locator);
  t.true((await stat(path)).isFile());
  t.true((await store.dp.deleteObject(ingested.primaryDigest)).deleted);
  await t.throwsAsync(stat(path), { code: 'ENOENT' });
  t.deepEqual(await store.leftovers(), []);
}, { kinds: ['fs'] });
