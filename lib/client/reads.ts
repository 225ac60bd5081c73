// The socket's reads land in blocks of 1 MiB, each read in the room the reads before it left:
// a read takes all the socket holds (not node:net's 64 KiB), and its frames are views of the
// block, never copied. A block is left to the garbage collector once the frames in it are.

import type { OnReadOpts } from 'node:net';

const BLOCK_BYTES = 1 << 20;
/** Less room than this left in a block: the next read goes into a new one. */
const LEAST_ROOM = 64 << 10;

export class SocketReads {
  /** Where each read's bytes go; set once the connection is made. */
  onBytes: (bytes: Buffer) => void = () => {};
  private block = Buffer.allocUnsafe(BLOCK_BYTES);
  private used = 0;

  /** For `net.connect`: reading into our blocks instead of a buffer per read. */
  readonly onread: OnReadOpts = {
    buffer: (): Buffer => this.room(),
    callback: (length: number, into: Uint8Array): boolean => {
      this.used += length;
      this.onBytes((into as Buffer).subarray(0, length));
      return true; // the calls' credit bounds what arrives
    },
  };

  private room(): Buffer {
    if (BLOCK_BYTES - this.used < LEAST_ROOM) {
      this.block = Buffer.allocUnsafe(BLOCK_BYTES);
      this.used = 0;
    }
    return this.block.subarray(this.used);
  }
}
