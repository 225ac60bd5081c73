// The issues' targets (medians of one run, durable: false; issue 3: 1 GiB objects, issue 4, S3:
// 256 MiB and 4 KiB objects), checked against a run's rows. Reported, never asserted: a missed target
// does not fail the benchmark. The S3 targets are listed only when the S3 rows ran.

const MiB = 1024 * 1024;

/**
 * The rate of checking 1 MiB ranges the way a store without trees must (bb-storage): hashing from
 * byte 0 to each range's end. Over the ranges of an object of `size` bytes that is the whole
 * object's re-hash (`verifyRate`, GB/s) times (n + 1) / 2 for n ranges.
 */
function rehashFromZero(verifyRate, size) {
  if (verifyRate === undefined || size === undefined) return undefined;
  const n = Math.ceil(size / MiB);
  return (verifyRate * 2) / (n + 1);
}

/**
 * [{ text, value, need, unit, pass, margin }] from rows by id, the ceilings, the memory figures and
 * `treeShare` (the bytes of the read object's tree per byte of it).
 */
export function evaluateTargets(rowsById, ceilings, memory, { treeShare } = {}) {
  const median = (id) => rowsById.get(id)?.median;
  const ratio = (id, against) => {
    const a = median(id);
    return a !== undefined && against > 0 ? a / against : undefined;
  };
  const atLeast = (text, value, need, against) => ({
    text,
    against,
    value,
    need,
    kind: 'ratio',
    pass: value !== undefined && value >= need,
    margin: value === undefined ? undefined : value / need - 1,
  });
  const atMost = (text, bytes, limit) => ({
    text,
    value: bytes,
    need: limit,
    kind: 'bytes',
    pass: bytes !== undefined && bytes <= limit,
    margin: bytes === undefined ? undefined : 1 - bytes / limit,
  });
  const rate = (text, value, need) => ({ ...atLeast(text, value, need, 'objects/s'), kind: 'rate' });
  const share = (text, value, limit) => ({
    text,
    value,
    need: limit,
    kind: 'share',
    pass: value !== undefined && value <= limit,
    margin: value === undefined ? undefined : 1 - value / limit,
  });
  // The commit's time over the time the same object's appends took (seconds = amount / rate).
  const upload = rowsById.get('ours.upload.16MiB');
  const commitShare = upload && median('ours.upload.commit') ? 1 / median('ours.upload.commit') / (upload.amount / 1e9 / upload.median) : undefined;
  const rss = (id) => memory.find((m) => m.id === id)?.peakGrowthBytes;
  const s3 = rowsById.has('ours.s3.ingest')
    ? [
        atLeast('S3: ingestStream >= 1.5 x AWS SDK Upload + Node hashing', ratio('ours.s3.ingest', median('peer.s3.upload')), 1.5, 'AWS SDK Upload'),
        atLeast('S3: serveObject whole >= 1.5 x AWS SDK GetObject', ratio('ours.s3.serve', median('peer.s3.get')), 1.5, 'AWS SDK GetObject'),
        atLeast('S3: 4 KiB ingests >= 1.5 x AWS SDK PutObject', ratio('ours.s3.small.ingest', median('peer.s3.small.put')), 1.5, 'AWS SDK PutObject'),
        atLeast('S3: 4 KiB serves >= 1.5 x AWS SDK GetObject', ratio('ours.s3.small.serve', median('peer.s3.small.get')), 1.5, 'AWS SDK GetObject'),
        // Issue 10: the daemon against what a team shares a store through today, an S3 server on
        // loopback (the S3 rows' sizes: at most 256 MiB and 500 objects).
        atLeast('daemon: ingestStream >= 3 x versitygw + AWS SDK Upload', ratio('daemon.stream.1MiB', median('peer.s3.upload')), 3, 'versitygw + SDK'),
        atLeast('daemon: serveObject whole >= 1.5 x versitygw + AWS SDK GetObject', ratio('daemon.serve', median('peer.s3.get')), 1.5, 'versitygw + SDK'),
        atLeast('daemon: 4 KiB one after another >= 5 x versitygw + AWS SDK PutObject', ratio('daemon.small.sequential', median('peer.s3.small.put')), 5, 'versitygw + SDK'),
      ]
    : [];
  return [
    atLeast('ingestStream, 1 MiB chunks >= 0.8 x the lower ceiling', ratio('ours.stream.1MiB', ceilings.ingest), 0.8, ceilings.ingestName),
    atLeast('ingestStream, 1 MiB chunks >= 3 x the plain Node pipeline', ratio('ours.stream.1MiB', median('peer.plain')), 3, 'plain pipeline'),
    atLeast('ingestFile >= 0.9 x the lower ceiling', ratio('ours.file', ceilings.ingest), 0.9, ceilings.ingestName),
    // Issue 13: verified serving, and ingests that write trees.
    atLeast('ingestStream with trees, 1 MiB chunks >= 0.9 x the SHA-256 ceiling', ratio('ours.stream.1MiB', ceilings.sha256), 0.9, 'SHA-256'),
    atLeast('ingestFile with trees >= 0.9 x the SHA-256 ceiling', ratio('ours.file', ceilings.sha256), 0.9, 'SHA-256'),
    atLeast('serveObject whole, verified >= 0.85 x verify: false', ratio('ours.serve', median('ours.serve.unverified')), 0.85, 'verify: false'),
    atLeast('serveObject 1 MiB ranges, verified >= 0.8 x verify: false', ratio('ours.serve.ranges', median('ours.serve.ranges.unverified')), 0.8, 'verify: false'),
    atLeast('serveObject 1 MiB ranges, verified >= 100 x re-hashing from byte 0', ratio('ours.serve.ranges', rehashFromZero(median('ours.verify'), rowsById.get('ours.serve.ranges')?.amount)), 100, 'verifyObject up to each range'),
    share('trees: bytes per object byte <= 0.4%', treeShare, 0.004),
    atLeast('verifyObject >= 0.9 x the SHA-256 ceiling', ratio('ours.verify', ceilings.sha256), 0.9, 'SHA-256'),
    atLeast('serveObject whole >= 1.5 x fs.createReadStream', ratio('ours.serve', median('peer.readStream')), 1.5, 'fs.createReadStream'),
    atLeast('4 KiB one after another >= 10 x cacache.put', ratio('ours.small.sequential', median('peer.cacache.small')), 10, 'cacache.put'),
    atLeast('4 KiB one after another >= 4 x the plain Node pipeline', ratio('ours.small.sequential', median('peer.plain.small')), 4, 'plain pipeline'),
    atLeast('4 ingests at once: aggregate >= 1 x one alone', ratio('ours.four', median('ours.alone')), 1, 'one alone'),
    atLeast('daemon: ingestStream, 1 MiB chunks >= 0.9 x in-process', ratio('daemon.stream.1MiB', median('ours.stream.1MiB')), 0.9, 'in-process'),
    atLeast('daemon: serveObject whole >= 0.9 x in-process', ratio('daemon.serve', median('ours.serve')), 0.9, 'in-process'),
    atLeast('artifactstore put FILE >= 0.9 x ingestFile', ratio('cli.put', median('ours.file')), 0.9, 'ingestFile'),
    atLeast('artifactstore get -o FILE >= 0.9 x serveObject into a file', ratio('cli.get', median('ours.serve.toFile')), 0.9, 'serveObject into a file'),
    ...(rowsById.has('baseline.small.sequential')
      ? [atLeast('4 KiB one after another >= 0.8 x before the catalogue (--baseline)', ratio('ours.small.sequential', median('baseline.small.sequential')), 0.8, 'baseline')]
      : []),
    atLeast('4 KiB one after another, metrics on >= 0.95 x off', ratio('ours.small.sequential', median('ours.small.sequential.metricsOff')), 0.95, 'metrics off'),
    rate('daemon: 4 KiB one after another >= 10,000/s', median('daemon.small.sequential'), 10_000),
    rate('daemon: 4 KiB 16 at a time >= 25,000/s', median('daemon.small.x16'), 25_000),
    // Issue 11: the catalogue (findMissing's 100 ms for 10,000 addresses as a rate).
    rate('statObject by BLAKE3 >= 100,000/s', median('ours.stat.blake3'), 100_000),
    rate('statObject by SHA-256 >= 50,000/s', median('ours.stat.sha256'), 50_000),
    rate('findMissing: 10,000 addresses in <= 100 ms', median('ours.findMissing'), 100_000),
    rate('listObjects >= 200,000 objects/s', median('ours.list'), 200_000),
    atLeast('scrub >= 0.9 x verifyObject', ratio('ours.scrub', median('ours.verify')), 0.9, 'verifyObject'),
    atMost('peak RSS growth, listObjects of the catalogue store <= 32 MiB', rss('rss.listObjects'), 32 * MiB),
    atLeast('uploads: 16 MiB appends >= 0.9 x ingestStream', ratio('ours.upload.16MiB', median('ours.stream.1MiB')), 0.9, 'ingestStream'),
    share('uploads: commitUpload <= 2% of the appends\' time', commitShare, 0.02),
    atMost('peak RSS growth, ingestStream <= 64 MiB', rss('rss.ingestStream'), 64 * MiB),
    atMost('peak RSS growth, serveObject to a slow consumer <= 64 MiB', rss('rss.serveSlow'), 64 * MiB),
    atMost('daemon RSS growth, serving to a slow client <= 64 MiB', rss('rss.daemon.serveSlow'), 64 * MiB),
    atMost('daemon RSS growth, 64 clients ingesting at once <= 64 MiB', rss('rss.daemon.ingests'), 64 * MiB),
    ...s3,
  ];
}
