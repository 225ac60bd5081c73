// Reading back: verifyObject, serveObject whole and in 1 MiB ranges (checked against the object's
// tree, the default, and with verify: false), against fs.createReadStream consuming the same stored
// file. One object is stored once for all of these rows.

import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { openDataPlane } from '@artifactstore/data-plane';
import { chunksOf } from '../data.mjs';
import { drain, MiB, timed } from './common.mjs';

/** Stores the workload's current large object in a store kept for the whole run; checks it reads back intact. */
export async function prepareReadObject(ctx) {
  const root = path.join(ctx.workDir, 'read-store');
  await mkdir(root);
  const dp = await openDataPlane({ backends: [{ id: 'bench', kind: 'fs', root, durable: false }] });
  const result = await dp.ingestStream(chunksOf(ctx.work.big, MiB));
  const sha256 = createHash('sha256').update(ctx.work.big).digest('hex');
  if (result.sha256Digest.hex !== sha256) throw new Error(`read object: ingest gave SHA-256 ${result.sha256Digest.hex}, node:crypto ${sha256}`);
  const served = createHash('sha256');
  let size = 0;
  for await (const chunk of await dp.serveObject(result.primaryDigest)) {
    served.update(chunk);
    size += chunk.length;
  }
  if (size !== ctx.work.sizeBytes || served.digest('hex') !== sha256) {
    throw new Error('read object: serveObject did not give back the bytes that were ingested');
  }
  const hex = result.primaryDigest.hex;
  const tree = await stat(path.join(root, 'trees', 'blake3', hex.slice(0, 2), `${hex}.obao4`));
  const file = path.join(root, result.receipt.locator);
  return { dp, root, address: result.primaryDigest, file, sha256, size, treeBytes: tree.size, close: () => dp.close() };
}

function expectBytes(what, got, want) {
  if (got !== want) throw new Error(`${what}: read ${got} bytes, expected ${want}`);
}

/** [start, end) ranges of 1 MiB covering `size`. */
function ranges(size) {
  const out = [];
  for (let start = 0; start < size; start += MiB) out.push([start, Math.min(start + MiB, size)]);
  return out;
}

export function readCases({ sizeBytes }) {
  return [
    {
      id: 'ours.verify',
      label: 'verifyObject',
      group: 'ours',
      unit: 'GB/s',
      amount: sizeBytes,
      ceiling: 'sha256',
      async run(ctx) {
        const read = ctx.read;
        const { seconds, cpuSeconds, value } = await timed(() => read.dp.verifyObject(read.address));
        if (!value.verified || value.actualSha256Digest.hex !== read.sha256 || value.actualSizeBytes !== read.size) {
          throw new Error(`verifyObject: ${JSON.stringify(value)} does not match the stored object (SHA-256 ${read.sha256})`);
        }
        return { seconds, cpuSeconds, digests: [] };
      },
    },
    {
      id: 'ours.serve',
      label: 'serveObject, whole object',
      group: 'ours',
      unit: 'GB/s',
      amount: sizeBytes,
      peers: ['ours.serve.unverified', 'peer.readStream', 'peer.readStream.1MiB'],
      async run(ctx) {
        const read = ctx.read;
        const { seconds, cpuSeconds, value } = await timed(async () => drain(await read.dp.serveObject(read.address)));
        expectBytes('serveObject', value, read.size);
        return { seconds, cpuSeconds, digests: [] };
      },
    },
    {
      id: 'ours.serve.unverified',
      label: 'serveObject, whole object, verify: false',
      group: 'ours',
      unit: 'GB/s',
      amount: sizeBytes,
      async run(ctx) {
        const read = ctx.read;
        const { seconds, cpuSeconds, value } = await timed(async () => drain(await read.dp.serveObject(read.address, { verify: false })));
        expectBytes('serveObject verify: false', value, read.size);
        return { seconds, cpuSeconds, digests: [] };
      },
    },
    ...[true, false].map((verify) => ({
      id: verify ? 'ours.serve.ranges' : 'ours.serve.ranges.unverified',
      label: `serveObject, 1 MiB byte ranges one after another${verify ? '' : ', verify: false'}`,
      group: 'ours',
      unit: 'GB/s',
      amount: sizeBytes,
      peers: verify ? ['ours.serve.ranges.unverified', 'peer.readStream.ranges'] : [],
      async run(ctx) {
        const read = ctx.read;
        const { seconds, cpuSeconds, value } = await timed(async () => {
          let bytes = 0;
          for (const byteRange of ranges(read.size)) bytes += await drain(await read.dp.serveObject(read.address, { byteRange, verify }));
          return bytes;
        });
        expectBytes('serveObject ranges', value, read.size);
        return { seconds, cpuSeconds, digests: [] };
      },
    })),
    {
      id: 'peer.readStream',
      label: 'fs.createReadStream(file), default 64 KiB reads',
      group: 'peer',
      unit: 'GB/s',
      amount: sizeBytes,
      async run(ctx) {
        const { seconds, cpuSeconds, value } = await timed(() => drain(createReadStream(ctx.read.file)));
        expectBytes('fs.createReadStream', value, ctx.read.size);
        return { seconds, cpuSeconds, digests: [] };
      },
    },
    {
      id: 'peer.readStream.1MiB',
      label: 'fs.createReadStream(file, { highWaterMark: 1 MiB })',
      group: 'peer',
      unit: 'GB/s',
      amount: sizeBytes,
      async run(ctx) {
        const { seconds, cpuSeconds, value } = await timed(() => drain(createReadStream(ctx.read.file, { highWaterMark: MiB })));
        expectBytes('fs.createReadStream 1 MiB', value, ctx.read.size);
        return { seconds, cpuSeconds, digests: [] };
      },
    },
    {
      id: 'peer.readStream.ranges',
      label: 'fs.createReadStream(file, { start, end }), 1 MiB ranges',
      group: 'peer',
      unit: 'GB/s',
      amount: sizeBytes,
      async run(ctx) {
        const { seconds, cpuSeconds, value } = await timed(async () => {
          let bytes = 0;
          for (const [start, end] of ranges(ctx.read.size)) bytes += await drain(createReadStream(ctx.read.file, { start, end: end - 1 }));
          return bytes;
        });
        expectBytes('fs.createReadStream ranges', value, ctx.read.size);
        return { seconds, cpuSeconds, digests: [] };
      },
    },
  ];
}
