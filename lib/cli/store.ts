// Which data plane a command runs on: `--root DIR` (an fs backend in this process), `--config
// FILE` (the backends of a daemon's config file, in this process) or `--socket PATH` (a daemon).

import { readFile } from 'node:fs/promises';

import { DataPlaneError } from '../errors';
import type { DataPlaneConfig, OpenDataPlane } from '../types';

export interface StoreOptions {
  root?: string;
  config?: string;
  socket?: string;
}

export async function openStore(options: StoreOptions): Promise<OpenDataPlane> {
  const given = (['root', 'config', 'socket'] as const).filter((key) => options[key] !== undefined);
  if (given.length !== 1) {
    const which = given.length === 0 ? 'none was given' : `got ${given.map((key) => `--${key}`).join(' and ')}`;
    throw new DataPlaneError('INVALID_ARGUMENT', `give the store with one of --root DIR, --config FILE or --socket PATH (${which})`);
  }
  // Each loaded only when used: a command's start-up is most of a small one's time.
  if (options.socket !== undefined) return (await import('../client/connect')).connectDataPlane({ socketPath: options.socket });
  const { openDataPlane } = await import('../native/data-plane');
  if (options.root !== undefined) return openDataPlane({ backends: [{ id: 'local', kind: 'fs', root: options.root }] });
  return openDataPlane(await daemonConfig(options.config as string));
}

/** The backends of a daemon's config file (SPEC "The daemon"); its other fields are the daemon's. */
async function daemonConfig(path: string): Promise<DataPlaneConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new DataPlaneError('IO', `cannot read the config file ${path}: ${(error as Error).message}`, { cause: error });
  }
  let file: unknown;
  try {
    file = JSON.parse(text);
  } catch (error) {
    throw new DataPlaneError('INVALID_ARGUMENT', `config file ${path} is not JSON: ${(error as Error).message}`);
  }
  if (file === null || typeof file !== 'object' || Array.isArray(file)) {
    throw new DataPlaneError('INVALID_ARGUMENT', `config file ${path} must hold a JSON object`);
  }
  const { backends, defaultBackend } = file as Record<string, unknown>;
  return { backends, defaultBackend } as DataPlaneConfig;
}
