// ingestFile through the daemon reads the file here, in the client: the daemon never opens a
// path a client names. The file's read errors become IO errors naming the path, as in-process.

import type { ReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { getSystemErrorMap } from 'node:util';

import { DataPlaneError } from '../errors';

const READ_BYTES = 1024 * 1024;

/** Worded as the core words an OS error ("No such file or directory (os error 2)"). */
function readError(path: string, error: unknown): DataPlaneError {
  const errno = (error as NodeJS.ErrnoException).errno;
  const description = errno === undefined ? undefined : getSystemErrorMap().get(errno)?.[1];
  const what = description
    ? `${description[0].toUpperCase()}${description.slice(1)} (os error ${-errno!})`
    : (error as Error).message;
  return new DataPlaneError('IO', `ingestFile: reading ${path}: ${what}`, { cause: error });
}

/**
 * The file's bytes in reads of up to 1 MiB. Returning early (an abort, a rejected ingest) closes
 * the file, even before the first read.
 */
export async function fileSource(path: string): Promise<AsyncIterable<Buffer>> {
  let stream: ReadStream;
  try {
    stream = (await open(path, 'r')).createReadStream({ highWaterMark: READ_BYTES });
  } catch (error) {
    throw readError(path, error);
  }
  const reads = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const source: AsyncIterableIterator<Buffer> = {
    next: () =>
      reads.next().catch((error: unknown) => {
        throw readError(path, error);
      }),
    return: async () => {
      stream.destroy();
      return { done: true, value: undefined };
    },
    [Symbol.asyncIterator]: () => source,
  };
  return source;
}
