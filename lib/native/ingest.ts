// ingestStream and appendUpload: pull chunks from the caller's iterable and push them into a native call,
// waiting only when its queue is full (backpressure), so the Rust side hashes and writes while
// JavaScript produces the next chunk.

import { setImmediate } from 'node:timers/promises';

import { decodeCbor } from '../cbor';
import type { CheckedIngestOptions } from '../options';
import { ChunkReader } from '../source';
import type { IngestResult, UploadStatus } from '../types';
import type { NativeDataPlane, NativeIngest } from './addon';
import { WriteOutcome } from './addon';
import { translateNative } from './errors';

/**
 * `alone` says whether this is the only call under way on its data plane: then a small object may
 * be stored while this thread waits, briefly, in place (see NativeDataPlane.ingestBuffer). With
 * other calls under way the thread pool overlaps them better.
 */
export async function ingestStream(
  plane: NativeDataPlane,
  stream: unknown,
  options: CheckedIngestOptions,
  signal: AbortSignal,
  alone: () => boolean,
): Promise<IngestResult> {
  return withChunks(stream, signal, 'ingestStream', async (chunks) => {
    const first = await chunks.next();
    const second = first && (await chunks.next());
    if (!second) {
      // Whole in one chunk (or empty): one native round trip.
      return (await translateNative(() => plane.ingestBuffer(first ?? Buffer.alloc(0), options, alone()))) as IngestResult;
    }
    return (await streamInto(chunks, () => plane.beginIngest(options), [first, second])) as IngestResult;
  });
}

/**
 * appendUpload: the upload is locked and its offset checked before the first chunk is read; a
 * failed or aborted append still leaves the upload's record at the bytes handed over.
 */
export async function appendUpload(plane: NativeDataPlane, stream: unknown, request: Buffer, signal: AbortSignal): Promise<UploadStatus> {
  return withChunks(stream, signal, 'appendUpload', async (chunks) =>
    decodeCbor(await streamInto(chunks, () => plane.beginAppend(request), [])) as UploadStatus,
  );
}

/** Runs `body` on the caller's stream; on failure lets the source clean up, and rethrows. */
async function withChunks<T>(stream: unknown, signal: AbortSignal, what: string, body: (chunks: ChunkReader) => Promise<T>): Promise<T> {
  const chunks = new ChunkReader(stream, signal, what);
  try {
    return await body(chunks);
  } catch (error) {
    // The source's own error passes through as it is; ours are DataPlaneErrors already.
    chunks.stopSource();
    throw error;
  } finally {
    chunks.dispose();
  }
}

/**
 * Starts a native streaming call, hands it `first` and then the rest of the chunks, and finishes
 * it; aborts it when the chunks fail (the caller's signal, its source).
 */
async function streamInto<R>(chunks: ChunkReader, begin: () => Session<R> | Promise<Session<R>>, first: Buffer[]): Promise<R> {
  const session = await translateNative(begin);
  try {
    await pushAll(new Pusher(session), chunks, first);
  } catch (error) {
    await session.abort();
    throw error;
  }
  // Every byte is handed over: from here on the call completes, whatever the signal does.
  return translateNative(() => session.finish());
}

/** Hands `first`, then the rest of the chunks, to a native call until it stops taking them. */
async function pushAll(pusher: Pusher, chunks: ChunkReader, first: Buffer[]): Promise<void> {
  for (const chunk of first) if (!(await pusher.push(chunk))) return;
  for (let chunk = await chunks.next(); chunk; chunk = await chunks.next()) {
    if (!(await pusher.push(chunk))) return;
  }
}

/** A native streaming call: an ingest, or an upload's append. */
interface Session<R = unknown> extends Pick<NativeIngest, 'tryWrite' | 'write' | 'abort'> {
  finish(): Promise<R>;
}

/**
 * Chunks the native side is done with are released on this thread's event loop. A source that
 * never waits for I/O (a generator computing its bytes) would keep the loop from turning, and every
 * chunk would stay alive until the end: so after this many bytes handed over without a turn of
 * the loop, let it turn.
 */
const BYTES_BETWEEN_TURNS = 8 * 1024 * 1024;

/** Hands chunks to a native ingest, waiting when its queue is full. */
class Pusher {
  private sinceTurn = 0;

  constructor(private readonly session: Session) {}

  /** Queues a chunk; false when the native ingest has stopped (its `finish` then says why). */
  async push(chunk: Buffer): Promise<boolean> {
    switch (this.session.tryWrite(chunk)) {
      case WriteOutcome.Queued:
        this.sinceTurn += chunk.length;
        if (this.sinceTurn >= BYTES_BETWEEN_TURNS) await this.turn();
        return true;
      case WriteOutcome.Full:
        this.sinceTurn = 0; // waiting for room turns the loop
        return this.session.write(chunk);
      default:
        return false;
    }
  }

  private async turn(): Promise<void> {
    this.sinceTurn = 0;
    await setImmediate();
  }
}
