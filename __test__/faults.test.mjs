// Full disk and write errors, produced for real, not simulated (SPEC Semantics, ingestStream: a
// failed ingest leaves no object and no temporary file behind; Errors: IO). They are about the
// in-process plane: each fault is injected into a process that holds one.
// - ENOSPC: a 2 MiB tmpfs mounted as the store root, in a mount namespace of the child doing the
//   IO (a user namespace too when not root, so no root is needed where user namespaces work; if
//   the mount fails the test fails and says why);
// - EFBIG: a child process under a small RLIMIT_FSIZE, with SIGXFSZ ignored so write() returns
//   EFBIG instead of killing it;
// - failing fsync / fdatasync / unlink: libfiu's fiu-run (package fiu-utils, installed by
//   scripts/install-test-tools.sh).
// Every such ingest rejects with IO, leaves nothing under objects/ or tmp/, and the store keeps
// working. Children also run with the no-O_TMPFILE shim, to cover the named temp files.

import test from 'ava';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { openDataPlane } from '@artifactstore/data-plane';
import { inOwnTmpfs, noTmpfileShim, runChild, sha256Hex, sleep, tempDir, tmpfileModeShim, walkObjects } from './fixtures/support.mjs';
import { chunked, collect, KiB, MiB } from './helpers.mjs';

const faults = { enospc: 0, efbig: 0, fiu: 0 };

/** Asserts that the store holds no object file and nothing in tmp/. */
async function assertNothingLeft(t, root, what) {
  const { files, strays } = await walkObjects(root);
  t.deepEqual([...files.map((f) => f.path), ...strays], [], `${what}: nothing under objects/`);
  t.deepEqual(await readdir(join(root, 'tmp')), [], `${what}: nothing in tmp/`);
}

/** Asserts a small ingest, serve, verify and health all work. */
async function assertStoreWorks(t, dp, what) {
  const content = randomBytes(100 * KiB + 3);
  const result = await dp.ingestStream(chunked(content, 16 * KiB));
  t.is(result.sha256Digest.hex, sha256Hex(content), `${what}: a later ingest works`);
  t.true((await collect(await dp.serveObject(result.primaryDigest))).equals(content), `${what}: and serves its bytes`);
  t.true((await dp.verifyObject(result.primaryDigest)).verified, `${what}: and verifies`);
  const health = await dp.backendHealth();
  t.true(health.healthy, `${what}: health is good again: ${JSON.stringify(health)}`);
  t.true((await dp.deleteObject(result.primaryDigest)).deleted);
  return health;
}

/** Asserts a fault's outcome (as a child reported it) is an IO rejection naming `osError`. */
function assertIo(t, outcome, osError, what) {
  t.true(outcome?.rejected && outcome.dataPlaneError, `${what}: rejects with a DataPlaneError: ${JSON.stringify(outcome)}`);
  t.is(outcome?.code, 'IO', `${what}: ${outcome?.message}`);
  t.regex(outcome?.message ?? '', osError, `${what}: the message names the OS error`);
}

/** Asserts what a child's works() saw (fixtures/enospc-workload.mjs): the store works. */
function assertWorked(t, seen, what) {
  t.is(seen.sha256, seen.expectedSha256, `${what}: a later ingest works`);
  t.true(seen.serves, `${what}: and serves its bytes`);
  t.true(seen.verified, `${what}: and verifies`);
  t.true(seen.health.healthy, `${what}: health is good again: ${JSON.stringify(seen.health)}`);
  t.true(seen.deleted);
}

function assertNothingLeftSeen(t, left, what) {
  t.deepEqual(left.objects, [], `${what}: nothing under objects/`);
  t.deepEqual(left.tmp, [], `${what}: nothing in tmp/`);
}

const NO_SPACE = /No space left on device|os error 28/;

// The tmpfs is mounted in a mount namespace of the workload's own (a user namespace too when not
// root), so the workload reports what it saw and the test judges it.
test.serial('Errors (in-process, fs): ENOSPC on a full tmpfs: IO, nothing left behind, and the store keeps working', async (t) => {
  const root = await tempDir(t, 'dp-enospc-');
  const source = join(await tempDir(t, 'dp-enospc-source-'), 'big');
  await writeFile(source, randomBytes(3 * MiB));
  const child = await runChild('enospc-workload.mjs', [JSON.stringify({ root, source, shim: noTmpfileShim() })], { wrap: inOwnTmpfs(root, '2m') });
  const report = JSON.parse(child.lines.at(-1) ?? 'null');
  if (!report) {
    t.fail(`the workload did not report (a 2 MiB tmpfs at ${root} in a namespace of its own, code ${child.code}): ${child.stderr}`);
    return;
  }
  for (const { durable, attempts, worksAfter, freeBefore, freeAfter, fill, worksAfterDelete } of report.rounds) {
    for (const { what, left, ...outcome } of attempts) {
      const label = `${what} of 3 MiB into 2 MiB (durable: ${durable})`;
      assertIo(t, outcome, NO_SPACE, label);
      faults.enospc++;
      assertNothingLeftSeen(t, left, label);
    }
    assertWorked(t, worksAfter, `after ENOSPC (durable: ${durable})`);
    // An anonymous temp file still held open would keep its blocks: the space must come back.
    t.true(freeAfter >= freeBefore - 64 * KiB, `the failed ingests' space is free again (${freeBefore} -> ${freeAfter})`);

    // Filling up with real objects: the one that does not fit fails, the ones stored stay whole.
    assertIo(t, fill.tooMuch, NO_SPACE, 'the object that does not fit');
    faults.enospc++;
    t.deepEqual(fill.files, [fill.stored], 'only the stored object is there');
    t.true(fill.verified, 'the stored object is intact');
    t.true(fill.serves);
    t.true(fill.deleted);
    assertWorked(t, worksAfterDelete, 'after deleting to make room');
  }
  t.is(report.rounds.length, 2, 'durable false and true');

  // The same in another process with named temp files (no O_TMPFILE): the file is removed too.
  const { outcome, stderr, left } = report.named;
  t.is(outcome.code, 'IO', `named temp file on a full disk: ${JSON.stringify(outcome)} ${stderr}`);
  t.regex(outcome.message ?? '', NO_SPACE);
  faults.enospc++;
  assertNothingLeftSeen(t, left, 'ENOSPC with a named temp file');
  t.log(`${faults.enospc} ENOSPC faults`);
});

/** Runs ingest-once.mjs under RLIMIT_FSIZE = limitKiB, with SIGXFSZ ignored. */
async function underFileSizeLimit(limitKiB, job, preload) {
  const wrap = ['bash', '-c', `trap "" XFSZ; ulimit -f ${limitKiB}; exec "$0" "$@"`];
  const child = await runChild('ingest-once.mjs', [JSON.stringify(job)], { wrap, preload });
  return { outcome: JSON.parse(child.lines.at(-1) ?? 'null'), child };
}

test('Errors (in-process, fs): EFBIG under a small RLIMIT_FSIZE: IO, nothing left behind, and the store keeps working', async (t) => {
  const root = await tempDir(t, 'dp-efbig-');
  const file = join(await tempDir(t, 'dp-efbig-source-'), 'source');
  await writeFile(file, randomBytes(MiB));
  const shim = noTmpfileShim();
  const jobs = [];
  for (const preload of [undefined, shim]) {
    for (const via of ['stream', 'buffer', 'file']) {
      for (const durable of [false, true]) jobs.push({ job: { root, size: MiB, via, file, durable }, preload });
    }
  }
  // Run a few at a time: children share the store, each with its own distinct content.
  for (let i = 0; i < jobs.length; i += 4) {
    const batch = jobs.slice(i, i + 4);
    const results = await Promise.all(batch.map(({ job, preload }) => underFileSizeLimit(512, job, preload)));
    results.forEach(({ outcome, child }, j) => {
      const label = `${batch[j].job.via} of 1 MiB under a 512 KiB limit (durable: ${batch[j].job.durable}, ${batch[j].preload ? 'named' : 'O_TMPFILE'})`;
      t.is(child.signal, null, `${label}: the child was not killed by SIGXFSZ: ${child.stderr}`);
      t.is(outcome?.code, 'IO', `${label}: ${JSON.stringify(outcome)} ${child.stderr}`);
      t.regex(outcome?.message ?? '', /File too large|os error 27/, `${label}: the message names EFBIG`);
      faults.efbig++;
    });
  }
  await assertNothingLeft(t, root, 'after EFBIG');

  // The limit is what failed them: under it, the same child stores its object.
  const { outcome } = await underFileSizeLimit(512, { root, size: 100 * KiB, via: 'stream' }, shim);
  t.true(outcome?.ok, `an ingest under the limit works: ${JSON.stringify(outcome)}`);
  const dp = await openDataPlane({ backends: [{ id: 'local', kind: 'fs', root }] });
  t.true((await dp.verifyObject(outcome.address)).verified);
  t.true((await dp.deleteObject(outcome.address)).deleted);
  await assertStoreWorks(t, dp, 'after EFBIG');
  await dp.close();
  await assertNothingLeft(t, root, 'at the end');
  t.log(`${faults.efbig} EFBIG faults`);
});

function fiuRun(enable, preload) {
  const wrap = ['fiu-run', '-x', '-f', ''];
  for (const spec of enable) wrap.push('-c', spec);
  // fiu-run sets LD_PRELOAD itself. The mode shim goes before its libraries (it mends what their
  // open() drops); the no-O_TMPFILE shim, if any, after them.
  wrap.push('bash', '-c', `LD_PRELOAD="${tmpfileModeShim()} $LD_PRELOAD ${preload ?? ''}" exec "$0" "$@"`);
  return wrap;
}

function requireFiu(t) {
  try {
    execFileSync('sh', ['-c', 'command -v fiu-run'], { stdio: 'pipe' });
    return true;
  } catch {
    t.fail('fiu-run (Debian package fiu-utils) is missing: run scripts/install-test-tools.sh');
    return false;
  }
}

test('Errors (in-process, fs): a failing fdatasync (libfiu) rejects a durable ingest with IO and leaves nothing behind', async (t) => {
  if (!requireFiu(t)) return;
  const root = await tempDir(t, 'dp-fiu-');
  for (const preload of [undefined, noTmpfileShim()]) {
    for (const via of ['stream', 'buffer']) {
      const wrap = fiuRun(['enable name=posix/io/sync/fdatasync,failinfo=5'], preload);
      const child = await runChild('ingest-once.mjs', [JSON.stringify({ root, size: 300 * KiB, via, durable: true })], { wrap });
      const outcome = JSON.parse(child.lines.at(-1) ?? 'null');
      t.is(outcome?.code, 'IO', `${via}, ${preload ? 'named' : 'O_TMPFILE'}: ${JSON.stringify(outcome)} ${child.stderr}`);
      faults.fiu++;
      await assertNothingLeft(t, root, `fdatasync failed (${via})`);
    }
  }
});

// With durable: true the object is linked into objects/ first and its directory is fsynced after;
// when that fsync fails the object must go, or a later ingest would deduplicate against a directory
// entry never made durable.
test('Errors (in-process, fs): a failing directory fsync after the link (libfiu) leaves no object behind', async (t) => {
  if (!requireFiu(t)) return;
  const root = await tempDir(t, 'dp-fiu-');
  const file = join(root, 'source');
  await writeFile(file, randomBytes(200 * KiB));
  // Create the shard directories first (their creation fsyncs too), then fail only the last fsync.
  const dp = await openDataPlane({ backends: [{ id: 'local', kind: 'fs', root, durable: true }] });
  const { primaryDigest } = await dp.ingestFile(file);
  await dp.deleteObject(primaryDigest);
  const wrap = fiuRun(['enable name=posix/io/sync/fsync,failinfo=5']);
  const child = await runChild('ingest-once.mjs', [JSON.stringify({ root, via: 'file', file, durable: true })], { wrap });
  const outcome = JSON.parse(child.lines.at(-1) ?? 'null');
  t.is(outcome?.code, 'IO', `the ingest rejects with IO: ${JSON.stringify(outcome)} ${child.stderr}`);
  await assertNothingLeft(t, root, 'the directory fsync failed');
  await dp.close();
});

test('Errors (in-process, fs): random fsync, fdatasync and unlink failures (libfiu): only IO, acknowledged objects intact, leftovers swept', async (t) => {
  if (!requireFiu(t)) return;
  const shim = noTmpfileShim();
  const enable = ['fsync', 'fdatasync'].map((call) => `enable_random name=posix/io/sync/${call},probability=0.2`);
  enable.push('enable_random name=posix/io/dir/unlink,probability=0.2');
  const totals = {};
  let present = 0;
  for (const preload of [undefined, shim]) {
    const root = await tempDir(t, 'dp-fiu-');
    const child = await runChild('fault-workload.mjs', [JSON.stringify({ root, iterations: 60, durable: true })], { wrap: fiuRun(enable, preload) });
    const report = JSON.parse(child.lines.at(-1) ?? 'null');
    t.truthy(report, `the workload ran to its end: code ${child.code}, ${child.stderr}`);
    if (!report) continue;
    t.deepEqual(report.unexpected, [], 'only the expected error codes, and served bytes are exact');
    for (const [op, outcomes] of Object.entries(report.counts)) {
      for (const [outcome, n] of Object.entries(outcomes)) totals[`${op} ${outcome}`] = (totals[`${op} ${outcome}`] ?? 0) + n;
    }
    t.true((report.counts.ingest?.IO ?? 0) > 0 && (report.counts.ingest?.ok ?? 0) > 0, `faults were injected and some ingests got through: ${JSON.stringify(report.counts)}`);
    faults.fiu += (report.counts.ingest?.IO ?? 0) + (report.counts.delete?.IO ?? 0) + (report.counts.health?.unhealthy ?? 0);

    // Without faults, past the sweep's grace: reopen and check the store.
    await sleep(1100);
    const dp = await openDataPlane({ backends: [{ id: 'local', kind: 'fs', root, durable: true }] });
    const leftovers = await readdir(join(root, 'tmp'));
    t.deepEqual(leftovers.filter((name) => name.endsWith('.ingest')), [], 'the sweep removed the temp files whose unlink failed');
    const { files, strays } = await walkObjects(root);
    t.deepEqual(strays, []);
    for (const file of files) t.true((await dp.verifyObject(file.address)).verified, `${file.path} verifies`);
    const stored = new Set(files.map((f) => f.address));
    for (const address of report.present) t.true(stored.has(address), `${address}, acknowledged and not deleted, is stored`);
    present += report.present.length;
    await assertStoreWorks(t, dp, 'after the faults');
    await dp.close();
  }
  t.log(`outcomes under random faults: ${JSON.stringify(totals)}; ${present} acknowledged objects checked; ${faults.fiu} fiu faults observed in all`);
});

// The probe writes an anonymous file: it has nothing to unlink, so nothing to leave behind.
test('backendHealth (in-process, fs): a health probe leaves nothing in tmp/, even where unlink fails (libfiu)', async (t) => {
  if (!requireFiu(t)) return;
  const root = await tempDir(t, 'dp-fiu-');
  const wrap = fiuRun(['enable name=posix/io/dir/unlink,failinfo=5']);
  const child = await runChild('health-once.mjs', [root], { wrap });
  const status = JSON.parse(child.lines.at(-1) ?? 'null');
  t.true(status?.healthy, `the probe needs no unlink: ${JSON.stringify(status)} ${child.stderr}`);
  t.deepEqual(await readdir(join(root, 'tmp')), [], 'nothing left in tmp/');
});
