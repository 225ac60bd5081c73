// openDataPlane: the SPEC's DataPlane in this process, on the native addon.

import { setMaxListeners } from 'node:events';
import { abortError, raceAbort } from '../abort';
import { addressText } from '../address';
import { decodeCbor, encodeCbor } from '../cbor';
import { describe } from '../describe';
import { DataPlaneError } from '../errors';
import { backendIdOf, byteRangeOf, checkedBackends, checkedIngestOptions, isRecord, optionalSignal } from '../options';
import type {
  AddressLike,
  BackendOptions,
  BackendStatus,
  ContentAddress,
  DataPlaneConfig,
  DeletionResult,
  IngestOptions,
  IngestResult,
  ObjectStream,
  OpenDataPlane,
  ServeOptions,
  VerifyResult,
} from '../types';
import { addon, type NativeDataPlane } from './addon';
import { translateNative } from './errors';
import { ingestStream } from './ingest';
import { NativeObjectStream } from './object-stream';

/**
 * Opens the configured backends; rejects with INVALID_ARGUMENT naming the field it cannot honour,
 * and with BACKEND_UNAVAILABLE when the addon cannot load (the first call loads it).
 */
export async function openDataPlane(config: DataPlaneConfig): Promise<OpenDataPlane> {
  const { backends, defaultBackend } = checkedBackends(config);
  const native = addon();
  const plane = await translateNative(() => native.NativeDataPlane.open(backends, defaultBackend));
  return new DataPlaneClient(plane);
}

/** Every call under way listens to it (one listener each): no listener limit applies. */
function closingController(): AbortController {
  const controller = new AbortController();
  setMaxListeners(0, controller.signal);
  return controller;
}

class DataPlaneClient implements OpenDataPlane {
  private closed = false;
  /** Fired by close(): ends every call still under way with CLOSED. */
  private readonly closing = closingController();
  private readonly openStreams = new Set<NativeObjectStream>();
  private readonly calls = new Set<Promise<unknown>>();

  constructor(private readonly plane: NativeDataPlane) {}

  ingestStream(stream: AsyncIterable<Uint8Array>, options?: IngestOptions): Promise<IngestResult> {
    return this.call('ingestStream', options, (signal) =>
      ingestStream(this.plane, stream, checkedIngestOptions(options), signal, () => this.calls.size === 1),
    );
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
      const text = addressText(address);
      const range = byteRangeOf(isRecord(options) ? options.byteRange : undefined);
      const request = encodeCbor({ address: text, byteRange: range, backendId: backendIdOf(options) });
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

  verifyObject(address: AddressLike, options?: BackendOptions): Promise<VerifyResult> {
    return this.call('verifyObject', undefined, () =>
      this.unary<VerifyResult>('verify_object', { address: addressText(address), backendId: backendIdOf(options) }),
    );
  }

  deleteObject(address: AddressLike, options?: BackendOptions): Promise<DeletionResult> {
    return this.call('deleteObject', undefined, () =>
      this.unary<DeletionResult>('delete_object', { address: addressText(address), backendId: backendIdOf(options) }),
    );
  }

  backendHealth(): Promise<BackendStatus> {
    return this.call('backendHealth', undefined, () => this.unary<BackendStatus>('backend_health', {}));
  }

  /** A unary operation of the core's table: its request and result travel as the wire's CBOR. */
  private async unary<T>(operation: string, request: Record<string, unknown>): Promise<T> {
    const encoded = encodeCbor(request);
    return decodeCbor(await translateNative(() => this.plane.call(operation, encoded))) as T;
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
