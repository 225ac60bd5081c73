// openDataPlane: the SPEC's DataPlane in this process, on the native addon.

import { abortError, raceAbort } from '../abort';
import { decodeOwnCbor, encodeCbor, stageOwnCbor, type Staged } from '../cbor';
import { describe } from '../describe';
import { DataPlaneError } from '../errors';
import { OPERATIONS, type Request } from '../operations';
import { checkedBackends, checkedIngestOptions, optionalBoolean } from '../options';
import { PlaneCalls } from '../plane-calls';
import type {
  AddressLike,
  AppendUploadOptions,
  BackendOptions,
  ContentAddress,
  DataPlaneConfig,
  IngestOptions,
  IngestResult,
  ObjectInfo,
  ObjectStream,
  OpenDataPlane,
  ServeOptions,
  UploadStatus,
} from '../types';
import { addon, type NativeDataPlane } from './addon';
import { fromNativeError, translateNative } from './errors';
import { appendUpload, ingestStream } from './ingest';
import { NativeObjectStream } from './object-stream';
import { objectInfoOf, stagedPage } from './object-info';

/**
 * Opens the configured backends; rejects with INVALID_ARGUMENT naming the field it cannot honour,
 * and with BACKEND_UNAVAILABLE when the addon cannot load (the first call loads it).
 */
export async function openDataPlane(config: DataPlaneConfig): Promise<OpenDataPlane> {
  const { backends, defaultBackend } = checkedBackends(config);
  const metrics = optionalBoolean(config.metrics, 'metrics');
  const native = addon();
  const plane = await translateNative(() => native.NativeDataPlane.open(backends, defaultBackend, metrics));
  return new DataPlaneClient(plane);
}

class DataPlaneClient extends PlaneCalls {
  private readonly openStreams = new Set<NativeObjectStream>();

  constructor(private readonly plane: NativeDataPlane) {
    super();
  }

  ingestStream(stream: AsyncIterable<Uint8Array>, options?: IngestOptions): Promise<IngestResult> {
    return this.call('ingestStream', options, (signal) =>
      ingestStream(this.plane, stream, checkedIngestOptions(options), signal, () => this.calls.size === 1),
    );
  }

  appendUpload(uploadId: string, stream: AsyncIterable<Uint8Array>, options: AppendUploadOptions): Promise<UploadStatus> {
    return this.call('appendUpload', options, async (signal) => {
      const request = encodeCbor(OPERATIONS.appendUpload.request(uploadId, options));
      return appendUpload(this.plane, stream, request, signal);
    });
  }

  ingestFile(path: string, options?: IngestOptions): Promise<IngestResult> {
    return this.call('ingestFile', options, async (signal) => {
      if (typeof path !== 'string' || path.length === 0) {
        throw new DataPlaneError('INVALID_ARGUMENT', `ingestFile: path must be a non-empty string, got ${describe(path)}`);
      }
      const checked = checkedIngestOptions(options);
      // Not a race: the native call stops at the next chunk and stores nothing, or has committed
      // already, and its answer is the truth either way.
      const { Cancellation } = addon(); // loaded: this plane was opened with it
      const cancellation = new Cancellation();
      const cancel = () => cancellation.cancel();
      signal.addEventListener('abort', cancel, { once: true });
      try {
        return (await translateNative(() => this.plane.ingestFile(path, checked, cancellation))) as IngestResult;
      } catch (error) {
        throw signal.aborted && (error as DataPlaneError).code === 'ABORTED' ? abortError(signal, 'ingestFile') : error;
      } finally {
        signal.removeEventListener('abort', cancel);
      }
    });
  }

  serveObject(address: AddressLike, options?: ServeOptions): Promise<ObjectStream> {
    return this.call('serveObject', options, async (signal) => {
      const request = encodeCbor(OPERATIONS.serveObject.request(address, options));
      const reader = await raceAbort(
        translateNative(() => this.plane.serve(request)),
        signal,
        'serveObject',
        (late) => late.close(),
      );
      const stream = new NativeObjectStream(reader.contentAddress as ContentAddress, reader, signal, (s) => this.openStreams.delete(s));
      this.openStreams.add(stream);
      return stream;
    });
  }

  /**
   * As every plane does it, but on a backend that answers in microseconds a lookup the kernel's
   * caches answer is made right here, and a plane's only call is otherwise waited for in place on
   * the core's quick lane (no thread hand-off, no CBOR); one answered so is settled at once: a
   * call that is over needs no tracking.
   */
  override statObject(address: AddressLike, options?: BackendOptions): Promise<ObjectInfo> {
    if (this.closed) return super.statObject(address, options);
    let quick: ReturnType<NativeDataPlane['statQuickly']>;
    try {
      const request = OPERATIONS.statObject.request(address, options);
      quick = this.plane.statQuickly(request.address as string, request.backendId as string | undefined, this.calls.size === 0);
    } catch (error) {
      return Promise.reject(fromNativeError(error));
    }
    if (quick === null) return super.statObject(address, options);
    if (Array.isArray(quick)) return Promise.resolve(objectInfoOf(quick));
    const late = quick;
    return this.call('statObject', undefined, async () => objectInfoOf(await translateNative(() => late)));
  }

  /** A unary operation of the core's table: its request and result travel as the wire's CBOR. */
  protected async unary(operation: string, request: Request): Promise<unknown> {
    const encoded = encodeCbor(request);
    return decodeOwnCbor(await translateNative(() => this.plane.call(operation, encoded)));
  }

  /** As `unary`; a listing's pages come as their objects' fields (see `stagedPage`). */
  protected override async unaryStaged(operation: string, request: Request): Promise<Staged> {
    const encoded = encodeCbor(request);
    if (operation === OPERATIONS.listObjects.op) return stagedPage(await translateNative(() => this.plane.listObjects(encoded)));
    return stageOwnCbor(await translateNative(() => this.plane.call(operation, encoded)));
  }

  /**
   * Every later call rejects with CLOSED. Calls under way end too: streams and ingests still
   * reading reject with CLOSED and release their files; what is already committing completes.
   * Resolves once everything is released.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.closing.abort(new DataPlaneError('CLOSED', 'the data plane was closed'));
    await Promise.allSettled([...this.calls, ...[...this.openStreams].map((stream) => stream.release())]);
    this.plane.close();
  }
}
