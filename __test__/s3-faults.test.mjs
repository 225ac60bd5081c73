// S3 faults (SPEC Semantics: Errors, BACKEND_UNAVAILABLE; backendHealth: an unreachable backend
// is healthy: false, never a rejection; routing by backendId), against a real versitygw that each
// test starts for itself so that it can kill it (SIGKILL) without disturbing anyone else:
// - the server killed mid-ingest (during the multipart upload, and during the commit's copy),
//   mid-serve and mid-verify: each call fails with BACKEND_UNAVAILABLE naming the cause, within a
//   bounded time, and after a restart nothing partial is visible;
// - an unreachable endpoint, wrong credentials, a missing bucket: every operation rejects with
//   BACKEND_UNAVAILABLE naming the cause, health says why, and once the configuration is right
//   again nothing of the failed calls is there;
// - one data plane over an fs and an s3 backend: every call routed by backendId.
// A small TCP proxy (below) sits in front of the server where a kill must land at an exact point
// (mid-verify, during the commit's copy): it throttles responses and sees request lines.
//
// What the sweep does is spelled out by the tests themselves: a staging object left by a dead
// ingest is removed once it is STALE_STAGING (15 min) old, an incomplete multipart upload under
// staging/ once it is STALE_UPLOAD (24 h) old; the tests simulate those ages by backdating the
// server's files (a test cannot wait).

import test from 'ava';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm, stat, utimes, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataPlaneError, formatContentAddress } from '@artifactstore/data-plane';
import { collect, MiB, KiB } from './helpers.mjs';
import { listKeys } from './stores.mjs';
import { startS3Server } from '../scripts/s3-server.mjs';
import { openPlane, sha256Hex, sleep } from './fixtures/support.mjs';

/** No call may take longer than this to settle, whatever happened to the server. */
const SETTLE_MS = 60_000;
/** How long a test waits for the background sweep that opening a data plane starts. */
const SWEEP_WAIT_MS = 10_000;
/** The sweep removes staging objects older than this (crates/core/src/storage/s3/mod.rs). */
const STALE_STAGING_MS = 15 * 60_000;
const STALE_UPLOAD_MS = 24 * 60 * 60_000;

/** Words an HTTP client uses for a server that went away. */
const SERVER_GONE = /connection refused|connection closed|connection reset|broken pipe|tcp connect|error sending request|error decoding response body|unexpected eof|end of file/i;

const sha256Address = (buffer) => ({ algorithm: 'sha256', hex: sha256Hex(buffer) });
const SHA256 = { primaryAlgorithm: 'sha256' };
let prefixCount = 0;
const newPrefix = () => `faults-${process.pid}-${++prefixCount}/`;

/**
 * How `promise` settled, or { status: 'timeout' } if it had not within `ms`: a hang fails the
 * test instead of stalling it.
 */
async function settle(promise, ms = SETTLE_MS) {
  let timer;
  const started = Date.now();
  const timeout = new Promise((resolve) => {
    timer = setTimeout(() => resolve({ status: 'timeout' }), ms);
  });
  try {
    const outcome = await Promise.race([
      Promise.resolve(promise).then(
        (value) => ({ status: 'resolved', value }),
        (error) => ({ status: 'rejected', error }),
      ),
      timeout,
    ]);
    return { ...outcome, ms: Date.now() - started };
  } finally {
    clearTimeout(timer);
  }
}

/** Asserts an outcome is a BACKEND_UNAVAILABLE rejection whose message matches `cause`. */
function assertUnavailable(t, outcome, cause, what) {
  if (outcome.status !== 'rejected') {
    t.fail(`${what}: expected a BACKEND_UNAVAILABLE rejection, got ${outcome.status}` +
      (outcome.status === 'resolved' ? `: ${JSON.stringify(outcome.value)}` : ` after ${outcome.ms} ms`));
    return;
  }
  const { error } = outcome;
  t.true(error instanceof DataPlaneError, `${what}: a DataPlaneError, got ${error?.stack ?? error}`);
  t.is(error?.code, 'BACKEND_UNAVAILABLE', `${what}: ${error?.message}`);
  t.regex(error?.message ?? '', cause, `${what}: the message names the cause`);
}

async function assertNotFound(t, promise, what) {
  const outcome = await settle(promise);
  t.is(outcome.status, 'rejected', `${what}: rejects (${outcome.status}${outcome.value ? ' ' + JSON.stringify(outcome.value) : ''})`);
  t.is(outcome.error?.code, 'NOT_FOUND', `${what}: NOT_FOUND, got ${outcome.error?.code}: ${outcome.error?.message}`);
}

/** A server of this test's own, stopped (and its data removed) when the test ends. */
async function ownServer(t) {
  const server = await startS3Server();
  t.teardown(() => server.stop());
  return server;
}

/** Keys of the incomplete multipart uploads under `prefix` (ListMultipartUploads, first 1000). */
async function listUploads(server, prefix) {
  const response = await server.request('GET', `/${server.bucket}`, { query: { uploads: '', prefix } });
  if (!response.ok) throw new Error(`listing uploads under ${prefix}: HTTP ${response.status} ${await response.text()}`);
  return [...(await response.text()).matchAll(/<Upload>[\s\S]*?<Key>([^<]*)<\/Key>[\s\S]*?<\/Upload>/g)].map((m) => m[1]);
}

/** Files (and their total size) under versitygw's own temporary directory for this bucket. */
async function serverTempFiles(server) {
  const dir = join(server.rootDir, server.bucket, '.sgwtmp');
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  let bytes = 0;
  let files = 0;
  for (const entry of entries) {
    if (!entry.isFile()) continue;
    files++;
    bytes += (await stat(join(entry.parentPath ?? entry.path, entry.name))).size;
  }
  return { files, bytes };
}

/** Sets the modification time of everything under `dir` to `ms` ago (what versitygw reports as age). */
async function backdate(dir, ms) {
  const when = new Date(Date.now() - ms);
  for (const name of await readdir(dir, { recursive: true })) await utimes(join(dir, name), when, when);
  await utimes(dir, when, when);
}

/** Polls `probe` until it returns a value `done` accepts, or `ms` pass; returns the last value. */
async function pollUntil(probe, done, ms = SWEEP_WAIT_MS) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (done(value) || Date.now() > deadline) return value;
    await sleep(200);
  }
}

/**
 * A TCP proxy in front of `port`: throttles what the server sends back to `bytesPerSecond`,
 * counts it, and calls `onRequest(method, target)` for each request line the client sends, before
 * forwarding it. When the server side goes away, the client's connection is dropped with it.
 */
async function startProxy(port, { bytesPerSecond = Infinity, onRequest = () => {} } = {}) {
  const requestLine = /(?:^|\n)(GET|PUT|POST|HEAD|DELETE) (\/\S*) HTTP\/1\.1\r\n/g;
  const sockets = new Set();
  let responseBytes = 0;
  const proxy = net.createServer((client) => {
    const upstream = net.connect(port, '127.0.0.1');
    sockets.add(client).add(upstream);
    let due = 0;
    let holds = 0;
    const hold = () => holds++ === 0 && upstream.pause();
    const release = () => --holds === 0 && upstream.resume();
    client.on('data', (data) => {
      for (const [, method, target] of data.toString('latin1').matchAll(requestLine)) onRequest(method, target);
      if (!upstream.write(data)) {
        client.pause();
        upstream.once('drain', () => client.resume());
      }
    });
    upstream.on('data', (data) => {
      responseBytes += data.length;
      if (!client.write(data)) {
        hold();
        client.once('drain', release);
      }
      due = Math.max(due, Date.now()) + (data.length / bytesPerSecond) * 1000;
      const wait = due - Date.now();
      if (wait > 2) {
        hold();
        setTimeout(release, wait);
      }
    });
    const drop = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    for (const socket of [client, upstream]) socket.on('error', drop).on('close', drop);
  });
  await new Promise((resolve, reject) => proxy.once('error', reject).listen(0, '127.0.0.1', resolve));
  return {
    endpoint: `http://127.0.0.1:${proxy.address().port}`,
    get responseBytes() {
      return responseBytes;
    },
    close() {
      for (const socket of sockets) socket.destroy();
      return new Promise((resolve) => proxy.close(resolve));
    },
  };
}

/**
 * Yields `content` in chunks of `chunkSize`, pausing `delayMs` after each, and calls (and awaits)
 * `at.action()` once `at.bytes` have been yielded: a kill lands exactly mid-stream.
 */
async function* slowSource(content, { chunkSize = 256 * KiB, delayMs = 5, at }) {
  let fired = false;
  for (let offset = 0; offset < content.length; offset += chunkSize) {
    if (!fired && offset >= at.bytes) {
      fired = true;
      await at.action();
    }
    yield content.subarray(offset, Math.min(content.length, offset + chunkSize));
    await sleep(delayMs);
  }
}

/** Nothing at `address`, under objects/ or under staging/ in `prefix`, seen through a data plane and the bucket. */
async function assertNothingStored(t, dp, server, prefix, address, what) {
  await assertNotFound(t, dp.serveObject(address), `${what}: serveObject`);
  await assertNotFound(t, dp.verifyObject(address), `${what}: verifyObject`);
  t.deepEqual(await listKeys(server, `${prefix}objects/`), [], `${what}: no key under ${prefix}objects/`);
  t.deepEqual(await listKeys(server, `${prefix}staging/`), [], `${what}: no key under ${prefix}staging/`);
}

// ---- the server killed mid-ingest -------------------------------------------------------------

const LARGE = 40 * MiB;

/**
 * Ingests 40 MiB from a slow source into a fresh server's bucket and SIGKILLs the server once
 * 20 MiB have been handed over (two 8 MiB parts are uploading or uploaded by then). Returns what
 * the tests look at afterwards; the server is left dead.
 */
async function killMidUpload(t, { sizeHint }) {
  const server = await ownServer(t);
  const prefix = newPrefix();
  const config = { backends: [server.backend('bucket', prefix)] };
  const dp = await openPlane(t, config);
  const content = randomBytes(LARGE);
  const address = sha256Address(content);
  let killedAt;
  const source = slowSource(content, {
    at: {
      bytes: 20 * MiB,
      action: async () => {
        await server.kill();
        killedAt = Date.now();
      },
    },
  });
  const hints = { ...SHA256, ...(sizeHint ? { sizeHint: LARGE } : {}) };
  const outcome = await settle(dp.ingestStream(source, { hints }));
  t.truthy(killedAt, 'the server was killed while the source was still yielding');
  return { server, prefix, config, dp, content, address, outcome, settledAfterKillMs: Date.now() - (killedAt ?? Date.now()) };
}

for (const sizeHint of [false, true]) {
  const how = sizeHint ? 'with a sizeHint (multipart from the start)' : 'without a sizeHint (multipart past 8 MiB)';
  test.serial(`Errors (in-process, s3): server SIGKILLed mid multipart ingest of 40 MiB, ${how}: BACKEND_UNAVAILABLE in bounded time, nothing visible after a restart`, async (t) => {
    t.timeout(180_000);
    const { server, prefix, config, dp, content, address, outcome, settledAfterKillMs } = await killMidUpload(t, { sizeHint });
    assertUnavailable(t, outcome, SERVER_GONE, 'the ingest');
    t.regex(outcome.error?.message ?? '', new RegExp(`${prefix}staging/`), 'the message names the staging key it was uploading to');
    t.true(settledAfterKillMs < SETTLE_MS, `settled ${settledAfterKillMs} ms after the kill`);
    t.log(`ingest rejected ${settledAfterKillMs} ms after the kill: ${outcome.error?.message}`);

    // While the server is down: health says so, and every call fails the same way.
    const health = await settle(dp.backendHealth());
    t.is(health.status, 'resolved', 'backendHealth never rejects');
    t.false(health.value?.healthy);
    t.like(health.value?.backends?.[0], { backendId: 'bucket', kind: 's3', healthy: false });
    t.regex(health.value?.backends?.[0]?.detail ?? '', SERVER_GONE, 'the health detail names the cause');
    assertUnavailable(t, await settle(dp.serveObject(address)), SERVER_GONE, 'a serve while the server is down');

    // Restarted on the same port and data: no object at the would-be address, no staging key.
    await server.start();
    await assertNothingStored(t, dp, server, prefix, address, 'after the restart');
    // A new data plane on the same bucket sweeps staging data (in the background): still nothing.
    const reopened = await openPlane(t, config);
    await sleep(1000);
    await assertNothingStored(t, reopened, server, prefix, address, 'after a reopen (sweep)');
    const uploads = await listUploads(server, prefix);
    t.log(`incomplete multipart uploads left under ${prefix}: ${JSON.stringify(uploads)} (${JSON.stringify(await serverTempFiles(server))} in the server's .sgwtmp)`);

    // The store works, and the content had never been stored: the new ingest writes it.
    const again = await reopened.ingestStream([content.subarray(0, 16 * MiB), content.subarray(16 * MiB)], { hints: SHA256 });
    t.is(again.primaryDigest.hex, address.hex);
    t.false(again.receipt.deduplicated, 'nothing was there before');
    t.is(again.receipt.locator, `${prefix}objects/sha256/${address.hex.slice(0, 2)}/${address.hex.slice(2, 4)}/${address.hex}`);
    t.true((await collect(await reopened.serveObject(address))).equals(content), 'and serves back whole');
    t.deepEqual(await listKeys(server, `${prefix}staging/`), [], 'no staging key after a successful ingest');
  });
}

// The ingest died with the server, so its multipart upload was never aborted: the sweep finds it
// with ListMultipartUploads once it is older than STALE_UPLOAD (its age simulated by backdating
// the upload's files, which versitygw reports as its Initiated time).
test.serial('Errors (in-process, s3): a restarted server plus a sweep leaves no incomplete multipart upload of an ingest killed mid-upload', async (t) => {
  t.timeout(180_000);
  const { server, prefix, config, outcome } = await killMidUpload(t, { sizeHint: true });
  t.is(outcome.error?.code, 'BACKEND_UNAVAILABLE');
  await server.start();
  t.log(`left by the killed ingest: uploads ${JSON.stringify(await listUploads(server, prefix))}, ` +
    `server temp files ${JSON.stringify(await serverTempFiles(server))}`);
  await backdate(join(server.rootDir, server.bucket, '.sgwtmp'), STALE_UPLOAD_MS + 5 * 60_000);
  await openPlane(t, config); // sweeps in the background
  const uploads = await pollUntil(() => listUploads(server, prefix), (keys) => keys.length === 0);
  t.deepEqual(uploads, [], 'no incomplete multipart upload under the prefix');
});

// ---- the server killed during the commit's copy ------------------------------------------------

/**
 * Ingests 20 MiB through a proxy that SIGKILLs the server as the create-only copy from the staging
 * key to the final key is sent (the one PUT to <prefix>objects/... of a multipart ingest):
 * the staging object is complete, the final object not yet there. The server is left dead.
 */
async function killDuringCopy(t) {
  const server = await ownServer(t);
  const prefix = newPrefix();
  let killedAt;
  let killed;
  const requests = [];
  const proxy = await startProxy(Number(new URL(server.endpoint).port), {
    onRequest: (method, target) => {
      requests.push(`${method} ${target}`);
      if (!killedAt && method === 'PUT' && target.includes('/objects/')) {
        killedAt = Date.now();
        killed = server.kill(); // SIGKILL is sent synchronously, before this request is forwarded
      }
    },
  });
  t.teardown(() => proxy.close());
  const config = { backends: [server.backend('bucket', prefix, { endpoint: proxy.endpoint })] };
  const dp = await openPlane(t, config);
  const content = randomBytes(20 * MiB);
  const address = sha256Address(content);
  const outcome = await settle(dp.ingestStream([content.subarray(0, 10 * MiB), content.subarray(10 * MiB)], { hints: SHA256 }));
  t.truthy(killedAt, `the kill landed during the copy; requests seen: ${requests.join(', ')}`);
  await killed;
  return { server, prefix, config, dp, address, outcome, settledAfterKillMs: Date.now() - (killedAt ?? Date.now()) };
}

test.serial('Errors (in-process, s3): server SIGKILLed during the commit copy: BACKEND_UNAVAILABLE, no object; the staging object is swept once stale, spared while fresh', async (t) => {
  t.timeout(180_000);
  const { server, prefix, config, dp, address, outcome, settledAfterKillMs } = await killDuringCopy(t);
  assertUnavailable(t, outcome, SERVER_GONE, 'the ingest');
  t.regex(outcome.error?.message ?? '', /copying .*staging\/.* to .*objects\//, 'the message says it was copying to the final key');
  t.true(settledAfterKillMs < SETTLE_MS, `settled ${settledAfterKillMs} ms after the kill`);

  await server.start();
  await assertNotFound(t, dp.serveObject(address), 'after the restart: serveObject');
  await assertNotFound(t, dp.verifyObject(address), 'after the restart: verifyObject');
  t.deepEqual(await listKeys(server, `${prefix}objects/`), [], 'no key under objects/');

  // The completed staging object could not be deleted while the server was down. A fresh one may
  // belong to a live ingest in another process, so a sweep must leave it alone...
  const staged = await listKeys(server, `${prefix}staging/`);
  t.true(staged.length <= 1, `at most the dead ingest's one staging object: ${JSON.stringify(staged)}`);
  if (staged.length === 0) {
    t.log('no staging object was left behind: the sweep had nothing to do');
    return;
  }
  t.log(`left behind: ${staged[0]} (fresh, so no sweep removes it for ${STALE_STAGING_MS / 60_000} minutes)`);
  await openPlane(t, config);
  await sleep(1500);
  t.deepEqual(await listKeys(server, `${prefix}staging/`), staged, 'a sweep spares a fresh staging object');
  // ...and removes it once it is older than STALE_STAGING (its age simulated by backdating the
  // server's file: a test cannot wait 15 minutes).
  await backdate(join(server.rootDir, server.bucket, prefix, 'staging'), STALE_STAGING_MS + 60_000);
  await openPlane(t, config);
  t.deepEqual(await pollUntil(() => listKeys(server, `${prefix}staging/`), (keys) => keys.length === 0), [],
    'a sweep removes a stale staging object');
  t.deepEqual(await listKeys(server, `${prefix}objects/`), [], 'and still nothing under objects/');
});

// The copy to the final key is one CopyObject request: killed mid-copy, it leaves no multipart
// upload under objects/ (the multipart form of a conditional copy would, for good: temporary data
// under objects/, which the SPEC's layout rules out).
test.serial('Errors (in-process, s3): a restarted server plus a sweep leaves no incomplete multipart upload under objects/ after a kill during the commit copy', async (t) => {
  t.timeout(180_000);
  const { server, prefix, config, outcome } = await killDuringCopy(t);
  t.is(outcome.error?.code, 'BACKEND_UNAVAILABLE');
  await server.start();
  t.log(`left by the killed copy: uploads ${JSON.stringify(await listUploads(server, prefix))}`);
  await backdate(join(server.rootDir, server.bucket, '.sgwtmp'), STALE_UPLOAD_MS + 5 * 60_000);
  await openPlane(t, config);
  const uploads = await pollUntil(() => listUploads(server, `${prefix}objects/`), (keys) => keys.length === 0);
  t.deepEqual(uploads, [], 'no incomplete multipart upload under objects/');
});

// A server that stops answering without closing its connections (a host that vanished, a network
// partition: no FIN, no RST), produced by SIGSTOP. Every data request has a 60 s read timeout, so a
// frozen server fails any other call in about a minute; so does the create-only copy of the commit
// (client::copy_client), after which the cleanup (the copy's abort, the staging delete) gets its
// own bounded wait.
const FROZEN_SETTLE_MS = 180_000;

test.serial('Errors (in-process, s3): server frozen (SIGSTOP) during the commit copy: the ingest still settles with BACKEND_UNAVAILABLE in bounded time', async (t) => {
  t.timeout(FROZEN_SETTLE_MS + 120_000);
  const server = await ownServer(t);
  const prefix = newPrefix();
  let frozenAt;
  const thaw = () => {
    if (frozenAt && server.pid) process.kill(server.pid, 'SIGCONT');
  };
  t.teardown(thaw); // before the server's own teardown stops it (teardowns run last-in first-out)
  const proxy = await startProxy(Number(new URL(server.endpoint).port), {
    onRequest: (method, target) => {
      if (!frozenAt && method === 'PUT' && target.includes('/objects/')) {
        frozenAt = Date.now();
        process.kill(server.pid, 'SIGSTOP');
      }
    },
  });
  t.teardown(() => proxy.close());
  const dp = await openPlane(t, { backends: [server.backend('bucket', prefix, { endpoint: proxy.endpoint })] });
  const content = randomBytes(20 * MiB);
  const ingest = dp.ingestStream([content.subarray(0, 10 * MiB), content.subarray(10 * MiB)], { hints: SHA256 });
  ingest.catch(() => {});
  const outcome = await settle(ingest, FROZEN_SETTLE_MS);
  t.truthy(frozenAt, 'the server froze during the copy');
  t.log(`the ingest: ${outcome.status} after ${outcome.ms} ms${outcome.error ? `: ${outcome.error.message}` : ''}`);
  thaw();
  await settle(ingest, 30_000); // a thawed server lets a hung copy finish before the data plane closes
  t.not(outcome.status, 'timeout', `the ingest settled within ${FROZEN_SETTLE_MS / 1000} s of the freeze`);
  assertUnavailable(t, outcome, /timed out|timeout/i, 'the ingest');
});

// ---- the server killed mid-serve and mid-verify ------------------------------------------------

test.serial('Errors (in-process, s3): server SIGKILLed mid-serve of a large object: the for-await loop throws BACKEND_UNAVAILABLE, no hang; the object survives', async (t) => {
  t.timeout(180_000);
  const server = await ownServer(t);
  const prefix = newPrefix();
  const dp = await openPlane(t, { backends: [server.backend('bucket', prefix)] });
  const content = randomBytes(48 * MiB);
  const { primaryDigest } = await dp.ingestStream([content.subarray(0, 24 * MiB), content.subarray(24 * MiB)]);

  const stream = await dp.serveObject(primaryDigest);
  t.is(stream.sizeBytes, content.length);
  let received = 0;
  let killedAt;
  let intact = true;
  const outcome = await settle((async () => {
    for await (const chunk of stream) {
      intact &&= chunk.equals(content.subarray(received, received + chunk.length));
      received += chunk.length;
      if (!killedAt && received >= 8 * MiB) {
        await server.kill();
        killedAt = Date.now();
      }
      await sleep(2); // a consumer slower than loopback: the body is mid-flight when the kill lands
    }
    return received;
  })());
  t.truthy(killedAt, 'the kill landed mid-iteration');
  t.true(intact, 'every chunk before the failure was the right bytes');
  t.true(received < content.length, `the loop did not get the whole object (${received} of ${content.length} bytes)`);
  assertUnavailable(t, outcome, SERVER_GONE, 'the for-await loop');
  t.regex(outcome.error?.message ?? '', new RegExp(`reading ${prefix}objects/blake3/`), 'the message names the object being read');
  t.log(`serve failed after ${received} bytes, ${Date.now() - killedAt} ms after the kill: ${outcome.error?.message}`);

  await server.start();
  t.true((await collect(await dp.serveObject(primaryDigest))).equals(content), 'after a restart the object serves whole');
  t.true((await dp.verifyObject(primaryDigest)).verified, 'and verifies');
});

test.serial('Errors (in-process, s3): server SIGKILLed mid-verify: verifyObject rejects BACKEND_UNAVAILABLE, never a verified: false result', async (t) => {
  t.timeout(180_000);
  const server = await ownServer(t);
  // 16 MiB/s: a 32 MiB object takes 2 s to read, and the kill lands 8 MiB into it.
  const proxy = await startProxy(Number(new URL(server.endpoint).port), { bytesPerSecond: 16 * MiB });
  t.teardown(() => proxy.close());
  const prefix = newPrefix();
  const dp = await openPlane(t, { backends: [server.backend('bucket', prefix, { endpoint: proxy.endpoint })] });
  const content = randomBytes(32 * MiB);
  const { primaryDigest } = await dp.ingestStream([content.subarray(0, 16 * MiB), content.subarray(16 * MiB)]);

  const before = proxy.responseBytes;
  let settled = false;
  const verifying = settle(dp.verifyObject(primaryDigest)).finally(() => {
    settled = true;
  });
  let read = 0;
  const deadline = Date.now() + SETTLE_MS;
  while ((read = proxy.responseBytes - before) < 8 * MiB && !settled && Date.now() < deadline) await sleep(5);
  t.false(settled, `the verify was still reading when the kill came (${read} bytes in)`);
  await server.kill();
  const outcome = await verifying;
  t.true(read >= 8 * MiB && read < content.length, `killed ${read} bytes into the verify`);
  assertUnavailable(t, outcome, SERVER_GONE, 'verifyObject');
  t.regex(outcome.error?.message ?? '', new RegExp(`reading ${prefix}objects/blake3/`), 'the message names the object being read');

  await server.start();
  const verified = await dp.verifyObject(primaryDigest);
  t.true(verified.verified, 'after a restart it verifies');
  t.is(verified.actualSizeBytes, content.length);
});

// ---- an unreachable endpoint, wrong credentials, a missing bucket -----------------------------

/**
 * Runs every operation against a broken backend and checks each rejects with BACKEND_UNAVAILABLE
 * naming `cause`, health says healthy: false with it, and, once `repair()` has run, nothing of
 * the failed calls is there and an object stored before is intact.
 */
async function brokenBackend(t, { breakIt, cause, repair = async () => {} }) {
  t.timeout(180_000);
  const server = await ownServer(t);
  const prefix = newPrefix();
  const good = server.backend('bucket', prefix);
  const goodPlane = await openPlane(t, { backends: [good] });
  const stored = randomBytes(3 * MiB);
  const storedAddress = (await goodPlane.ingestStream([stored], { hints: SHA256 })).primaryDigest;

  const badBackend = await breakIt(server, good);
  const dp = await openPlane(t, { backends: [badBackend] });
  const small = randomBytes(100 * KiB);
  const large = randomBytes(12 * MiB);
  const file = join(await mkdtemp(join(tmpdir(), 'dp-s3-faults-')), 'large');
  t.teardown(() => rm(file, { force: true, recursive: true }));
  await writeFile(file, large);
  const absent = sha256Address(small);
  const calls = {
    'ingestStream (small, one chunk)': () => dp.ingestStream([small], { hints: SHA256 }),
    'ingestStream (small, several chunks)': () => dp.ingestStream([small.subarray(0, 50 * KiB), small.subarray(50 * KiB)], { hints: SHA256 }),
    'ingestStream (large, multipart)': () => dp.ingestStream([large.subarray(0, 6 * MiB), large.subarray(6 * MiB)], { hints: SHA256 }),
    'ingestStream (large, with a sizeHint)': () => dp.ingestStream([large.subarray(0, 6 * MiB), large.subarray(6 * MiB)], { hints: { ...SHA256, sizeHint: large.length } }),
    ingestFile: () => dp.ingestFile(file, { hints: SHA256 }),
    'serveObject (absent)': () => dp.serveObject(absent),
    'serveObject (a range of an absent one)': () => dp.serveObject(absent, { byteRange: [0, 10] }),
    'serveObject (stored)': () => dp.serveObject(storedAddress),
    'verifyObject (absent)': () => dp.verifyObject(absent),
    'verifyObject (stored)': () => dp.verifyObject(storedAddress),
    'deleteObject (absent)': () => dp.deleteObject(absent),
    'deleteObject (stored)': () => dp.deleteObject(storedAddress),
  };
  for (const [what, call] of Object.entries(calls)) {
    const outcome = await settle(call());
    assertUnavailable(t, outcome, cause, what);
    t.true(outcome.ms < SETTLE_MS, `${what}: settled in ${outcome.ms} ms`);
  }

  const health = await settle(dp.backendHealth());
  t.is(health.status, 'resolved', `backendHealth resolves: ${health.error?.message}`);
  t.false(health.value?.healthy);
  const [bucket] = health.value?.backends ?? [];
  t.like(bucket, { backendId: 'bucket', kind: 's3', healthy: false });
  t.true(Number.isInteger(bucket?.latencyMicros), 'latency reported');
  t.regex(bucket?.detail ?? '', cause, `the health detail names the cause: ${bucket?.detail}`);

  // Configuration (or server) right again, same server and prefix: nothing of the failed calls.
  await repair(server);
  const fixed = await openPlane(t, { backends: [good] });
  for (const content of [small, large]) {
    const address = sha256Address(content);
    await assertNotFound(t, fixed.serveObject(address), `after the repair: serveObject ${formatContentAddress(address)}`);
    await assertNotFound(t, fixed.verifyObject(address), `after the repair: verifyObject ${formatContentAddress(address)}`);
  }
  t.deepEqual(await listKeys(server, `${prefix}staging/`), [], 'no staging key');
  t.deepEqual(await listUploads(server, prefix), [], 'no incomplete multipart upload');
  t.deepEqual(await listKeys(server, `${prefix}objects/`), [`${prefix}objects/sha256/${storedAddress.hex.slice(0, 2)}/${storedAddress.hex.slice(2, 4)}/${storedAddress.hex}`],
    'under objects/ only the object stored before');
  t.true((await fixed.verifyObject(storedAddress)).verified, 'which the failed delete left intact');
  return { server, dp };
}

test.serial('Errors (in-process, s3): unreachable endpoint (a closed port): every operation BACKEND_UNAVAILABLE naming it, health unhealthy; nothing partial after the server is back', async (t) => {
  const { dp } = await brokenBackend(t, {
    breakIt: async (server, good) => {
      await server.kill(); // its port is closed now; start() brings it back on the same one
      return good;
    },
    cause: /connection refused|tcp connect/i,
    repair: (server) => server.start(),
  });
  // The same data plane recovers by itself once the server is back.
  const content = randomBytes(64 * KiB);
  const result = await dp.ingestStream([content]);
  t.true((await collect(await dp.serveObject(result.primaryDigest))).equals(content), 'the same data plane works again');
});

test.serial('Errors (in-process, s3): wrong secret key: every operation BACKEND_UNAVAILABLE naming the signature failure, health unhealthy; nothing written', async (t) => {
  await brokenBackend(t, {
    breakIt: async (server, good) => ({ ...good, secretAccessKey: `${good.secretAccessKey}-wrong` }),
    cause: /SignatureDoesNotMatch|403 Forbidden/,
  });
});

test.serial('Errors (in-process, s3): unknown access key id: every operation BACKEND_UNAVAILABLE naming it, health unhealthy; nothing written', async (t) => {
  await brokenBackend(t, {
    breakIt: async (server, good) => ({ ...good, accessKeyId: 'AKIA-NO-SUCH-KEY' }),
    // AWS says InvalidAccessKeyId; versitygw XAdminUserNotFound ("No user exists with the provided access key ID").
    cause: /InvalidAccessKeyId|XAdminUserNotFound|access key/i,
  });
});

test.serial('Errors (in-process, s3): missing bucket: every operation BACKEND_UNAVAILABLE naming it, health unhealthy; no bucket created, nothing written', async (t) => {
  const { server } = await brokenBackend(t, {
    breakIt: async (server, good) => ({ ...good, bucket: 'no-such-bucket' }),
    cause: /NoSuchBucket|no-such-bucket/,
  });
  const response = await server.request('GET', '/no-such-bucket', { query: { 'list-type': '2' } });
  t.is(response.status, 404, 'the missing bucket was not created by any call');
});

// ---- two backends in one data plane ------------------------------------------------------------

test.serial('backendId (in-process, fs and s3): an fs and an s3 backend in one data plane: routing by backendId, the default, UNKNOWN_BACKEND, health per backend', async (t) => {
  t.timeout(180_000);
  const server = await ownServer(t);
  const prefix = newPrefix();
  const root = await mkdtemp(join(tmpdir(), 'dp-s3-faults-fs-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const fsBackend = { id: 'local', kind: 'fs', root, durable: false };
  const s3 = server.backend('bucket', prefix);
  const dp = await openPlane(t, { backends: [fsBackend, s3] }); // default: the first, 'local'
  const fsKeys = async () => (await readdir(join(root, 'objects'), { recursive: true, withFileTypes: true }))
    .filter((e) => e.isFile()).map((e) => e.name);
  const s3Keys = () => listKeys(server, `${prefix}objects/`);
  const locator = (hex) => `objects/blake3/${hex.slice(0, 2)}/${hex.slice(2, 4)}/${hex}`;

  // Ingest: to the default without a backendId, to the named one with it.
  const onFs = randomBytes(200 * KiB);
  const onS3 = randomBytes(10 * MiB + 5); // multipart on S3
  const fsResult = await dp.ingestStream([onFs.subarray(0, 1000), onFs.subarray(1000)]);
  t.like(fsResult.receipt, { backendId: 'local', locator: locator(fsResult.primaryDigest.hex), deduplicated: false });
  const s3Result = await dp.ingestStream([onS3.subarray(0, 5 * MiB), onS3.subarray(5 * MiB)], { hints: { backendId: 'bucket' } });
  t.like(s3Result.receipt, { backendId: 'bucket', locator: prefix + locator(s3Result.primaryDigest.hex), deduplicated: false });
  const file = join(root, '..', `${root.split('/').pop()}-source`);
  await writeFile(file, onFs);
  t.teardown(() => rm(file, { force: true }));
  const fileResult = await dp.ingestFile(file, { hints: { backendId: 'bucket' } });
  t.like(fileResult.receipt, { backendId: 'bucket', locator: prefix + locator(fsResult.primaryDigest.hex), deduplicated: false },
    'ingestFile routes too: the fs copy does not make it a dedup on s3');
  t.deepEqual(await fsKeys(), [fsResult.primaryDigest.hex], 'the fs backend holds only its object');
  t.deepEqual((await s3Keys()).sort(), [prefix + locator(fsResult.primaryDigest.hex), prefix + locator(s3Result.primaryDigest.hex)].sort(),
    'the bucket holds only its objects');

  // Serve, verify: each backend answers for its own objects only.
  const s3Only = s3Result.primaryDigest;
  t.true((await collect(await dp.serveObject(s3Only, { backendId: 'bucket' }))).equals(onS3));
  t.true((await collect(await dp.serveObject(fsResult.primaryDigest))).equals(onFs), 'default backend serves its object');
  t.true((await collect(await dp.serveObject(fsResult.primaryDigest, { backendId: 'local' }))).equals(onFs));
  await assertNotFound(t, dp.serveObject(s3Only), 'an s3 object through the default (fs) backend');
  await assertNotFound(t, dp.serveObject(s3Only, { backendId: 'local' }), 'an s3 object through the fs backend');
  await assertNotFound(t, dp.verifyObject(s3Only), 'verify of an s3 object on the default backend');
  t.true((await dp.verifyObject(s3Only, { backendId: 'bucket' })).verified);
  t.true((await dp.verifyObject(fsResult.primaryDigest, { backendId: 'bucket' })).verified, 'the ingestFile copy on s3');
  t.true((await dp.verifyObject(fsResult.primaryDigest)).verified);

  // Delete: only on the backend named.
  t.like(await dp.deleteObject(s3Only), { backendId: 'local', deleted: false }, 'absent on the default backend');
  t.like(await dp.deleteObject(fsResult.primaryDigest, { backendId: 'bucket' }), { backendId: 'bucket', deleted: true });
  t.deepEqual(await fsKeys(), [fsResult.primaryDigest.hex], 'the fs copy is untouched by a delete on s3');
  await assertNotFound(t, dp.serveObject(fsResult.primaryDigest, { backendId: 'bucket' }), 'the deleted s3 copy');
  t.true((await dp.verifyObject(fsResult.primaryDigest, { backendId: 'local' })).verified);

  // Unknown backend ids: every operation, nothing written anywhere.
  const unknown = 'no-such-backend';
  const calls = {
    ingestStream: () => dp.ingestStream([randomBytes(1000)], { hints: { backendId: unknown } }),
    'ingestStream (several chunks)': () => dp.ingestStream([randomBytes(1000), randomBytes(1000)], { hints: { backendId: unknown } }),
    ingestFile: () => dp.ingestFile(file, { hints: { backendId: unknown } }),
    serveObject: () => dp.serveObject(s3Only, { backendId: unknown }),
    verifyObject: () => dp.verifyObject(s3Only, { backendId: unknown }),
    deleteObject: () => dp.deleteObject(s3Only, { backendId: unknown }),
  };
  for (const [what, call] of Object.entries(calls)) {
    const outcome = await settle(call());
    t.is(outcome.status, 'rejected', `${what}: rejects`);
    t.true(outcome.error instanceof DataPlaneError, `${what}: a DataPlaneError`);
    t.is(outcome.error?.code, 'UNKNOWN_BACKEND', `${what}: ${outcome.error?.message}`);
    t.regex(outcome.error?.message ?? '', new RegExp(unknown), `${what}: the message names the id`);
  }
  t.deepEqual(await fsKeys(), [fsResult.primaryDigest.hex], 'nothing new on fs');
  t.deepEqual(await s3Keys(), [prefix + locator(s3Only.hex)], 'nothing new on s3');

  // Health: each backend, with its kind.
  const health = await dp.backendHealth();
  t.true(health.healthy);
  t.deepEqual(health.backends.map((b) => [b.backendId, b.kind, b.healthy]), [['local', 'fs', true], ['bucket', 's3', true]]);
  for (const backend of health.backends) t.true(Number.isInteger(backend.latencyMicros) && backend.latencyMicros >= 0);

  // A defaultBackend naming the s3 one routes calls without a backendId there.
  const s3Default = await openPlane(t, { backends: [fsBackend, s3], defaultBackend: 'bucket' });
  t.true((await collect(await s3Default.serveObject(s3Only))).equals(onS3), 'the default is the bucket now');
  const viaDefault = await s3Default.ingestStream([randomBytes(10 * KiB)]);
  t.is(viaDefault.receipt.backendId, 'bucket');
  t.like(await s3Default.deleteObject(viaDefault.primaryDigest), { backendId: 'bucket', deleted: true });

  // The s3 server down: health reports each, and the fs backend keeps working.
  await server.kill();
  const down = await dp.backendHealth();
  t.false(down.healthy, 'not all healthy');
  t.like(down.backends[0], { backendId: 'local', kind: 'fs', healthy: true });
  t.like(down.backends[1], { backendId: 'bucket', kind: 's3', healthy: false });
  t.regex(down.backends[1].detail ?? '', SERVER_GONE);
  const meanwhile = randomBytes(300 * KiB);
  const local = await dp.ingestStream([meanwhile.subarray(0, 100), meanwhile.subarray(100)]);
  t.is(local.receipt.backendId, 'local');
  t.true((await collect(await dp.serveObject(local.primaryDigest))).equals(meanwhile), 'fs serves while s3 is down');
  assertUnavailable(t, await settle(dp.serveObject(s3Only, { backendId: 'bucket' })), SERVER_GONE, 'the s3 backend meanwhile');
  assertUnavailable(t, await settle(dp.ingestStream([meanwhile], { hints: { backendId: 'bucket' } })), SERVER_GONE, 'an s3 ingest meanwhile');
  await server.start();
  t.true((await dp.verifyObject(s3Only, { backendId: 'bucket' })).verified, 'the s3 object is intact after the restart');
  await assertNotFound(t, dp.serveObject(local.primaryDigest, { backendId: 'bucket' }), 'the fs ingest did not reach s3');
});
