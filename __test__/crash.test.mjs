// Crash safety (SPEC Semantics, ingestStream: the object becomes visible only after all bytes are
// written and flushed; a failed ingest leaves no object and no temporary file): child processes
// ingest continuously and are SIGKILLed at random moments; after every kill the parent reopens the
// store (which sweeps what dead ingests left) and checks that every object under objects/ verifies,
// that no temporary file of a dead ingest remains, and that every ingest a child saw resolve is
// stored whole. Half of the children run with a shim that makes O_TMPFILE unsupported, so the
// named, flock'ed temporary files in <root>/tmp (the ones a crash can leave behind) are exercised,
// not only anonymous ones.
//
// DP_SOAK=1 multiplies the number of kills by ten.

import test from 'ava';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { openDataPlane } from '@artifactstore/data-plane';
import { descriptorsUnder, noTmpfileShim, sleep, startChild, tempDir, walkObjects } from './fixtures/support.mjs';

const KILLS = process.env.DP_SOAK ? 400 : 40;

const newStore = (t) => tempDir(t, 'dp-crash-');
const openStore = (root) => openDataPlane({ backends: [{ id: 'local', kind: 'fs', root, durable: true }] });
const between = (lo, hi) => lo + Math.floor(Math.random() * (hi - lo));

/** The pid in a named temp file's name ("<pid>-<seq>-<nanos>.ingest", or ".creating" for a moment). */
function ownerPid(t, name) {
  const match = /^(\d+)-\d+-[0-9a-f]+\.(ingest|creating)$/.exec(name);
  t.truthy(match, `unexpected entry in tmp/: ${name}`);
  return match ? Number(match[1]) : -1;
}

test.serial(`ingestStream (in-process, fs): ${KILLS} SIGKILLs mid-ingest: objects verify, acknowledged ingests survive, dead temp files are swept`, async (t) => {
  const shim = noTmpfileShim();
  const root = await newStore(t);
  const live = new Map(); // pid -> child handle
  const absorbed = new Map(); // handle -> lines already taken
  const reported = new Map(); // address -> { durable, size }
  const verified = new Map(); // address -> size, verified
  const stats = { kills: 0, reopens: 0, objectsVerified: 0, reportedDurable: 0, reportedNonDurable: 0 };

  const absorb = (handle) => {
    const from = absorbed.get(handle) ?? 0;
    for (const line of handle.lines.slice(from)) {
      if (line === 'ready') continue;
      const { address, durable, size } = JSON.parse(line);
      if (!reported.has(address)) stats[durable ? 'reportedDurable' : 'reportedNonDurable']++;
      const previous = reported.get(address);
      reported.set(address, { durable: durable || previous?.durable === true, size });
    }
    absorbed.set(handle, handle.lines.length);
  };

  const check = async (label) => {
    for (const handle of absorbed.keys()) absorb(handle);
    const acknowledged = [...reported]; // before walking: each was linked before it was reported
    const reopenedAt = Date.now();
    const dp = await openStore(root);
    stats.reopens++;
    try {
      for (const name of await readdir(join(root, 'tmp'))) {
        const pid = ownerPid(t, name);
        if (live.has(pid)) continue;
        const info = await stat(join(root, 'tmp', name)).catch(() => null);
        if (!info) continue;
        const age = reopenedAt - info.mtimeMs;
        t.fail(`${label}: ${name} of dead process ${pid} (last written ${age.toFixed(0)} ms before the reopen) survived the sweep`);
      }
      // Objects never change once linked: each is verified once, when first seen (the final pass
      // checks that none changed size since).
      const { files, strays } = await walkObjects(root, { sizes: false });
      t.deepEqual(strays, [], `${label}: only whole objects live under objects/`);
      const present = new Map();
      for (const file of files) {
        if (!verified.has(file.address)) {
          const result = await dp.verifyObject(file.address);
          stats.objectsVerified++;
          if (!result.verified) t.fail(`${label}: ${file.path} does not verify: ${JSON.stringify(result)}`);
          verified.set(file.address, result.actualSizeBytes);
        }
        present.set(file.address, verified.get(file.address));
      }
      for (const [address, { durable, size }] of acknowledged) {
        if (present.get(address) !== size) {
          const found = present.has(address) ? `${present.get(address)} bytes` : 'missing';
          t.fail(`${label}: ${address} (${size} bytes) resolved with durable: ${durable}, but after the kill it is ${found}`);
        }
      }
    } finally {
      await dp.close();
    }
  };

  const kill = async (handle, label) => {
    handle.child.kill('SIGKILL');
    const { code, signal } = await handle.closed;
    live.delete(handle.child.pid);
    if (signal !== 'SIGKILL') {
      t.fail(`${label}: the child ended by itself (code ${code}, signal ${signal}) before the kill: ${handle.stderr}`);
    }
    stats.kills++;
    // The others are stopped (not killed) while the parent checks: still live, holding their
    // temp files and locks mid-ingest, but not adding objects faster than they can be verified.
    const others = [...live.values()];
    for (const other of others) other.child.kill('SIGSTOP');
    try {
      await check(label);
    } finally {
      for (const other of others) other.child.kill('SIGCONT');
    }
  };

  // Two children share the store at all times; one at a time is killed at a random moment and
  // replaced at once, so the reopen after each kill happens while another process is mid-ingest
  // (its temp files must be spared) and while a new one starts up.
  let spawned = 0;
  const spawn = () => {
    // Every other child has named temp files; the rest use O_TMPFILE.
    const preload = spawned++ % 2 ? undefined : shim;
    const handle = Object.assign(startChild('ingest-loop.mjs', [root], { preload }), { preload });
    live.set(handle.child.pid, handle);
    absorbed.set(handle, 0);
    handle.ready = handle.waitFor((line) => line === 'ready');
    handle.ready.catch(() => {}); // a child that ends early is reported by kill()
    return handle;
  };
  try {
    spawn();
    spawn();
    while (stats.kills < KILLS) {
      const victims = [...live.values()];
      const victim = victims[between(0, victims.length)];
      await victim.ready;
      await sleep(between(20, 250));
      const label = `kill ${stats.kills + 1} (child ${spawned}, ${victim.preload ? 'named' : 'O_TMPFILE'})`;
      const killing = kill(victim, label);
      spawn();
      await killing;
    }
    for (const handle of [...live.values()]) {
      await handle.ready;
      await kill(handle, `kill ${stats.kills + 1} (the last ones)`);
    }
  } finally {
    for (const handle of live.values()) handle.child.kill('SIGKILL');
    await Promise.all([...live.values()].map((handle) => handle.closed));
    live.clear();
  }

  await check('final reopen');
  t.deepEqual(await readdir(join(root, 'tmp')), [], 'nothing of a dead ingest remains in tmp/');

  // A last pass over every object: none changed since it was verified; a sample is re-verified.
  const { files } = await walkObjects(root);
  for (const file of files) {
    if (file.size !== verified.get(file.address)) t.fail(`${file.path} is ${file.size} bytes, verified at ${verified.get(file.address)}`);
  }
  const dp = await openStore(root);
  for (const file of files.filter((_, i) => i % Math.ceil(files.length / 100) === 0)) {
    t.true((await dp.verifyObject(file.address)).verified, `${file.path} still verifies`);
  }
  await dp.close();

  t.true(stats.kills >= KILLS);
  t.true(stats.reportedDurable > 0 && stats.reportedNonDurable > 0, 'both kinds of ingest resolved');
  t.log(
    `${stats.kills} processes killed, ${stats.reopens} reopens, ${stats.objectsVerified} objects verified ` +
      `(${files.length} at the end), ${reported.size} acknowledged ingests checked after every kill ` +
      `(${stats.reportedDurable} durable, ${stats.reportedNonDurable} not)`,
  );
});

/** Starts the paused-ingest child; returns it, once paused with its temp file open, and tmp/. */
async function pausedIngest(root, preload) {
  const handle = startChild('slow-ingest.mjs', [root, String(3 * 1024 * 1024 + 17)], { preload });
  await handle.waitFor((line) => line === 'paused');
  // The ingest's thread opens its temp file when it starts: wait until the child holds it.
  const holdsTemp = () => descriptorsUnder(join(root, 'tmp'), handle.child.pid).length > 0;
  for (let waited = 0; !holdsTemp() && waited < 5000; waited += 10) await sleep(10);
  return { handle, tmp: await readdir(join(root, 'tmp')), holdsTemp: holdsTemp() };
}

for (const named of [true, false]) {
  test(`ingestStream (in-process, fs): opening the store does not disturb a live ingest in another process (${named ? 'named' : 'O_TMPFILE'} temp file)`, async (t) => {
    const root = await newStore(t);
    const { handle, tmp, holdsTemp } = await pausedIngest(root, named ? noTmpfileShim() : undefined);
    t.true(holdsTemp, 'the paused child holds its temp file open');
    if (named) {
      t.is(tmp.length, 1, `the paused ingest has its named temp file in tmp/: ${tmp}`);
      t.is(ownerPid(t, tmp[0]), handle.child.pid);
    } else {
      t.deepEqual(tmp, [], 'an O_TMPFILE ingest has no name in tmp/');
    }
    // Only the live process's lock protects the file.
    const dp = await openStore(root);
    t.deepEqual(await readdir(join(root, 'tmp')), tmp, 'the sweep spared the live ingest');
    handle.child.stdin.write('go\n');
    const outcome = JSON.parse(await handle.waitFor((line) => line.startsWith('{')));
    t.falsy(outcome.error, `the live ingest completed: ${outcome.message}`);
    t.is(outcome.sha256, outcome.yieldedSha256, 'the stored digest is that of the bytes the child yielded');
    t.is(outcome.size, 3 * 1024 * 1024 + 17);
    const verify = await dp.verifyObject(outcome.address);
    t.true(verify.verified);
    t.is(verify.actualSha256Digest.hex, outcome.yieldedSha256);
    const served = createHash('sha256');
    for await (const chunk of await dp.serveObject(outcome.address)) served.update(chunk);
    t.is(served.digest('hex'), outcome.yieldedSha256, 'the parent serves exactly the bytes the child ingested');
    await handle.closed;
    t.deepEqual(await readdir(join(root, 'tmp')), [], 'the completed ingest left nothing in tmp/');
    await dp.close();
  });
}

// A dead ingest's file was written to right before the kill: the sweep must take it at once.
test('ingestStream (in-process, fs): a reopen right after a crash sweeps the dead ingest\'s named temp file', async (t) => {
  const root = await newStore(t);
  const { handle, tmp } = await pausedIngest(root, noTmpfileShim());
  handle.child.kill('SIGKILL');
  await handle.closed;
  t.is(tmp.length, 1, `the paused ingest has one named temp file: ${tmp}`);
  const dp = await openStore(root);
  t.deepEqual(await readdir(join(root, 'tmp')), [], 'the dead ingest\'s temp file is gone after the reopen');
  await dp.close();
});
