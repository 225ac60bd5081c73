// Resource hygiene, SPEC Semantics (serveObject: breaking out releases the file at once; ingestStream:
// a failed ingest leaves nothing behind) and close: breaking out of a serve, aborting an ingest and
// closing the data plane release every file descriptor into the store. Descriptors are read from
// /proc/<pid>/fd of the plane's process: those that point into the store root (objects, or
// anonymous temp files shown as "<root>/tmp/#<inode> (deleted)") must go. Those tests are in the
// conformance suite (fs); the two that count all of this process's descriptors, or its RSS, over
// many planes or cycles are about the in-process plane only. The tests run serially.

import test from 'ava';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { openDataPlane } from '@artifactstore/data-plane';
import { conformanceTest } from './conformance.mjs';
import { openDescriptorCount, openFilesUnder, openPlane, sleep, tempDir } from './fixtures/support.mjs';
import { KiB, liveMemoryUsage, MiB, rejects } from './helpers.mjs';
import { newStore } from './stores.mjs';

const CYCLES = process.env.DP_SOAK ? 100_000 : 10_000;
/** How long to wait for a descriptor that is expected to go (where the SPEC does not say "at once"). */
const RELEASE_GRACE_MS = 100;

/**
 * Polls until no descriptor (of `openFiles`: this process's by default) points into `root`;
 * resolves the time it took, or -1.
 */
async function released(root, openFiles = openFilesUnder, graceMs = RELEASE_GRACE_MS) {
  const started = performance.now();
  while (openFiles(root).length) {
    if (performance.now() - started > graceMs) return -1;
    await sleep(1);
  }
  return performance.now() - started;
}

function pattern(size, seed) {
  const buffer = Buffer.alloc(size);
  let x = seed | 1;
  for (let i = 0; i + 4 <= size; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    buffer.writeInt32LE(x, i);
  }
  return buffer;
}

conformanceTest('serveObject: breaking out of a serve, or aborting it, releases its file descriptor at once', async (t, { root, dp, openFilesUnder }) => {
  const large = await dp.ingestStream([pattern(5 * MiB + 3, 1)]);
  const small = await dp.ingestStream([pattern(4 * KiB, 2)]);
  for (const [what, address, byteRange] of [
    ['a large object', large.primaryDigest, undefined],
    ['a range of a large object', large.primaryDigest, [MiB / 2, 4 * MiB]],
    ['a small object', small.primaryDigest, undefined],
  ]) {
    for (let i = 0; i < 10; i++) {
      const stream = await dp.serveObject(address, { byteRange });
      for await (const chunk of stream) {
        t.true(chunk.length > 0);
        break;
      }
      // The SPEC: breaking out of the loop releases the file handle at once.
      t.deepEqual(openFilesUnder(root), [], `${what}: the descriptor is closed once the loop has ended`);
      await released(root, openFilesUnder); // (so that one slow release does not fail every later check)
    }
    // A fired signal ends the stream, and releases the descriptor the same way.
    for (let i = 0; i < 5; i++) {
      const controller = new AbortController();
      const stream = await dp.serveObject(address, { byteRange, signal: controller.signal });
      await rejects(
        t,
        (async () => {
          for await (const chunk of stream) {
            void chunk;
            controller.abort(new Error('enough'));
          }
          throw new Error('the stream ended without ABORTED');
        })(),
        'ABORTED',
      );
      t.deepEqual(openFilesUnder(root), [], `${what}: the descriptor is closed once the aborted loop has ended`);
      await released(root, openFilesUnder);
    }
  }
}, { kinds: ['fs'], serial: true });

/** Ways an ingest fails after it has written to its temp file; each resolves the rejection. */
function failingIngests(dp) {
  return {
    ABORTED: async () => {
      const controller = new AbortController();
      const source = (async function* () {
        for (let i = 0; ; i++) {
          yield pattern(256 * KiB, i + 10);
          if (i === 3) {
            controller.abort(new Error('stop'));
            await sleep(5);
          }
        }
      })();
      return dp.ingestStream(source, { signal: controller.signal });
    },
    'a thrown error': async () =>
      dp.ingestStream(
        (async function* () {
          yield pattern(300 * KiB, 20);
          yield pattern(300 * KiB, 21);
          yield pattern(300 * KiB, 22);
          throw new Error('the source broke');
        })(),
      ),
    INVALID_ARGUMENT: async () => dp.ingestStream([pattern(300 * KiB, 30), pattern(300 * KiB, 31), 'not bytes']),
    INTEGRITY_MISMATCH: async () => dp.ingestStream([pattern(300 * KiB, 40), pattern(300 * KiB, 41)], { expect: { sizeBytes: 5 } }),
  };
}

conformanceTest('ingestStream: aborting an ingest, a failing source and a mismatch release every descriptor', async (t, { root, dp, openFilesUnder }) => {
  let slowest = 0;
  for (const [what, run] of Object.entries(failingIngests(dp))) {
    for (let i = 0; i < 5; i++) {
      const error = await t.throwsAsync(run());
      if (what !== 'a thrown error') t.is(error?.code, what);
      const took = await released(root, openFilesUnder);
      t.true(took >= 0, `${what}: no descriptor into the store once the ingest has rejected: ${openFilesUnder(root)}`);
      slowest = Math.max(slowest, took);
      t.deepEqual(readdirSync(join(root, 'tmp')), [], `${what}: nothing in tmp/`);
    }
  }
  t.log(`descriptors released at most ${slowest.toFixed(1)} ms after the rejection`);
}, { kinds: ['fs'], serial: true, durable: true });

// ingestStream rejects (ABORTED, or the source's error) only once the ingest thread has let go of
// its temp file.
conformanceTest('ingestStream: an ingest that rejected holds no descriptor any more', async (t, { root, dp, openFilesUnder }) => {
  const failures = failingIngests(dp);
  const held = [];
  for (const what of ['ABORTED', 'a thrown error']) {
    for (let i = 0; i < 10; i++) {
      await t.throwsAsync(failures[what]());
      if (openFilesUnder(root).length) held.push(`${what} #${i}`);
      await released(root, openFilesUnder);
    }
  }
  t.deepEqual(held, [], 'ingests whose temp file was still open when they rejected');
}, { kinds: ['fs'], serial: true, durable: true });

test.serial('close (in-process, fs): closing data planes releases every descriptor', async (t) => {
  const root = await tempDir(t, 'dp-hygiene-');
  const config = { backends: [{ id: 'local', kind: 'fs', root }] };
  // The first open starts process-wide machinery (the runtime); count from after it.
  await (await openDataPlane(config)).close();
  const before = openDescriptorCount();
  for (let i = 0; i < 50; i++) {
    const dp = await openDataPlane(config);
    const { primaryDigest } = await dp.ingestStream([pattern(2 * MiB, i), pattern(KiB, i)]);
    for await (const chunk of await dp.serveObject(primaryDigest)) void chunk;
    await dp.verifyObject(primaryDigest);
    await dp.backendHealth();
    await dp.close();
    await rejects(t, dp.serveObject(primaryDigest), 'CLOSED');
    t.deepEqual(openFilesUnder(root), [], `open/close ${i}: no descriptor into the store after close`);
  }
  const after = openDescriptorCount();
  t.true(after <= before + 2, `50 data planes opened and closed: ${before} -> ${after} descriptors`);
});

// close() ends what is under way: a served stream's file and an in-flight ingest's temp file are
// released, and both reject with CLOSED.
conformanceTest('close: closing a data plane releases the descriptors of streams and ingests still open', async (t, { root, dp, openFilesUnder }) => {
  const { primaryDigest } = await dp.ingestStream([pattern(5 * MiB, 50)]);
  const stream = await dp.serveObject(primaryDigest);
  let closing;
  const ingest = dp.ingestStream(
    (async function* () {
      yield pattern(300 * KiB, 51);
      yield pattern(300 * KiB, 52);
      yield pattern(300 * KiB, 53);
      closing = dp.close();
      await closing;
      yield pattern(300 * KiB, 54);
    })(),
  );
  const ingestOutcome = await ingest.then(() => 'resolved', (error) => error.code);
  await closing;
  t.true((await released(root, openFilesUnder)) >= 0, `descriptors left after close: ${openFilesUnder(root)}`);
  t.is(ingestOutcome, 'CLOSED', 'the ingest in flight rejects with CLOSED');
  const read = await (async () => {
    for await (const chunk of stream) void chunk;
  })().then(() => 'read to its end', (error) => error.code);
  t.is(read, 'CLOSED', 'the open stream rejects with CLOSED');
}, { kinds: ['fs'], serial: true });

test.serial(`ingestStream, serveObject (in-process, fs): ${CYCLES} ingest/serve cycles leave RSS and open descriptors flat`, async (t) => {
  const { root, backend } = await newStore(t, 'fs');
  const dp = await openPlane(t, { backends: [backend] });
  const WARM_UP = CYCLES / 10;
  const samples = [];
  const measure = (cycle) => {
    const { rss, external, arrayBuffers } = liveMemoryUsage();
    samples.push({ cycle, rss, external, arrayBuffers, fds: openDescriptorCount() });
  };
  for (let i = 0; i < CYCLES; i++) {
    if (i === WARM_UP || (i > WARM_UP && i % (CYCLES / 10) === 0)) measure(i);
    const content = pattern(KiB + ((i * 7919) % (15 * KiB)), i + 100);
    // One chunk (one native round trip) or several (a streaming ingest).
    const result = await dp.ingestStream(i % 3 ? [content] : [content.subarray(0, 100), content.subarray(100, 5000), content.subarray(5000)]);
    const parts = [];
    for await (const chunk of await dp.serveObject(result.primaryDigest, i % 5 ? undefined : { byteRange: [1, content.length - 1] })) parts.push(chunk);
    if (Buffer.concat(parts).length !== (i % 5 ? content.length : content.length - 2)) t.fail(`cycle ${i}: served the wrong length`);
    if (i % 10 === 0) {
      if (!(await dp.verifyObject(result.primaryDigest)).verified) t.fail(`cycle ${i}: does not verify`);
      await dp.deleteObject(result.primaryDigest);
    }
  }
  measure(CYCLES);
  const first = samples[0];
  const last = samples.at(-1);
  const MB = (n) => `${(n / MiB).toFixed(1)} MiB`;
  t.log(`after ${WARM_UP} warm-up cycles: RSS ${MB(first.rss)}, ${first.fds} fds; after ${CYCLES}: RSS ${MB(last.rss)}, ${last.fds} fds`);
  t.log(`RSS samples: ${samples.map((s) => MB(s.rss)).join(', ')}; external ${MB(first.external)} -> ${MB(last.external)}`);
  t.true(last.fds <= first.fds + 2, `open descriptors stay flat: ${first.fds} -> ${last.fds}`);
  t.deepEqual(openFilesUnder(root), [], 'no descriptor into the store between calls');
  // Each cycle moves 1-16 KiB through native buffers; leaking them would add ~70 MiB. Sampled
  // after a collection, allocator slack stays well below the 24 MiB allowed.
  t.true(last.rss - first.rss < 24 * MiB, `RSS stays flat: ${MB(first.rss)} -> ${MB(last.rss)}`);
  t.true(last.external - first.external < 16 * MiB, `external memory stays flat: ${MB(first.external)} -> ${MB(last.external)}`);
});
