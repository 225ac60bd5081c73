// The catalogue (SPEC Part 2): statObject by BLAKE3 and by SHA-256 one after another, findMissing
// of 10,000 addresses (half held), listObjects of a store of many small objects (objects/s, and
// the RSS it grows by), and scrub of the large object beside verifyObject of it.
// The stores are made once for the run (untimed): `prepareCatalogue`.

import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { formatContentAddress, openDataPlane } from '@artifactstore/data-plane';
import { pool, timed } from './common.mjs';

const FIND_MISSING = 10_000;

/** A store of `listObjects` objects of 8 bytes each, and the addresses of the workload's small objects stored in it. */
export async function prepareCatalogue(ctx, { listObjects }) {
  const root = path.join(ctx.workDir, 'catalogue-store');
  await mkdir(root);
  const dp = await openDataPlane({ backends: [{ id: 'bench', kind: 'fs', root, durable: false }] });
  const small = new Array(ctx.work.smallObjects.length);
  await pool(16, small.length, async (i) => {
    small[i] = await dp.ingestStream([ctx.work.smallObjects[i]]);
  });
  const filler = Buffer.alloc(8);
  await pool(16, Math.max(0, listObjects - small.length), async (i) => {
    const bytes = Buffer.from(filler);
    bytes.writeBigUInt64LE(BigInt(i));
    await dp.ingestStream([bytes]);
  });
  return { dp, root, small, count: Math.max(listObjects, small.length), close: () => dp.close() };
}

/** Lists the whole catalogue store, checking the order and the count. */
export async function listAll({ dp, count }) {
  let listed = 0;
  let previous = '';
  for await (const info of dp.listObjects()) {
    const address = formatContentAddress(info.contentAddress);
    if (address <= previous) throw new Error(`listObjects: ${address} after ${previous}`);
    previous = address;
    listed++;
  }
  if (listed !== count) throw new Error(`listObjects: ${listed} objects listed, the store holds ${count}`);
}

function expectSame(what, info, result) {
  if (info.sha256Digest.hex !== result.sha256Digest.hex || info.sizeBytes !== result.sizeBytes) {
    throw new Error(`${what}: ${JSON.stringify(info)} is not the object ingested as ${JSON.stringify(result)}`);
  }
}

/** statObject of each of the workload's small objects, one after another, by `by` ('blake3' or 'sha256'): timed, then each answer checked. */
export async function statEach(dp, small, by) {
  const digest = by === 'blake3' ? 'primaryDigest' : 'sha256Digest';
  const { seconds, cpuSeconds, value } = await timed(async () => {
    const infos = new Array(small.length);
    for (let i = 0; i < small.length; i++) infos[i] = await dp.statObject(small[i][digest]);
    return infos;
  });
  value.forEach((info, i) => expectSame(`statObject ${i}`, info, small[i]));
  return { seconds, cpuSeconds, digests: [] };
}

export function catalogueCases({ objects, sizeBytes, listObjects }) {
  const stat = (by) => ({
    id: `ours.stat.${by}`,
    label: `statObject by ${by === 'blake3' ? 'BLAKE3' : 'SHA-256'}, ${objects} objects one after another`,
    group: 'ours',
    unit: 'objects/s',
    amount: objects,
    run: (ctx) => statEach(ctx.catalogue.dp, ctx.catalogue.small, by),
  });
  return [
    stat('blake3'),
    stat('sha256'),
    {
      id: 'ours.findMissing',
      label: `findMissing of ${FIND_MISSING.toLocaleString('en-US')} addresses (half held), one call`,
      group: 'ours',
      unit: 'objects/s',
      amount: FIND_MISSING,
      async run(ctx) {
        const { dp, small } = ctx.catalogue;
        const absent = (i) => `blake3:${i.toString(16).padStart(64, 'f')}`;
        const addresses = Array.from({ length: FIND_MISSING }, (_, i) =>
          i % 2 ? formatContentAddress(small[(i >> 1) % small.length].sha256Digest) : absent(i),
        );
        const { seconds, cpuSeconds, value } = await timed(() => dp.findMissing(addresses));
        if (value.length !== FIND_MISSING / 2) throw new Error(`findMissing: ${value.length} missing, expected ${FIND_MISSING / 2}`);
        return { seconds, cpuSeconds, digests: [] };
      },
    },
    {
      id: 'ours.list',
      label: `listObjects of a store of ${listObjects.toLocaleString('en-US')} objects`,
      group: 'ours',
      unit: 'objects/s',
      amount: listObjects,
      async run(ctx) {
        const { seconds, cpuSeconds } = await timed(() => listAll(ctx.catalogue));
        return { seconds, cpuSeconds, digests: [] };
      },
    },
    {
      id: 'ours.scrub',
      label: 'scrub of the store holding the large object',
      group: 'ours',
      unit: 'GB/s',
      amount: sizeBytes,
      peers: ['ours.verify'],
      async run(ctx) {
        const read = ctx.read;
        const { seconds, cpuSeconds, value } = await timed(() => read.dp.scrub());
        if (!value.complete || value.corrupt.length || value.checkedBytes !== read.size) {
          throw new Error(`scrub: ${JSON.stringify(value)} does not match the store (one object of ${read.size} bytes)`);
        }
        return { seconds, cpuSeconds, digests: [] };
      },
    },
  ];
}
