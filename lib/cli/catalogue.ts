// The commands on the store as a whole: ls, missing, health, scrub.

import bytes from 'bytes';

import { formatContentAddress } from '../address';
import { DataPlaneError } from '../errors';
import type { ScrubReport } from '../types';
import type { CommandContext } from './objects';
import { printJson, printLine } from './print';
import { Progress } from './progress';

/** `ls`: one object per line (JSON Lines with --json), ascending by address. */
export async function ls(context: CommandContext, options: { after?: string; limit?: string; touchedBefore?: string }): Promise<number> {
  const listing = context.dp.listObjects({
    backendId: context.backendId,
    after: options.after,
    limit: options.limit === undefined ? undefined : count(options.limit, '--limit'),
    touchedBefore: options.touchedBefore,
    signal: context.signal,
  });
  for await (const info of listing) {
    if (context.json) printJson(info);
    else printLine(`${formatContentAddress(info.contentAddress)}\t${info.sizeBytes}\t${info.touchedAt}`);
  }
  return 0;
}

/** `missing ADDR...`: those the store does not hold, one per line; exits 0 either way. */
export async function missing(context: CommandContext, addresses: string[]): Promise<number> {
  const absent = await context.dp.findMissing(addresses, { backendId: context.backendId });
  if (context.json) printJson(absent);
  else for (const address of absent) printLine(formatContentAddress(address));
  return 0;
}

/** `health`: exits with BACKEND_UNAVAILABLE's status when a backend is unhealthy. */
export async function health(context: CommandContext): Promise<number> {
  const status = await context.dp.backendHealth();
  if (context.json) printJson(status);
  else {
    for (const b of status.backends) {
      const space = b.freeBytes === undefined ? '' : ` ${bytes.format(b.freeBytes)} free of ${bytes.format(b.totalBytes ?? 0)}`;
      printLine(`${b.backendId}\t${b.kind}\t${b.healthy ? 'healthy' : 'UNHEALTHY'}\t${b.latencyMicros}us${space}${b.detail ? `\t${b.detail}` : ''}`);
    }
  }
  if (status.healthy) return 0;
  const sick = status.backends.filter((b) => !b.healthy).map((b) => `${b.backendId} (${b.detail ?? 'unhealthy'})`);
  throw new DataPlaneError('BACKEND_UNAVAILABLE', `unhealthy: ${sick.join(', ')}`);
}

/**
 * `scrub [--quarantine] [--rate 100MB/s] [--after A]`: on a terminal the bar's total comes from a
 * listing first. SIGINT stops it with a report saying where to resume. Exits with
 * INTEGRITY_MISMATCH's status when an object was corrupt.
 */
export async function scrub(context: CommandContext, options: { quarantine?: boolean; rate?: string; after?: string }): Promise<number> {
  const { dp, backendId, signal } = context;
  const total = context.progress && process.stderr.isTTY ? await storeBytes(context, options.after) : undefined;
  const bar = Progress.start('scrub', total, context.progress);
  let report: ScrubReport;
  try {
    report = await dp.scrub({
      backendId,
      after: options.after,
      quarantine: options.quarantine === true,
      bytesPerSecond: options.rate === undefined ? undefined : rate(options.rate),
      signal,
      onProgress: (progress) => bar?.set(progress.checkedBytes),
    });
  } finally {
    bar?.stop();
  }
  if (context.json) printJson(report);
  else {
    for (const corrupt of report.corrupt) printLine(`CORRUPT ${formatContentAddress(corrupt.contentAddress)}\t${corrupt.mismatch}`);
    const stopped = report.complete ? '' : `; stopped, resume with --after ${report.resumeAfter}`;
    printLine(
      `checked ${report.checkedObjects} objects, ${report.checkedBytes} bytes: ${report.corrupt.length} corrupt, ${report.quarantined} quarantined${stopped}`,
    );
  }
  if (report.corrupt.length > 0) throw new DataPlaneError('INTEGRITY_MISMATCH', `${report.corrupt.length} corrupt objects`);
  if (!report.complete) throw new DataPlaneError('ABORTED', `scrub stopped; resume with --after ${report.resumeAfter}`);
  return 0;
}

/** The bytes a scrub from `after` will check, for its bar. */
async function storeBytes(context: CommandContext, after: string | undefined): Promise<number> {
  let sum = 0;
  for await (const info of context.dp.listObjects({ backendId: context.backendId, after, signal: context.signal })) sum += info.sizeBytes;
  return sum;
}

/** `100MB/s`, `1GiB`, `5000000` (bytes per second). */
function rate(text: string): number {
  const parsed = bytes.parse(text.replace(/\/s$/i, ''));
  if (parsed === null || !Number.isFinite(parsed) || parsed <= 0) {
    throw new DataPlaneError('INVALID_ARGUMENT', `--rate ${JSON.stringify(text)} is not a rate like 100MB/s`);
  }
  return Math.floor(parsed);
}

function count(text: string, option: string): number {
  if (!/^\d+$/.test(text)) throw new DataPlaneError('INVALID_ARGUMENT', `${option} ${JSON.stringify(text)} is not a whole number`);
  return Number(text);
}
