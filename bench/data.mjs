// The bytes every contender works on: one large buffer (random, incompressible), a copy of it on
// disk for the file-based rows, its four quarters for the concurrent rows, and small objects cut
// from its start. Before each repetition `stamp(rep)` rewrites 8 bytes at the start of every
// object (the large one, each quarter, each small object) in memory and in the file, so within a
// repetition every contender sees the same bytes and no repetition's content matches another's.

import { createHash, randomBytes, randomFillSync } from 'node:crypto';
import { closeSync, openSync, writeSync } from 'node:fs';
import { createBLAKE3 } from 'hash-wasm';

export const MiB = 1024 * 1024;
export const SMALL_OBJECT_BYTES = 4096;
/** Random bytes generated; the rest of the buffer repeats them (each object still gets its own stamp). */
const RANDOM_BLOCK = 64 * MiB;

export class Workload {
  constructor({ sizeBytes, objects, sourcePath }) {
    this.sizeBytes = sizeBytes;
    this.objectCount = objects;
    this.sourcePath = sourcePath;
    this.salt = randomBytes(4).readUInt32LE(0);
    this.big = Buffer.allocUnsafe(sizeBytes);
    const block = Math.min(sizeBytes, RANDOM_BLOCK);
    randomFillSync(this.big, 0, block);
    for (let offset = block; offset < sizeBytes; offset += block) {
      this.big.copy(this.big, offset, 0, Math.min(block, sizeBytes - offset));
    }
    const quarter = sizeBytes / 4;
    this.quarters = [0, 1, 2, 3].map((q) => this.big.subarray(q * quarter, (q + 1) * quarter));
    this.smallObjects = Array.from({ length: objects }, (_, i) =>
      this.big.subarray(i * SMALL_OBJECT_BYTES, (i + 1) * SMALL_OBJECT_BYTES),
    );
    // Every object's first byte offset: small object i (the first is also the large object's and
    // quarter 0's), then quarters 1..3.
    this.stampOffsets = [...this.smallObjects.map((_, i) => i * SMALL_OBJECT_BYTES), quarter, 2 * quarter, 3 * quarter];
    this.rep = undefined;
    const fd = openSync(sourcePath, 'w');
    try {
      for (let offset = 0; offset < sizeBytes; offset += MiB) writeSync(fd, this.big, offset, Math.min(MiB, sizeBytes - offset), offset);
    } finally {
      closeSync(fd);
    }
  }

  /** Makes this repetition's content: new first 8 bytes for every object, in memory and on disk. */
  stamp(rep) {
    this.rep = rep;
    this.stampOffsets.forEach((offset, k) => {
      this.big.writeUInt32LE((this.salt + rep + 1) >>> 0, offset);
      this.big.writeUInt32LE(k, offset + 4);
    });
    const fd = openSync(this.sourcePath, 'r+');
    try {
      const prefix = this.objectCount * SMALL_OBJECT_BYTES;
      writeSync(fd, this.big, 0, prefix, 0);
      for (const offset of this.stampOffsets.slice(this.objectCount)) writeSync(fd, this.big, offset, 8, offset);
    } finally {
      closeSync(fd);
    }
  }

  /**
   * Reference digests of the quarters and small objects for this repetition, computed apart from
   * any timing with node:crypto (SHA-256) and hash-wasm (BLAKE3). The large object's references
   * come from the SHA-256 ceiling and the plain pipeline of the same repetition.
   */
  async references() {
    const digest = await referenceDigester();
    return { quarters: this.quarters.map(digest), small: this.smallObjects.map(digest) };
  }
}

/** A function giving the reference digests of some bytes: SHA-256 (node:crypto), BLAKE3 (hash-wasm), size. */
export async function referenceDigester() {
  const blake3 = await createBLAKE3();
  return (bytes) => {
    blake3.init();
    blake3.update(bytes);
    return { sha256: createHash('sha256').update(bytes).digest('hex'), blake3: blake3.digest('hex'), size: bytes.length };
  };
}

/** The bytes of `buffer` as an async iterable of `chunkBytes` slices (no copies). */
export async function* chunksOf(buffer, chunkBytes) {
  for (let offset = 0; offset < buffer.length; offset += chunkBytes) {
    yield buffer.subarray(offset, Math.min(offset + chunkBytes, buffer.length));
  }
}

/** One buffer as a one-chunk async iterable: a small object as a caller would hand it over. */
export async function* single(buffer) {
  yield buffer;
}
