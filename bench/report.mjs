// The results as a text table (stdout) and as JSON (bench/results/*.json).

import { summarize, pairedRatio } from './stats.mjs';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

/** Short names of the rows others are compared with. */
export const SHORT_NAMES = {
  'ceiling.sha256': 'SHA-256',
  'ceiling.write': 'raw write',
  'peer.plain': 'plain',
  'peer.cacache': 'cacache',
  'peer.plain.small': 'plain',
  'peer.cacache.small': 'cacache',
  'baseline.small.sequential': 'baseline',
  'peer.readStream': 'createReadStream',
  'peer.readStream.1MiB': 'createReadStream 1MiB',
  'peer.readStream.ranges': 'createReadStream',
  'ours.stream.1MiB': 'in-process',
  'ours.serve': 'in-process',
  'ours.small.sequential': 'in-process',
  'ours.small.x16': 'in-process',
  'ours.alone': 'one alone',
  'ours.alone.durable': 'one alone',
  'peer.s3.upload': 'SDK Upload',
  'peer.s3.get': 'SDK GetObject',
  'peer.s3.small.put': 'SDK PutObject',
  'peer.s3.small.get': 'SDK GetObject',
};

export function formatBytes(bytes) {
  if (bytes === undefined || Number.isNaN(bytes)) return 'n/a';
  if (Math.abs(bytes) >= GiB) return `${(bytes / GiB).toFixed(bytes % GiB ? 2 : 0)} GiB`;
  if (Math.abs(bytes) >= MiB) return `${(bytes / MiB).toFixed(1)} MiB`;
  return `${(bytes / 1024).toFixed(0)} KiB`;
}

export function formatRate(value, unit) {
  if (value === undefined || Number.isNaN(value)) return 'n/a';
  if (unit === 'GB/s') return value.toFixed(value >= 10 ? 1 : 2);
  return Math.round(value).toLocaleString('en-US');
}

export const formatRatio = (r) => (r === undefined || Number.isNaN(r) ? 'n/a' : `${r.toFixed(r >= 10 ? 1 : 2)}x`);

/**
 * Rows with their statistics and ratios. `samples` maps id -> { rates, seconds } (one entry per
 * measured repetition); ratios are ratios of medians, with the median of per-repetition ratios
 * beside them in the JSON.
 */
export function buildRows(contenders, samples) {
  const rates = (id) => samples.get(id)?.rates ?? [];
  const sha = rates('ceiling.sha256');
  const write = rates('ceiling.write');
  const ingestCeilingPerRep = sha.map((s, i) => Math.min(s, write[i]));
  const writeDurable = rates('ceiling.write.durable');
  const ingestDurablePerRep = sha.map((s, i) => Math.min(s, writeDurable[i] ?? Infinity));
  const shaMedian = summarize(sha).median;
  const writeMedian = summarize(write).median;
  const writeDurableMedian = writeDurable.length ? summarize(writeDurable).median : undefined;
  const ceilings = {
    sha256: shaMedian,
    write: writeMedian,
    writeDurable: writeDurableMedian,
    ingest: Math.min(shaMedian, writeMedian),
    ingestName: shaMedian <= writeMedian ? 'SHA-256' : 'raw write',
    ingestDurable: Math.min(shaMedian, writeDurableMedian ?? Infinity),
    ingestDurableName: shaMedian <= (writeDurableMedian ?? Infinity) ? 'SHA-256' : 'raw write + fsync',
  };
  const rows = contenders.map((c) => {
    const own = rates(c.id);
    const stats = summarize(own);
    const ratios = { peers: [] };
    if (c.ceiling === 'ingest' && c.durable && writeDurable.length) {
      ratios.ceiling = {
        name: `lower ceiling (${ceilings.ingestDurableName})`,
        value: stats.median / ceilings.ingestDurable,
        paired: pairedRatio(own, ingestDurablePerRep),
      };
    } else if (c.ceiling === 'ingest') {
      ratios.ceiling = { name: `lower ceiling (${ceilings.ingestName})`, value: stats.median / ceilings.ingest, paired: pairedRatio(own, ingestCeilingPerRep) };
    } else if (c.ceiling === 'sha256') {
      ratios.ceiling = { name: 'SHA-256 ceiling', value: stats.median / ceilings.sha256, paired: pairedRatio(own, sha) };
    }
    for (const peer of c.peers ?? []) {
      const theirs = rates(peer);
      ratios.peers.push({ id: peer, name: SHORT_NAMES[peer] ?? peer, value: stats.median / summarize(theirs).median, paired: pairedRatio(own, theirs) });
    }
    const cpuSeconds = samples.get(c.id)?.cpuSeconds ?? [];
    const cpu =
      c.unit === 'GB/s'
        ? { unit: 'CPU s/GB', median: summarize(cpuSeconds.map((s) => s / (c.amount / 1e9))).median }
        : { unit: 'CPU us/object', median: summarize(cpuSeconds.map((s) => (s * 1e6) / c.amount)).median };
    const wall = samples.get(c.id)?.seconds ?? [];
    cpu.coresBusy = summarize(cpuSeconds.map((s, i) => s / wall[i])).median;
    return {
      id: c.id,
      label: c.label,
      section: c.section,
      group: c.group,
      unit: c.unit,
      durable: c.durable ?? false,
      amount: c.amount,
      ...stats,
      samples: own,
      seconds: wall,
      cpuSeconds,
      cpu,
      ratios,
    };
  });
  return { rows, ceilings };
}

function pad(text, width, right = false) {
  const s = String(text);
  if (s.length >= width) return s;
  return right ? s.padStart(width) : s.padEnd(width);
}

/** The table printed to stdout. */
export function renderTable(results) {
  const lines = [];
  const labelWidth = Math.max(...results.rows.map((r) => r.label.length), 20) + 2;
  const header = `${pad('', labelWidth)}${pad('median', 10, true)}  ${pad('min - max', 17)} ${pad('IQR', 17)} ${pad('CPU', 9, true)} ${pad('vs ceiling', 11, true)}  vs peers`;
  lines.push(header);
  let section;
  for (const row of results.rows) {
    if (row.section !== section) {
      section = row.section;
      lines.push('', `${section} (${row.unit})`);
    }
    const spread = `${formatRate(row.min, row.unit)} - ${formatRate(row.max, row.unit)}`;
    const iqr = `${formatRate(row.q1, row.unit)} - ${formatRate(row.q3, row.unit)}`;
    const ceiling = row.ratios.ceiling ? formatRatio(row.ratios.ceiling.value) : '';
    const peers = row.ratios.peers.map((p) => `${formatRatio(p.value)} ${p.name}`).join(', ');
    const cpu = row.unit === 'GB/s' ? `${row.cpu.median.toFixed(2)} s/GB` : `${row.cpu.median.toFixed(0)} us/o`;
    lines.push(`  ${pad(row.label, labelWidth - 2)}${pad(formatRate(row.median, row.unit), 10, true)}  ${pad(spread, 17)} ${pad(iqr, 17)} ${pad(cpu, 9, true)} ${pad(ceiling, 11, true)}  ${peers}`);
  }
  lines.push(
    '',
    `Ceilings (medians): SHA-256 ${formatRate(results.ceilings.sha256, 'GB/s')} GB/s, raw write ${formatRate(results.ceilings.write, 'GB/s')} GB/s` +
      (results.ceilings.writeDurable === undefined ? '' : `, raw write + fsync ${formatRate(results.ceilings.writeDurable, 'GB/s')} GB/s`) +
      `; ingest rows compare with the lower (${results.ceilings.ingestName}` +
      (results.ceilings.writeDurable === undefined ? '' : `; durable rows: ${results.ceilings.ingestDurableName}`) +
      '), verifyObject with SHA-256.',
    'Ratios are ratios of medians (the JSON also has the median of per-repetition ratios). GB/s = 10^9 bytes/s.',
    'CPU: median CPU time of the whole process (all threads, user + system) per GB or per object (us/o) while the row ran;',
    'it moves much less than wall time when other work shares the machine.',
  );
  return lines.join('\n');
}

export function renderMemory(memory) {
  const lines = [
    `Peak RSS growth over the starting RSS, worst of ${memory[0]?.trials.length ?? 0} trials (sampled every 10 ms; VmHWM: the kernel's high-water mark):`,
  ];
  for (const m of memory) {
    const hwm = m.hwmGrowthBytes === undefined ? '' : `; VmHWM +${formatBytes(m.hwmGrowthBytes)}`;
    const trials = m.trials.map((t) => formatBytes(t)).join(', ');
    lines.push(`  ${pad(m.label, 72)} ${pad(`+${formatBytes(m.peakGrowthBytes)}`, 11, true)}  (trials ${trials}${hwm})`);
  }
  return lines.join('\n');
}

export function renderTargets(targets, quick) {
  const s3 = targets.some((t) => t.text.startsWith('S3'));
  const lines = [`Targets (issues 3${s3 ? ' and 4' : ''}; medians, durable: false${quick ? `; --quick: indicative only, the targets are for 1 GiB objects${s3 ? ' (S3: 256 MiB)' : ''}` : ''}):`];
  for (const t of targets) {
    const percent = (x) => (x === undefined ? '-' : `${(x * 100).toFixed(2)}%`);
    const value = t.kind === 'bytes' ? formatBytes(t.value) : t.kind === 'rate' ? `${formatRate(t.value, 'objects/s')}/s` : t.kind === 'share' ? percent(t.value) : `${formatRatio(t.value)}`;
    const need = t.kind === 'bytes' || t.kind === 'share' ? `<= ${t.kind === 'share' ? percent(t.need) : formatBytes(t.need)}` : t.kind === 'rate' ? `>= ${formatRate(t.need, 'objects/s')}/s` : `>= ${formatRatio(t.need)}`;
    const short = t.margin === undefined ? 0 : (-t.margin * 100).toFixed(0);
    const by = t.pass || t.margin === undefined ? '' : t.kind === 'bytes' || t.kind === 'share' ? `  (over by ${short}%)` : `  (missed by ${short}%)`;
    lines.push(`  ${t.pass ? 'PASS' : 'FAIL'}  ${pad(t.text, 58)} ${pad(value, 10, true)}  need ${need}${by}`);
  }
  return lines.join('\n');
}
