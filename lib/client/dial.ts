// Connecting the socket: retried while nothing listens yet (a daemon starting or restarting),
// given up after the caller's timeout.

import { connect, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

import { DataPlaneError } from '../errors';
import { SocketReads } from './reads';

/** Nothing listens there (yet): no socket file, a stale one, or a full backlog. */
const RETRYABLE = new Set(['ENOENT', 'ECONNREFUSED', 'EAGAIN']);
const FIRST_PAUSE_MS = 5;
const LONGEST_PAUSE_MS = 100;

/** A connected socket, or BACKEND_UNAVAILABLE naming the socket once `timeoutMs` has passed. */
export async function dial(socketPath: string, timeoutMs: number, signal: AbortSignal): Promise<{ socket: Socket; reads: SocketReads }> {
  const deadline = Date.now() + timeoutMs;
  // One for all the attempts: a socket that failed to connect read nothing into it.
  const reads = new SocketReads();
  for (let pause = FIRST_PAUSE_MS; ; pause = Math.min(pause * 2, LONGEST_PAUSE_MS)) {
    try {
      return { socket: await attempt(socketPath, reads), reads };
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? '';
      if (code === 'EACCES') {
        throw new DataPlaneError('PERMISSION_DENIED', `may not connect to the data plane daemon at ${socketPath} (EACCES)`, { cause: error });
      }
      const left = deadline - Date.now();
      if (!RETRYABLE.has(code) || left <= 0) {
        const waited = RETRYABLE.has(code) ? ` within ${timeoutMs} ms` : '';
        throw new DataPlaneError(
          'BACKEND_UNAVAILABLE',
          `cannot connect to the data plane daemon at ${socketPath}${waited}: ${(error as Error).message}`,
          { cause: error },
        );
      }
      await sleep(Math.min(pause, left), undefined, { signal });
    }
  }
}

function attempt(socketPath: string, reads: SocketReads): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ path: socketPath, onread: reads.onread });
    const onError = (error: Error) => {
      socket.destroy();
      reject(error);
    };
    socket.once('error', onError);
    socket.once('connect', () => {
      socket.off('error', onError);
      resolve(socket);
    });
  });
}
