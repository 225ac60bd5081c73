import { DataPlaneError } from './errors';

export function abortError(signal: AbortSignal, what: string): DataPlaneError {
  const reason = signal.reason instanceof Error ? signal.reason.message : String(signal.reason);
  return new DataPlaneError('ABORTED', `${what} aborted: ${reason}`, { cause: signal.reason });
}

/**
 * Races `promise` against the signal: rejects with ABORTED as soon as it fires. The listener is
 * removed when the race ends, so long streams do not pile listeners up.
 */
export function raceAbort<T>(promise: Promise<T>, signal: AbortSignal | undefined, what: string): Promise<T> {
  if (!signal) return promise;
  if (signal.aborted) return Promise.reject(abortError(signal, what));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(abortError(signal, what));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
