// ingestStream: pulls chunks from the caller's iterable and pushes them into a native ingest,
// waiting only when its queue is full (backpressure), so the Rust side hashes and writes while
// JavaScript produces the next chunk.

import { setImmediate } from 'node:timers/promises';

import { decodeCbor } from '../cbor';
import type { CheckedIngestOptions } from '../options';
import { ChunkReader } from '../source';
import type { IngestResult, UploadStatus } from '../types';
import type { NativeAppend, NativeDataPlane, NativeIngest } from './addon';
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
  const chunks = new ChunkReader(stream, signal, 'ingestStream');
  let session: NativeIngest | undefined;
  try {
    const first = await chunks.next();
    const second = first && (await chunks.next());
    if (!second) {
      // Whole in one chunk (or empty): one native round trip.
      return (await translateNative(() => plane.ingestBuffer(first ?? Buffer.alloc(0), options, alone()))) as IngestResult;
    }
    session = await translateNative(() => plane.beginIngest(options));
    await pushAll(session, chunks, [first, second]);
    // Every byte is handed over: from here on the ingest completes, whatever the signal does.
    const finishing = session;
    session = undefined;
    return (await translateNative(() => finishing.finish())) as IngestResult;
  } catch (error) {
    // The source's own error passes through as it is; ours are DataPlaneErrors already.
    chunks.stopSource();
    await session?.abort();
    throw error;
  } finally {
    chunks.dispose();
  }
}

/**
 * appendUpload: the upload is locked and its offset checked before the first chunk is read; a
 * failed or aborted append still leaves the upload's record at the bytes handed over.
 */
export async function appendUpload(plane: NativeDataPlane, stream: unknown, request: Buffer, signal: AbortSignal): Promise<UploadStatus> {
  const chunks = new ChunkReader(stream, signal, 'appendUpload');
  let session: NativeAppend | undefined;
  try {
    session = await translateNative(() => plane.beginAppend(request));
    await pushAll(session, chunks, []);
    const finishing = session;
    session = undefined;
    return decodeCbor(await translateNative(() => finishing.finish())) as UploadStatus;
  } catch (error) {
    chunks.stopSource();
    await session?.abort();
    throw error;
  } finally {
    chunks.dispose();
  }
}

/** Hands `first`, then the rest of the chunks, to a native call until it stops taking them. */
async function pushAll(session: Session, chunks: ChunkReader, first: Buffer[]): Promise<void> {
  const pusher = new Pusher(session);
  for (const chunk of first) if (!(await pusher.push(chunk))) return;
  for (let chunk = await chunks.next(); chunk; chunk = await chunks.next()) {
    if (!(await pusher.push(chunk))) return;
  }
}

/** What a pusher feeds: an ingest, or an upload's append. */
type Session = Pick<NativeIngest, 'tryWrite' | 'write'>;

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
