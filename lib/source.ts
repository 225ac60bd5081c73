// Reads the caller's stream for an ingest: any AsyncIterable or Iterable of Uint8Array, one chunk
// at a time, skipping empty chunks, racing each read against the call's signal. Whatever the bytes
// go to next (a native ingest, a daemon's DATA frames) is the caller's business.

import { AbortRace } from './abort';
import { describe } from './describe';
import { DataPlaneError } from './errors';

type Source = AsyncIterator<unknown> | Iterator<unknown>;

function iteratorOf(stream: unknown): Source {
  const iterable = stream as Partial<AsyncIterable<unknown> & Iterable<unknown>> | null | undefined;
  const asyncIterator = iterable?.[Symbol.asyncIterator];
  if (typeof asyncIterator === 'function') return asyncIterator.call(iterable);
  const syncIterator = iterable?.[Symbol.iterator];
  if (typeof syncIterator === 'function' && typeof stream !== 'string') return syncIterator.call(iterable);
  throw new DataPlaneError('INVALID_ARGUMENT', `the stream must be an AsyncIterable of Uint8Array, got ${describe(stream)}`);
}

/** Chunks must be Uint8Array (Buffer included); they are passed on as Buffers, uncopied. */
function chunkBuffer(chunk: unknown, index: number): Buffer {
  if (Buffer.isBuffer(chunk)) return chunk;
  if (chunk instanceof Uint8Array) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  const kind = chunk === null ? 'null' : typeof chunk === 'object' ? (chunk.constructor?.name ?? 'object') : typeof chunk;
  throw new DataPlaneError('INVALID_ARGUMENT', `chunk ${index} of the stream is ${kind}, not a Uint8Array`);
}

/** Reads chunks one by one, skipping empty ones, checking each is a Uint8Array. */
export class ChunkReader {
  private count = 0;
  private readonly source: Source;
  private readonly abort: AbortRace;

  /** Throws INVALID_ARGUMENT at once when `stream` is not iterable. */
  constructor(stream: unknown, signal: AbortSignal, what: string) {
    this.source = iteratorOf(stream);
    this.abort = new AbortRace(signal, what);
  }

  /** The next non-empty chunk, or undefined at the end of the stream. */
  async next(): Promise<Buffer | undefined> {
    for (;;) {
      const step = await this.abort.race(Promise.resolve(this.source.next()));
      if (step.done) return undefined;
      const chunk = chunkBuffer(step.value, this.count++);
      if (chunk.length > 0) return chunk;
    }
  }

  /**
   * Lets the source clean up (close a file, end a generator) when we stop early. Not awaited: a
   * generator still busy in its last `next()` would hold up an abort until it yields.
   */
  stopSource(): void {
    Promise.resolve()
      .then(() => this.source.return?.())
      .catch(() => {
        // The source's own cleanup failing must not hide why we stopped.
      });
  }

  /** Ends a wait for the source under way, and every later read, with `reason`. */
  interrupt(reason: unknown): void {
    this.abort.end(reason);
  }

  dispose(): void {
    this.abort.dispose();
  }
}
