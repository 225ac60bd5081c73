// The DataPlane over the daemon: the same surface, options and errors as the in-process plane
// (PlaneCalls and the operation table are shared), each call on a stream of a pooled connection.
// A lost connection fails its calls; the next call connects again.

import { abortError, raceAbort } from '../abort';
import { describe } from '../describe';
import { DataPlaneError } from '../errors';
import { OPERATIONS, type Request } from '../operations';
import { PlaneCalls } from '../plane-calls';
import type { AddressLike, AppendUploadOptions, IngestOptions, IngestResult, ObjectStream, ServeOptions, UploadStatus } from '../types';
import { Call } from './call';
import { Connection } from './connection';
import { dial } from './dial';
import { Download, RemoteObjectStream, type ServeAnswer } from './download';
import { fileSource } from './file-source';
import { upload, type Begin } from './upload';

const closedError = () => new DataPlaneError('CLOSED', 'the data plane was closed');

export class RemoteDataPlane extends PlaneCalls {
  private readonly openStreams = new Set<RemoteObjectStream>();
  /** The first is kept while idle; others close once idle (they exist for bursts above max_calls). */
  private connections: Connection[] = [];
  private dialing: Promise<void> | undefined;

  constructor(
    private readonly socketPath: string,
    private readonly connectTimeoutMs: number,
  ) {
    super();
  }

  /** Opens the first connection, so that a daemon refusing us is known now. */
  connect(): Promise<void> {
    return this.dial();
  }

  ingestStream(stream: AsyncIterable<Uint8Array>, options?: IngestOptions): Promise<IngestResult> {
    return this.call('ingestStream', options, (signal) => {
      const { op, request } = OPERATIONS.ingestStream;
      return upload(stream, op, request(options), signal, this.begin(signal, 'ingestStream'), 'ingestStream');
    });
  }

  appendUpload(uploadId: string, stream: AsyncIterable<Uint8Array>, options: AppendUploadOptions): Promise<UploadStatus> {
    return this.call('appendUpload', options, (signal) => {
      const { op, request } = OPERATIONS.appendUpload;
      return upload<UploadStatus>(stream, op, request(uploadId, options), signal, this.begin(signal, 'appendUpload'), 'appendUpload');
    });
  }

  ingestFile(path: string, options?: IngestOptions): Promise<IngestResult> {
    return this.call('ingestFile', options, async (signal) => {
      if (typeof path !== 'string' || path.length === 0) {
        throw new DataPlaneError('INVALID_ARGUMENT', `ingestFile: path must be a non-empty string, got ${describe(path)}`);
      }
      const { op, request } = OPERATIONS.ingestFile;
      const checked = request(options);
      return upload(await fileSource(path), op, checked, signal, this.begin(signal, 'ingestFile'), 'ingestFile');
    });
  }

  serveObject(address: AddressLike, options?: ServeOptions): Promise<ObjectStream> {
    return this.call('serveObject', options, async (signal) => {
      const { op, request } = OPERATIONS.serveObject;
      const download = new Download(op, request(address, options));
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

  /** A call without DATA: REQUEST, then RESPONSE or ERROR. */
  protected async unary(operation: string, request: Request): Promise<unknown> {
    const call = new Call(operation, request);
    await this.begin(this.closing.signal, operation)((connection) => call.start(connection));
    return (await call.answer).value;
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
    await Promise.allSettled([...this.calls, this.dialing, ...[...this.openStreams].map((stream) => stream.release())]);
    for (const connection of this.connections) connection.close(closedError());
    this.connections = [];
  }

  /**
   * How a call of `what` gets its connection: the newest with room, else a new one; `signal`
   * gives up. The newest, so that calls that waited for a dial take the connection dialed for
   * them even if an older one has room again by then: a connection no call takes would never
   * become idle, and so never be closed.
   */
  private begin(signal: AbortSignal, what: string): Begin {
    return async (start) => {
      for (;;) {
        this.connections = this.connections.filter((connection) => !connection.over);
        const ready = this.connections.findLast((connection) => connection.usable);
        if (ready) return start(ready);
        await raceAbort(this.dial(), signal, what);
      }
    };
  }

  /** Adds a connection to the pool (one dial at a time, shared by every call waiting for it). */
  private dial(): Promise<void> {
    this.dialing ??= (async () => {
      try {
        const { socket, reads } = await dial(this.socketPath, this.connectTimeoutMs, this.closing.signal);
        const connection = await Connection.open(socket, reads, this.socketPath);
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
}
