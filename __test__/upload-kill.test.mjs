// SPEC Part 2, Resumable uploads: an upload survives the process appending to it. A child process
// appends to one upload and is killed with SIGKILL at a random moment, 20 times over, each time
// while an append is under way; after each kill uploadStatus reports an offset that never goes
// back, the next child appends from it, and the object committed at the end is exactly the bytes.
// On fs and S3, each child with its own in-process data plane.

import test from 'ava';
import { openDataPlane } from '@artifactstore/data-plane';
import { sha256Hex, sleep, startChild } from './fixtures/support.mjs';
import { bytes, chunked, KiB, MiB } from './helpers.mjs';
import { BACKEND_KINDS, newStore } from './stores.mjs';

const KILLS = 20;
const SIZE = 32 * MiB;
const SEED = 41;

for (const kind of BACKEND_KINDS) {
  test.serial(`appendUpload: ${KILLS} SIGKILLs of the appending process leave an offset the next append goes on from, and the exact object [${kind}]`, async (t) => {
    const store = await newStore(t, kind);
    const config = { backends: [store.backend] };
    const dp = await openDataPlane(config);
    t.teardown(() => dp.close());
    const data = bytes(SIZE, SEED);
    const { uploadId } = await dp.createUpload();
    const offsets = [];
    let previous = 0;
    for (let kill = 0; kill < KILLS; kill++) {
      const args = { config, op: 'loop', uploadId, size: SIZE, seed: SEED, appendBytes: MiB, chunkBytes: 128 * KiB, paceMs: 10 };
      const child = startChild('upload-child.mjs', [JSON.stringify(args)]);
      await child.waitFor((line) => line.startsWith('appending '));
      await sleep(Math.floor(Math.random() * 200));
      child.child.kill('SIGKILL');
      const { signal } = await child.closed;
      t.is(signal, 'SIGKILL', `kill ${kill + 1}: the child was still appending (${child.lines.at(-1)})`);
      const { offset } = await dp.uploadStatus(uploadId);
      t.true(offset >= previous && offset <= SIZE, `kill ${kill + 1}: offset ${offset} after ${previous}`);
      offsets.push(offset);
      previous = offset;
    }
    t.log(`${KILLS} kills; offsets after each: ${offsets.join(' ')}`);
    await dp.appendUpload(uploadId, chunked(data.subarray(previous), MiB), { offset: previous });
    const committed = await dp.commitUpload(uploadId);
    t.is(committed.sizeBytes, SIZE);
    t.is(committed.sha256Digest.hex, sha256Hex(data));
    t.deepEqual(committed.primaryDigest, (await dp.ingestStream(chunked(data, MiB))).primaryDigest);
  });
}
