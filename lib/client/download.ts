// A serve through the daemon: the server's DATA pieces wait in a queue the caller's loop empties,
// and credit goes back to the server only as the loop takes them, so a paused loop stalls its own
// call and nothing else on the connection.

import { AbortRace, abortError } from '../abort';
import { DataPlaneError } from '../errors';
import type { ContentAddress, ObjectStream } from '../types';
import { Call } from './call';

export interface ServeAnswer {
  contentAddress: ContentAddress;
  sizeBytes: number;
  totalSizeBytes: number;
}

export class Download extends Call {
  private readonly pieces: Buffer[] = [];
  /** The server has sent its last DATA frame. */
  private finished = false;
  /** Bytes the server may still send before it hears from us. */
  private receivable = 0;
  /** Bytes taken by the loop since credit was last returned. */
  private taken = 0;
  /** The server's ERROR after its DATA (a verified serve's bad group): it comes after the pieces before it. */
  private ended: DataPlaneError | undefined;

  override response(value: unknown, more: boolean): void {
    this.receivable = this.connection!.hello.windowBytes;
    if (!more) this.finished = true;
    super.response(value, more);
  }

  override data(piece: Buffer, last: boolean): void {
    this.receivable -= piece.length;
    if (this.receivable < 0) {
      this.connection!.violation(`DATA beyond the granted credit on stream ${this.streamId}`);
      return;
    }
    if (piece.length > 0) this.pieces.push(piece);
    if (last) this.finished = true;
    this.wake();
  }

  override error(error: DataPlaneError): void {
    if (!this.answered) return super.error(error);
    this.ended = error;
    this.finished = true;
    this.wake();
  }

  /** The next piece, or undefined at the end; rejects with why the call failed. */
  async next(): Promise<Buffer | undefined> {
    for (;;) {
      // A failure wins over pieces still queued: the loop learns of a lost connection at once.
      if (this.failure) throw this.failure;
      const piece = this.pieces.shift();
      if (piece) {
        this.took(piece.length);
        return piece;
      }
      if (this.ended) throw this.ended;
      if (this.finished) return undefined;
      await this.changed();
    }
  }

  /** Returns credit once half the window has been taken. */
  private took(bytes: number): void {
    this.taken += bytes;
    const window = this.connection!.hello.windowBytes;
    if (this.finished || this.taken < window / 2) return;
    this.connection!.sendWindow(this.streamId, this.taken);
    this.receivable += this.taken;
    this.taken = 0;
  }

  /** Ends the call on both sides unless the server has finished it already. */
  release(reason: DataPlaneError): Promise<void> {
    this.pieces.length = 0;
    return this.finished ? Promise.resolve() : this.cancel(reason);
  }
}

/** A served object: iterate it once; breaking out of the loop ends the call on both sides at once. */
export class RemoteObjectStream implements ObjectStream {
  readonly contentAddress: ContentAddress;
  readonly sizeBytes: number;
  readonly totalSizeBytes: number;
  private readonly stopCancelling: () => void;

  /**
   * @param signal the caller's signal joined with the data plane's close: either ends the call
   * @param onRelease called once the call is over
   */
  constructor(
    answer: ServeAnswer,
    private readonly download: Download,
    private readonly signal: AbortSignal,
    private readonly onRelease: (stream: RemoteObjectStream) => void,
  ) {
    this.contentAddress = answer.contentAddress;
    this.sizeBytes = answer.sizeBytes;
    this.totalSizeBytes = answer.totalSizeBytes;
    this.stopCancelling = download.cancelOn(signal, () => abortError(signal, 'serveObject'));
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Buffer, void, undefined> {
    const abort = new AbortRace(this.signal, 'serveObject');
    try {
      for (;;) {
        const piece = await abort.race(this.download.next());
        if (!piece) return;
        yield piece;
      }
    } finally {
      abort.dispose();
      await this.release();
    }
  }

  /**
   * Ends the call now (a later iteration rejects with the reason) and resolves once the daemon
   * has closed the object: a loop that breaks, throws or is aborted completes after that.
   */
  release(): Promise<void> {
    this.stopCancelling();
    const released = this.download.release(new DataPlaneError('ABORTED', 'serveObject: the stream was released before its end'));
    this.onRelease(this);
    return released;
  }
}
