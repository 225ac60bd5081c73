// A progress bar on stderr (bytes, rate, ETA) for long work, only when stderr is a terminal.

import bytes from 'bytes';
import type { SingleBar } from 'cli-progress';

export class Progress {
  private done = 0;
  private readonly started = Date.now();

  private constructor(
    private readonly bar: SingleBar,
    private readonly total: number | undefined,
  ) {}

  /** A bar for `total` bytes (unknown: bytes and rate only); none when stderr is not a terminal. */
  static start(label: string, total: number | undefined, enabled = true): Progress | undefined {
    if (!enabled || !process.stderr.isTTY) return undefined;
    const known = total !== undefined;
    // Loaded only for a terminal: it is most of what a command loads.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { SingleBar: Bar } = require('cli-progress') as typeof import('cli-progress');
    const bar = new Bar({
      stream: process.stderr,
      format: known
        ? `${label} {bar} {percentage}% | {done}/{size} | {speed}/s | ETA {eta_formatted}`
        : `${label} {done} | {speed}/s`,
      hideCursor: true,
      clearOnComplete: false,
      etaBuffer: 50,
    });
    const progress = new Progress(bar, total);
    bar.start(total ?? 0, 0, progress.payload());
    return progress;
  }

  add(count: number): void {
    this.set(this.done + count);
  }

  set(done: number): void {
    this.done = done;
    this.bar.update(this.total === undefined ? 0 : Math.min(done, this.total), this.payload());
  }

  stop(): void {
    this.bar.update(this.total === undefined ? 0 : Math.min(this.done, this.total), this.payload());
    this.bar.stop();
  }

  private payload(): Record<string, string> {
    const seconds = Math.max((Date.now() - this.started) / 1000, 0.001);
    return {
      done: bytes.format(this.done) ?? '0B',
      size: bytes.format(this.total ?? 0) ?? '0B',
      speed: bytes.format(Math.round(this.done / seconds)) ?? '0B',
    };
  }
}

/** Passes the chunks on, counting them into `progress`. */
export async function* counted<T extends Uint8Array>(source: AsyncIterable<T>, progress: Progress | undefined): AsyncGenerator<T> {
  for await (const chunk of source) {
    progress?.add(chunk.length);
    yield chunk;
  }
}
