// Shared test set-up: temporary stores, random bytes, stream helpers. Tests that every backend
// must pass are declared with `backendTest`, which runs them once per backend kind (the
// conformance suite): they may only use the public API and the `store` fields below.

import test from 'ava';
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDataPlane } from '@artifactstore/data-plane';
import { startS3Server } from '../scripts/s3-server.mjs';
import { PACKAGE_ROOT } from './fixtures/support.mjs';

export const KiB = 1024;
export const MiB = 1024 * KiB;

/** Backend kinds the conformance suite runs against: both, always (the S3 one is a real server). */
export const BACKEND_KINDS = ['fs', 's3'];

let s3Server;
/** One versitygw per test file, started on first use and stopped when the process exits. */
export function s3() {
  s3Server ??= startS3Server();
  return s3Server;
}
test.after.always(async () => {
  if (s3Server) await (await s3Server).stop();
});

let storeCount = 0;

/**
 * Opens a data plane over a fresh temporary store of `kind`.
 * Returns { dp, kind, backendId, config, close, leftovers, root (fs), server and prefix (s3) }:
 * leftovers() lists temporary files (fs: <root>/tmp) or staging keys (s3: <prefix>staging/) still
 * present, which must be [] once every ingest has ended.
 */
export async function openStore(kind = 'fs', options = {}) {
  const store = kind === 'fs' ? await fsStore(options) : kind === 's3' ? await s3Store() : undefined;
  if (!store) throw new Error(`no test set-up for backend kind ${kind}`);
  const config = { backends: [store.backend] };
  const dp = await openDataPlane(config);
  return {
    ...store,
    dp,
    kind,
    backendId: store.backend.id,
    config,
    async close() {
      await dp.close();
      await store.remove();
    },
  };
}

async function fsStore(options) {
  const root = await mkdtemp(join(tmpdir(), 'dp-test-'));
  return {
    root,
    backend: { id: 'local', kind: 'fs', root, durable: options.durable ?? false },
    leftovers: () => readdir(join(root, 'tmp')),
    remove: () => rm(root, { recursive: true, force: true }),
  };
}

async function s3Store() {
  const server = await s3();
  const prefix = `store-${process.pid}-${++storeCount}/`;
  return {
    server,
    prefix,
    backend: server.backend('bucket', prefix),
    leftovers: () => listKeys(server, `${prefix}staging/`),
    remove: async () => {},
  };
}

/** Keys under `prefix` in the test server's bucket (first 1000). */
export async function listKeys(server, prefix) {
  const response = await server.request('GET', `/${server.bucket}`, { query: { 'list-type': '2', prefix } });
  if (!response.ok) throw new Error(`listing ${prefix}: HTTP ${response.status} ${await response.text()}`);
  return [...(await response.text()).matchAll(/<Key>([^<]*)<\/Key>/g)].map((m) => m[1]);
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
