// One call on a connection, as its stream's frames drive it: the server's answer (RESPONSE or
// ERROR), and a way for the code driving the call to wait for whatever the server does next.

import type { DataPlaneError } from '../errors';
import type { CallEvents, Connection } from './connection';

/** The longest a cancelled call waits for the daemon to say it has let go. */
const RELEASE_WAIT_MS = 2000;

/** `promise`, or nothing once `ms` have passed (the timer keeps no process alive). */
function within(promise: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, ms);
    timer.unref();
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export interface Answer {
  value: unknown;
  /** The server sends DATA after it. */
  more: boolean;
}

export class Call implements CallEvents {
  streamId = 0;
  connection: Connection | undefined;
  /** Why the call ended early: the server's ERROR, the connection ending, or a local cancel. */
  failure: DataPlaneError | undefined;
  /** Settled by the server's RESPONSE or ERROR, or the connection ending. */
  readonly answer: Promise<Answer>;
  answered = false;
  /** Settled once the daemon has ended a call this side cancelled. */
  private released: Promise<void> | undefined;
  private settle!: { resolve: (answer: Answer) => void; reject: (error: DataPlaneError) => void };
  private waiter: (() => void) | undefined;

  constructor(
    readonly op: string,
    readonly args: Record<string, unknown>,
  ) {
    this.answer = new Promise<Answer>((resolve, reject) => {
      this.settle = { resolve, reject };
    });
    this.answer.catch(() => {}); // whoever drives the call awaits it when it needs it
  }

  /** Sends the REQUEST (and `more` frames in the same write) on `connection`. Synchronous. */
  start(connection: Connection, flags = 0, more?: (streamId: number) => Buffer[]): void {
    this.connection = connection;
    this.streamId = connection.startCall(this.op, this.args, flags, this, more);
  }

  get started(): boolean {
    return this.connection !== undefined;
  }

  response(value: unknown, more: boolean): void {
    this.answered = true;
    this.settle.resolve({ value, more });
    this.wake();
  }

  data(_piece: Buffer, _last: boolean): void {
    this.connection?.violation(`DATA on stream ${this.streamId}, a call that takes none`);
  }

  window(_credit: number): void {
    this.connection?.violation(`WINDOW on stream ${this.streamId}, a call that sends no DATA`);
  }

  error(error: DataPlaneError): void {
    this.fail(error);
  }

  fail(error: DataPlaneError): void {
    this.failure ??= error;
    this.settle.reject(error);
    this.wake();
  }

  /**
   * Ends the call at once on both sides, failing it locally with `reason`: CANCEL goes to the
   * server unless the call is over there already. Resolves once the daemon has let go of what
   * the call held (at most RELEASE_WAIT_MS: a daemon that does not answer holds up no caller).
   */
  cancel(reason: DataPlaneError): Promise<void> {
    if (!this.failure) {
      this.released = this.connection?.cancel(this.streamId);
      this.fail(reason);
    }
    return within(this.released ?? Promise.resolve(), RELEASE_WAIT_MS);
  }

  /** Cancels the call when `signal` fires, until the returned function is called. */
  cancelOn(signal: AbortSignal, reason: () => DataPlaneError): () => void {
    const onAbort = () => this.cancel(reason());
    if (signal.aborted) onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    return () => signal.removeEventListener('abort', onAbort);
  }

  /** Resolves at the next thing the server does on this call (or its end). */
  protected changed(): Promise<void> {
    return new Promise((resolve) => {
      this.waiter = resolve;
    });
  }

  protected wake(): void {
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.();
  }
}
