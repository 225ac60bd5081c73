import { addressText, parseContentAddress } from './address';
import { DataPlaneError, translateNative } from './errors';
import { ingestStream } from './ingest';
import native from './native';
import type { NativeDataPlane } from './native';
import { NativeObjectStream } from './object-stream';
import { backendIdOf, byteRangeOf, isRecordValue, nativeBackends, nativeIngestOptions, optionalSignal } from './options';
import type {
  AddressLike,
  BackendOptions,
  BackendStatus,
  DataPlaneConfig,
  DeletionResult,
  IngestOptions,
  IngestResult,
  ObjectStream,
  OpenDataPlane,
  ServeOptions,
  VerifyResult,
} from './types';
import { abortError, raceAbort } from './abort';

/** Opens the configured backends; rejects with INVALID_ARGUMENT naming the field it cannot honour. */
export async function openDataPlane(config: DataPlaneConfig): Promise<OpenDataPlane> {
  const { backends, defaultBackend } = nativeBackends(config);
  const plane = await translateNative(() => native.NativeDataPlane.open(backends, defaultBackend));
  return new DataPlaneClient(plane);
}

class DataPlaneClient implements OpenDataPlane {
  private closed = false;

  constructor(private readonly plane: NativeDataPlane) {}

  async ingestStream(stream: AsyncIterable<Uint8Array>, options?: IngestOptions): Promise<IngestResult> {
    this.assertOpen();
    const nativeOptions = nativeIngestOptions(options);
    const signal = optionalSignal(options?.signal);
    return ingestStream(this.plane, stream, nativeOptions, signal);
  }

  async ingestFile(path: string, options?: IngestOptions): Promise<IngestResult> {
    this.assertOpen();
    if (typeof path !== 'string' || path.length === 0) {
      throw new DataPlaneError('INVALID_ARGUMENT', `ingestFile: path must be a non-empty string, got ${JSON.stringify(path)}`);
    }
    const nativeOptions = nativeIngestOptions(options);
    const signal = optionalSignal(options?.signal);
    if (signal?.aborted) throw abortError(signal, 'ingestFile');
    // Not a race: the native call stops at the next chunk and stores nothing, or has committed
    // already, and its answer is the truth either way.
    const cancellation = new native.Cancellation();
    const cancel = () => cancellation.cancel();
    signal?.addEventListener('abort', cancel, { once: true });
    try {
      return (await translateNative(() => this.plane.ingestFile(path, nativeOptions, cancellation))) as IngestResult;
    } catch (error) {
      throw signal?.aborted && (error as DataPlaneError).code === 'ABORTED' ? abortError(signal, 'ingestFile') : error;
    } finally {
      signal?.removeEventListener('abort', cancel);
    }
  }

  async serveObject(address: AddressLike, options?: ServeOptions): Promise<ObjectStream> {
    this.assertOpen();
    const text = addressText(address);
    const range = byteRangeOf(isRecordValue(options) ? options.byteRange : undefined);
    const backendId = backendIdOf(options);
    const signal = optionalSignal(options?.signal);
    if (signal?.aborted) throw abortError(signal, 'serveObject');
    const reader = await raceAbort(
      translateNative(() => this.plane.serve(text, range?.[0], range?.[1], backendId)),
      signal,
      'serveObject',
      (late) => late.close(),
    );
    return new NativeObjectStream(parseContentAddress(text), reader, signal);
  }

  async verifyObject(address: AddressLike, options?: BackendOptions): Promise<VerifyResult> {
    this.assertOpen();
    const text = addressText(address);
    return (await translateNative(() => this.plane.verify(text, backendIdOf(options)))) as VerifyResult;
  }

  async deleteObject(address: AddressLike, options?: BackendOptions): Promise<DeletionResult> {
    this.assertOpen();
    const text = addressText(address);
    return (await translateNative(() => this.plane.delete(text, backendIdOf(options)))) as DeletionResult;
  }

  async backendHealth(): Promise<BackendStatus> {
    this.assertOpen();
    return (await translateNative(() => this.plane.health())) as BackendStatus;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.plane.close();
  }

  private assertOpen(): void {
    if (this.closed) throw new DataPlaneError('CLOSED', 'the data plane is closed');
  }
}
