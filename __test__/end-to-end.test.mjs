// The acceptance scenario of SPEC Part 1, using only the SPEC's names: a 100 MiB stream ingested,
// a range of it served, verified, a corruption detected, deleted; the memory of this process stays
// bounded throughout (which is why it runs on the in-process plane only).

import test from 'ava';
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { formatContentAddress, parseContentAddress } from '@artifactstore/data-plane';
import { openPlane } from './fixtures/support.mjs';
import { bytes, collect, liveMemoryUsage, MiB, rejects } from './helpers.mjs';
import { newStore } from './stores.mjs';

const CHUNKS = 100;
const chunk = (i) => bytes(MiB, 1000 + i); // generated on demand: the test never holds the object
const liveRss = () => liveMemoryUsage().rss; // the source's spent chunks do not count

test('100 MiB: ingest, serve a range, verify, detect a corruption, delete', async (t) => {
  const { backend, root } = await newStore(t, 'fs');
  const dp = await openPlane(t, { backends: [backend] });
  const sha256 = createHash('sha256');
  const rssBefore = liveRss();
  let rssPeak = rssBefore;
  async function* source() {
    for (let i = 0; i < CHUNKS; i++) {
      const next = chunk(i);
      sha256.update(next);
      rssPeak = Math.max(rssPeak, liveRss());
      yield next;
    }
  }

  const result = await dp.ingestStream(source(), { hints: { sizeHint: CHUNKS * MiB } });
  t.is(result.sizeBytes, CHUNKS * MiB);
  t.is(result.sha256Digest.hex, sha256.digest('hex'));
  const growth = `RSS grew by ${((rssPeak - rssBefore) / MiB).toFixed(1)} MiB during the ingest`;
  t.log(growth);
  t.true(rssPeak - rssBefore < 64 * MiB, growth);
  const address = formatContentAddress(result.primaryDigest);
  t.deepEqual(parseContentAddress(address), result.primaryDigest);

  // A range across the boundary of chunks 41 and 42.
  const [start, end] = [41 * MiB + MiB - 1000, 42 * MiB + 5000];
  const stream = await dp.serveObject(address, { byteRange: [start, end] });
  t.is(stream.sizeBytes, end - start);
  t.is(stream.totalSizeBytes, CHUNKS * MiB);
  const expected = Buffer.concat([chunk(41), chunk(42)]).subarray(MiB - 1000, MiB + 5000);
  t.true((await collect(stream)).equals(expected), 'the range holds exactly the ingested bytes');

  t.true((await dp.verifyObject(address)).verified);
  const file = await open(join(root, result.receipt.locator), 'r+');
  const byte = Buffer.alloc(1);
  await file.read(byte, 0, 1, 77 * MiB);
  await file.write(Buffer.from([byte[0] ^ 0x01]), 0, 1, 77 * MiB);
  await file.close();
  const corrupted = await dp.verifyObject(address);
  t.false(corrupted.verified);
  t.is(corrupted.actualSizeBytes, CHUNKS * MiB);
  t.truthy(corrupted.mismatch);

  t.true((await dp.deleteObject(address)).deleted);
  t.false((await dp.deleteObject(address)).deleted);
  await rejects(t, dp.serveObject(address), 'NOT_FOUND');
});
