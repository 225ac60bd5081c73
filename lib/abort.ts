import { DataPlaneError } from './errors';

/** ABORTED naming the signal's reason; a reason that is already a DataPlaneError (CLOSED) as it is. */
export function abortError(signal: AbortSignal, what: string): DataPlaneError {
  if (signal.reason instanceof DataPlaneError) return signal.reason;
  const reason = signal.reason instanceof Error ? signal.reason.message : String(signal.reason);
  return new DataPlaneError('ABORTED', `${what} aborted: ${reason}`, { cause: signal.reason });
}

/**
 * Races `promise` against the signal: rejects with ABORTED as soon as it fires. What the promise
 * resolves to after losing the race goes to `dispose` (to close a reader nobody will read), and a
 * late rejection is swallowed, never left unhandled. The listener is removed when the race ends.
 */
export function raceAbort<T>(
  promise: Promise<T>,
  signal: AbortSignal,
  what: string,
  dispose?: (late: T) => unknown,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    const onAbort = () => {
      settled = true;
      reject(abortError(signal, what));
    };
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        if (settled) void Promise.resolve(dispose?.(value)).catch(() => {});
        else resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        if (!settled) reject(error);
      },
    );
  });
}

/**
 * raceAbort for many promises in turn (the chunks of one stream): one listener for the whole
 * stream instead of one per chunk. Only the race under way is referenced (a long-lived promise
 * raced against each chunk would keep every chunk alive). `end` loses the race under way and every
 * later one to a reason other than the signal's (the call failing). Call `dispose` when the
 * stream ends.
 */
export class AbortRace {
  private rejectCurrent: ((error: unknown) => void) | undefined;
  private readonly onAbort: () => void;
  private ended: unknown;

  constructor(
    private readonly signal: AbortSignal,
    private readonly what: string,
  ) {
    this.onAbort = () => this.rejectCurrent?.(abortError(signal, what));
    signal.addEventListener('abort', this.onAbort, { once: true });
  }

  race<T>(promise: Promise<T>): Promise<T> {
    const lost = this.ended ?? (this.signal.aborted ? abortError(this.signal, this.what) : undefined);
    if (lost !== undefined) {
      promise.catch(() => {}); // a rejection after the race was lost is nobody's business
      return Promise.reject(lost);
    }
    // Rejecting a race that already settled does nothing, so the last one need not be forgotten.
    return new Promise<T>((resolve, reject) => {
      this.rejectCurrent = reject;
      promise.then(resolve, reject);
    });
  }

  /** Rejects the race under way, and every later one, with `reason`. */
  end(reason: unknown): void {
    this.ended ??= reason;
    this.rejectCurrent?.(reason);
  }

  dispose(): void {
    this.signal.removeEventListener('abort', this.onAbort);
  }
}
