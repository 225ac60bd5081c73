// Peak resident memory growth during a large ingestStream and during a serveObject read by a slow
// consumer: process.memoryUsage().rss sampled every 10 ms, max minus the RSS at the start (after a
// full GC). The kernel's own high-water mark (VmHWM, reset through /proc/self/clear_refs) is
// reported beside it where Linux allows, since it also catches peaks between samples.

import { createReadStream, readFileSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { chunksOf } from './data.mjs';
import { gc } from './gc.mjs';
import { connectDataPlane } from '@artifactstore/data-plane';
import { listAll } from './cases/catalogue.mjs';
import { inFreshDir, ingested, MiB, withFreshPlane } from './cases/common.mjs';
import { startDaemon } from './cases/daemon.mjs';

const SAMPLE_MS = 10;

/** A figure of /proc/<pid>/status in bytes (VmRSS, VmHWM). */
function statusBytes(pid, field) {
  const match = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) * 1024 : undefined;
}

function resetHighWaterMark(pid) {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

/** RSS growth of this process while `fn` runs, from a start after a full GC. */
async function measure(fn) {
  gc();
  await sleep(20);
  gc();
  return measureProcess('self', fn);
}

/** RSS growth of process `pid` (`self`: this one) while `fn` runs. */
async function measureProcess(pid, fn) {
  const rss = () => (pid === 'self' ? process.memoryUsage().rss : statusBytes(pid, 'VmRSS'));
  const base = rss();
  const hwmReset = resetHighWaterMark(pid);
  let peak = base;
  let samples = 0;
  const timer = setInterval(() => {
    samples++;
    peak = Math.max(peak, rss());
  }, SAMPLE_MS);
  const start = performance.now();
  try {
    await fn();
  } finally {
    clearInterval(timer);
  }
  const seconds = (performance.now() - start) / 1000;
  peak = Math.max(peak, rss());
  const hwm = hwmReset ? statusBytes(pid, 'VmHWM') : undefined;
  return {
    baseRssBytes: base,
    peakGrowthBytes: peak - base,
    hwmGrowthBytes: hwm === undefined ? undefined : Math.max(0, hwm - base),
    samples,
    seconds,
  };
}

const TRIALS = 3;

/** The trial with the highest peak, with every trial's figures beside it. */
function worst(trials) {
  const peak = trials.reduce((a, b) => (b.peakGrowthBytes > a.peakGrowthBytes ? b : a));
  const hwm = trials.map((t) => t.hwmGrowthBytes);
  return {
    ...peak,
    trials: trials.map((t) => t.peakGrowthBytes),
    hwmTrials: hwm,
    hwmGrowthBytes: hwm.includes(undefined) ? undefined : Math.max(...hwm),
  };
}

/**
 * The memory measurements, each repeated TRIALS times in rotation (the figure moves with GC and
 * allocator timing, so the worst trial is reported); `ctx.read` is the stored object.
 */
export async function memoryCases(ctx) {
  const runs = { ingest: [], serve: [], peer: [], list: [], daemonServe: [], daemonIngests: [] };
  for (let trial = 0; trial < TRIALS; trial++) {
    const one = await memoryTrial(ctx);
    for (const key of Object.keys(runs)) runs[key].push(one[key]);
  }
  const work = ctx.work;
  return [
    { id: 'rss.ingestStream', label: `ingestStream of ${work.sizeBytes / MiB} MiB, 1 MiB chunks from memory`, objectBytes: work.sizeBytes, ...worst(runs.ingest) },
    { id: 'rss.serveSlow', label: `serveObject of ${ctx.read.size / MiB} MiB, consumer awaits a 1 ms timer per chunk`, objectBytes: ctx.read.size, ...worst(runs.serve) },
    { id: 'rss.readStreamSlow', label: `(peer) fs.createReadStream 1 MiB reads, same file and consumer`, objectBytes: ctx.read.size, ...worst(runs.peer) },
    { id: 'rss.listObjects', label: `listObjects of a store of ${ctx.catalogue.count.toLocaleString('en-US')} objects`, ...worst(runs.list) },
    { id: 'rss.daemon.serveSlow', label: `the daemon, serving ${ctx.read.size / MiB} MiB to a client awaiting a 1 ms timer per chunk`, objectBytes: ctx.read.size, ...worst(runs.daemonServe) },
    { id: 'rss.daemon.ingests', label: `the daemon, while ${DAEMON_CLIENTS} clients ingest ${clientObject(work.big, 0).length / MiB} MiB each at once`, objectBytes: DAEMON_CLIENTS * clientObject(work.big, 0).length, ...worst(runs.daemonIngests) },
  ];
}

async function memoryTrial(ctx) {
  const work = ctx.work;
  const ingest = await withFreshPlane(ctx, false, async (dp) => {
    let result;
    const figures = await measure(async () => {
      result = await dp.ingestStream(chunksOf(work.big, MiB));
    });
    ingested('big', result);
    return figures;
  });
  const slowly = async (what, stream) => {
    let bytes = 0;
    const figures = await measure(async () => {
      for await (const chunk of await stream()) {
        bytes += chunk.length;
        await sleep(1);
      }
    });
    if (bytes !== ctx.read.size) throw new Error(`${what} (slow consumer): read ${bytes} bytes, expected ${ctx.read.size}`);
    return figures;
  };
  const serve = await slowly('serveObject', () => ctx.read.dp.serveObject(ctx.read.address));
  // For comparison (no target): Node's own file stream with the same chunk size and consumer.
  const peer = await slowly('fs.createReadStream', () => createReadStream(ctx.read.file, { highWaterMark: MiB }));
  const list = await measure(() => listAll(ctx.catalogue));
  const { daemonServe, daemonIngests } = await daemonTrial(ctx, slowly);
  return { ingest, serve, peer, list, daemonServe, daemonIngests };
}

const DAEMON_CLIENTS = 64;
const DAEMON_INGEST_BYTES = 16 * MiB;
/** Each client's object: DAEMON_INGEST_BYTES of the large object (less for a small one), at an offset of its own. */
const clientObject = (big, i) => {
  const size = Math.min(DAEMON_INGEST_BYTES, big.length >> 1);
  const start = (i * 4096) % (big.length - size);
  return big.subarray(start, start + size);
};

/** The daemon's own RSS: serving the stored object to a slow client, and under 64 clients' ingests. */
function daemonTrial(ctx, slowly) {
  return inFreshDir(ctx, 'daemon-memory', async (dir) => {
    const reads = await startDaemon(dir, ctx.read.root);
    let daemonServe;
    try {
      const dp = await connectDataPlane({ socketPath: reads.socketPath });
      daemonServe = await measureProcess(reads.pid, () => slowly('serveObject through the daemon', () => dp.serveObject(ctx.read.address)));
      await dp.close();
    } finally {
      await reads.stop();
    }
    const writes = await startDaemon(dir, `${dir}/ingests`);
    try {
      const clients = await Promise.all(Array.from({ length: DAEMON_CLIENTS }, () => connectDataPlane({ socketPath: writes.socketPath })));
      const ingests = () => Promise.all(clients.map((dp, i) => dp.ingestStream(chunksOf(clientObject(ctx.work.big, i), MiB))));
      const daemonIngests = await measureProcess(writes.pid, ingests);
      await Promise.all(clients.map((dp) => dp.close()));
      return { daemonServe, daemonIngests };
    } finally {
      await writes.stop();
    }
  });
}
