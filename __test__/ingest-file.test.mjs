// SPEC Entry points, ingestFile: the fast path for a file on disk gives what ingestStream of the
// same bytes gives, honours hints and expectations, and rejects a missing file with IO naming the
// path. Every test is in the conformance suite. (Routing by hints.backendId: lifecycle.test.mjs.)

import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { DataPlaneError } from '@artifactstore/data-plane';

import { conformanceTest } from './conformance.mjs';
import { bytes, chunked, collect, KiB, MiB, rejects } from './helpers.mjs';
import { sha256Hex, tempDir } from './fixtures/support.mjs';

conformanceTest('ingestFile: gives the same digests as ingestStream of the same bytes', async (t, store) => {
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
  const other = await store.open({ backends: [(await store.newStore()).backend] });
  const streamFirst = await other.ingestStream(chunked(data, 64 * KiB));
  const fileSecond = await other.ingestFile(file);
  t.deepEqual(fileSecond.primaryDigest, streamFirst.primaryDigest);
  t.true(fileSecond.receipt.deduplicated);
});

conformanceTest('ingestFile: honours primaryAlgorithm and expectations', async (t, store) => {
  const dir = await tempDir(t);
  const data = bytes(MiB + 1, 52);
  const file = join(dir, 'artifact.bin');
  await writeFile(file, data);

  await rejects(t, store.dp.ingestFile(file, { expect: { sha256: 'b'.repeat(64) } }), 'INTEGRITY_MISMATCH');
  await rejects(t, store.dp.ingestFile(file, { expect: { sizeBytes: data.length - 1 } }), 'INTEGRITY_MISMATCH');
  t.deepEqual(await store.stored(), [], 'a rejected ingest stores nothing');
  t.deepEqual(await store.leftovers(), []);

  const result = await store.dp.ingestFile(file, {
    hints: { primaryAlgorithm: 'sha256', sizeHint: 7 },
    expect: { sha256: sha256Hex(data), sizeBytes: data.length, primary: sha256Hex(data) },
  });
  t.deepEqual(result.primaryDigest, { algorithm: 'sha256', hex: sha256Hex(data) });
  t.deepEqual(result.sha256Digest, result.primaryDigest);
});

conformanceTest('ingestFile: an empty file stores the empty object', async (t, store) => {
  const dir = await tempDir(t);
  const file = join(dir, 'empty');
  await writeFile(file, '');
  const result = await store.dp.ingestFile(file);
  t.is(result.sizeBytes, 0);
  t.is(result.sha256Digest.hex, sha256Hex(Buffer.alloc(0)));
  const streamed = await store.dp.ingestStream([]);
  t.deepEqual(streamed.primaryDigest, result.primaryDigest);
});

conformanceTest('ingestFile: a missing file rejects with IO naming the path; an empty path is INVALID_ARGUMENT', async (t, store) => {
  const dir = await tempDir(t);
  const missing = join(dir, 'no-such-file.bin');
  await rejects(t, store.dp.ingestFile(missing), 'IO', { message: missing });
  await rejects(t, store.dp.ingestFile(''), 'INVALID_ARGUMENT');
  // A directory is not a file either.
  const error = await t.throwsAsync(store.dp.ingestFile(dir), { instanceOf: DataPlaneError });
  t.true(error?.message.includes(dir));
  t.deepEqual(await store.stored(), []);
  t.deepEqual(await store.leftovers(), []);
});
