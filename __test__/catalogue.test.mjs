// SPEC Part 2, The catalogue: statObject, touchObject, findMissing, listObjects, deleteObject with
// unlessTouchedSince, scrub, and either digest in every operation that takes an address. Every
// rule runs on every plane and backend (conformance.mjs).

import { setTimeout as sleep } from 'node:timers/promises';
import { formatContentAddress } from '@artifactstore/data-plane';
import { conformanceTest } from './conformance.mjs';
import { sha256Hex } from './fixtures/support.mjs';
import { bytes, chunked, collect, KiB, MiB, rejects } from './helpers.mjs';

const absent = (algorithm, fill = 'e') => ({ algorithm, hex: fill.repeat(64) });
const text = formatContentAddress;

async function put(dp, data, hints) {
  return dp.ingestStream(chunked(data), hints ? { hints } : undefined);
}

conformanceTest('statObject: an object is found by either digest, named by its primary address, without reading it', async (t, { dp, backendId }) => {
  const data = bytes(3000, 1);
  const stored = await put(dp, data);
  const byBlake3 = await dp.statObject(stored.primaryDigest);
  const bySha256 = await dp.statObject(`sha256:${sha256Hex(data)}`);
  t.deepEqual(bySha256, byBlake3);
  t.deepEqual(byBlake3.contentAddress, stored.primaryDigest);
  t.deepEqual(byBlake3.sha256Digest, stored.sha256Digest);
  t.is(byBlake3.sizeBytes, 3000);
  t.is(byBlake3.backendId, backendId);
  t.is(byBlake3.locator, stored.receipt.locator);
  t.is(byBlake3.storedAt, stored.receipt.storedAt);
  t.true(Date.parse(byBlake3.touchedAt) >= Date.parse(byBlake3.storedAt));
  // An object whose primary is SHA-256 is found by that address, as before.
  const shaPrimary = await put(dp, bytes(100, 2), { primaryAlgorithm: 'sha256' });
  const info = await dp.statObject(shaPrimary.primaryDigest);
  t.deepEqual(info.contentAddress, shaPrimary.primaryDigest);
  t.deepEqual(info.sha256Digest, shaPrimary.primaryDigest);
  // Serve, verify and delete take the SHA-256 too.
  t.deepEqual(await collect(await dp.serveObject(stored.sha256Digest)), data);
  t.true((await dp.verifyObject(stored.sha256Digest)).verified);
  const deleted = await dp.deleteObject(text(stored.sha256Digest));
  t.deepEqual(deleted.contentAddress, stored.primaryDigest);
  t.true(deleted.deleted);
  await rejects(t, dp.statObject(stored.primaryDigest), 'NOT_FOUND');
  await rejects(t, dp.statObject(stored.sha256Digest), 'NOT_FOUND');
});

conformanceTest('statObject: a SHA-256 names the object stored under it, once there is one, before a BLAKE3 object of the same bytes', async (t, { dp }) => {
  const data = bytes(1500, 19);
  const blake3 = await put(dp, data);
  t.deepEqual((await dp.statObject(blake3.sha256Digest)).contentAddress, blake3.primaryDigest, 'only the BLAKE3 object so far');
  const sha = await put(dp, data, { primaryAlgorithm: 'sha256' });
  t.false(sha.receipt.deduplicated);
  for (const lookup of [() => dp.statObject(sha.primaryDigest), () => dp.verifyObject(sha.primaryDigest)]) {
    t.deepEqual((await lookup()).contentAddress, sha.primaryDigest);
  }
  t.deepEqual((await dp.serveObject(sha.primaryDigest)).contentAddress, sha.primaryDigest);
  await dp.deleteObject(sha.primaryDigest);
  t.deepEqual((await dp.statObject(sha.primaryDigest)).contentAddress, blake3.primaryDigest, 'the BLAKE3 object again');
});

conformanceTest('statObject: an object deleted and stored again is the new one, by either digest', async (t, { dp }) => {
  const data = bytes(2000, 9);
  const first = await put(dp, data);
  t.is((await dp.statObject(first.primaryDigest)).storedAt, first.receipt.storedAt);
  await dp.deleteObject(first.primaryDigest);
  await sleep(5); // a later millisecond for the second store time
  const second = await put(dp, data);
  t.false(second.receipt.deduplicated);
  t.true(Date.parse(second.receipt.storedAt) > Date.parse(first.receipt.storedAt));
  for (const address of [second.primaryDigest, second.sha256Digest]) {
    const info = await dp.statObject(address);
    t.is(info.storedAt, second.receipt.storedAt);
    t.is(info.sizeBytes, 2000);
  }
});

conformanceTest('statObject: what another plane over the same store deletes, or deletes and stores again, is seen at once', async (t, { dp, config, open }) => {
  const other = await open(config); // through the daemon: another daemon process
  const data = bytes(2500, 23);
  const first = await put(dp, data);
  for (let i = 0; i < 3; i++) {
    await dp.statObject(first.primaryDigest); // looked at lately: remembered, and in the kernel's caches
    await dp.statObject(first.sha256Digest);
  }
  await other.deleteObject(first.primaryDigest);
  await rejects(t, dp.statObject(first.primaryDigest), 'NOT_FOUND');
  await rejects(t, dp.statObject(first.sha256Digest), 'NOT_FOUND');
  await sleep(5); // a later millisecond for the second store time
  const second = await put(other, data);
  t.false(second.receipt.deduplicated);
  for (const address of [first.primaryDigest, first.sha256Digest]) {
    t.is((await dp.statObject(address)).storedAt, second.receipt.storedAt);
  }
});

conformanceTest('statObject, touchObject: an absent object is NOT_FOUND naming it; a malformed address INVALID_ADDRESS', async (t, { dp }) => {
  for (const address of [absent('blake3'), absent('sha256')]) {
    const error = await rejects(t, dp.statObject(address), 'NOT_FOUND');
    t.true(error.message.includes('e'.repeat(64)), error.message);
    await rejects(t, dp.touchObject(text(address)), 'NOT_FOUND');
  }
  for (const bad of ['blake3:xyz', 42, { algorithm: 'md5', hex: 'a'.repeat(64) }]) {
    await rejects(t, dp.statObject(bad), 'INVALID_ADDRESS');
    await rejects(t, dp.touchObject(bad), 'INVALID_ADDRESS');
  }
});

conformanceTest('Touching: touchObject and an ingest that finds the object present move touchedAt, never storedAt', async (t, { dp }) => {
  const data = bytes(5000, 3);
  const stored = await put(dp, data);
  const first = await dp.statObject(stored.primaryDigest);
  await sleep(15);
  const touched = await dp.touchObject(stored.sha256Digest);
  t.true(Date.parse(touched.touchedAt) > Date.parse(first.touchedAt), `${touched.touchedAt} after ${first.touchedAt}`);
  t.is(touched.storedAt, first.storedAt);
  await sleep(15);
  const again = await put(dp, data);
  t.true(again.receipt.deduplicated);
  t.is(again.receipt.storedAt, first.storedAt, 'the receipt of a deduplicated ingest says when it was first stored');
  const after = await dp.statObject(stored.primaryDigest);
  t.true(Date.parse(after.touchedAt) > Date.parse(touched.touchedAt));
});

conformanceTest('listObjects: a store of more objects than a page is listed whole, each once, in order, and limit spans pages', async (t, { dp }) => {
  const count = 5_500; // pages hold 4,096 in-process and 1,000 through the daemon
  const expected = new Array(count);
  let next = 0;
  await Promise.all(Array.from({ length: 16 }, async () => {
    for (let i = next++; i < count; i = next++) expected[i] = text((await dp.ingestStream([bytes(16, 10_000 + i)])).primaryDigest);
  }));
  expected.sort();
  const listed = [];
  for await (const info of dp.listObjects()) listed.push(text(info.contentAddress));
  t.is(listed.length, count);
  t.deepEqual(listed, expected);
  const spanning = [];
  for await (const info of dp.listObjects({ after: expected[3_899], limit: 1_200 })) spanning.push(text(info.contentAddress));
  t.deepEqual(spanning, expected.slice(3_900, 5_100));
});

conformanceTest('findMissing: the addresses not held, in the order given, duplicates kept, each as parsed', async (t, { dp }) => {
  const a = await put(dp, bytes(10, 4));
  const b = await put(dp, bytes(10, 5), { primaryAlgorithm: 'sha256' });
  const asked = [absent('sha256'), a.primaryDigest, text(absent('blake3')), a.sha256Digest, b.primaryDigest, absent('sha256')];
  t.deepEqual(await dp.findMissing(asked), [absent('sha256'), absent('blake3'), absent('sha256')]);
  t.deepEqual(await dp.findMissing([]), []);
  await rejects(t, dp.findMissing([a.primaryDigest, 'sha256:nope']), 'INVALID_ADDRESS');
  await rejects(t, dp.findMissing(text(a.primaryDigest)), 'INVALID_ARGUMENT');
});

conformanceTest('listObjects: every object once, ascending by address text; after, limit and touchedBefore', async (t, { dp }) => {
  const stored = [];
  for (let i = 0; i < 25; i++) stored.push(await put(dp, bytes(64, 100 + i), i % 5 === 0 ? { primaryAlgorithm: 'sha256' } : undefined));
  const expected = stored.map((r) => text(r.primaryDigest)).sort();
  const listed = [];
  for await (const info of dp.listObjects()) listed.push(info);
  t.deepEqual(listed.map((info) => text(info.contentAddress)), expected);
  t.deepEqual(listed[0], await dp.statObject(listed[0].contentAddress));
  const page = [];
  for await (const info of dp.listObjects({ after: expected[9], limit: 4 })) page.push(text(info.contentAddress));
  t.deepEqual(page, expected.slice(10, 14));
  const none = [];
  for await (const info of dp.listObjects({ limit: 0 })) none.push(info);
  t.deepEqual(none, []);
  // touchedBefore: touch some, then list what was not touched since.
  const cut = new Date().toISOString();
  await sleep(5);
  for (const r of stored.slice(0, 3)) await dp.touchObject(r.primaryDigest);
  const untouched = [];
  for await (const info of dp.listObjects({ touchedBefore: cut })) untouched.push(text(info.contentAddress));
  t.deepEqual(untouched, expected.filter((a) => !stored.slice(0, 3).some((r) => text(r.primaryDigest) === a)));
  for (const bad of [{ after: 'blake3:no' }, { limit: -1 }, { touchedBefore: 'yesterday' }]) {
    const code = bad.after ? 'INVALID_ADDRESS' : 'INVALID_ARGUMENT';
    await rejects(t, (async () => { for await (const _ of dp.listObjects(bad)); })(), code, { what: JSON.stringify(bad) });
  }
});

conformanceTest('listObjects: objects stored while a listing runs may or may not appear; nothing else is missed or repeated', async (t, { dp }) => {
  const before = [];
  for (let i = 0; i < 30; i++) before.push(text((await put(dp, bytes(32, 200 + i))).primaryDigest));
  const seen = [];
  let i = 0;
  for await (const info of dp.listObjects()) {
    seen.push(text(info.contentAddress));
    if (i++ < 10) await put(dp, bytes(32, 500 + i)); // written while the listing runs
  }
  t.is(new Set(seen).size, seen.length, 'nothing repeated');
  t.deepEqual(seen, [...seen].sort(), 'ascending');
  for (const address of before) t.true(seen.includes(address), `${address} listed`);
});

conformanceTest('Deletion that cannot race: unlessTouchedSince keeps an object touched since, deletes one that was not', async (t, { dp }) => {
  const data = bytes(2048, 6);
  const stored = await put(dp, data);
  const cut = new Date().toISOString();
  await sleep(5);
  await put(dp, data); // found present: touched after the cut
  const kept = await dp.deleteObject(stored.sha256Digest, { unlessTouchedSince: cut });
  t.false(kept.deleted);
  t.deepEqual(kept.contentAddress, stored.primaryDigest);
  t.true(Date.parse(kept.touchedAt) >= Date.parse(cut), `${kept.touchedAt} at or after ${cut}`);
  t.true((await dp.verifyObject(stored.primaryDigest)).verified);
  await sleep(5);
  const deleted = await dp.deleteObject(stored.primaryDigest, { unlessTouchedSince: new Date().toISOString() });
  t.true(deleted.deleted);
  t.is(deleted.touchedAt, undefined);
  await rejects(t, dp.statObject(stored.primaryDigest), 'NOT_FOUND');
  t.false((await dp.deleteObject(stored.primaryDigest, { unlessTouchedSince: new Date().toISOString() })).deleted);
  await rejects(t, dp.deleteObject(stored.primaryDigest, { unlessTouchedSince: 'now' }), 'INVALID_ARGUMENT');
});

/** `date` as RFC 3339 text in the time zone `offsetMinutes` east of UTC (`...+05:30`, `...-03:00`). */
function inZone(date, offsetMinutes) {
  const local = new Date(date.getTime() + offsetMinutes * 60_000).toISOString().slice(0, -1);
  const minutes = Math.abs(offsetMinutes);
  const hhmm = `${String(Math.floor(minutes / 60)).padStart(2, '0')}:${String(minutes % 60).padStart(2, '0')}`;
  return `${local}${offsetMinutes < 0 ? '-' : '+'}${hhmm}`;
}

conformanceTest('Times: one written with a numeric offset is the instant it names, in touchedBefore and unlessTouchedSince', async (t, { dp }) => {
  const stored = await put(dp, bytes(2048, 61));
  const touchedAt = Date.parse((await dp.statObject(stored.primaryDigest)).touchedAt);
  const [before, after] = [new Date(touchedAt - 1000), new Date(touchedAt + 1000)];
  // The listing from just before this object, one at most: this object, if the filter keeps it.
  const previous = (BigInt(`0x${stored.primaryDigest.hex}`) - 1n).toString(16).padStart(64, '0');
  const listed = async (touchedBefore) => {
    for await (const info of dp.listObjects({ after: `blake3:${previous}`, limit: 1, touchedBefore })) {
      return info.contentAddress.hex === stored.primaryDigest.hex;
    }
    return false;
  };
  for (const zone of [330, -180]) {
    t.true(await listed(inZone(after, zone)), `listed when touched before ${inZone(after, zone)}`);
    t.false(await listed(inZone(before, zone)), `not listed when touched before ${inZone(before, zone)}`);
    const kept = await dp.deleteObject(stored.primaryDigest, { unlessTouchedSince: inZone(before, zone) });
    t.false(kept.deleted, `kept: touched since ${inZone(before, zone)}`);
  }
  const deleted = await dp.deleteObject(stored.primaryDigest, { unlessTouchedSince: inZone(after, -180) });
  t.true(deleted.deleted, `deleted: not touched since ${inZone(after, -180)}`);
});

conformanceTest('Deletion that cannot race: an ingest of present content and a conditional delete taken just before it, at once, always leave the object', async (t, { dp, kind }) => {
  const rounds = kind === 'fs' ? 1000 : 40;
  let deletedFirst = 0;
  for (let round = 0; round < rounds; round++) {
    const data = Buffer.from(`race round ${round} ${kind}`);
    const stored = await dp.ingestStream([data]);
    const cut = new Date().toISOString();
    const [deletion, ingest] = await Promise.all([
      dp.deleteObject(stored.primaryDigest, { unlessTouchedSince: cut }),
      dp.ingestStream([data]),
    ]);
    if (deletion.deleted) deletedFirst++;
    const verified = await dp.verifyObject(ingest.primaryDigest);
    if (!verified.verified) t.fail(`round ${round}: lost after ${JSON.stringify(deletion)}`);
  }
  t.log(`${rounds} rounds, 0 lost; the delete went first and the ingest stored anew in ${deletedFirst}`);
  t.pass();
});

conformanceTest('scrub: flipped bytes and truncation are reported once and quarantined; serve and stat say NOT_FOUND; the right bytes heal it', async (t, store) => {
  const { dp } = store;
  const good = [];
  for (let i = 0; i < 6; i++) good.push(await put(dp, bytes(4 * KiB, 300 + i)));
  const flipped = bytes(10 * KiB, 7);
  const truncated = bytes(10 * KiB, 8);
  const damaged = [await put(dp, flipped), await put(dp, truncated)];
  const wrong = Buffer.from(flipped);
  wrong[5000] ^= 0xff;
  await store.replace(damaged[0].receipt.locator, wrong);
  await store.replace(damaged[1].receipt.locator, truncated.subarray(0, 100));
  const progress = [];
  const report = await dp.scrub({ quarantine: true, onProgress: (p) => progress.push(p) });
  t.true(report.complete);
  t.is(report.checkedObjects, 8);
  t.is(report.quarantined, 2);
  t.deepEqual(report.corrupt.map((v) => text(v.contentAddress)).sort(), damaged.map((r) => text(r.primaryDigest)).sort());
  t.true(report.corrupt.every((v) => !v.verified && v.mismatch));
  t.is(report.backendId, store.backendId);
  t.true(Date.parse(report.finishedAt) >= Date.parse(report.startedAt));
  t.true(progress.length >= 1 && progress.at(-1).checkedObjects === 8 && progress.at(-1).corruptObjects === 2);
  for (const r of damaged) {
    await rejects(t, dp.statObject(r.primaryDigest), 'NOT_FOUND');
    await rejects(t, dp.serveObject(r.sha256Digest), 'NOT_FOUND');
  }
  const healed = await put(dp, flipped);
  t.false(healed.receipt.deduplicated);
  t.true((await dp.verifyObject(healed.primaryDigest)).verified);
  const again = await dp.scrub();
  t.deepEqual([again.checkedObjects, again.corrupt.length, again.quarantined], [7, 0, 0]);
});

conformanceTest('scrub: a directory or a symlink in an object\'s place is reported once and quarantined', async (t, { dp, root }) => {
  const { rm, mkdir, symlink } = await import('node:fs/promises');
  const { join } = await import('node:path');
  const a = await put(dp, bytes(100, 9));
  const b = await put(dp, bytes(100, 10));
  await rm(join(root, a.receipt.locator));
  await mkdir(join(root, a.receipt.locator));
  await rm(join(root, b.receipt.locator));
  await symlink('/etc/hostname', join(root, b.receipt.locator));
  const report = await dp.scrub({ quarantine: true });
  t.is(report.corrupt.length, 2);
  t.is(report.quarantined, 2);
  await rejects(t, dp.statObject(a.primaryDigest), 'NOT_FOUND');
  await rejects(t, dp.serveObject(b.primaryDigest), 'NOT_FOUND');
  t.deepEqual((await dp.scrub()).corrupt, []);
}, { kinds: ['fs'] });

conformanceTest('scrub: a fired signal ends it with complete: false and resumeAfter; resuming checks each object once in all', async (t, { dp }) => {
  const count = 24;
  for (let i = 0; i < count; i++) await put(dp, bytes(32 * KiB, 400 + i));
  const controller = new AbortController();
  // 768 KiB at 512 KiB/s: pages of about half a second, so the signal lands between pages.
  const first = await dp.scrub({ bytesPerSecond: 512 * KiB, signal: controller.signal, onProgress: () => controller.abort() });
  t.false(first.complete);
  t.truthy(first.resumeAfter);
  t.true(first.checkedObjects > 0 && first.checkedObjects < count, `${first.checkedObjects} checked first`);
  const rest = await dp.scrub({ after: first.resumeAfter });
  t.true(rest.complete);
  t.is(first.checkedObjects + rest.checkedObjects, count);
});

conformanceTest('scrub: a signal fired while bytesPerSecond holds the scrub back ends it at once, with complete: false and resumeAfter', async (t, { dp }) => {
  const count = 3;
  for (let i = 0; i < count; i++) await put(dp, bytes(4 * MiB, 630 + i));
  const controller = new AbortController();
  const started = performance.now();
  setTimeout(() => controller.abort(), 300);
  // At 1 MiB/s each 4 MiB object holds the scrub back for 4 s after it is checked.
  const first = await dp.scrub({ bytesPerSecond: MiB, signal: controller.signal });
  const ms = performance.now() - started;
  t.false(first.complete);
  t.truthy(first.resumeAfter);
  t.true(ms < 2000, `ended ${Math.round(ms)} ms after it began, the signal fired at 300 ms`);
  const rest = await dp.scrub({ after: first.resumeAfter });
  t.true(rest.complete);
  t.is(first.checkedObjects + rest.checkedObjects, count);
});

conformanceTest('scrub: bytesPerSecond holds', async (t, { dp }) => {
  for (let i = 0; i < 16; i++) await put(dp, bytes(64 * KiB, 600 + i));
  const rate = 1024 * KiB; // 1 MiB in all: about a second
  const started = performance.now();
  const report = await dp.scrub({ bytesPerSecond: rate });
  const seconds = (performance.now() - started) / 1000;
  const achieved = report.checkedBytes / seconds;
  t.log(`${report.checkedBytes} bytes in ${seconds.toFixed(2)} s: ${(achieved / rate).toFixed(2)} of the rate`);
  // Never faster than the rate (within 20%); slower only by what this machine's load costs.
  t.true(achieved <= rate * 1.2, `${achieved} B/s against ${rate}`);
  t.true(achieved >= rate * 0.5, `${achieved} B/s against ${rate}`);
}, { serial: true });
