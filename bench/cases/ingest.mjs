// Our ingests of the large object: ingestStream from memory (1 MiB and 64 KiB chunks), ingestStream
// of fs.createReadStream, and ingestFile; with durable: false and, unless skipped, durable: true.

import { createReadStream } from 'node:fs';
import { chunksOf } from '../data.mjs';
import { ingested, MiB, timed, withFreshPlane } from './common.mjs';

const KiB = 1024;

const VARIANTS = [
  { key: 'stream.1MiB', label: 'ingestStream, 1 MiB chunks from memory', ingest: (dp, ctx) => dp.ingestStream(chunksOf(ctx.work.big, MiB)) },
  { key: 'stream.64KiB', label: 'ingestStream, 64 KiB chunks from memory', ingest: (dp, ctx) => dp.ingestStream(chunksOf(ctx.work.big, 64 * KiB)) },
  { key: 'stream.readStream', label: 'ingestStream(fs.createReadStream(file))', ingest: (dp, ctx) => dp.ingestStream(createReadStream(ctx.work.sourcePath)) },
  { key: 'file', label: 'ingestFile(file)', ingest: (dp, ctx) => dp.ingestFile(ctx.work.sourcePath) },
];

export function ingestCases({ sizeBytes, durableRows }) {
  const durabilities = durableRows ? [false, true] : [false];
  return durabilities.flatMap((durable) =>
    VARIANTS.map(({ key, label, ingest }) => ({
      id: `ours.${key}${durable ? '.durable' : ''}`,
      label: `${label}${durable ? ' [durable]' : ''}`,
      group: 'ours',
      unit: 'GB/s',
      amount: sizeBytes,
      durable,
      ceiling: 'ingest',
      peers: ['peer.plain', 'peer.cacache'],
      run: (ctx) =>
        withFreshPlane(ctx, durable, async (dp) => {
          const { seconds, cpuSeconds, value } = await timed(() => ingest(dp, ctx));
          return { seconds, cpuSeconds, digests: [ingested('big', value)] };
        }),
    })),
  );
}
