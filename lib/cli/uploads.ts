// `uploads ls|purge`: the resumable uploads of a backend (SPEC "Resumable uploads"), on a plane
// that has them.

import { DataPlaneError } from '../errors';
import type { CommandContext } from './objects';
import { printJson, printLine } from './print';

interface UploadStatus {
  uploadId: string;
  backendId: string;
  offset: number;
  createdAt: string;
  updatedAt: string;
}

interface UploadsPlane {
  listUploads(options?: { backendId?: string; updatedBefore?: string }): AsyncIterable<UploadStatus>;
  purgeUploads(options: { updatedBefore: string; backendId?: string }): Promise<{ purged: number }>;
}

/** `uploads ls [--updated-before T]`: one upload per line (JSON Lines with --json). */
export async function listUploads(context: CommandContext, options: { updatedBefore?: string }): Promise<number> {
  const plane = uploadsPlane(context, 'listUploads');
  for await (const upload of plane.listUploads({ backendId: context.backendId, updatedBefore: options.updatedBefore })) {
    if (context.json) printJson(upload);
    else printLine(`${upload.uploadId}\t${upload.offset}\t${upload.updatedAt}`);
  }
  return 0;
}

/** `uploads purge --updated-before T`. */
export async function purgeUploads(context: CommandContext, options: { updatedBefore: string }): Promise<number> {
  const plane = uploadsPlane(context, 'purgeUploads');
  const result = await plane.purgeUploads({ updatedBefore: options.updatedBefore, backendId: context.backendId });
  if (context.json) printJson(result);
  else printLine(`purged ${result.purged} uploads`);
  return 0;
}

function uploadsPlane(context: CommandContext, method: keyof UploadsPlane): UploadsPlane {
  if (typeof (context.dp as unknown as Partial<UploadsPlane>)[method] !== 'function') {
    throw new DataPlaneError('INVALID_ARGUMENT', `uploads: this data plane has no ${method} (resumable uploads are not in this version of the package)`);
  }
  return context.dp as unknown as UploadsPlane;
}
