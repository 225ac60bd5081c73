// SPEC Part 2, The daemon: "If the daemon goes away, calls under way reject with
// BACKEND_UNAVAILABLE, and the next call connects again, so a restarted daemon needs no restarted
// client." The daemon is SIGKILLed at random moments while one client object ingests and serves,
// 20 times (DP_SOAK=1: 200); after each kill the calls under way must reject with
// BACKEND_UNAVAILABLE within a second, and once it is started again on the same socket the same
// client object must find every object it was told was stored, whole, and no temporary file left.

import test from 'ava';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { connectDataPlane } from '@artifactstore/data-plane';
import { startDaemon } from './fixtures/daemon.mjs';
import { sleep, tempDir } from './fixtures/support.mjs';
import { bytes, KiB, MiB } from './helpers.mjs';

const KILLS = process.env.DP_SOAK ? 200 : 20;
const between = (lo, hi) => lo + Math.floor(Math.random() * (hi - lo));

test.serial(`the daemon SIGKILLed mid-ingest and mid-serve ${KILLS} times: calls reject BACKEND_UNAVAILABLE within a second, and the same client finds every stored object whole after a restart`, async (t) => {
  const base = await tempDir(t, 'dp-daemon-crash-');
  const root = join(base, 'store');
  const config = { backends: [{ id: 'local', kind: 'fs', root, durable: true }] };
  let daemon = await startDaemon(config, {}, { dir: base });
  const dp = await connectDataPlane({ socketPath: daemon.socketPath });
  t.teardown(async () => {
    await dp.close();
    await daemon.stop();
  });
  const stored = new Map(); // address text -> sha256 hex
  const big = await dp.ingestStream([bytes(8 * MiB, 1)]);
  stored.set(`${big.primaryDigest.algorithm}:${big.primaryDigest.hex}`, big.sha256Digest.hex);
  let rejections = 0;
  let slowest = 0;
  for (let kill = 0; kill < KILLS; kill++) {
    let stop = false;
    const settled = [];
    const track = (promise) => settled.push(promise.then(() => undefined, (error) => error));
    const ingests = (async () => {
      for (let i = 0; !stop; i++) {
        const result = await dp.ingestStream((function* () {
          for (let c = 0; c < 8; c++) yield bytes(between(1, 256) * KiB, kill * 1000 + i * 10 + c);
        })());
        stored.set(`${result.primaryDigest.algorithm}:${result.primaryDigest.hex}`, result.sha256Digest.hex);
      }
    })();
    const serves = (async () => {
      while (!stop) for await (const chunk of await dp.serveObject(big.primaryDigest)) if (stop) break;
    })();
    track(ingests);
    track(serves);
    await sleep(between(20, 300));
    const killedAt = performance.now();
    await daemon.kill();
    stop = true;
    const errors = await Promise.all(settled);
    slowest = Math.max(slowest, performance.now() - killedAt);
    for (const error of errors.filter(Boolean)) {
      t.is(error.code, 'BACKEND_UNAVAILABLE', `after kill ${kill}: ${error.message}`);
      rejections++;
    }
    t.true(performance.now() - killedAt < 1000, `calls settled ${Math.round(performance.now() - killedAt)} ms after kill ${kill}`);
    daemon = await startDaemon(config, {}, { dir: base });
    for (const [address, sha256] of stored) {
      const verified = await dp.verifyObject(address);
      if (!verified.verified || verified.actualSha256Digest.hex !== sha256) t.fail(`after kill ${kill}: ${address} ${JSON.stringify(verified)}`);
    }
    // A durable store's dead ingests leave at most named temporary files, which the reopen sweeps.
    t.deepEqual(await readdir(join(root, 'tmp')), [], `no temporary file after kill ${kill}`);
  }
  t.log(`${KILLS} kills; ${rejections} calls under way rejected with BACKEND_UNAVAILABLE, the slowest ${Math.round(slowest)} ms after the kill; ${stored.size} objects verified after each restart`);
});
