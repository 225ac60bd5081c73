// What every data plane in this package does alike, whatever carries its calls (the addon in this
// process, or a daemon's socket): the life of a call (CLOSED after close, the caller's signal, a
// signal that close fires), and every operation that is a request and a result, written once on
// top of `unary`, including the catalogue's listing and scrub, which page through the store.

import { setMaxListeners } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';

import { abortError } from './abort';
import { staged, type Staged } from './cbor';
import { DataPlaneError } from './errors';
import { OPERATIONS, type Request } from './operations';
import { isRecord, optionalFunction, optionalRecord, optionalSignal } from './options';
import type {
  AbortUploadResult,
  AddressLike,
  AppendUploadOptions,
  BackendOptions,
  BackendStatus,
  CommitUploadOptions,
  ContentAddress,
  CreateUploadOptions,
  DeleteOptions,
  DeletionResult,
  IngestOptions,
  IngestResult,
  ListOptions,
  ListUploadsOptions,
  ObjectInfo,
  ObjectStream,
  OpenDataPlane,
  PurgeUploadsOptions,
  ScrubOptions,
  ScrubProgress,
  ScrubReport,
  ServeOptions,
  UploadStatus,
  VerifyResult,
} from './types';

interface ScrubPage {
  backendId: string;
  checkedObjects: number;
  checkedBytes: number;
  corrupt: VerifyResult[];
  quarantined: number;
  lastAddress?: string;
  nextAfter?: string;
  /** How long to wait before the next page (or the report) to keep to bytesPerSecond. */
  pauseMs?: number;
}

/** Waits `ms`, or until `signal` fires if that is sooner. */
async function pause(ms: number | undefined, signal: AbortSignal): Promise<void> {
  if (!ms || signal.aborted) return;
  await sleep(ms, undefined, { signal }).catch(() => {}); // the signal cut it short: the caller looks
}

export abstract class PlaneCalls implements OpenDataPlane {
  protected closed = false;
  /** Fired by close(): ends every call still under way with CLOSED. */
  protected readonly closing = new AbortController();
  protected readonly calls = new Set<Promise<unknown>>();

  constructor() {
    setMaxListeners(0, this.closing.signal); // every call under way listens to it
  }

  abstract ingestStream(stream: AsyncIterable<Uint8Array>, options?: IngestOptions): Promise<IngestResult>;
  abstract ingestFile(path: string, options?: IngestOptions): Promise<IngestResult>;
  abstract serveObject(address: AddressLike, options?: ServeOptions): Promise<ObjectStream>;
  abstract appendUpload(uploadId: string, stream: AsyncIterable<Uint8Array>, options: AppendUploadOptions): Promise<UploadStatus>;
  abstract close(): Promise<void>;

  /** Runs an operation that is one request and one result (see lib/operations.ts). */
  protected abstract unary(operation: string, request: Request): Promise<unknown>;

  /**
   * `unary` for a caller that looks at the answer before it is checked and converted (a listing
   * asks for its next page first). A plane that checks the answer as it arrives gives it as is.
   */
  protected async unaryStaged(operation: string, request: Request): Promise<Staged> {
    return staged(await this.unary(operation, request));
  }

  verifyObject(address: AddressLike, options?: BackendOptions): Promise<VerifyResult> {
    return this.simple('verifyObject', () => OPERATIONS.verifyObject.request(address, options));
  }

  deleteObject(address: AddressLike, options?: DeleteOptions): Promise<DeletionResult> {
    return this.simple('deleteObject', () => OPERATIONS.deleteObject.request(address, options));
  }

  backendHealth(): Promise<BackendStatus> {
    return this.simple('backendHealth', () => OPERATIONS.backendHealth.request());
  }

  /** The plane's figures in the Prometheus text format (the daemon's, through a daemon). */
  metrics(): Promise<string> {
    return this.simple('metrics', () => OPERATIONS.metrics.request());
  }

  statObject(address: AddressLike, options?: BackendOptions): Promise<ObjectInfo> {
    return this.simple('statObject', () => OPERATIONS.statObject.request(address, options));
  }

  touchObject(address: AddressLike, options?: BackendOptions): Promise<ObjectInfo> {
    return this.simple('touchObject', () => OPERATIONS.touchObject.request(address, options));
  }

  findMissing(addresses: AddressLike[], options?: BackendOptions): Promise<ContentAddress[]> {
    return this.simple('findMissing', () => OPERATIONS.findMissing.request(addresses, options));
  }

  /** Pages through the backend's objects as the caller consumes them; memory stays one page. */
  listObjects(options?: ListOptions): AsyncIterable<ObjectInfo> {
    return { [Symbol.asyncIterator]: () => this.listing<ObjectInfo>('listObjects', 'objects', options) };
  }

  createUpload(options?: CreateUploadOptions): Promise<UploadStatus> {
    return this.call('createUpload', options, async () => (await this.unary(OPERATIONS.createUpload.op, OPERATIONS.createUpload.request(options))) as UploadStatus);
  }

  uploadStatus(uploadId: string): Promise<UploadStatus> {
    return this.simple('uploadStatus', () => OPERATIONS.uploadStatus.request(uploadId));
  }

  commitUpload(uploadId: string, options?: CommitUploadOptions): Promise<IngestResult> {
    return this.call('commitUpload', options, async () => (await this.unary(OPERATIONS.commitUpload.op, OPERATIONS.commitUpload.request(uploadId, options))) as IngestResult);
  }

  abortUpload(uploadId: string): Promise<AbortUploadResult> {
    return this.simple('abortUpload', () => OPERATIONS.abortUpload.request(uploadId));
  }

  /** Pages through a backend's uploads, ascending by id, as the caller consumes them. */
  listUploads(options?: ListUploadsOptions): AsyncIterable<UploadStatus> {
    return { [Symbol.asyncIterator]: () => this.listing<UploadStatus>('listUploads', 'uploads', options) };
  }

  purgeUploads(options: PurgeUploadsOptions): Promise<{ purged: number }> {
    return this.simple('purgeUploads', () => OPERATIONS.purgeUploads.request(options));
  }

  private async *listing<T>(
    what: 'listObjects' | 'listUploads',
    key: 'objects' | 'uploads',
    options: ListOptions | ListUploadsOptions | undefined,
  ): AsyncGenerator<T, void, undefined> {
    const { op, request } = OPERATIONS[what];
    const first: Request = request(options as never);
    let remaining = first.limit as number | undefined;
    if (remaining === 0) return;
    const fetch = (after: string | undefined, limit: number | undefined) => {
      const page = this.call(what, options, () => this.unaryStaged(op, { ...first, after, limit }));
      page.catch(() => {}); // a page fetched ahead and never reached is nobody's error
      return page;
    };
    let next = fetch(first.after as string | undefined, remaining);
    for (;;) {
      const arrived = await next;
      // The next page is asked for before this one is checked and converted, and computed while
      // that happens and while the caller works through this one. A page that fails its checks
      // rejects the listing, and what was asked for after it is dropped.
      const wanted = remaining === undefined ? undefined : remaining - (arrived.peekLength(key) ?? 0);
      const after = arrived.peekText('nextAfter');
      const more = typeof after === 'string' && wanted !== 0;
      if (more) next = fetch(after, wanted);
      const page = arrived.value() as Record<typeof key, T[]>;
      for (const item of page[key]) {
        yield item;
        if (remaining !== undefined && --remaining === 0) return;
      }
      if (!more) return;
    }
  }

  /** Verifies the backend's objects page by page; a fired signal ends it with complete: false. */
  scrub(options?: ScrubOptions): Promise<ScrubReport> {
    return this.call('scrub', options, async (signal): Promise<ScrubReport> => {
      const { op, request } = OPERATIONS.scrub;
      const first = request(options);
      const onProgress = optionalFunction<(p: ScrubProgress) => void>(optionalRecord(options, 'options').onProgress, 'options.onProgress');
      const startedAt = new Date().toISOString();
      const report = { backendId: '', checkedObjects: 0, checkedBytes: 0, corrupt: [] as VerifyResult[], quarantined: 0 };
      let lastAddress: string | undefined;
      let after = first.after as string | undefined;
      for (;;) {
        const page = (await this.unary(op, { ...first, after })) as ScrubPage;
        report.backendId = page.backendId;
        report.checkedObjects += page.checkedObjects;
        report.checkedBytes += page.checkedBytes;
        report.corrupt.push(...page.corrupt);
        report.quarantined += page.quarantined;
        lastAddress = page.lastAddress ?? lastAddress;
        const { checkedObjects, checkedBytes } = report;
        onProgress?.({ checkedObjects, checkedBytes, corruptObjects: report.corrupt.length, lastAddress });
        await pause(page.pauseMs, signal);
        const finishedAt = () => new Date().toISOString();
        if (page.nextAfter === undefined) return { ...report, complete: true, startedAt, finishedAt: finishedAt() };
        after = page.nextAfter;
        if (this.closing.signal.aborted) throw this.closing.signal.reason;
        if (signal.aborted) return { ...report, complete: false, resumeAfter: after, startedAt, finishedAt: finishedAt() };
      }
    });
  }

  /** A unary call whose request `build` checks first (so a bad argument rejects, never throws). */
  private simple<T>(what: keyof typeof OPERATIONS, build: () => Request): Promise<T> {
    return this.call(what, undefined, async () => (await this.unary(OPERATIONS[what].op, build())) as T);
  }

  /**
   * Runs one call: rejects with CLOSED after close, checks the caller's signal, and hands the body
   * a signal that fires on either the caller's abort or close.
   */
  protected async call<T>(what: string, options: unknown, body: (signal: AbortSignal) => Promise<T>): Promise<T> {
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
