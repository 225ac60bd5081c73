// An ingest through the daemon: the caller's chunks go out as DATA frames, never more than the
// server's credit allows and never faster than the socket drains; the server's RESPONSE is the result.

import { abortError } from '../abort';
import type { DataPlaneError } from '../errors';
import { ChunkReader } from '../source';
import type { IngestResult } from '../types';
import { Call } from './call';
import { Connection } from './connection';
import { OPEN } from './frames';

/** The most one DATA frame carries: larger chunks go out as several frames (views, not copies). */
const DATA_FRAME_BYTES = 256 * 1024;
const EMPTY = Buffer.alloc(0);

/** Starts a call on a connection of the plane's choosing; `start` runs synchronously on it. */
export type Begin = (start: (connection: Connection) => void) => Promise<void>;

class Upload extends Call {
  private credit = 0;
  private frameBytes = DATA_FRAME_BYTES;
  /** Told when the call fails (the daemon's ERROR, the connection lost, the caller's signal). */
  onFailure: ((error: DataPlaneError) => void) | undefined;

  constructor(
    op: string,
    args: Record<string, unknown>,
    private readonly begin: Begin,
  ) {
    super(op, args);
  }

  override window(credit: number): void {
    this.credit += credit;
    this.wake();
  }

  override fail(error: DataPlaneError): void {
    super.fail(error);
    this.onFailure?.(error);
  }

  /** Sends the REQUEST, and in the same write the DATA frames `frames` makes, if any. */
  open(frames?: (streamId: number) => Buffer[]): Promise<void> {
    return this.begin((chosen) => {
      this.credit = chosen.hello.windowBytes;
      this.frameBytes = Math.min(DATA_FRAME_BYTES, chosen.hello.maxFrameBytes);
      this.start(chosen, OPEN, frames);
    });
  }

  /**
   * Sends `chunk` (the END frame if `last`), waiting for credit and for the socket as it must.
   * False when the server has ended the call (its answer says how).
   */
  async send(chunk: Buffer, last: boolean): Promise<boolean> {
    let offset = 0;
    let sent = false;
    /** The frames the credit allows now, for as much of the chunk as is left. */
    const frames = (streamId: number): Buffer[] => {
      const out: Buffer[] = [];
      do {
        const size = Math.min(chunk.length - offset, this.frameBytes, this.credit);
        if (size === 0 && chunk.length > 0) break;
        const piece = chunk.subarray(offset, offset + size);
        offset += size;
        this.credit -= size;
        sent = true;
        out.push(...Connection.dataFrame(streamId, piece, last && offset === chunk.length));
      } while (offset < chunk.length);
      return out;
    };
    while (!(sent && offset === chunk.length)) {
      if (this.failure || this.answered) return false;
      const connection = this.connection;
      if (!connection) {
        await this.open(frames);
      } else if (!connection.writable) {
        await Promise.race([connection.drained(), this.changed()]);
      } else if (this.credit === 0 && chunk.length > 0) {
        await this.changed();
      } else {
        connection.write(frames(this.streamId));
      }
    }
    return true;
  }
}

/**
 * Ingests what `stream` yields through the daemon. Until the END frame is out, `signal` ends the
 * call on both sides at once, and the call failing (the daemon's early ERROR, the connection
 * lost) ends the wait for the source at once; after END, the ingest completes whatever the
 * signal does.
 */
export async function upload<T = IngestResult>(
  stream: unknown,
  op: string,
  args: Record<string, unknown>,
  signal: AbortSignal,
  begin: Begin,
  what: string,
): Promise<T> {
  const call = new Upload(op, args, begin);
  const chunks = new ChunkReader(stream, signal, what);
  call.onFailure = (error) => chunks.interrupt(error); // a wait for the caller's source ends too
  const stopCancelling = call.cancelOn(signal, () => abortError(signal, what));
  try {
    await sendAll(call, chunks);
    stopCancelling();
    return (await call.answer).value as T;
  } catch (error) {
    stopCancelling();
    const released = call.cancel(error as DataPlaneError);
    chunks.stopSource();
    await released; // the daemon has removed its temporary data, as in-process before rejecting
    throw error;
  } finally {
    chunks.dispose();
  }
}

/** What `soon` gives for a read that has not settled by the next turn of the event loop. */
const NOT_YET = Symbol('not yet');

/** What `read` settles to if it settles before the event loop's next turn, else NOT_YET. */
function soon<T>(read: Promise<T>): Promise<T | typeof NOT_YET> {
  return new Promise((resolve, reject) => {
    const turn = setImmediate(() => resolve(NOT_YET));
    read.then(
      (value) => {
        clearImmediate(turn);
        resolve(value);
      },
      (error: unknown) => {
        clearImmediate(turn);
        reject(error);
      },
    );
  });
}

/**
 * Sends the source's chunks as the call's DATA, then END. A source that is whole in one chunk (or
 * empty) at once goes out with the REQUEST in one write. A source that waits for its first or
 * second chunk does not hold up the REQUEST: the daemon starts the call (takes an upload's lock,
 * checks its offset, answers an error) while the source waits, as an in-process call does.
 */
async function sendAll(call: Upload, chunks: ChunkReader): Promise<void> {
  const firstRead = chunks.next();
  let first = await soon(firstRead);
  if (first === NOT_YET) {
    await call.open();
    first = await firstRead;
  }
  if (!first) {
    await call.send(EMPTY, true);
    return;
  }
  const secondRead = chunks.next();
  secondRead.catch(() => {}); // read again below, unless the call has ended by then
  const second = await soon(secondRead);
  if (!second) {
    await call.send(first, true);
    return;
  }
  if (!(await call.send(first, false))) return;
  for (let chunk = second === NOT_YET ? await secondRead : second; chunk; chunk = await chunks.next()) {
    if (!(await call.send(chunk, false))) return;
  }
  await call.send(EMPTY, true);
}
