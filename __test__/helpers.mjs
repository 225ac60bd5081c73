// Shared test set-up: temporary stores, random bytes, stream helpers. Tests that every backend
// must pass are declared with `backendTest`, which runs them once per backend kind (the
// conformance suite): they may only use the public API and the `store` fields below.

import test from 'ava';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDataPlane } from '@artifactstore/data-plane';

export const KiB = 1024;
export const MiB = 1024 * KiB;

/** Backend kinds the conformance suite runs against. */
export const BACKEND_KINDS = ['fs'];

/**
 * Opens a data plane over a fresh temporary store of `kind`.
 * Returns { dp, kind, backendId, root, close, leftovers }:
 * - root: the fs root (fs only);
 * - leftovers(): names of temporary files/keys still present (must be [] after any ingest ends).
 */
export async function openStore(kind = 'fs', options = {}) {
  if (kind !== 'fs') throw new Error(`no test set-up for backend kind ${kind}`);
  const root = await mkdtemp(join(tmpdir(), 'dp-test-'));
  const backend = { id: 'local', kind: 'fs', root, durable: options.durable ?? false };
  const dp = await openDataPlane({ backends: [backend] });
  return {
    dp,
    kind,
    backendId: 'local',
    root,
    config: { backends: [backend] },
    async leftovers() {
      return readdir(join(root, 'tmp'));
    },
    async close() {
      await dp.close();
      await rm(root, { recursive: true, force: true });
    },
  };
}

/** Declares a test that runs once per backend kind with a fresh store, closed afterwards. */
export function backendTest(title, body, options = {}) {
  for (const kind of BACKEND_KINDS) {
    test(`${title} [${kind}]`, async (t) => {
      const store = await openStore(kind, options);
      try {
        await body(t, store);
      } finally {
        await store.close();
      }
    });
  }
}

/** Deterministic pseudo-random bytes (fast for large sizes). */
export function bytes(size, seed = 1) {
  const out = Buffer.allocUnsafe(size);
  let x = seed >>> 0 || 1;
  let i = 0;
  for (; i + 4 <= size; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out.writeUInt32LE(x >>> 0, i);
  }
  for (; i < size; i++) out[i] = (x >>> (8 * (i & 3))) & 0xff;
  return out;
}

export { randomBytes };

/** Yields `buffer` in chunks of `chunkSize` (zero-copy subarrays). */
export async function* chunked(buffer, chunkSize = 64 * KiB) {
  for (let offset = 0; offset < buffer.length; offset += chunkSize) {
    yield buffer.subarray(offset, Math.min(buffer.length, offset + chunkSize));
  }
}

/** Reads an ObjectStream whole. */
export async function collect(stream) {
  const parts = [];
  for await (const chunk of stream) parts.push(chunk);
  return Buffer.concat(parts);
}
