import { raceAbort } from './abort';
import { fromNativeError } from './errors';
import type { NativeObjectReader } from './native';
import type { ContentAddress, ObjectStream } from './types';

/** A served object: iterate it once; breaking out of the loop releases the file or connection. */
export class NativeObjectStream implements ObjectStream {
  readonly sizeBytes: number;
  readonly totalSizeBytes: number;

  constructor(
    readonly contentAddress: ContentAddress,
    private readonly reader: NativeObjectReader,
    private readonly signal: AbortSignal | undefined,
  ) {
    this.sizeBytes = reader.sizeBytes;
    this.totalSizeBytes = reader.totalSizeBytes;
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Buffer, void, undefined> {
    try {
      for (;;) {
        const chunk = await raceAbort(this.reader.next(), this.signal, 'serveObject').catch((error: unknown) => {
          throw fromNativeError(error);
        });
        if (!chunk) return;
        yield chunk;
      }
    } finally {
      await this.reader.close();
    }
  }
}
