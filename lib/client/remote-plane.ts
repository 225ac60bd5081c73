// The DataPlane over the daemon: the same surface, options and errors as the in-process plane,
// each call on a stream of a pooled connection. A lost connection fails its calls; the next call
// connects again.

import { setMaxListeners } from 'node:events';

import { abortError, raceAbort } from '../abort';
import { describe } from '../address';
import { DataPlaneError } from '../errors';
import { iteratorOf } from '../ingest';
import { isRecord, optionalSignal } from '../options';
import type {
  AddressLike,
  BackendOptions,
  BackendStatus,
  DeletionResult,
  IngestOptions,
  IngestResult,
  ObjectStream,
  OpenDataPlane,
  ServeOptions,
  VerifyResult,
} from '../types';
import { Call } from './call';
import { Connection } from './connection';
import { dial } from './dial';
import { Download, RemoteObjectStream, type ServeAnswer } from './download';
import { fileSource } from './file-source';
import { OPS } from './ops';
import { upload, type Begin } from './upload';

const closedError = () => new DataPlaneError('CLOSED', 'the data plane was closed');

export class RemoteDataPlane implements OpenDataPlane {
  private closed = false;
  /** Fired by close(): ends every call still under way with CLOSED. */
  private readonly closing = new AbortController();
  private readonly openStreams = new Set<RemoteObjectStream>();
  private readonly calls = new Set<Promise<unknown>>();
  /** The first is kept while idle; others close once idle (they exist for bursts above max_calls). */
  private connections: Connection[] = [];
  private dialing: Promise<void> | undefined;

  constructor(
    private readonly socketPath: string,
    private readonly connectTimeoutMs: number,
  ) {
    setMaxListeners(0, this.closing.signal); // every call under way listens to it
  }

  /** Opens the first connection, so that a daemon refusing us is known now. */
  connect(): Promise<void> {
    return this.dial();
  }

  ingestStream(stream: AsyncIterable<Uint8Array>, options?: IngestOptions): Promise<IngestResult> {
    return this.call('ingestStream', options, (signal) => {
      const { op, args } = OPS.ingestStream;
      const wire = args(options);
      return upload(iteratorOf(stream), op, wire, signal, this.begin(signal, 'ingestStream'), 'ingestStream');
    });
  }

  ingestFile(path: string, options?: IngestOptions): Promise<IngestResult> {
    return this.call('ingestFile', options, async (signal) => {
      if (typeof path !== 'string' || path.length === 0) {
        throw new DataPlaneError('INVALID_ARGUMENT', `ingestFile: path must be a non-empty string, got ${describe(path)}`);
      }
      const { op, args } = OPS.ingestFile;
      const wire = args(options);
      return upload(iteratorOf(await fileSource(path)), op, wire, signal, this.begin(signal, 'ingestFile'), 'ingestFile');
    });
  }

  serveObject(address: AddressLike, options?: ServeOptions): Promise<ObjectStream> {
    return this.call('serveObject', options, async (signal) => {
      const { op, args } = OPS.serveObject;
      const download = new Download(op, args(address, options));
      const stopCancelling = download.cancelOn(signal, () => abortError(signal, 'serveObject'));
      try {
        await this.begin(signal, 'serveObject')((connection) => download.start(connection));
        const { value } = await download.answer;
        const stream = new RemoteObjectStream(value as ServeAnswer, download, signal, (s) => this.openStreams.delete(s));
        this.openStreams.add(stream);
        return stream;
      } finally {
        stopCancelling();
      }
    });
  }

  verifyObject(address: AddressLike, options?: BackendOptions): Promise<VerifyResult> {
    return this.call('verifyObject', undefined, async () => {
      const { op, args } = OPS.verifyObject;
      return (await this.unary(op, args(address, options))) as VerifyResult;
    });
  }

  deleteObject(address: AddressLike, options?: BackendOptions): Promise<DeletionResult> {
    return this.call('deleteObject', undefined, async () => {
      const { op, args } = OPS.deleteObject;
      return (await this.unary(op, args(address, options))) as DeletionResult;
    });
  }

  backendHealth(): Promise<BackendStatus> {
    return this.call('backendHealth', undefined, async () => {
      const { op, args } = OPS.backendHealth;
      return (await this.unary(op, args())) as BackendStatus;
    });
  }

  /**
   * Closes the connections, not the daemon. As in-process: every later call rejects with CLOSED;
   * streams and ingests still reading end with CLOSED (CANCEL to the daemon); what the daemon is
   * already committing completes. Resolves once every call is over.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.closing.abort(closedError());
    await Promise.allSettled([...this.calls, this.dialing]);
    for (const stream of this.openStreams) stream.release();
    for (const connection of this.connections) connection.close(closedError());
    this.connections = [];
  }

  /** A call without DATA: REQUEST, then RESPONSE or ERROR. */
  private async unary(op: string, args: Record<string, unknown>): Promise<unknown> {
    const call = new Call(op, args);
    await this.begin(this.closing.signal, op)((connection) => call.start(connection));
    return (await call.answer).value;
  }

  /** How a call of `what` gets its connection: one with room, else a new one; `signal` gives up. */
  private begin(signal: AbortSignal, what: string): Begin {
    return async (start) => {
      for (;;) {
        this.connections = this.connections.filter((connection) => !connection.over);
        const ready = this.connections.find((connection) => connection.usable);
        if (ready) return start(ready);
        await raceAbort(this.dial(), signal, what);
      }
    };
  }

  /** Adds a connection to the pool (one dial at a time, shared by every call waiting for it). */
  private dial(): Promise<void> {
    this.dialing ??= (async () => {
      try {
        const socket = await dial(this.socketPath, this.connectTimeoutMs, this.closing.signal);
        const connection = await Connection.open(socket, this.socketPath);
        if (this.closed) return connection.close(closedError());
        connection.onIdle(() => this.trim(connection));
        this.connections.push(connection);
      } finally {
        this.dialing = undefined;
      }
    })();
    return this.dialing;
  }

  /** An idle connection other than the first is closed. */
  private trim(connection: Connection): void {
    const index = this.connections.indexOf(connection);
    if (index <= 0) return;
    this.connections.splice(index, 1);
    connection.close(closedError());
  }

  /**
   * Runs one call: rejects with CLOSED after close, checks the caller's signal, and hands the body
   * a signal that fires on either the caller's abort or close.
   */
  private async call<T>(what: string, options: unknown, body: (signal: AbortSignal) => Promise<T>): Promise<T> {
    if (this.closed) throw new DataPlaneError('CLOSED', 'the data plane is closed');
    const callerSignal = optionalSignal(isRecord(options) ? options.signal : undefined);
    if (callerSignal?.aborted) throw abortError(callerSignal, what);
    const signal = callerSignal ? AbortSignal.any([callerSignal, this.closing.signal]) : this.closing.signal;
    const running = body(signal);
    this.calls.add(running);
    running.then(
      () => this.calls.delete(running),
      () => this.calls.delete(running),
    );
    return running;
  }
}
