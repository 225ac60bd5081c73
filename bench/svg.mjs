// The results as an SVG bar chart (hand-written, no dependency): one bar per row at its median,
// a whisker from min to max, the value and its ratios beside it; GB/s rows share one scale,
// objects/s rows another (the S3 rows, far slower, have scales of their own); dashed lines mark the
// ceilings.

import { formatRate, formatRatio } from './report.mjs';

const WIDTH = 1500;
const LABEL_RIGHT = 470;
const BAR_LEFT = 480;
const BAR_WIDTH = 520;
const NOTE_LEFT = BAR_LEFT + BAR_WIDTH + 15;
const ROW_HEIGHT = 24;
const BAR_HEIGHT = 15;

const COLORS = { ceiling: '#5f6368', peer: '#e08a1e', ours: '#1f6fd1', oursDurable: '#7fb0ea' };

const escape = (text) => String(text).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

function niceMax(value) {
  if (!(value > 0)) return 1;
  const magnitude = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (value <= step * magnitude) return step * magnitude;
  return 10 * magnitude;
}

function ticks(max) {
  const magnitude = 10 ** Math.floor(Math.log10(max));
  let step = magnitude;
  if (max / step < 4) step /= 2;
  if (max / step > 8) step *= 2;
  const out = [];
  for (let v = 0; v <= max + 1e-9; v += step) out.push(+v.toFixed(6));
  return out;
}

export function renderSvg(results) {
  const parts = [];
  const scaleOf = (row) => `${row.section.startsWith('S3') ? 'S3 ' : ''}${row.unit}`;
  const scales = {};
  for (const row of results.rows) scales[scaleOf(row)] = niceMax(Math.max(scales[scaleOf(row)] ?? 0, Number.isFinite(row.max) ? row.max : 0));
  const x = (value, scale) => BAR_LEFT + (Math.max(0, value) / scales[scale]) * BAR_WIDTH;

  const m = results.machine;
  const title = '@artifactstore/data-plane: throughput beside what Node users write today';
  const subtitle =
    `${m.cpuModel}, ${m.cores} cores, ${(m.memoryBytes / 2 ** 30).toFixed(0)} GiB, Node ${m.node}, store on ${m.filesystem} (${m.root}); ` +
    `${results.params.objectLabel} objects, ${results.params.smallObjects} x 4 KiB; median of ${results.params.reps} interleaved repetitions, whiskers min-max; ${results.date}`;
  let y = 30;
  parts.push(`<text x="20" y="${y}" class="title">${escape(title)}</text>`);
  y += 20;
  parts.push(`<text x="20" y="${y}" class="sub">${escape(subtitle)}</text>`);
  y += 16;
  parts.push(`<text x="20" y="${y}" class="sub">${escape('Ratios: vs the lower ceiling for ingests (SHA-256 or raw write; durable rows: raw write + fsync), SHA-256 for verify, and vs each peer. Content differs per repetition (first 8 bytes of every object).')}</text>`);
  y += 14;
  const legend = [['ceiling', 'ceiling'], ['peer', 'peer (plain Node / cacache / fs / AWS SDK)'], ['ours', 'ours, durable: false'], ['oursDurable', 'ours, durable: true']];
  let lx = 20;
  y += 10;
  for (const [key, text] of legend) {
    parts.push(`<rect x="${lx}" y="${y - 10}" width="12" height="12" fill="${COLORS[key]}"/>`);
    parts.push(`<text x="${lx + 17}" y="${y}" class="note">${escape(text)}</text>`);
    lx += 40 + text.length * 6.5;
  }
  y += 14;

  let section;
  let sectionTop;
  for (const row of results.rows) {
    if (row.section !== section) {
      section = row.section;
      y += 22;
      parts.push(`<text x="20" y="${y}" class="section">${escape(`${section} (${row.unit})`)}</text>`);
      // the scale of this section
      y += 8;
      sectionTop = y;
      for (const tick of ticks(scales[scaleOf(row)])) {
        const tx = x(tick, scaleOf(row));
        parts.push(`<text x="${tx}" y="${y}" class="tick" text-anchor="middle">${escape(formatRate(tick, row.unit))}</text>`);
      }
      y += 6;
      sectionTop = y;
    }
    const color = row.group === 'ours' ? (row.durable ? COLORS.oursDurable : COLORS.ours) : COLORS[row.group];
    const top = y + (ROW_HEIGHT - BAR_HEIGHT) / 2;
    const mid = y + ROW_HEIGHT / 2;
    parts.push(`<text x="${LABEL_RIGHT}" y="${mid + 4}" class="label" text-anchor="end">${escape(row.label)}</text>`);
    parts.push(`<rect x="${BAR_LEFT}" y="${top}" width="${Math.max(1, x(row.median, scaleOf(row)) - BAR_LEFT).toFixed(1)}" height="${BAR_HEIGHT}" fill="${color}"/>`);
    const [x1, x2] = [x(row.min, scaleOf(row)), x(row.max, scaleOf(row))];
    parts.push(`<path d="M${x1.toFixed(1)} ${mid}H${x2.toFixed(1)}M${x1.toFixed(1)} ${mid - 4}V${mid + 4}M${x2.toFixed(1)} ${mid - 4}V${mid + 4}" class="whisker"/>`);
    const ratios = [];
    if (row.ratios.ceiling) ratios.push(`${formatRatio(row.ratios.ceiling.value)} ceiling`);
    for (const p of row.ratios.peers) ratios.push(`${formatRatio(p.value)} ${p.name}`);
    parts.push(
      `<text x="${NOTE_LEFT}" y="${mid + 4}" class="value">${escape(`${formatRate(row.median, row.unit)} ${row.unit}`)}` +
        (ratios.length ? `<tspan class="ratio" dx="10">${escape(ratios.join(' · '))}</tspan>` : '') +
        `</text>`,
    );
    y += ROW_HEIGHT;
    const next = results.rows[results.rows.indexOf(row) + 1];
    if ((!next || next.section !== section) && row.unit === 'GB/s') {
      // ceiling lines across this section: reads compare with SHA-256 only (verifyObject), durable
      // ingests with a write that ends in fsync, S3 ingests with SHA-256 (S3 reads: none)
      const sha = ['SHA-256', results.ceilings.sha256];
      const write = ['raw write', results.ceilings.write];
      const writeDurable = ['write + fsync', results.ceilings.writeDurable];
      const lines = section.startsWith('Ceilings')
        ? [sha, write, writeDurable]
        : section.startsWith('S3')
          ? section.includes('ingest') ? [sha] : []
          : section.startsWith('Reading')
            ? [sha]
            : section.includes('durable: true')
              ? [sha, writeDurable]
              : [sha, write];
      const drawn = lines.filter(([, value]) => Number.isFinite(value) && value <= scales[scaleOf(row)]);
      drawn.forEach(([name, value], i) => {
        const cx = x(value, scaleOf(row)).toFixed(1);
        parts.push(`<line x1="${cx}" y1="${sectionTop}" x2="${cx}" y2="${y + 2 + 10 * i}" class="ceiling"/>`);
        parts.push(`<text x="${cx}" y="${y + 11 + 10 * i}" class="tick" text-anchor="middle">${escape(name)}</text>`);
      });
      y += 10 * Math.max(1, drawn.length);
    }
  }
  y += 34;
  parts.push(`<text x="20" y="${y}" class="section">${escape(`Peak RSS growth (worst of ${results.memory[0]?.trials.length ?? 0} trials, target <= 64 MiB for ours)`)}</text>`);
  for (const mm of results.memory) {
    y += 18;
    parts.push(`<text x="30" y="${y}" class="note">${escape(`${mm.label}: +${(mm.peakGrowthBytes / 2 ** 20).toFixed(1)} MiB`)}</text>`);
  }
  y += 30;
  parts.push(`<text x="20" y="${y}" class="section">${escape(`Targets (issues 3 and 4, medians, durable: false${results.params.quick ? '; --quick run: indicative only' : ''})`)}</text>`);
  for (const t of results.targets) {
    y += 18;
    const value = t.kind === 'bytes' ? `${((t.value ?? NaN) / 2 ** 20).toFixed(1)} MiB` : t.kind === 'rate' ? `${Math.round(t.value ?? NaN)}/s` : t.kind === 'share' ? `${((t.value ?? NaN) * 100).toFixed(2)}%` : formatRatio(t.value);
    parts.push(`<text x="30" y="${y}" class="note"><tspan class="${t.pass ? 'pass' : 'fail'}">${t.pass ? 'PASS' : 'FAIL'}</tspan><tspan dx="10">${escape(`${t.text}: ${value}`)}</tspan></text>`);
  }
  y += 24;

  const height = y;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="Helvetica, Arial, sans-serif">`,
    '<style>',
    '.title{font-size:18px;font-weight:bold;fill:#202124}.sub{font-size:12px;fill:#3c4043}.section{font-size:14px;font-weight:bold;fill:#202124}',
    '.label{font-size:12px;fill:#202124}.value{font-size:12px;font-weight:bold;fill:#202124}.ratio{font-weight:normal;fill:#3c4043}',
    '.tick{font-size:10px;fill:#5f6368}.note{font-size:12px;fill:#3c4043}.whisker{stroke:#202124;stroke-width:1.2;fill:none}',
    '.ceiling{stroke:#c5221f;stroke-width:1;stroke-dasharray:4 3}.pass{font-weight:bold;fill:#188038}.fail{font-weight:bold;fill:#c5221f}',
    '</style>',
    `<rect width="${WIDTH}" height="${height}" fill="#ffffff"/>`,
    ...parts,
    '</svg>',
    '',
  ].join('\n');
}
