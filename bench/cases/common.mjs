// Helpers shared by the cases: timing, fresh stores, and the digests a contender reports.

import { mkdtemp, rm } from 'node:fs/promises';
import path from 'node:path';
import { openDataPlane } from '@artifactstore/data-plane';

export const MiB = 1024 * 1024;

/**
 * Seconds taken by `fn` (which may be async), the CPU seconds the whole process (every thread,
 * user + system) spent meanwhile, and what `fn` returned.
 */
export async function timed(fn) {
  const cpu = process.cpuUsage();
  const start = performance.now();
  const value = await fn();
  const seconds = (performance.now() - start) / 1000;
  const used = process.cpuUsage(cpu);
  return { seconds, cpuSeconds: (used.user + used.system) / 1e6, value };
}

/** A new empty directory under the run's work directory, removed after `fn` whatever happens. */
export async function inFreshDir(ctx, name, fn) {
  const dir = await mkdtemp(path.join(ctx.workDir, `${name}-`));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * A data plane over a fresh fs store (nothing to deduplicate against), closed and removed after;
 * opened by this package's `openDataPlane`, or by `open` (a baseline's).
 */
export function withFreshPlane(ctx, durable, fn, open = openDataPlane) {
  return inFreshDir(ctx, durable ? 'ours-durable' : 'ours', async (root) => {
    const dp = await open({ backends: [{ id: 'bench', kind: 'fs', root, durable }] });
    try {
      return await fn(dp, root);
    } finally {
      await dp.close();
    }
  });
}

/** The digests of one of our ingests, as the checks compare them. */
export function ingested(object, result) {
  if (result.receipt.deduplicated) {
    throw new Error(`${object}: the ingest reported deduplicated = true, but every sample's content is new`);
  }
  if (result.primaryDigest.algorithm !== 'blake3' || result.sha256Digest.algorithm !== 'sha256') {
    throw new Error(`${object}: unexpected digest algorithms ${result.primaryDigest.algorithm}/${result.sha256Digest.algorithm}`);
  }
  return { object, sha256: result.sha256Digest.hex, blake3: result.primaryDigest.hex, size: result.sizeBytes };
}

/** Reads a stream (a serve, a file's read stream) to its end; resolves the number of bytes. */
export async function drain(iterable) {
  let bytes = 0;
  for await (const chunk of iterable) bytes += chunk.length;
  return bytes;
}

/** Runs `fn(i)` for i in [0, count) with at most `width` calls under way at once. */
export async function pool(width, count, fn) {
  let next = 0;
  const lanes = Array.from({ length: Math.min(width, count) }, async () => {
    while (next < count) await fn(next++);
  });
  await Promise.all(lanes);
}
