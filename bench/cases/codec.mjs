// The CBOR codec that carries the daemon's control messages: encodeCbor and decodeCbor of an
// IngestResult and of an ObjectInfo-shaped value (SPEC Part 2), many times per sample (ops/s).
// Each sample first checks that the value round-trips (untimed).

import { isDeepStrictEqual } from 'node:util';
import { decodeCbor, encodeCbor } from '@artifactstore/data-plane';
import { timed } from './common.mjs';

const BLAKE3 = { algorithm: 'blake3', hex: '6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85' };
const SHA256 = { algorithm: 'sha256', hex: 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad' };
const LOCATOR = `objects/blake3/64/37/${BLAKE3.hex}`;

export const CODEC_VALUES = {
  IngestResult: {
    primaryDigest: BLAKE3,
    sha256Digest: SHA256,
    sizeBytes: 2 ** 40 + 3,
    receipt: { backendId: 'local', locator: LOCATOR, sizeBytes: 2 ** 40 + 3, storedAt: '2026-11-24T04:06:36.000Z', deduplicated: false },
  },
  ObjectInfo: {
    contentAddress: BLAKE3,
    sha256Digest: SHA256,
    sizeBytes: 4096,
    backendId: 'local',
    locator: LOCATOR,
    storedAt: '2026-11-24T04:06:36.000Z',
    touchedAt: '2026-11-30T17:45:02.125Z',
  },
};

/** `codec` is what is measured: the package's own unless given (to compare another build). */
export function codecCases({ objects }, codec = { encodeCbor, decodeCbor }) {
  const ops = objects * 10;
  return Object.entries(CODEC_VALUES).flatMap(([type, value]) => {
    const bytes = codec.encodeCbor(value);
    const operations = {
      encode: { label: `encodeCbor(${type})`, once: () => codec.encodeCbor(value) },
      decode: { label: `decodeCbor(${type})`, once: () => codec.decodeCbor(bytes) },
    };
    return Object.entries(operations).map(([name, { label, once }]) => ({
      id: `ours.cbor.${name}.${type}`,
      label: `${label}, ${ops.toLocaleString('en-US')} times`,
      group: 'ours',
      unit: 'ops/s',
      amount: ops,
      run: async () => {
        if (!isDeepStrictEqual(codec.decodeCbor(codec.encodeCbor(value)), value)) throw new Error(`${type} does not round-trip`);
        const { seconds, cpuSeconds } = await timed(() => {
          for (let i = 0; i < ops; i++) once();
        });
        return { seconds, cpuSeconds, digests: [] };
      },
    }));
  });
}
