// The command line and the metrics: `artifactstore put FILE` and `artifactstore get -o FILE` as a
// shell runs them (a new process each, its start-up included) beside ingestFile and serveObject
// into a file in this process; and 4 KiB ingests one after another on a plane opened with
// metrics off, beside the default (on) row `ours.small.sequential`.

import { execFile } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { openDataPlane } from '@artifactstore/data-plane';
import { ingestSmall } from './small.mjs';
import { inFreshDir, ingested, timed } from './common.mjs';

const CLI = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'artifactstore.js');

function artifactstore(args) {
  return new Promise((resolve, reject) =>
    execFile(process.execPath, [CLI, ...args], { maxBuffer: 1 << 20 }, (error, stdout, stderr) =>
      error ? reject(new Error(`artifactstore ${args.join(' ')}: ${stderr || error.message}`)) : resolve(stdout),
    ),
  );
}

async function expectSize(file, want) {
  const { size } = await stat(file);
  if (size !== want) throw new Error(`${file}: ${size} bytes, expected ${want}`);
}

export function cliCases({ sizeBytes, objects }) {
  return [
    {
      id: 'cli.put',
      label: '`artifactstore put FILE` (a new process)',
      group: 'ours',
      unit: 'GB/s',
      amount: sizeBytes,
      peers: ['ours.file'],
      run: (ctx) =>
        inFreshDir(ctx, 'cli-put', async (root) => {
          const { seconds, cpuSeconds, value } = await timed(() => artifactstore(['--root', root, 'put', ctx.work.sourcePath, '--json']));
          return { seconds, cpuSeconds, digests: [ingested('big', JSON.parse(value))] };
        }),
    },
    {
      id: 'ours.serve.toFile',
      label: 'serveObject whole, piped into a file',
      group: 'ours',
      unit: 'GB/s',
      amount: sizeBytes,
      run: (ctx) =>
        inFreshDir(ctx, 'serve-file', async (dir) => {
          const out = path.join(dir, 'out.bin');
          const { seconds, cpuSeconds } = await timed(async () => pipeline(await ctx.read.dp.serveObject(ctx.read.address), createWriteStream(out)));
          await expectSize(out, ctx.read.size);
          await rm(out);
          return { seconds, cpuSeconds, digests: [] };
        }),
    },
    {
      id: 'cli.get',
      label: '`artifactstore get ADDRESS -o FILE` (a new process)',
      group: 'ours',
      unit: 'GB/s',
      amount: sizeBytes,
      peers: ['ours.serve.toFile', 'ours.serve'],
      run: (ctx) =>
        inFreshDir(ctx, 'cli-get', async (dir) => {
          const out = path.join(dir, 'out.bin');
          const address = `${ctx.read.address.algorithm}:${ctx.read.address.hex}`;
          const { seconds, cpuSeconds } = await timed(() => artifactstore(['--root', ctx.read.root, 'get', address, '-o', out]));
          await expectSize(out, ctx.read.size);
          return { seconds, cpuSeconds, digests: [] };
        }),
    },
    {
      id: 'ours.small.sequential.metricsOff',
      label: `ingestStream, ${objects} x 4 KiB one after another, metrics off`,
      group: 'ours',
      unit: 'objects/s',
      amount: objects,
      peers: ['ours.small.sequential'],
      run: (ctx) =>
        inFreshDir(ctx, 'metrics-off', async (root) => {
          const dp = await openDataPlane({ backends: [{ id: 'bench', kind: 'fs', root, durable: false }], metrics: false });
          try {
            return await ingestSmall(ctx, dp, 1);
          } finally {
            await dp.close();
          }
        }),
    },
  ];
}
