// Four ingests of a quarter of the large object at once (aggregate throughput), against one
// quarter ingested alone. 1 MiB chunks from memory.

import { chunksOf } from '../data.mjs';
import { ingested, MiB, timed, withFreshPlane } from './common.mjs';

export function concurrentCases({ sizeBytes, durableRows }) {
  const quarterMiB = sizeBytes / 4 / MiB;
  const durabilities = durableRows ? [false, true] : [false];
  return durabilities.flatMap((durable) => {
    const suffix = durable ? '.durable' : '';
    const tag = durable ? ' [durable]' : '';
    return [
      {
        id: `ours.alone${suffix}`,
        label: `ingestStream, one ${quarterMiB} MiB object alone${tag}`,
        group: 'ours',
        unit: 'GB/s',
        amount: sizeBytes / 4,
        durable,
        ceiling: 'ingest',
        run: (ctx) =>
          withFreshPlane(ctx, durable, async (dp) => {
            const { seconds, cpuSeconds, value } = await timed(() => dp.ingestStream(chunksOf(ctx.work.quarters[0], MiB)));
            return { seconds, cpuSeconds, digests: [ingested('quarter:0', value)] };
          }),
      },
      {
        id: `ours.four${suffix}`,
        label: `ingestStream, 4 x ${quarterMiB} MiB at once (aggregate)${tag}`,
        group: 'ours',
        unit: 'GB/s',
        amount: sizeBytes,
        durable,
        ceiling: 'ingest',
        peers: [`ours.alone${suffix}`],
        run: (ctx) =>
          withFreshPlane(ctx, durable, async (dp) => {
            const { seconds, cpuSeconds, value } = await timed(() =>
              Promise.all(ctx.work.quarters.map((quarter) => dp.ingestStream(chunksOf(quarter, MiB)))),
            );
            return { seconds, cpuSeconds, digests: value.map((result, q) => ingested(`quarter:${q}`, result)) };
          }),
      },
    ];
  });
}
