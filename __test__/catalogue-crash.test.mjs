// SPEC Part 2, The catalogue, between processes sharing a store. Deletion that cannot race: an ingest
// in one process and a conditional delete in another. Consistency: what the catalogue keeps beside
// the objects survives a crash at any moment. A child ingests, touches and deletes (conditionally too) with several calls
// at a time and is SIGKILLed at random moments; after each kill the store is reopened and every
// object under objects/ must be found by both of its digests, and no lookup may name an object
// that is not there. (In-process on fs: the crash of a process holding the store.)

import test from 'ava';
import { readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { openDataPlane } from '@artifactstore/data-plane';
import { sleep, startChild, tempDir, walkObjects } from './fixtures/support.mjs';

const KILLS = process.env.DP_SOAK ? 200 : 25;
const between = (lo, hi) => lo + Math.floor(Math.random() * (hi - lo));

/** Every SHA-256 the index names (index/sha256/<aa>/<hex>). */
async function indexedSha256s(root) {
  const found = [];
  const walk = async (dir, depth) => {
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (error) {
      if (error.code === 'ENOENT') return;
      throw error;
    }
    for (const entry of entries) {
      if (depth < 1) await walk(join(dir, entry.name), depth + 1);
      else found.push(`sha256:${entry.name}`);
    }
  };
  await walk(join(root, 'index', 'sha256'), 0);
  return found;
}

test.serial(`Consistency (in-process, fs): ${KILLS} SIGKILLs mid-ingest, mid-touch and mid-delete: every object is found by both digests, no lookup names a missing one`, async (t) => {
  const root = await tempDir(t, 'dp-catalogue-crash-');
  const totals = { kills: 0, objects: 0, indexEntries: 0 };
  for (let kill = 0; kill < KILLS; kill++) {
    const child = startChild('catalogue-loop.mjs', [root]);
    await child.waitFor((line) => line === 'ready');
    await sleep(between(20, 400));
    child.child.kill('SIGKILL');
    await child.closed;
    totals.kills++;

    const dp = await openDataPlane({ backends: [{ id: 'local', kind: 'fs', root, durable: false }] });
    try {
      const { files } = await walkObjects(root, { sizes: false });
      for (const { address } of files) {
        const byPrimary = await dp.statObject(address);
        // The same bytes may also be stored with primary SHA-256: that object is the one its
        // address names; either way the lookup finds an object with this SHA-256.
        const bySha256 = await dp.statObject(byPrimary.sha256Digest);
        t.deepEqual(bySha256.sha256Digest, byPrimary.sha256Digest, `${address} by its SHA-256 after kill ${kill}`);
        if (address.startsWith('blake3:')) {
          const hex = byPrimary.sha256Digest.hex;
          const entry = await readlink(join(root, 'index', 'sha256', hex.slice(0, 2), hex));
          t.is(entry, address, `the index names ${address} after kill ${kill}`);
        }
      }
      t.deepEqual(await dp.findMissing(files.map((f) => f.address)), [], `after kill ${kill}`);
      const listed = [];
      for await (const info of dp.listObjects()) listed.push(`${info.contentAddress.algorithm}:${info.contentAddress.hex}`);
      t.deepEqual(listed, files.map((f) => f.address).sort(), `the listing is what objects/ holds after kill ${kill}`);
      // An index entry names an object that is there, or none (a dangling entry is never followed).
      const indexed = await indexedSha256s(root);
      for (const sha256 of indexed) {
        const info = await dp.statObject(sha256).catch((error) => (error.code === 'NOT_FOUND' ? undefined : Promise.reject(error)));
        if (info) t.true(files.some((f) => f.address === `${info.contentAddress.algorithm}:${info.contentAddress.hex}`));
      }
      totals.objects += files.length;
      totals.indexEntries += indexed.length;
    } finally {
      await dp.close();
    }
  }
  t.log(`${totals.kills} kills; ${totals.objects} object lookups by both digests, ${totals.indexEntries} index entries followed`);
});

test.serial('Deletion that cannot race (in-process, fs, two processes): 1,000 rounds of an ingest in one process and a conditional delete taken just before it in another: the object is always left', async (t) => {
  const root = await tempDir(t, 'dp-race-');
  const child = startChild('ingest-on-cue.mjs', [root]);
  t.teardown(() => child.child.kill('SIGKILL'));
  await child.waitFor((line) => line === 'ready');
  const dp = await openDataPlane({ backends: [{ id: 'local', kind: 'fs', root, durable: false }] });
  let deletedFirst = 0;
  const rounds = 1000;
  for (let round = 0; round < rounds; round++) {
    const stored = await dp.ingestStream([Buffer.from(`race round ${round}`)]);
    const cut = new Date().toISOString();
    const ingested = child.waitFor((line) => line.startsWith(`done ${round} `));
    child.child.stdin.write(`${round}\n`);
    const deletion = await dp.deleteObject(stored.primaryDigest, { unlessTouchedSince: cut });
    await ingested;
    if (deletion.deleted) deletedFirst++;
    const verified = await dp.verifyObject(stored.primaryDigest).catch((error) => error);
    if (verified.verified !== true) t.fail(`round ${round}: the object is gone after ${JSON.stringify(deletion)}: ${verified.message ?? JSON.stringify(verified)}`);
  }
  await dp.close();
  t.log(`${rounds} rounds, 0 lost; the delete went first and the other process's ingest stored the object anew in ${deletedFirst}`);
  t.pass();
});
