// Stores for the tests, made apart from any data plane: a fresh fs root or a fresh prefix in the
// bucket of a real S3 server (versitygw). A store is a backend configuration plus what a test may
// look at from outside the plane; a plane is opened over it separately (conformance.mjs).

import test from 'ava';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startS3Server } from '../scripts/s3-server.mjs';

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

/** Keys under `prefix` in the test server's bucket (first 1000). */
export async function listKeys(server, prefix) {
  const response = await server.request('GET', `/${server.bucket}`, { query: { 'list-type': '2', prefix } });
  if (!response.ok) throw new Error(`listing ${prefix}: HTTP ${response.status} ${await response.text()}`);
  return [...(await response.text()).matchAll(/<Key>([^<]*)<\/Key>/g)].map((m) => m[1]);
}

let storeCount = 0;

/**
 * One factory per backend kind. Each resolves a store:
 *   kind, backend   the backend's configuration (id: `id`, default 'local' for fs, 'bucket' for s3);
 *   leftovers()     temporary data still present (fs: <root>/tmp, s3: <prefix>staging/), which
 *                   must be [] once every ingest has ended;
 *   stored()        what lies under objects/ (fs: the entries of <root>/objects, s3: the keys under
 *                   <prefix>objects/), [] while the store holds no object;
 *   holds(locator)  whether the object a receipt's locator names is in this store (on s3 the
 *                   locator is a key of the shared bucket: one under another prefix is not);
 *   replace(locator, bytes)  puts other bytes where an object is, as corruption would (fs: the
 *                   file, s3: the key; the object's recorded SHA-256 and times stay as they were);
 *   read(locator)   the bytes at a locator (a file or key), undefined when there is none;
 *   drop(locator)   removes the file or key at a locator;
 *   remove()        deletes the store;
 * and fs: root; s3: server, prefix.
 */
const FACTORIES = {
  async fs({ id = 'local', durable = false } = {}) {
    const root = await mkdtemp(join(tmpdir(), 'dp-test-'));
    return {
      root,
      backend: { id, kind: 'fs', root, durable },
      leftovers: () => readdir(join(root, 'tmp')),
      stored: () => readdir(join(root, 'objects')),
      holds: (locator) => stat(join(root, locator)).then(() => true, () => false),
      replace: (locator, bytes) => writeFile(join(root, locator), bytes),
      read: (locator) => readFile(join(root, locator)).catch((e) => (e.code === 'ENOENT' ? undefined : Promise.reject(e))),
      drop: (locator) => rm(join(root, locator)),
      remove: () => rm(root, { recursive: true, force: true }),
    };
  },
  async s3({ id = 'bucket' } = {}) {
    const server = await s3();
    const prefix = `store-${process.pid}-${++storeCount}/`;
    return {
      server,
      prefix,
      backend: server.backend(id, prefix),
      leftovers: () => listKeys(server, `${prefix}staging/`),
      stored: () => listKeys(server, `${prefix}objects/`),
      holds: async (locator) => locator.startsWith(prefix) && (await listKeys(server, locator)).includes(locator),
      async replace(locator, bytes) {
        const response = await server.request('PUT', `/${server.bucket}/${locator}`, { body: bytes });
        if (!response.ok) throw new Error(`replacing ${locator}: HTTP ${response.status} ${await response.text()}`);
      },
      async read(locator) {
        const response = await server.request('GET', `/${server.bucket}/${locator}`);
        if (response.status === 404) return undefined;
        if (!response.ok) throw new Error(`reading ${locator}: HTTP ${response.status} ${await response.text()}`);
        return Buffer.from(await response.arrayBuffer());
      },
      async drop(locator) {
        const response = await server.request('DELETE', `/${server.bucket}/${locator}`);
        if (!response.ok) throw new Error(`deleting ${locator}: HTTP ${response.status} ${await response.text()}`);
      },
      remove: async () => {},
    };
  },
};

/** A fresh store of `kind` (see FACTORIES), removed when test `t` ends. */
export async function newStore(t, kind = 'fs', options = {}) {
  const factory = FACTORIES[kind];
  if (!factory) throw new Error(`no test set-up for backend kind ${kind}`);
  const store = { kind, ...(await factory(options)) };
  t.teardown(() => store.remove());
  return store;
}
