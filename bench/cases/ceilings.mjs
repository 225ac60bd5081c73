// The ceilings: what one core's SHA-256 and a raw write to the same filesystem allow (and, for the
// durable rows, a raw write followed by fsync).

import { createHash } from 'node:crypto';
import { closeSync, fsyncSync, openSync, writeSync } from 'node:fs';
import path from 'node:path';
import { inFreshDir, MiB, timed } from './common.mjs';

export function ceilingCases({ sizeBytes, durableRows }) {
  return [
    {
      id: 'ceiling.sha256',
      label: "SHA-256, node:crypto, one core (createHash over the buffer)",
      group: 'ceiling',
      unit: 'GB/s',
      amount: sizeBytes,
      async run(ctx) {
        const { seconds, cpuSeconds, value } = await timed(() => createHash('sha256').update(ctx.work.big).digest('hex'));
        return { seconds, cpuSeconds, digests: [{ object: 'big', sha256: value, size: sizeBytes }] };
      },
    },
    ...[false, true].filter((durable) => !durable || durableRows).map((durable) => ({
      id: durable ? 'ceiling.write.durable' : 'ceiling.write',
      label: durable ? 'raw write + fsync, 1 MiB writeSync loop' : 'raw write, 1 MiB writeSync loop (open to close)',
      group: 'ceiling',
      unit: 'GB/s',
      amount: sizeBytes,
      durable,
      run: (ctx) =>
        inFreshDir(ctx, 'write', async (dir) => {
          const file = path.join(dir, 'raw');
          const big = ctx.work.big;
          const { seconds, cpuSeconds } = await timed(() => {
            const fd = openSync(file, 'w');
            try {
              for (let offset = 0; offset < big.length; offset += MiB) {
                const length = Math.min(MiB, big.length - offset);
                if (writeSync(fd, big, offset, length) !== length) throw new Error('raw write: short write');
              }
              if (durable) fsyncSync(fd);
            } finally {
              closeSync(fd);
            }
          });
          return { seconds, cpuSeconds, digests: [] };
        }),
    })),
  ];
}
