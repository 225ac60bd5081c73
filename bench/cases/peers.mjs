// The peers: what a Node user writes today. A plain pipeline (SHA-256 from node:crypto, BLAKE3 from
// hash-wasm, fs.createWriteStream to a temporary file, rename into objects/aa/bb/<blake3 hex>), and
// cacache.put with sha256 integrity. Large objects and 4 KiB objects one after another.

import { createHash, randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { once } from 'node:events';
import { finished } from 'node:stream/promises';
import path from 'node:path';
import cacache from 'cacache';
import { createBLAKE3 } from 'hash-wasm';
import { chunksOf, single } from '../data.mjs';
import { inFreshDir, MiB, timed } from './common.mjs';

/** The plain Node pipeline: hash both digests while streaming to a temp file, then rename it into place. */
export async function plainIngest(root, source) {
  const temp = path.join(root, 'tmp', randomUUID());
  const sha256 = createHash('sha256');
  const blake3 = await createBLAKE3();
  const out = createWriteStream(temp);
  let size = 0;
  try {
    for await (const chunk of source) {
      sha256.update(chunk);
      blake3.update(chunk);
      size += chunk.length;
      if (!out.write(chunk)) await once(out, 'drain');
    }
    out.end();
    await finished(out);
  } catch (error) {
    out.destroy();
    await rm(temp, { force: true });
    throw error;
  }
  const hex = blake3.digest('hex');
  const dir = path.join(root, 'objects', hex.slice(0, 2), hex.slice(2, 4));
  await mkdir(dir, { recursive: true });
  await rename(temp, path.join(dir, hex));
  return { sha256: sha256.digest('hex'), blake3: hex, size };
}

/** The hex SHA-256 inside an ssri integrity string such as "sha256-<base64>". */
function sha256OfIntegrity(integrity) {
  const text = String(integrity);
  const match = /^sha256-([A-Za-z0-9+/=]+)$/.exec(text);
  if (!match) throw new Error(`cacache returned integrity ${JSON.stringify(text)}, not one sha256`);
  return Buffer.from(match[1], 'base64').toString('hex');
}

const CACACHE_OPTIONS = { algorithms: ['sha256'] };

async function plainRoot(dir) {
  await mkdir(path.join(dir, 'tmp'), { recursive: true });
  return dir;
}

export function peerCases({ sizeBytes, objects }) {
  return [
    {
      id: 'peer.plain',
      label: 'plain Node pipeline, 1 MiB chunks from memory',
      group: 'peer',
      unit: 'GB/s',
      amount: sizeBytes,
      ceiling: 'ingest',
      run: (ctx) =>
        inFreshDir(ctx, 'plain', async (dir) => {
          const root = await plainRoot(dir);
          const { seconds, cpuSeconds, value } = await timed(() => plainIngest(root, chunksOf(ctx.work.big, MiB)));
          return { seconds, cpuSeconds, digests: [{ object: 'big', ...value }] };
        }),
    },
    {
      id: 'peer.cacache',
      label: 'cacache.put (sha256 integrity), whole buffer',
      group: 'peer',
      unit: 'GB/s',
      amount: sizeBytes,
      ceiling: 'ingest',
      run: (ctx) =>
        inFreshDir(ctx, 'cacache', async (dir) => {
          const { seconds, cpuSeconds, value } = await timed(() => cacache.put(dir, 'big', ctx.work.big, CACACHE_OPTIONS));
          return { seconds, cpuSeconds, digests: [{ object: 'big', sha256: sha256OfIntegrity(value), size: sizeBytes }] };
        }),
    },
    {
      id: 'peer.plain.small',
      label: `plain Node pipeline, ${objects} x 4 KiB one after another`,
      group: 'peer',
      unit: 'objects/s',
      amount: objects,
      run: (ctx) =>
        inFreshDir(ctx, 'plain-small', async (dir) => {
          const root = await plainRoot(dir);
          const small = ctx.work.smallObjects;
          const digests = new Array(small.length);
          const { seconds, cpuSeconds } = await timed(async () => {
            for (let i = 0; i < small.length; i++) digests[i] = { object: `small:${i}`, ...(await plainIngest(root, single(small[i]))) };
          });
          return { seconds, cpuSeconds, digests };
        }),
    },
    {
      id: 'peer.cacache.small',
      label: `cacache.put (sha256), ${objects} x 4 KiB one after another`,
      group: 'peer',
      unit: 'objects/s',
      amount: objects,
      run: (ctx) =>
        inFreshDir(ctx, 'cacache-small', async (dir) => {
          const small = ctx.work.smallObjects;
          const integrities = new Array(small.length);
          const { seconds, cpuSeconds } = await timed(async () => {
            for (let i = 0; i < small.length; i++) integrities[i] = await cacache.put(dir, `object-${i}`, small[i], CACACHE_OPTIONS);
          });
          const digests = integrities.map((integrity, i) => ({ object: `small:${i}`, sha256: sha256OfIntegrity(integrity), size: small[i].length }));
          return { seconds, cpuSeconds, digests };
        }),
    },
  ];
}
