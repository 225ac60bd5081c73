// Through the daemon: the rows of our in-process plane that issue 10 compares, with the calls made
// by connectDataPlane over the daemon's Unix socket instead: ingestStream of the large object in
// 1 MiB chunks, serveObject whole, 4 KiB objects one after another and 16 at a time; and statObject
// one after another, as the catalogue rows make it. Each sample starts a daemon (untimed) over a
// fresh store, or over the store the in-process rows use (same bytes, same store), and stops it
// afterwards. CPU counts both processes.
//
// Before it is timed, each sample's daemon makes the same calls untimed (ingests go to a second
// backend of the same daemon, so the timed ones still store new content): the in-process rows run
// in a process the warm-up round has warmed, and a daemon runs for longer than its first calls.

import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { connectDataPlane } from '@artifactstore/data-plane';
import { chunksOf } from '../data.mjs';
import { drain, inFreshDir, ingested, MiB, timed } from './common.mjs';
import { statEach } from './catalogue.mjs';
import { ingestSmall } from './small.mjs';

// Where the build puts it (npm run build), as the tests use it.
const DAEMON = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'native', 'artifactstore-daemon');
const TICKS_PER_SECOND = 100; // USER_HZ, what /proc/<pid>/stat counts in

/** CPU seconds (user + system) process `pid` has used so far. */
function cpuSecondsOf(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND; // utime, stime
}

/** The backend of each sample's daemon that its untimed calls store into. */
const WARM_UP = 'warm-up';
/** How much of the large object the untimed calls of the large rows move. */
const WARM_UP_BYTES = 64 * MiB;

/**
 * Starts a daemon in `dir` over the fs store at `root` (its default backend) and an empty one for
 * the calls that warm it; resolves once it listens.
 */
export async function startDaemon(dir, root) {
  if (!existsSync(DAEMON)) throw new Error(`no daemon binary at ${DAEMON} (npm run build puts it there)`);
  const socketPath = path.join(dir, 'daemon.sock');
  const configPath = path.join(dir, 'daemon.json');
  const backends = [
    { id: 'bench', kind: 'fs', root, durable: false },
    { id: WARM_UP, kind: 'fs', root: path.join(dir, WARM_UP), durable: false },
  ];
  await writeFile(configPath, JSON.stringify({ socketPath, backends }));
  const child = spawn(DAEMON, ['--config', configPath], { stdio: ['ignore', 'ignore', 'pipe'] });
  const exited = new Promise((resolve) => child.on('exit', resolve));
  await new Promise((resolve, reject) => {
    let said = '';
    createInterface({ input: child.stderr }).on('line', (line) => {
      said += `${line}\n`;
      if (line.includes('listening')) resolve();
    });
    exited.then((code) => reject(new Error(`the daemon exited (${code}) before listening: ${said}`)));
  });
  return {
    socketPath,
    pid: child.pid,
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/**
 * Runs `warmUp(dp)`, then `fn(dp)`, with a client of a daemon over `root`, timing nothing itself:
 * `fn` returns `timed(...)`'s outcome, to which the daemon's CPU over the same span is added.
 */
async function throughDaemon(dir, root, warmUp, fn) {
  const daemon = await startDaemon(dir, root);
  try {
    const dp = await connectDataPlane({ socketPath: daemon.socketPath });
    try {
      await warmUp(dp);
      const before = cpuSecondsOf(daemon.pid);
      const outcome = await fn(dp);
      return { ...outcome, cpuSeconds: outcome.cpuSeconds + cpuSecondsOf(daemon.pid) - before };
    } finally {
      await dp.close();
    }
  } finally {
    await daemon.stop();
  }
}

/** A daemon over a fresh empty store (nothing to deduplicate against). */
const withFreshDaemon = (ctx, warmUp, fn) =>
  inFreshDir(ctx, 'daemon', (dir) => throughDaemon(dir, path.join(dir, 'store'), warmUp, fn));

export function daemonCases({ sizeBytes, objects }) {
  return [
    {
      id: 'daemon.stream.1MiB',
      label: 'ingestStream, 1 MiB chunks',
      group: 'ours',
      unit: 'GB/s',
      amount: sizeBytes,
      peers: ['ours.stream.1MiB'],
      run: (ctx) =>
        withFreshDaemon(ctx, warmUpIngest(ctx), async (dp) => {
          const { seconds, cpuSeconds, value } = await timed(() => dp.ingestStream(chunksOf(ctx.work.big, MiB)));
          return { seconds, cpuSeconds, digests: [ingested('big', value)] };
        }),
    },
    {
      id: 'daemon.serve',
      label: 'serveObject, whole object',
      group: 'ours',
      unit: 'GB/s',
      amount: sizeBytes,
      peers: ['ours.serve', 'peer.readStream.1MiB'],
      run: (ctx) =>
        inFreshDir(ctx, 'daemon-serve', (dir) =>
          throughDaemon(dir, ctx.read.root, warmUpServe(ctx), async (dp) => {
            const { seconds, cpuSeconds, value } = await timed(async () => drain(await dp.serveObject(ctx.read.address)));
            if (value !== ctx.read.size) throw new Error(`serveObject through the daemon: read ${value} bytes, expected ${ctx.read.size}`);
            return { seconds, cpuSeconds, digests: [] };
          }),
        ),
    },
    ...[1, 16].map((width) => {
      const key = width === 1 ? 'sequential' : `x${width}`;
      return {
        id: `daemon.small.${key}`,
        label: `ingestStream, ${objects} x 4 KiB ${width === 1 ? 'one after another' : `${width} at a time`}`,
        group: 'ours',
        unit: 'objects/s',
        amount: objects,
        peers: [`ours.small.${key}`],
        run: (ctx) => withFreshDaemon(ctx, (dp) => ingestSmall(ctx, dp, width, { hints: { backendId: WARM_UP } }), (dp) => ingestSmall(ctx, dp, width)),
      };
    }),
    {
      id: 'daemon.stat.blake3',
      label: `statObject by BLAKE3, ${objects} objects one after another`,
      group: 'ours',
      unit: 'objects/s',
      amount: objects,
      peers: ['ours.stat.blake3'],
      run: (ctx) => {
        const { root, small } = ctx.catalogue;
        const lookUp = (dp) => statEach(dp, small, 'blake3');
        return inFreshDir(ctx, 'daemon-stat', (dir) => throughDaemon(dir, root, lookUp, lookUp));
      },
    },
  ];
}

/** The untimed calls before a large ingest: the first part of the same bytes, into the other backend. */
const warmUpIngest = (ctx) => (dp) =>
  dp.ingestStream(chunksOf(ctx.work.big.subarray(0, WARM_UP_BYTES), MiB), { hints: { backendId: WARM_UP } });

/** The untimed calls before a whole serve: the first part of the same object. */
const warmUpServe = (ctx) => async (dp) => {
  const end = Math.min(WARM_UP_BYTES, ctx.read.size);
  await drain(await dp.serveObject(ctx.read.address, { byteRange: [0, end] }));
};
