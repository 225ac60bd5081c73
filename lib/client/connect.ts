// connectDataPlane: the SPEC's entry point for the daemon. Pure TypeScript over node:net.

import { describe } from '../describe';
import { DataPlaneError } from '../errors';
import { isRecord, optionalCount, optionalString } from '../options';
import type { OpenDataPlane } from '../types';
import { RemoteDataPlane } from './remote-plane';

export interface ConnectOptions {
  /** The daemon's Unix socket. */
  socketPath: string;
  /** How long to keep trying while nothing listens on the socket yet; default 5000. */
  connectTimeoutMs?: number;
}

const DEFAULT_CONNECT_TIMEOUT_MS = 5000;

function connectOptions(options: ConnectOptions): Required<ConnectOptions> {
  if (!isRecord(options)) {
    throw new DataPlaneError('INVALID_ARGUMENT', `connectDataPlane: the options must be an object, got ${describe(options)}`);
  }
  const socketPath = optionalString(options.socketPath, 'socketPath');
  if (!socketPath) {
    throw new DataPlaneError('INVALID_ARGUMENT', `socketPath must be a non-empty string, got ${describe(options.socketPath)}`);
  }
  const connectTimeoutMs = optionalCount(options.connectTimeoutMs, 'connectTimeoutMs') ?? DEFAULT_CONNECT_TIMEOUT_MS;
  return { socketPath, connectTimeoutMs };
}

/**
 * A data plane served by the daemon at `socketPath`: the same operations, results and errors as
 * `openDataPlane`. Retries for `connectTimeoutMs` while nothing listens, then rejects with
 * BACKEND_UNAVAILABLE naming the socket; a daemon that refuses this uid: PERMISSION_DENIED.
 */
export async function connectDataPlane(options: ConnectOptions): Promise<OpenDataPlane> {
  const { socketPath, connectTimeoutMs } = connectOptions(options);
  const plane = new RemoteDataPlane(socketPath, connectTimeoutMs);
  await plane.connect();
  return plane;
}
