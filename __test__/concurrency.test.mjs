// Concurrency, SPEC Semantics (ingestStream: concurrent ingests all succeed; serveObject): 64
// concurrent ingests over 8 distinct contents, mixed with serves, verifies and deletes of the same
// addresses. No crash, no error but the SPEC's (a serve or verify of an object deleted meanwhile
// may reject with NOT_FOUND), every ingest resolves with the right digests, every served byte is
// right, and every object left verifies. A serve that has opened an object streams it whole even if
// the object is deleted meanwhile. These are conformance tests on fs (they look at the files). Two
// are about the in-process plane only: the same mix in a child process with named temp files, and
// small objects on a machine too busy for the binding's quick path to stay quick.

import test from 'ava';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { formatContentAddress } from '@artifactstore/data-plane';
import { conformanceTest } from './conformance.mjs';
import { noTmpfileShim, openPlane, runChild, sha256Hex, tempDir, walkObjects } from './fixtures/support.mjs';
import { prepare, prng, runRound } from './fixtures/concurrent-mix.mjs';
import { collect, MiB, rejects } from './helpers.mjs';

const ROUNDS = process.env.DP_SOAK ? 30 : 3;

/** Every object left verifies, nothing is left in tmp/, and the store is whole for every content. */
async function checkStore(t, dp, root, addresses) {
  const { files, strays } = await walkObjects(root);
  t.deepEqual(strays, [], 'only whole objects under objects/');
  for (const file of files) {
    t.true(addresses.includes(file.address), `${file.address} is one of the 8 contents`);
    const result = await dp.verifyObject(file.address);
    t.true(result.verified, `${file.path} verifies: ${result.mismatch}`);
  }
  t.deepEqual(await readdir(join(root, 'tmp')), [], 'no temporary file is left');
  return files.length;
}

function merge(into, ops) {
  for (const [key, n] of Object.entries(ops)) into[key] = (into[key] ?? 0) + n;
}

conformanceTest('ingestStream: 64 concurrent ingests of 8 contents mixed with serves, verifies and deletes (O_TMPFILE)', async (t, { dp, root }) => {
  const random = prng(20240605);
  const { contents, addresses } = await prepare(dp, random);
  const ops = {};
  let objectsChecked = 0;
  for (let round = 0; round < ROUNDS; round++) {
    const report = await runRound(dp, contents, addresses, random);
    t.deepEqual(report.violations, [], `round ${round}`);
    merge(ops, report.ops);
    objectsChecked += await checkStore(t, dp, root, addresses);
  }
  // The store still takes every content, and serves it exactly.
  for (const [k, content] of contents.entries()) {
    const result = await dp.ingestStream([content]);
    t.is(formatContentAddress(result.primaryDigest), addresses[k]);
    t.true((await collect(await dp.serveObject(addresses[k]))).equals(content));
  }
  objectsChecked += await checkStore(t, dp, root, addresses);
  t.is(ops['ingest ok'] + (ops['ingest ok (deduplicated)'] ?? 0), 64 * ROUNDS, 'every ingest resolved');
  t.true(Object.keys(ops).some((key) => key.startsWith('delete deleted')), 'deletes raced with the rest');
  t.log(`${ROUNDS} rounds; outcomes ${JSON.stringify(ops)}; ${objectsChecked} objects verified afterwards`);
}, { kinds: ['fs'] });

test('ingestStream (in-process, fs): the same mix in a process with named temp files', async (t) => {
  const root = await tempDir(t, 'dp-concurrency-');
  const child = await runChild('concurrent-mix.mjs', [JSON.stringify({ root, rounds: ROUNDS, seed: 77 })], { preload: noTmpfileShim() });
  const report = JSON.parse(child.lines.at(-1) ?? 'null');
  t.truthy(report, `the child ran to its end: code ${child.code}, signal ${child.signal}, ${child.stderr}`);
  if (!report) return;
  t.deepEqual(report.violations, []);
  t.is(report.ops['ingest ok'] + (report.ops['ingest ok (deduplicated)'] ?? 0), 64 * ROUNDS);
  const dp = await openPlane(t, { backends: [{ id: 'local', kind: 'fs', root }] });
  const objects = await checkStore(t, dp, root, report.addresses);
  t.log(`outcomes ${JSON.stringify(report.ops)}; ${objects} objects verified afterwards`);
});

for (const [what, size, byteRange] of [
  ['a large object (read ahead)', 9 * MiB + 11, undefined],
  ['a range of a large object', 9 * MiB + 11, [123, 7 * MiB + 5]],
  ['a small object (read at open)', 4000, undefined],
]) {
  conformanceTest(`serveObject: a serve that has opened ${what} streams it whole although it is deleted meanwhile`, async (t, { dp, root }) => {
    const content = randomBytes(size);
    const { primaryDigest } = await dp.ingestStream([content]);
    const expected = byteRange ? content.subarray(...byteRange) : content;
    const stream = await dp.serveObject(primaryDigest, { byteRange });
    t.is(stream.sizeBytes, expected.length);
    const iterator = stream[Symbol.asyncIterator]();
    const parts = [];
    const first = await iterator.next();
    t.false(first.done);
    parts.push(first.value);

    t.true((await dp.deleteObject(primaryDigest)).deleted, 'the delete goes through');
    const { files } = await walkObjects(root);
    t.deepEqual(files, [], 'the object is gone from objects/');
    await rejects(t, dp.verifyObject(primaryDigest), 'NOT_FOUND');
    await rejects(t, dp.serveObject(primaryDigest), 'NOT_FOUND');
    // Another ingest of other bytes meanwhile does not disturb the open serve either.
    await dp.ingestStream([randomBytes(size)]);

    for (let step = await iterator.next(); !step.done; step = await iterator.next()) parts.push(step.value);
    const served = Buffer.concat(parts);
    t.is(served.length, expected.length, 'the served stream is whole');
    t.is(sha256Hex(served), sha256Hex(expected), 'and its bytes are the object\'s');
  }, { kinds: ['fs'], durable: true });
}

// A small object, alone on its plane, is stored while the calling thread waits in place for a
// bounded time, then takes a promise instead (native ingestBuffer). With every core busy elsewhere
// many waits run out: both ways must give the same, right answers, errors included.
test('ingestStream (in-process, fs): small objects one after another while every core is busy elsewhere: right results, served back, errors as promised', async (t) => {
  const hogs = Array.from({ length: availableParallelism() }, () =>
    spawn(process.execPath, ['-e', 'for (;;);'], { stdio: 'ignore' }),
  );
  t.teardown(() => hogs.forEach((hog) => hog.kill('SIGKILL')));
  const root = await tempDir(t, 'dp-small-busy-');
  // Not durable: the quick path is for stores that put a small object without a flush.
  const dp = await openPlane(t, { backends: [{ id: 'local', kind: 'fs', root, durable: false }] });
  const objects = Array.from({ length: 2000 }, (_, i) => randomBytes(1 + ((i * 37) % (16 * 1024))));
  for (const [i, object] of objects.entries()) {
    if (i % 10 === 9) {
      const wrong = { sizeBytes: object.length + 1 };
      await rejects(t, dp.ingestStream([object], { expect: wrong }), 'INTEGRITY_MISMATCH');
      continue;
    }
    const result = await dp.ingestStream([object]);
    if (result.sha256Digest.hex !== sha256Hex(object) || result.sizeBytes !== object.length) {
      t.fail(`object ${i} (${object.length} bytes): got ${result.sha256Digest.hex}, ${result.sizeBytes} bytes`);
    }
    if (i % 50 === 0) t.true((await collect(await dp.serveObject(result.primaryDigest))).equals(object), `object ${i} serves back`);
  }
  const { files } = await walkObjects(root);
  t.is(files.length, 1800, 'every accepted object is stored, no rejected one');
  t.deepEqual(await readdir(join(root, 'tmp')), [], 'no temporary file is left');
});
