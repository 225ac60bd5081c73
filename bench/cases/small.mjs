// Our 4 KiB objects: one after another, and 16 at a time (objects/s); with --baseline, one after
// another by the package at an earlier commit too. Each object is handed over as a one-chunk async
// iterable, as a caller holding a small buffer would.

import { single } from '../data.mjs';
import { ingested, pool, timed, withFreshPlane } from './common.mjs';

export function smallCases({ objects, durableRows, baseline }) {
  const durabilities = durableRows ? [false, true] : [false];
  const ours = durabilities.flatMap((durable) =>
    [1, 16].map((width) => ({
      id: `ours.small.${width === 1 ? 'sequential' : `x${width}`}${durable ? '.durable' : ''}`,
      label: `ingestStream, ${objects} x 4 KiB ${width === 1 ? 'one after another' : `${width} at a time`}${durable ? ' [durable]' : ''}`,
      group: 'ours',
      unit: 'objects/s',
      amount: objects,
      durable,
      peers: [...(baseline && width === 1 && !durable ? ['baseline.small.sequential'] : []), 'peer.plain.small', 'peer.cacache.small'],
      run: (ctx) => withFreshPlane(ctx, durable, (dp) => ingestSmall(ctx, dp, width)),
    })),
  );
  return baseline ? [baselineCase(objects, baseline), ...ours] : ours;
}

/** The same 4 KiB ingests one after another, by the package at an earlier commit (--baseline). */
function baselineCase(objects, { commit, openDataPlane }) {
  return {
    id: 'baseline.small.sequential',
    label: `ingestStream, ${objects} x 4 KiB one after another, at ${commit} (--baseline)`,
    group: 'peer',
    unit: 'objects/s',
    amount: objects,
    run: (ctx) => withFreshPlane(ctx, false, (dp) => ingestSmall(ctx, dp, 1), openDataPlane),
  };
}

/**
 * Ingests the workload's 4 KiB objects into `dp`, `width` at a time, with ingestStream's `options`:
 * the timing and the digests.
 */
export async function ingestSmall(ctx, dp, width, options = undefined) {
  const small = ctx.work.smallObjects;
  const results = new Array(small.length);
  const { seconds, cpuSeconds } = await timed(() =>
    pool(width, small.length, async (i) => {
      results[i] = await dp.ingestStream(single(small[i]), options);
    }),
  );
  return { seconds, cpuSeconds, digests: results.map((result, i) => ingested(`small:${i}`, result)) };
}
