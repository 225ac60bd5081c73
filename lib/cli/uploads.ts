// `uploads ls|purge`: the resumable uploads of a backend (SPEC "Resumable uploads").

import type { CommandContext } from './objects';
import { printJson, printLine } from './print';

/** `uploads ls [--updated-before T]`: one upload per line (JSON Lines with --json). */
export async function listUploads(context: CommandContext, options: { updatedBefore?: string }): Promise<number> {
  for await (const upload of context.dp.listUploads({ backendId: context.backendId, updatedBefore: options.updatedBefore })) {
    if (context.json) printJson(upload);
    else printLine(`${upload.uploadId}\t${upload.offset}\t${upload.updatedAt}`);
  }
  return 0;
}

/** `uploads purge --updated-before T`. */
export async function purgeUploads(context: CommandContext, options: { updatedBefore: string }): Promise<number> {
  const result = await context.dp.purgeUploads({ updatedBefore: options.updatedBefore, backendId: context.backendId });
  if (context.json) printJson(result);
  else printLine(`purged ${result.purged} uploads`);
  return 0;
}
