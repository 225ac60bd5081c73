// Resumable uploads (SPEC Part 2): the large object sent in 16 MiB appends and committed, beside
// one ingestStream of it, and the commit alone, whose time must not grow with the object's size
// (it digests nothing again: the hash states travel in the upload's record).

import { chunksOf } from '../data.mjs';
import { ingested, MiB, timed, withFreshPlane } from './common.mjs';

const APPEND_BYTES = 16 * MiB;

/** Appends `bytes` to a new upload in appends of APPEND_BYTES (1 MiB chunks); resolves its id. */
async function appendAll(dp, bytes) {
  const { uploadId } = await dp.createUpload();
  for (let offset = 0; offset < bytes.length; offset += APPEND_BYTES) {
    const piece = bytes.subarray(offset, Math.min(bytes.length, offset + APPEND_BYTES));
    await dp.appendUpload(uploadId, chunksOf(piece, MiB), { offset });
  }
  return uploadId;
}

export function uploadCases({ sizeBytes }) {
  return [
    {
      id: 'ours.upload.16MiB',
      label: 'appendUpload in 16 MiB appends (1 MiB chunks from memory), then commitUpload',
      group: 'ours',
      unit: 'GB/s',
      amount: sizeBytes,
      peers: ['ours.stream.1MiB'],
      run: (ctx) =>
        withFreshPlane(ctx, false, async (dp) => {
          const { seconds, cpuSeconds, value } = await timed(async () => dp.commitUpload(await appendAll(dp, ctx.work.big)));
          return { seconds, cpuSeconds, digests: [ingested('big', value)] };
        }),
    },
    {
      id: 'ours.upload.commit',
      label: 'commitUpload alone, of the large object appended in 16 MiB appends',
      group: 'ours',
      unit: 'commits/s',
      amount: 1,
      run: (ctx) =>
        withFreshPlane(ctx, false, async (dp) => {
          const uploadId = await appendAll(dp, ctx.work.big);
          const { seconds, cpuSeconds, value } = await timed(() => dp.commitUpload(uploadId));
          return { seconds, cpuSeconds, digests: [ingested('big', value)] };
        }),
    },
  ];
}
