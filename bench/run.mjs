// `npm run bench`: throughput of @artifactstore/data-plane beside the ceilings (SHA-256 on one core,
// a raw write) and beside what Node users write today (a plain node:crypto + hash-wasm + write
// stream pipeline, cacache), in one process, on the same bytes, in interleaved repetitions.
// And S3 rows: our s3 backend beside @aws-sdk/client-s3 + lib-storage, on one versitygw started for
// the run on 127.0.0.1 and stopped at its end (--no-s3 skips them).
// Prints a table, writes bench/results/latest.json and latest.svg (--quick: latest-quick.*).
// Exits non-zero when an operation fails or a digest disagrees with node:crypto / hash-wasm;
// never because of a time.

import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, USAGE } from './args.mjs';
import { loadBaseline } from './baseline.mjs';
import { catalogueCases, prepareCatalogue } from './cases/catalogue.mjs';
import { ceilingCases } from './cases/ceilings.mjs';
import { cliCases } from './cases/cli.mjs';
import { codecCases } from './cases/codec.mjs';
import { concurrentCases } from './cases/concurrent.mjs';
import { daemonCases } from './cases/daemon.mjs';
import { ingestCases } from './cases/ingest.mjs';
import { peerCases } from './cases/peers.mjs';
import { prepareReadObject, readCases } from './cases/reads.mjs';
import { s3Cases, s3Sizes, startS3 } from './cases/s3.mjs';
import { smallCases } from './cases/small.mjs';
import { uploadCases } from './cases/uploads.mjs';
import { checkRepetition } from './checks.mjs';
import { MiB, Workload } from './data.mjs';
import { defaultRoot, machineInfo, workDirectory } from './env.mjs';
import { gc } from './gc.mjs';
import { memoryCases } from './memory.mjs';
import { buildRows, formatBytes, renderMemory, renderTable, renderTargets } from './report.mjs';
import { renderSvg } from './svg.mjs';
import { evaluateTargets } from './targets.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));

/** Every contender, in table order, each with its section. */
function contenders(params, baseline) {
  const sizes = { sizeBytes: params.objectBytes, objects: params.smallObjects, durableRows: params.durableRows, listObjects: params.listObjects, baseline };
  const s3 = params.s3 ? s3Cases(params.s3) : [];
  const byId = new Map(
    [...ceilingCases(sizes), ...peerCases(sizes), ...ingestCases(sizes), ...readCases(sizes), ...smallCases(sizes), ...concurrentCases(sizes), ...catalogueCases(sizes), ...uploadCases(sizes), ...codecCases(sizes), ...daemonCases(sizes), ...cliCases(sizes), ...s3].map(
      (c) => [c.id, c],
    ),
  );
  const s3Label = params.s3 && formatBytes(params.s3.s3Bytes);
  const sections = [
    ['Ceilings', ['ceiling.sha256', 'ceiling.write', 'ceiling.write.durable']],
    [`Ingest of one ${params.objectLabel} object, durable: false`, ['peer.plain', 'peer.cacache', 'ours.stream.1MiB', 'ours.stream.64KiB', 'ours.stream.readStream', 'ours.file']],
    [`Ingest of one ${params.objectLabel} object, durable: true`, ['ours.stream.1MiB.durable', 'ours.stream.64KiB.durable', 'ours.stream.readStream.durable', 'ours.file.durable']],
    [`Reading one ${params.objectLabel} object`, ['ours.verify', 'ours.serve', 'ours.serve.unverified', 'peer.readStream', 'peer.readStream.1MiB', 'ours.serve.ranges', 'ours.serve.ranges.unverified', 'peer.readStream.ranges']],
    ['4 KiB objects', ['peer.plain.small', 'peer.cacache.small', 'baseline.small.sequential', 'ours.small.sequential', 'ours.small.x16', 'ours.small.sequential.durable', 'ours.small.x16.durable']],
    ['The command line, and the cost of metrics', ['cli.put', 'ours.serve.toFile', 'cli.get', 'ours.small.sequential.metricsOff']],
    ['Concurrent ingests', ['ours.alone', 'ours.four', 'ours.alone.durable', 'ours.four.durable']],
    ['The catalogue', ['ours.stat.blake3', 'ours.stat.sha256', 'ours.findMissing', 'ours.list', 'ours.scrub']],
    [`Resumable uploads of one ${params.objectLabel} object`, ['ours.upload.16MiB', 'ours.upload.commit']],
    ['CBOR codec (the daemon\'s control messages)', ['ours.cbor.encode.IngestResult', 'ours.cbor.decode.IngestResult', 'ours.cbor.encode.ObjectInfo', 'ours.cbor.decode.ObjectInfo']],
    [`Through the daemon (connectDataPlane), ${params.objectLabel} object and ${params.smallObjects} x 4 KiB`, ['daemon.stream.1MiB', 'daemon.serve', 'daemon.small.sequential', 'daemon.small.x16', 'daemon.stat.blake3']],
    [`S3: ingest of one ${s3Label} object`, ['peer.s3.upload', 'ours.s3.ingest']],
    [`S3: serving one ${s3Label} object whole`, ['peer.s3.get', 'ours.s3.serve']],
    [`S3: ${params.s3?.s3Objects} x 4 KiB objects one after another`, ['peer.s3.small.put', 'ours.s3.small.ingest', 'peer.s3.small.get', 'ours.s3.small.serve']],
  ];
  const ordered = [];
  for (const [section, ids] of sections) {
    for (const id of ids) {
      const c = byId.get(id);
      if (!c) continue; // durable rows skipped
      byId.delete(id);
      ordered.push({ ...c, section });
    }
  }
  if (byId.size) throw new Error(`contenders without a section: ${[...byId.keys()].join(', ')}`);
  return ordered;
}

/** This round's order: the list rotated, by a different stride each round, so no row always runs first or after the same one. */
function roundOrder(list, round) {
  const shift = (round * Math.ceil(list.length / 5)) % list.length;
  return [...list.slice(shift), ...list.slice(0, shift)];
}

const progress = (text) => process.stderr.write(`${text}\n`);

async function main() {
  let args;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (error) {
    console.error(`bench: ${error.message}`);
    return 2;
  }
  if (args.help) {
    console.log(USAGE);
    return 0;
  }
  const root = path.resolve(args.root ?? defaultRoot());
  let workDir;
  let cleanup;
  try {
    ({ dir: workDir, cleanup } = workDirectory(root));
  } catch (error) {
    console.error(`bench: cannot make a work directory under ${root}: ${error.message}`);
    return 1;
  }
  const params = {
    objectBytes: args.sizeBytes,
    objectLabel: formatBytes(args.sizeBytes),
    smallObjects: args.objects,
    listObjects: args.listObjects,
    reps: args.reps,
    warmupRounds: 1,
    durableRows: args.durable,
    quick: args.quick,
  };
  if (args.s3) params.s3 = s3Sizes(params);
  let baseline;
  try {
    baseline = args.baseline && (await loadBaseline(args.baseline));
  } catch (error) {
    console.error(`bench: ${error.message}`);
    return 2;
  }
  if (baseline) params.baseline = { dir: baseline.dir, commit: baseline.commit };
  const machine = machineInfo(root);
  const loadStart = os.loadavg();
  const ctx = { workDir };
  let status = 0;
  try {
    progress(
      `bench: ${params.objectLabel} objects, ${params.smallObjects} x 4 KiB, ${params.warmupRounds} warm-up + ${params.reps} measured rounds, ` +
        `store under ${workDir} (${machine.filesystem}); load average ${loadStart.map((l) => l.toFixed(2)).join(' ')}`,
    );
    ctx.work = new Workload({ sizeBytes: args.sizeBytes, objects: args.objects, sourcePath: path.join(workDir, 'source.bin') });
    ctx.work.stamp(-1);
    ctx.read = await prepareReadObject(ctx);
    const catalogueStarted = performance.now();
    ctx.catalogue = await prepareCatalogue(ctx, params);
    progress(`bench: a store of ${ctx.catalogue.count} objects for the catalogue rows (made in ${((performance.now() - catalogueStarted) / 1000).toFixed(1)} s)`);
    if (params.s3) {
      const t = performance.now();
      try {
        ctx.s3 = await startS3(params.s3, ctx.work);
      } catch (error) {
        throw new Error(`cannot start the S3 server for the S3 rows (--no-s3 skips them): ${error.message}`, { cause: error });
      }
      progress(`bench: S3 rows against ${ctx.s3.info.server} (started in ${((performance.now() - t) / 1000).toFixed(1)} s)`);
    }
    const list = contenders(params, baseline);
    const samples = new Map(list.map((c) => [c.id, { rates: [], seconds: [], cpuSeconds: [] }]));
    let digestsChecked = 0;
    const started = performance.now();
    for (let round = 0; round < params.warmupRounds + params.reps; round++) {
      const warmup = round < params.warmupRounds;
      ctx.work.stamp(round);
      const references = await ctx.work.references();
      if (ctx.s3) references.s3 = await ctx.s3.reference(ctx.work);
      const reported = [];
      for (const contender of roundOrder(list, round)) {
        gc();
        let outcome;
        try {
          outcome = await contender.run(ctx);
        } catch (error) {
          throw new Error(`${contender.id} (${contender.label}) failed: ${error.stack ?? error}`);
        }
        reported.push({ id: contender.id, digests: outcome.digests });
        if (!warmup) {
          const sample = samples.get(contender.id);
          sample.rates.push(contender.amount / outcome.seconds / (contender.unit === 'GB/s' ? 1e9 : 1));
          sample.seconds.push(outcome.seconds);
          sample.cpuSeconds.push(outcome.cpuSeconds);
        }
      }
      digestsChecked += checkRepetition(reported, references, ctx.work.sizeBytes);
      progress(`bench: ${warmup ? 'warm-up round' : `round ${round - params.warmupRounds + 1}/${params.reps}`} done, ${((performance.now() - started) / 1000).toFixed(1)} s`);
    }
    gc();
    const memory = await memoryCases(ctx);
    const loadEnd = os.loadavg();

    const { rows, ceilings } = buildRows(list, samples);
    const rowsById = new Map(rows.map((r) => [r.id, r]));
    const treeShare = ctx.read ? ctx.read.treeBytes / ctx.read.size : undefined;
    const targets = evaluateTargets(rowsById, ceilings, memory, { treeShare });
    const results = {
      schema: 1,
      date: new Date().toISOString(),
      command: `node bench/run.mjs ${process.argv.slice(2).join(' ')}`.trim(),
      machine,
      load: { start: loadStart, end: loadEnd },
      params,
      notes: [
        'Content differs per repetition: before each round the first 8 bytes of every object (the large one, its quarters, each 4 KiB object) are rewritten, in memory and in the source file; every sample also gets a fresh, empty store, so nothing can be deduplicated.',
        'Within a round every contender sees the same bytes. Rounds are interleaved: each runs every row once, in an order rotated from round to round; one warm-up round is not counted.',
        'Every digest is checked each round: SHA-256 against node:crypto, BLAKE3 against hash-wasm; receipts must say deduplicated = false.',
        `BLAKE3 for the plain Node pipeline: hash-wasm (WebAssembly, SIMD).`,
        'GB/s = 10^9 bytes per second; objects/s counts 4 KiB objects.',
        ...(ctx.s3
          ? [
              `S3 rows: ${ctx.s3.info.server}; peer ${ctx.s3.info.sdk} with the SDK's default checksums (CRC32 on PutObject and UploadPart) and Upload's default 5 MiB parts, 4 at a time; ours sends x-amz-checksum-sha256 with every PUT and part, 8 MiB parts, 2 at a time.`,
              'S3 rows: ours writes under ours/, the SDK under peer/, each deleting what a sample stored after it (untimed); the serve rows of both read the same objects, stored by ours under read/ once for the run. Served bytes are compared chunk by chunk with a copy of the stored bytes inside the timing (memcmp), on both sides.',
              'S3 rows: CPU counts this process only, not the server\'s.',
            ]
          : []),
      ],
      ceilings,
      rows,
      targets,
      memory,
      checks: { digestsChecked, ok: true },
      seconds: (performance.now() - started) / 1000,
    };

    const out = path.resolve(args.out ?? path.join(here, 'results'));
    const base = args.quick ? 'latest-quick' : 'latest';
    mkdirSync(out, { recursive: true });
    writeFileSync(path.join(out, `${base}.json`), `${JSON.stringify(results, null, 2)}\n`);
    writeFileSync(path.join(out, `${base}.svg`), renderSvg(results));

    const loads = (l) => l.map((v) => v.toFixed(2)).join(' ');
    console.log(
      [
        `@artifactstore/data-plane benchmark, ${results.date}${args.quick ? ' (--quick)' : ''}`,
        `machine: ${machine.cpuModel} (${machine.cpuVendor ?? '?'} family/model ${machine.cpuFamilyModel}; ${machine.cpuFlags.join(' ')}), ${machine.cores} cores, ${formatBytes(machine.memoryBytes)}, Node ${machine.node}, ${machine.kernel}`,
        `store: ${machine.root} (${machine.filesystem}); commit ${machine.commit ?? 'unknown'}; load average at start ${loads(loadStart)}, at end ${loads(loadEnd)}`,
        ...(ctx.s3 ? [`s3: ${ctx.s3.info.server}; peer ${ctx.s3.info.sdk}`] : []),
        `workload: ${params.objectLabel} objects, ${params.smallObjects} x 4 KiB objects${params.s3 ? ` (S3 rows: ${formatBytes(params.s3.s3Bytes)}, ${params.s3.s3Objects} x 4 KiB)` : ''}; ${params.reps} measured rounds after ${params.warmupRounds} warm-up; median, min - max and IQR per row`,
        'content differs per repetition (first 8 bytes of every object rewritten each round) and every sample writes to a fresh store',
        `${digestsChecked} digests checked against node:crypto SHA-256 and hash-wasm BLAKE3: all match`,
        '',
        renderTable(results),
        '',
        renderMemory(memory),
        '',
        renderTargets(targets, args.quick),
        '',
        `wrote ${path.join(out, `${base}.json`)} and ${base}.svg (${results.seconds.toFixed(1)} s)`,
      ].join('\n'),
    );
  } catch (error) {
    console.error(`bench: FAILED: ${error.stack ?? error}`);
    status = 1;
  } finally {
    try {
      await ctx.read?.close();
    } catch {}
    try {
      await ctx.catalogue?.close();
    } catch {}
    try {
      await ctx.s3?.close();
    } catch (error) {
      console.error(`bench: stopping the S3 server: ${error.message}`);
    }
    cleanup();
  }
  return status;
}

process.exit(await main());
