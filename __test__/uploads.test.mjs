// SPEC Part 2, Resumable uploads: createUpload, appendUpload, uploadStatus, commitUpload,
// abortUpload, listUploads, purgeUploads. Every rule runs on every plane and backend
// (conformance.mjs); appends and commits from another process run in a child of their own.

import { setTimeout as sleep } from 'node:timers/promises';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { conformanceTest } from './conformance.mjs';
import { runChild, sha256Hex } from './fixtures/support.mjs';
import { bytes, chunked, collect, KiB, MiB, rejects, stalling } from './helpers.mjs';
import { listKeys } from './stores.mjs';

/** What the store holds of uploads, seen from outside the plane: fs, under uploads/; S3, the keys. */
const uploadsHeld = ({ kind, root, server, prefix }) =>
  kind === 'fs' ? readdir(join(root, 'uploads')) : listKeys(server, `${prefix}uploads/`);

/** Appends `data` (in chunks of `chunk`) at `offset`. */
const append = (dp, id, data, offset, chunk = 64 * KiB) => dp.appendUpload(id, chunked(data, chunk), { offset });

/** Uploads `data` cut at `cuts` (ascending offsets, repeats make empty appends), then commits. */
async function uploadInPieces(t, dp, data, cuts, options) {
  const { uploadId } = await dp.createUpload(options);
  const ends = [...cuts, data.length];
  let offset = 0;
  for (const end of ends) {
    const status = await append(dp, uploadId, data.subarray(offset, end), offset);
    t.is(status.offset, end, `the append up to ${end}`);
    offset = end;
  }
  return { uploadId, committed: await dp.commitUpload(uploadId) };
}

const FIVE_MIB = 5 * MiB;
const AWKWARD = [0, 0, 1, 1023, 1024, 1025, 16 * KiB - 1, 16 * KiB, 16 * KiB + 1, FIVE_MIB - 1, FIVE_MIB, FIVE_MIB + 1];
// The tests that move megabytes run one at a time (serial), so that the many calls of the others
// are not starved of this process's event loop (a daemon ends a connection whose frame stalls).
// The large inputs and their digests are made before any test runs: computed while other tests'
// calls are under way, they would hold this process's event loop for seconds, mid-frame for a
// daemon's connection.
const AWKWARD_DATA = bytes(FIVE_MIB + 20 * KiB, 11);
const AWKWARD_SHA256 = sha256Hex(AWKWARD_DATA);
const LARGE_DATA = bytes(64 * MiB, 12);
const LARGE_SHA256 = sha256Hex(LARGE_DATA);

conformanceTest('appendUpload: an upload cut at awkward boundaries commits to the digests and bytes of one ingestStream', async (t, store) => {
  const { dp, backendId } = store;
  const data = AWKWARD_DATA;
  const { uploadId, committed } = await uploadInPieces(t, dp, data, AWKWARD);
  t.is(committed.sha256Digest.hex, AWKWARD_SHA256);
  t.is(committed.sizeBytes, data.length);
  t.is(committed.receipt.backendId, backendId);
  t.false(committed.receipt.deduplicated);
  const ingested = await dp.ingestStream(chunked(data));
  t.deepEqual(ingested.primaryDigest, committed.primaryDigest);
  t.true(ingested.receipt.deduplicated, 'the commit stored the object as an ingest would');
  t.deepEqual(await collect(await dp.serveObject(committed.primaryDigest)), data);
  t.deepEqual((await dp.statObject(`sha256:${AWKWARD_SHA256}`)).contentAddress, committed.primaryDigest, 'indexed by its SHA-256');
  await rejects(t, dp.uploadStatus(uploadId), 'NOT_FOUND', { what: 'a committed upload is gone' });
  t.deepEqual(await uploadsHeld(store), [], 'nothing of a committed upload is left in the store');
}, { serial: true });

// From BLAKE3-team/BLAKE3 test_vectors/test_vectors.json: input bytes 0, 1, ..., 250, 0, 1, ...
const BLAKE3_VECTORS = [
  [0, 'af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262'],
  [1, '2d3adedff11b61f14c886e35afa036736dcd87a74d27b5c1510225d0f592e213'],
  [1023, '10108970eeda3eb932baac1428c7a2163b0e924c9a9e25b35bba72b28f70bd11'],
  [1024, '42214739f095a406f3fc83deb889744ac00df831c10daa55189b5d121c855af7'],
  [1025, 'd00278ae47eb27b34faecf67b4fe263f82d5412916c1ffd97c8cb7fb814b8444'],
  [31744, '62b6960e1a44bcc1eb1a611a8d6235b6b4b78f32e7abc4fb4c6cdcce94895c47'],
  [102400, 'bc3e3d41a1146b069abffad3c0d44860cf664390afce4d9661f7902e7943e085'],
];

conformanceTest('appendUpload: uploads of the BLAKE3 test vectors, in appends of 7777 bytes, commit to the published hashes', async (t, { dp }) => {
  for (const [length, hex] of BLAKE3_VECTORS) {
    const data = Buffer.from(Array.from({ length }, (_, i) => i % 251));
    const cuts = Array.from({ length: Math.floor(length / 7777) }, (_, i) => (i + 1) * 7777);
    const { committed } = await uploadInPieces(t, dp, data, cuts);
    t.is(committed.primaryDigest.hex, hex, `${length} bytes`);
    t.is(committed.sha256Digest.hex, sha256Hex(data), `${length} bytes`);
  }
});

conformanceTest('appendUpload: a SHA-256-primary upload of 64 MiB in four appends commits to its SHA-256', async (t, { dp }) => {
  const cuts = [16 * MiB, 32 * MiB - 1, 48 * MiB + 1];
  const { committed } = await uploadInPieces(t, dp, LARGE_DATA, cuts, { hints: { primaryAlgorithm: 'sha256' } });
  t.is(committed.primaryDigest.algorithm, 'sha256');
  t.is(committed.primaryDigest.hex, LARGE_SHA256);
}, { kinds: ['fs'], serial: true });

conformanceTest('appendUpload, commitUpload: appends and the commit from other processes make the object one ingest would', async (t, { dp, config }) => {
  const size = 300 * KiB + 5;
  const data = bytes(size, 13);
  const { uploadId } = await dp.createUpload();
  const first = await append(dp, uploadId, data.subarray(0, 100 * KiB), 0);
  const child = (args) => runChild('upload-child.mjs', [JSON.stringify({ config, uploadId, size, seed: 13, ...args })]);
  const second = await child({ op: 'append', offset: first.offset, start: first.offset, chunkBytes: 10_000 });
  t.deepEqual(JSON.parse(second.lines.at(-1)).result.offset, size, second.stderr);
  t.is((await dp.uploadStatus(uploadId)).offset, size, 'this plane sees the other process\'s append');
  const commit = await child({ op: 'commit' });
  const committed = JSON.parse(commit.lines.at(-1)).result;
  t.truthy(committed, commit.lines.join('\n'));
  t.is(committed.sha256Digest.hex, sha256Hex(data));
  t.deepEqual(committed.primaryDigest, (await dp.ingestStream(chunked(data))).primaryDigest);
  await rejects(t, dp.uploadStatus(uploadId), 'NOT_FOUND');
});

conformanceTest('appendUpload: an append while another is under way, here or in another process, is CONFLICT and changes nothing', async (t, { dp, config }) => {
  const { uploadId } = await dp.createUpload();
  await append(dp, uploadId, bytes(1000, 14), 0);
  const parts = [bytes(250, 15), bytes(250, 151), bytes(500, 16)];
  const slow = stalling(parts, 1);
  const first = dp.appendUpload(uploadId, slow.source, { offset: 1000 });
  while (slow.pulled < 1) await sleep(1);
  // Through a daemon the first append's lock is taken once its REQUEST arrives there.
  await sleep(300);
  const error = await rejects(t, append(dp, uploadId, bytes(10, 17), 1000), 'CONFLICT', { message: uploadId });
  t.truthy(error);
  const other = await runChild('upload-child.mjs', [JSON.stringify({ config, op: 'append', uploadId, offset: 1000, size: 10, seed: 17 })]);
  t.like(JSON.parse(other.lines.at(-1)), { ok: false, code: 'CONFLICT' }, other.stderr);
  await rejects(t, dp.commitUpload(uploadId), 'CONFLICT', { what: 'a commit during an append' });
  await rejects(t, dp.abortUpload(uploadId), 'CONFLICT', { what: 'an abort during an append' });
  slow.release();
  t.is((await first).offset, 2000, 'the first append is whole');
  const committed = await dp.commitUpload(uploadId);
  t.is(committed.sha256Digest.hex, sha256Hex(Buffer.concat([bytes(1000, 14), ...parts])));
});

conformanceTest('appendUpload: a wrong offset or an unknown id rejects while the source still waits for its next chunk', async (t, { dp }) => {
  const { uploadId } = await dp.createUpload();
  await append(dp, uploadId, bytes(100, 30), 0);
  const cases = [
    { id: uploadId, offset: 50, code: 'INVALID_RANGE' },
    { id: 'fedcba9876543210fedcba9876543210', offset: 0, code: 'NOT_FOUND' },
  ];
  for (const { id, offset, code } of cases) {
    for (const before of [0, 1]) {
      const waiting = stalling([bytes(10, 31), bytes(10, 32)], before);
      const what = `${code} with ${before} chunk(s) yielded before the source waits`;
      const outcome = dp.appendUpload(id, waiting.source, { offset }).then(
        () => 'resolved',
        (error) => error.code,
      );
      let timer;
      const late = new Promise((resolve) => {
        timer = setTimeout(resolve, 10_000, 'still pending after 10 s');
      });
      t.is(await Promise.race([outcome, late]), code, what);
      clearTimeout(timer);
      waiting.release();
    }
  }
  t.is((await dp.uploadStatus(uploadId)).offset, 100);
});

conformanceTest('appendUpload: a wrong offset is INVALID_RANGE naming the current one; the upload is unchanged', async (t, { dp }) => {
  const { uploadId } = await dp.createUpload();
  await append(dp, uploadId, bytes(1234, 18), 0);
  for (const offset of [0, 1233, 1235]) {
    await rejects(t, append(dp, uploadId, bytes(10, 19), offset), 'INVALID_RANGE', { message: ['1234', String(offset)] });
  }
  t.is((await dp.uploadStatus(uploadId)).offset, 1234);
  await rejects(t, dp.appendUpload(uploadId, chunked(bytes(1, 1))), 'INVALID_ARGUMENT', { message: 'offset' });
});

conformanceTest('Uploads: an unknown or malformed id is NOT_FOUND in every call, and reaches no path', async (t, { dp }) => {
  const ids = ['0123456789abcdef0123456789abcdef', '../../../../etc/passwd', '..', '', 'A'.repeat(32), `${'a'.repeat(31)}/`, 'x'.repeat(10_000)];
  for (const id of ids) {
    const what = JSON.stringify(id.slice(0, 40));
    await rejects(t, dp.uploadStatus(id), 'NOT_FOUND', { what });
    await rejects(t, append(dp, id, bytes(10, 1), 0), 'NOT_FOUND', { what });
    await rejects(t, dp.commitUpload(id), 'NOT_FOUND', { what });
    t.deepEqual(await dp.abortUpload(id), { uploadId: id, aborted: false }, what);
  }
  await rejects(t, dp.uploadStatus(42), 'INVALID_ARGUMENT', { message: '42' });
});

conformanceTest('commitUpload: expectations that fail, given at create or at commit, store nothing and leave the upload as it was', async (t, { dp, stored }) => {
  const data = bytes(5000, 20);
  const { uploadId } = await dp.createUpload({ expect: { sizeBytes: 5000 } });
  const appended = await append(dp, uploadId, data.subarray(0, 3000), 0);
  await rejects(t, dp.commitUpload(uploadId), 'INTEGRITY_MISMATCH', { message: ['5000', '3000'] });
  await append(dp, uploadId, data.subarray(3000), 3000);
  await rejects(t, dp.commitUpload(uploadId, { expect: { sha256: 'f'.repeat(64) } }), 'INTEGRITY_MISMATCH', { message: 'f'.repeat(64) });
  t.deepEqual(await stored(), [], 'nothing stored');
  const status = await dp.uploadStatus(uploadId);
  t.is(status.offset, 5000);
  t.is(status.createdAt, appended.createdAt);
  const committed = await dp.commitUpload(uploadId, { expect: { sha256: sha256Hex(data), sizeBytes: 5000 } });
  t.is(committed.sizeBytes, 5000);
});

conformanceTest('appendUpload: a stream that fails part way leaves the upload at an offset it reports, and appending on from there gives the whole object', async (t, { dp }) => {
  const data = bytes(3 * MiB + 3, 21);
  const { uploadId } = await dp.createUpload();
  async function* failing() {
    yield data.subarray(0, MiB);
    yield data.subarray(MiB, 2 * MiB);
    throw new Error('the source broke');
  }
  await t.throwsAsync(dp.appendUpload(uploadId, failing(), { offset: 0 }), { message: 'the source broke' });
  const { offset } = await dp.uploadStatus(uploadId);
  t.true(offset >= 0 && offset <= 2 * MiB, `offset ${offset}`);
  const controller = new AbortController();
  async function* aborted() {
    yield data.subarray(offset, offset + 1000);
    controller.abort();
    yield data.subarray(offset + 1000, offset + 2000);
  }
  await rejects(t, dp.appendUpload(uploadId, aborted(), { offset, signal: controller.signal }), 'ABORTED');
  const after = (await dp.uploadStatus(uploadId)).offset;
  t.true(after >= offset && after <= offset + 2000, `offset ${after} after an aborted append from ${offset}`);
  await append(dp, uploadId, data.subarray(after), after);
  const committed = await dp.commitUpload(uploadId);
  t.is(committed.sha256Digest.hex, sha256Hex(data));
  t.deepEqual(committed.primaryDigest, (await dp.ingestStream(chunked(data))).primaryDigest);
}, { serial: true });

conformanceTest('abortUpload: removes the upload and its bytes; aborting again says it was absent', async (t, store) => {
  const { dp } = store;
  const { uploadId } = await dp.createUpload();
  await append(dp, uploadId, bytes(6 * MiB, 22), 0);
  t.not((await uploadsHeld(store)).length, 0);
  t.deepEqual(await dp.abortUpload(uploadId), { uploadId, aborted: true });
  t.deepEqual(await uploadsHeld(store), [], 'nothing of the upload is left in the store');
  await rejects(t, dp.uploadStatus(uploadId), 'NOT_FOUND');
  await rejects(t, append(dp, uploadId, bytes(1, 1), 6 * MiB), 'NOT_FOUND');
  t.deepEqual(await dp.abortUpload(uploadId), { uploadId, aborted: false });
  t.deepEqual([...(await collectUploads(dp))], []);
});

async function collectUploads(dp, options) {
  const uploads = [];
  for await (const upload of dp.listUploads(options)) uploads.push(upload);
  return uploads;
}

conformanceTest('listUploads, purgeUploads: uploads are listed by id with their status; a purge removes those last updated before a time, and only those', async (t, { dp, backendId }) => {
  const old = await dp.createUpload();
  const appended = await append(dp, old.uploadId, bytes(100, 23), 0);
  await sleep(20);
  const between = new Date().toISOString();
  await sleep(20);
  const fresh = [await dp.createUpload(), await dp.createUpload()];
  const listed = await collectUploads(dp);
  t.deepEqual(listed.map((u) => u.uploadId), [old, ...fresh].map((u) => u.uploadId).sort());
  t.deepEqual(listed.find((u) => u.uploadId === old.uploadId), appended);
  for (const upload of listed) {
    t.is(upload.backendId, backendId);
    t.regex(upload.uploadId, /^[0-9a-f]{32}$/);
    t.true(Date.parse(upload.updatedAt) >= Date.parse(upload.createdAt));
  }
  t.deepEqual((await collectUploads(dp, { updatedBefore: between })).map((u) => u.uploadId), [old.uploadId]);
  t.deepEqual(await dp.purgeUploads({ updatedBefore: between }), { purged: 1 });
  await rejects(t, dp.uploadStatus(old.uploadId), 'NOT_FOUND');
  t.deepEqual((await collectUploads(dp)).map((u) => u.uploadId), fresh.map((u) => u.uploadId).sort());
  t.deepEqual(await dp.purgeUploads({ updatedBefore: between }), { purged: 0 });
  t.deepEqual(await dp.purgeUploads({ updatedBefore: new Date(Date.now() + 1000).toISOString() }), { purged: 2 });
  t.deepEqual(await collectUploads(dp), []);
  await rejects(t, dp.purgeUploads({}), 'INVALID_ARGUMENT', { message: 'updatedBefore' });
});
