// Shared test helpers: sizes, random bytes, stream helpers, the one assertion for rejections, and
// a child process with a data plane of its own. Stores are made in stores.mjs; the conformance
// suite's openers and test declarations are in conformance.mjs.

import { spawn } from 'node:child_process';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { DataPlaneError } from '@artifactstore/data-plane';
import { PACKAGE_ROOT } from './fixtures/support.mjs';

export const KiB = 1024;
export const MiB = 1024 * KiB;

/**
 * Asserts that `promise` rejects with a DataPlaneError of `code`, and resolves that error
 * (undefined when it did not reject so). `message`: a RegExp the error's message matches, or a
 * string (or list of strings) it contains. `what` names the case in failure reports.
 */
export async function rejects(t, promise, code, { message, what } = {}) {
  const error = await t.throwsAsync(promise, { instanceOf: DataPlaneError, code }, what);
  if (!error) return undefined;
  for (const expected of [message ?? []].flat()) {
    const label = `${what ? `${what}: ` : ''}message ${JSON.stringify(error.message)} names ${expected}`;
    if (expected instanceof RegExp) t.regex(error.message, expected, label);
    else t.true(error.message.includes(expected), label);
  }
  return error;
}

setFlagsFromString('--expose-gc');
const collectGarbage = runInNewContext('gc');

/**
 * This process's memory (process.memoryUsage()) right after a full collection: what is still held.
 * Without one, spent Buffers pile up as garbage until V8 sees some 64 MiB of such external memory.
 */
export function liveMemoryUsage() {
  collectGarbage();
  return process.memoryUsage();
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

/** Yields `buffer` in chunks of `chunkSize` (zero-copy subarrays). */
export async function* chunked(buffer, chunkSize = 64 * KiB) {
  for (let offset = 0; offset < buffer.length; offset += chunkSize) {
    yield buffer.subarray(offset, Math.min(buffer.length, offset + chunkSize));
  }
}

/** A source of `parts` that stops after `before` parts until `release()` is called. */
export function stalling(parts, before) {
  let release;
  const stall = new Promise((resolve) => {
    release = resolve;
  });
  const state = { pulled: 0, finished: false, release };
  state.source = (async function* () {
    try {
      for (const part of parts) {
        if (state.pulled === before) await stall;
        state.pulled++;
        yield part;
      }
    } finally {
      state.finished = true;
    }
  })();
  return state;
}

/** Reads an ObjectStream whole. */
export async function collect(stream) {
  const parts = [];
  for await (const chunk of stream) parts.push(chunk);
  return Buffer.concat(parts);
}

/**
 * Runs `body` in a child process (where an unhandled rejection cannot take the test process down)
 * with `dp` open on a fresh fs store; an unhandled rejection prints "UNHANDLED <code or message>"
 * and sets exit code 3. After `body`, the child waits 300 ms for late rejections, closes the store
 * and prints "done". Resolves { code, stdout, stderr }.
 */
export function runWithFreshStore(body) {
  const script = `
    import { openDataPlane } from '@artifactstore/data-plane';
    import { mkdtemp, rm } from 'node:fs/promises';
    import { tmpdir } from 'node:os';
    import { join } from 'node:path';
    process.on('unhandledRejection', (error) => {
      console.log('UNHANDLED ' + (error?.code ?? error?.message ?? String(error)));
      process.exitCode = 3;
    });
    const root = await mkdtemp(join(tmpdir(), 'dp-child-'));
    const dp = await openDataPlane({ backends: [{ id: 'local', kind: 'fs', root, durable: false }] });
    ${body}
    await new Promise((resolve) => setTimeout(resolve, 300));
    await dp.close();
    await rm(root, { recursive: true, force: true });
    console.log('done');
  `;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { cwd: PACKAGE_ROOT });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (data) => (stdout += data));
    child.stderr.on('data', (data) => (stderr += data));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}
