// The commands on one object: put, get, stat, verify, rm.

import { closeSync, createReadStream, openSync, writeSync } from 'node:fs';
import { rename, stat, unlink } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';

import { formatContentAddress } from '../address';
import { DataPlaneError } from '../errors';
import type { IngestResult, OpenDataPlane } from '../types';
import { printFields, printJson, printLine } from './print';
import { counted, Progress } from './progress';

export interface CommandContext {
  dp: OpenDataPlane;
  json: boolean;
  progress: boolean;
  backendId?: string;
  signal: AbortSignal;
}

/** `put FILE|-`: the last line of stdout is the object's address. */
export async function put(context: CommandContext, source: string): Promise<number> {
  const { dp, signal } = context;
  const hints = context.backendId === undefined ? undefined : { backendId: context.backendId };
  const options = { hints, signal };
  const fromStdin = source === '-';
  const size = fromStdin ? undefined : (await stat(source)).size;
  const bar = Progress.start('put', size, context.progress);
  let result: IngestResult;
  try {
    // The bar needs to see the bytes go by; without one, a file takes the plane's fast path.
    result =
      bar === undefined && !fromStdin
        ? await dp.ingestFile(source, options)
        : await dp.ingestStream(counted(fromStdin ? process.stdin : createReadStream(source, { highWaterMark: 1 << 20 }), bar), options);
  } finally {
    bar?.stop();
  }
  if (context.json) printJson(result);
  else printLine(formatContentAddress(result.primaryDigest));
  return 0;
}

/** `get ADDRESS [--range START-END] [-o FILE]`: raw bytes to stdout or into FILE (whole or not at all). */
export async function get(context: CommandContext, address: string, options: { range?: string; output?: string }): Promise<number> {
  const { dp, signal } = context;
  const byteRange = options.range === undefined ? undefined : parseRange(options.range);
  const object = await dp.serveObject(address, { byteRange, backendId: context.backendId, signal });
  // Not over bytes that go to the same terminal.
  const toTerminal = options.output === undefined && process.stdout.isTTY;
  const bar = Progress.start('get', object.sizeBytes, context.progress && !toTerminal);
  try {
    if (options.output === undefined) await pipeline(counted(object, bar), process.stdout, { end: false });
    else await writeWhole(options.output, counted(object, bar));
  } finally {
    bar?.stop();
  }
  if (context.json && options.output !== undefined) {
    const { contentAddress, sizeBytes, totalSizeBytes } = object;
    printJson({ contentAddress, sizeBytes, totalSizeBytes, path: options.output });
  }
  return 0;
}

/**
 * Writes beside `path` and renames, so that a failed get leaves no partial file under its name.
 * Each write blocks (as writes to stdout do): the command has nothing else to do meanwhile, and a
 * write through the thread pool would cost a thread hand-off per chunk.
 */
async function writeWhole(path: string, chunks: AsyncIterable<Uint8Array>): Promise<void> {
  const partial = `${path}.partial-${process.pid}`;
  const fd = openSync(partial, 'w');
  try {
    for await (const chunk of chunks) {
      for (let written = 0; written < chunk.length; ) written += writeSync(fd, chunk, written);
    }
    closeSync(fd);
    await rename(partial, path);
  } catch (error) {
    try {
      closeSync(fd);
    } catch {
      // closed already
    }
    await unlink(partial).catch(() => {});
    throw error;
  }
}

/** `START-END`, half-open, as serveObject's byteRange. */
function parseRange(text: string): [number, number] {
  const match = /^(\d+)-(\d+)$/.exec(text);
  if (!match) throw new DataPlaneError('INVALID_RANGE', `--range ${JSON.stringify(text)} is not START-END (half-open, in bytes)`);
  return [Number(match[1]), Number(match[2])];
}

export async function statCommand(context: CommandContext, address: string): Promise<number> {
  const info = await context.dp.statObject(address, { backendId: context.backendId });
  if (context.json) printJson(info);
  else printFields(info);
  return 0;
}

/** `verify ADDRESS`: exits with INTEGRITY_MISMATCH's status when the bytes held are corrupt. */
export async function verify(context: CommandContext, address: string): Promise<number> {
  const result = await context.dp.verifyObject(address, { backendId: context.backendId });
  if (context.json) printJson(result);
  else printLine(`${result.verified ? 'verified' : 'CORRUPT'} ${formatContentAddress(result.contentAddress)}`);
  if (result.verified) return 0;
  throw new DataPlaneError('INTEGRITY_MISMATCH', `${formatContentAddress(result.contentAddress)}: ${result.mismatch}`);
}

export async function rm(context: CommandContext, address: string, options: { unlessTouchedSince?: string }): Promise<number> {
  const result = await context.dp.deleteObject(address, { backendId: context.backendId, unlessTouchedSince: options.unlessTouchedSince });
  const name = formatContentAddress(result.contentAddress);
  if (context.json) printJson(result);
  else if (result.deleted) printLine(`deleted ${name}`);
  else printLine(result.touchedAt === undefined ? `absent ${name}` : `kept ${name} (touched at ${result.touchedAt})`);
  return 0;
}
