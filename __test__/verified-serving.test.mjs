// SPEC Part 2, Verified serving: serveObject checks every 16 KiB group against the object's tree
// (or, for an object of one group, against its address) before any byte of it is yielded. Every
// rule runs on every plane and backend (conformance.mjs).

import { conformanceTest } from './conformance.mjs';
import { bytes, chunked, collect, KiB, MiB, rejects } from './helpers.mjs';

const GROUP = 16 * KiB;

async function put(dp, data, hints) {
  return dp.ingestStream(chunked(data, 100 * KiB), hints ? { hints } : undefined);
}

/** `trees/<alg>/<aa>/<hex>.obao4`, beside the object a receipt's locator names. */
function treeLocator(locator) {
  const [, prefix, algorithm, hex] = locator.match(/^(.*)objects\/([^/]+)\/[0-9a-f]{2}\/[0-9a-f]{2}\/([0-9a-f]{64})$/);
  return `${prefix}trees/${algorithm}/${hex.slice(0, 2)}/${hex}.obao4`;
}

/** What a serve yields before it ends, and how it ends: the bytes, and the error (if any). */
async function served(dp, address, options) {
  const parts = [];
  try {
    for await (const chunk of await dp.serveObject(address, options)) parts.push(Buffer.from(chunk));
    return { bytes: Buffer.concat(parts) };
  } catch (error) {
    return { bytes: Buffer.concat(parts), error };
  }
}

function flip(data, at) {
  const wrong = Buffer.from(data);
  wrong[at] ^= 0x5a;
  return wrong;
}

const groupStart = (at) => at - (at % GROUP);

conformanceTest('serveObject verify: every range edge serves exactly its bytes, checked or not', async (t, { dp }) => {
  for (const [size, hints] of [[100], [GROUP], [GROUP + 1], [5 * GROUP + 7], [5 * GROUP + 7, { primaryAlgorithm: 'sha256' }], [2 * MiB + 3]]) {
    const data = bytes(size, size);
    const stored = await put(dp, data, hints);
    const edges = [
      [0, 0], [0, 1], [0, size], [size - 1, size], [size, size], [Math.floor(size / 3), Math.floor(size / 2) + 1],
      [GROUP - 1, GROUP + 1], [GROUP, 2 * GROUP], [GROUP + 1, 2 * GROUP - 1], [2 * GROUP - 1, 3 * GROUP + 1],
    ].filter(([start, end]) => end <= size && start <= end);
    for (const [start, end] of edges) {
      for (const verify of [true, false, undefined]) {
        const out = await served(dp, stored.primaryDigest, { byteRange: [start, end], verify });
        t.is(out.error, undefined, `${size} bytes [${start}, ${end}) verify ${verify}`);
        t.true(out.bytes.equals(data.subarray(start, end)), `${size} bytes [${start}, ${end}) verify ${verify}`);
      }
    }
    t.true((await served(dp, stored.sha256Digest)).bytes.equals(data), `${size} bytes by SHA-256`);
  }
});

conformanceTest('serveObject verify: a flipped byte in the first, a middle or the last group ends the serve before any byte of its group', async (t, store) => {
  const { dp } = store;
  const size = 2 * MiB + 100; // 129 groups, the last of 100 bytes; read in more than one chunk
  for (const [seed, at] of [[1, 5], [2, MiB + GROUP + 9], [3, size - 2]]) {
    const data = bytes(size, 400 + seed);
    const stored = await put(dp, data);
    await store.replace(stored.receipt.locator, flip(data, at));
    const bad = groupStart(at);
    const whole = await served(dp, stored.primaryDigest);
    t.is(whole.error?.code, 'INTEGRITY_MISMATCH', `flip at ${at}`);
    t.true(whole.error?.message.includes(`[${bad}, ${Math.min(bad + GROUP, size)})`), whole.error?.message);
    t.true(whole.bytes.equals(data.subarray(0, bad)), `flip at ${at}: exactly the groups before it (${whole.bytes.length} bytes)`);
    // Ranges that miss the group serve exactly.
    for (const [start, end] of [[0, bad], [bad + GROUP, size]].filter(([s, e]) => s < e)) {
      const out = await served(dp, stored.primaryDigest, { byteRange: [start, Math.min(end, size)] });
      t.is(out.error, undefined, `flip at ${at}, range [${start}, ${end})`);
      t.true(out.bytes.equals(data.subarray(start, end)));
    }
    // A range that covers it yields the bytes before its group, then fails.
    const from = Math.max(0, bad - 3000);
    const covering = await served(dp, stored.primaryDigest, { byteRange: [from, Math.min(size, at + 1)] });
    t.is(covering.error?.code, 'INTEGRITY_MISMATCH');
    t.true(covering.bytes.equals(data.subarray(from, bad)));
    const inside = await served(dp, stored.primaryDigest, { byteRange: [at, at + 1] });
    t.is(inside.error?.code, 'INTEGRITY_MISMATCH');
    t.is(inside.bytes.length, 0);
    // Without the check the wrong bytes go out.
    const unchecked = await served(dp, stored.primaryDigest, { verify: false });
    t.is(unchecked.error, undefined);
    t.true(unchecked.bytes.equals(flip(data, at)));
  }
  // An object of one group is checked against its address, whatever its primary.
  for (const hints of [undefined, { primaryAlgorithm: 'sha256' }]) {
    const data = bytes(5000, 77);
    const small = await put(dp, data, hints);
    await store.replace(small.receipt.locator, flip(data, 4999));
    const out = await served(dp, small.primaryDigest, { byteRange: [0, 10] });
    t.is(out.error?.code, 'INTEGRITY_MISMATCH');
    t.is(out.bytes.length, 0);
  }
});

conformanceTest('serveObject verify: a damaged, missing or wrong-length tree is rebuilt from the object, checked whole first', async (t, store) => {
  const { dp } = store;
  for (const hints of [undefined, { primaryAlgorithm: 'sha256' }]) {
    const data = bytes(40 * GROUP + 5, 91);
    const stored = await put(dp, data, hints);
    const tree = treeLocator(stored.receipt.locator);
    const original = await store.read(tree);
    t.truthy(original, 'an object of more than one group has a tree');
    t.is(original.length, (hints ? 32 : 0) + 40 * 64, 'the tree is 64 bytes per parent (0.39%), behind the BLAKE3 root for a SHA-256 primary');
    const damages = {
      'a flipped pair': flip(original, original.length - 70),
      'a flipped root': hints ? flip(original, 3) : flip(original, 0),
      'a truncated tree': original.subarray(0, original.length - 64),
      'a missing tree': undefined,
    };
    for (const [what, damaged] of Object.entries(damages)) {
      if (damaged) await store.replace(tree, damaged);
      else await store.drop(tree);
      const out = await served(dp, stored.primaryDigest, { byteRange: [GROUP + 1, 38 * GROUP] });
      t.is(out.error, undefined, what);
      t.true(out.bytes.equals(data.subarray(GROUP + 1, 38 * GROUP)), what);
      t.true((await store.read(tree))?.equals(original), `${what}: the tree is written again`);
    }
    // A missing tree and a corrupt object: nothing is served.
    await store.drop(tree);
    await store.replace(stored.receipt.locator, flip(data, 30 * GROUP));
    const out = await served(dp, stored.primaryDigest);
    t.is(out.error?.code, 'INTEGRITY_MISMATCH');
    t.is(out.bytes.length, 0);
    t.is(await store.read(tree), undefined, 'no tree is written for bytes that do not match');
  }
});

conformanceTest('serveObject verify: a truncated or extended object', async (t, store) => {
  const { dp } = store;
  const size = 10 * GROUP + 500;
  const cases = [
    ['shorter by a group', (d) => d.subarray(0, size - GROUP), 0],
    ['longer by a group', (d) => Buffer.concat([d, Buffer.alloc(GROUP)]), 0],
    // The same number of groups: each group before the last is checked and served.
    ['longer by a byte', (d) => Buffer.concat([d, Buffer.from([1])]), 10 * GROUP],
    ['shorter by a byte', (d) => d.subarray(0, size - 1), 10 * GROUP],
  ];
  for (const [i, [what, change, servedBefore]] of cases.entries()) {
    const data = bytes(size, 600 + i);
    const stored = await put(dp, data);
    await store.replace(stored.receipt.locator, change(data));
    const out = await served(dp, stored.primaryDigest);
    t.is(out.error?.code, 'INTEGRITY_MISMATCH', what);
    t.true(out.bytes.equals(data.subarray(0, servedBefore)), `${what}: ${out.bytes.length} bytes before the error`);
  }
});

conformanceTest('trees are removed with their object and quarantined with it; verify must be a boolean', async (t, store) => {
  const { dp } = store;
  const data = bytes(3 * GROUP, 700);
  const stored = await put(dp, data);
  const tree = treeLocator(stored.receipt.locator);
  t.truthy(await store.read(tree));
  t.is(await store.read(treeLocator(stored.receipt.locator.replace(/[0-9a-f]{64}$/, 'e'.repeat(64)))), undefined);
  await dp.deleteObject(stored.primaryDigest);
  t.is(await store.read(tree), undefined, 'deleted with its object');
  const again = await put(dp, data);
  t.truthy(await store.read(tree), 'written again with its object');
  await store.replace(again.receipt.locator, flip(data, 7));
  const report = await dp.scrub({ quarantine: true });
  t.is(report.quarantined, 1);
  t.is(await store.read(tree), undefined, 'moved out with its object');
  const quarantined = tree.replace(/trees\//, 'quarantine/trees/');
  t.truthy(await store.read(quarantined), 'beside its object in quarantine/');
  await rejects(t, dp.serveObject(stored.primaryDigest, { verify: 'yes' }), 'INVALID_ARGUMENT', { message: 'options.verify' });
  // An object of one group needs no tree.
  const small = await put(dp, bytes(GROUP, 701));
  t.is(await store.read(treeLocator(small.receipt.locator)), undefined);
});

conformanceTest('a committed upload has the tree its appends kept: the one an ingest of the same bytes writes', async (t, store) => {
  const { dp } = store;
  for (const hints of [undefined, { primaryAlgorithm: 'sha256' }]) {
    const data = bytes(6 * MiB + 3 * GROUP + 11, hints ? 801 : 800);
    const { uploadId } = await dp.createUpload(hints ? { hints } : undefined);
    const cuts = [0, 1, GROUP + 1, 5 * MiB, 5 * MiB + 7, data.length];
    for (let i = 1; i < cuts.length; i++) {
      await dp.appendUpload(uploadId, chunked(data.subarray(cuts[i - 1], cuts[i]), 100 * KiB), { offset: cuts[i - 1] });
    }
    const committed = await dp.commitUpload(uploadId);
    const tree = treeLocator(committed.receipt.locator);
    const kept = await store.read(tree);
    t.truthy(kept, 'the commit stored a tree');
    const out = await served(dp, committed.primaryDigest, { byteRange: [3 * MiB, 4 * MiB + 5] });
    t.is(out.error, undefined);
    t.true(out.bytes.equals(data.subarray(3 * MiB, 4 * MiB + 5)));
    await dp.deleteObject(committed.primaryDigest);
    await put(dp, data, hints);
    t.true((await store.read(tree)).equals(kept), 'the same tree as an ingest writes');
  }
});
