import { AbortRace } from '../abort';
import type { ContentAddress, ObjectStream } from '../types';
import type { NativeObjectReader } from './addon';
import { fromNativeError } from './errors';

/** A served object: iterate it once; breaking out of the loop releases the file or connection. */
export class NativeObjectStream implements ObjectStream {
  readonly sizeBytes: number;
  readonly totalSizeBytes: number;

  /**
   * @param signal the caller's signal joined with the data plane's close: either ends the stream
   * @param onRelease called once the reader is released
   */
  constructor(
    readonly contentAddress: ContentAddress,
    private readonly reader: NativeObjectReader,
    private readonly signal: AbortSignal,
    private readonly onRelease: (stream: NativeObjectStream) => void,
  ) {
    this.sizeBytes = reader.sizeBytes;
    this.totalSizeBytes = reader.totalSizeBytes;
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Buffer, void, undefined> {
    const abort = new AbortRace(this.signal, 'serveObject');
    try {
      for (;;) {
        let chunk: Buffer | null;
        try {
          chunk = await abort.race(this.reader.next());
        } catch (error) {
          throw fromNativeError(error);
        }
        if (!chunk) return;
        yield chunk;
      }
    } finally {
      abort.dispose();
      await this.release();
    }
  }

  /** Releases the file or connection now; a later iteration rejects with the signal's reason. */
  async release(): Promise<void> {
    await this.reader.close();
    this.onRelease(this);
  }
}
