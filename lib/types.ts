// The public types of the SPEC (../shared/SPEC.md), exactly as callers see them.

export type HashAlgorithm = 'blake3' | 'sha256';

export interface Digest {
  readonly algorithm: HashAlgorithm;
  /** lowercase hex, 64 chars */
  readonly hex: string;
}
/** The primary digest; text form "blake3:<hex>". */
export type ContentAddress = Digest;
/** Every operation accepts either form. */
export type AddressLike = ContentAddress | string;

export interface IngestHints {
  /** Lets a backend pre-allocate or pick an upload strategy; a wrong hint is never an error. */
  sizeHint?: number;
  primaryAlgorithm?: HashAlgorithm;
  /** Which configured backend; the default one when absent. */
  backendId?: string;
}
/** Integrity on write: a mismatch stores nothing. */
export interface IngestExpectations {
  sizeBytes?: number;
  /** hex */
  sha256?: string;
  /** hex of the primary digest */
  primary?: string;
}
export interface IngestOptions {
  hints?: IngestHints;
  expect?: IngestExpectations;
  signal?: AbortSignal;
}

export interface StorageReceipt {
  backendId: string;
  /** fs: the object's path relative to the backend root; s3: the object key */
  locator: string;
  sizeBytes: number;
  /** RFC 3339 UTC */
  storedAt: string;
  /** true when the object was already present and nothing new was written */
  deduplicated: boolean;
}
export interface IngestResult {
  primaryDigest: Digest;
  sha256Digest: Digest;
  sizeBytes: number;
  receipt: StorageReceipt;
}

export interface VerifyResult {
  contentAddress: ContentAddress;
  /** the bytes held now re-digest to the address */
  verified: boolean;
  actualPrimaryDigest: Digest;
  actualSha256Digest: Digest;
  actualSizeBytes: number;
  /** short explanation when verified is false */
  mismatch?: string;
}
export interface DeletionResult {
  contentAddress: ContentAddress;
  backendId: string;
  /** false: was absent, or kept because touched since `unlessTouchedSince` */
  deleted: boolean;
  /** set when a conditional delete kept the object: when it was last touched */
  touchedAt?: string;
}

/** What the catalogue knows of an object (SPEC Part 2, The catalogue). */
export interface ObjectInfo {
  /** the primary digest */
  contentAddress: ContentAddress;
  sha256Digest: Digest;
  sizeBytes: number;
  backendId: string;
  locator: string;
  /** RFC 3339 UTC: when it was first stored */
  storedAt: string;
  /** the last ingest or touch that found it present (storedAt at first) */
  touchedAt: string;
}
export interface ScrubProgress {
  checkedObjects: number;
  checkedBytes: number;
  corruptObjects: number;
  lastAddress?: string;
}
export interface ScrubReport {
  backendId: string;
  checkedObjects: number;
  checkedBytes: number;
  /** the objects that failed, each as verifyObject reports it */
  corrupt: VerifyResult[];
  quarantined: number;
  /** false when stopped by its signal */
  complete: boolean;
  /** when not complete: pass it as `after` to go on */
  resumeAfter?: string;
  startedAt: string;
  finishedAt: string;
}
export interface DeleteOptions extends BackendOptions {
  /** RFC 3339: delete only if the object's touchedAt is before this time */
  unlessTouchedSince?: string;
}
export interface ListOptions extends BackendOptions {
  /** start after this address (text form) */
  after?: string;
  limit?: number;
  /** RFC 3339: only objects whose touchedAt is earlier */
  touchedBefore?: string;
  signal?: AbortSignal;
}
export interface ScrubOptions extends BackendOptions {
  /** start after this address (text form): a report's resumeAfter */
  after?: string;
  /** move corrupt objects to quarantine/ */
  quarantine?: boolean;
  bytesPerSecond?: number;
  signal?: AbortSignal;
  onProgress?: (progress: ScrubProgress) => void;
}

export interface UploadStatus {
  /** opaque text with 128 random bits */
  uploadId: string;
  backendId: string;
  /** bytes appended so far: where the next append starts */
  offset: number;
  createdAt: string;
  updatedAt: string;
}
export interface CreateUploadOptions {
  hints?: IngestHints;
  /** checked at commit, beside the commit's own */
  expect?: IngestExpectations;
  signal?: AbortSignal;
}
export interface AppendUploadOptions {
  /** must equal the upload's current offset */
  offset: number;
  signal?: AbortSignal;
}
export interface CommitUploadOptions {
  expect?: IngestExpectations;
  signal?: AbortSignal;
}
export interface AbortUploadResult {
  uploadId: string;
  /** false: the upload was absent */
  aborted: boolean;
}
export interface ListUploadsOptions extends BackendOptions {
  /** RFC 3339: only uploads last updated earlier */
  updatedBefore?: string;
  signal?: AbortSignal;
}
export interface PurgeUploadsOptions extends BackendOptions {
  /** RFC 3339: removes every upload last updated earlier */
  updatedBefore: string;
}

export interface BackendHealth {
  backendId: string;
  kind: 'fs' | 's3';
  healthy: boolean;
  /** the probe's round trip, whole microseconds */
  latencyMicros: number;
  detail?: string;
  freeBytes?: number;
  totalBytes?: number;
}
export interface BackendStatus {
  /** all backends healthy */
  healthy: boolean;
  backends: BackendHealth[];
}

export interface ObjectStream extends AsyncIterable<Buffer> {
  readonly contentAddress: ContentAddress;
  /** bytes this stream will yield (the range's length) */
  readonly sizeBytes: number;
  /** the whole object's size */
  readonly totalSizeBytes: number;
}

export interface ServeOptions {
  /** half-open: [start, end) */
  byteRange?: [start: number, end: number];
  backendId?: string;
  signal?: AbortSignal;
  /** check every byte against the object's hash tree before it is yielded; true by default */
  verify?: boolean;
}
export interface BackendOptions {
  backendId?: string;
}

export interface DataPlane {
  ingestStream(stream: AsyncIterable<Uint8Array>, options?: IngestOptions): Promise<IngestResult>;
  serveObject(address: AddressLike, options?: ServeOptions): Promise<ObjectStream>;
  verifyObject(address: AddressLike, options?: BackendOptions): Promise<VerifyResult>;
  deleteObject(address: AddressLike, options?: DeleteOptions): Promise<DeletionResult>;
  backendHealth(): Promise<BackendStatus>;
  // The catalogue (SPEC Part 2)
  statObject(address: AddressLike, options?: BackendOptions): Promise<ObjectInfo>;
  touchObject(address: AddressLike, options?: BackendOptions): Promise<ObjectInfo>;
  findMissing(addresses: AddressLike[], options?: BackendOptions): Promise<ContentAddress[]>;
  listObjects(options?: ListOptions): AsyncIterable<ObjectInfo>;
  scrub(options?: ScrubOptions): Promise<ScrubReport>;
  // Resumable uploads (SPEC Part 2)
  createUpload(options?: CreateUploadOptions): Promise<UploadStatus>;
  appendUpload(uploadId: string, stream: AsyncIterable<Uint8Array>, options: AppendUploadOptions): Promise<UploadStatus>;
  uploadStatus(uploadId: string): Promise<UploadStatus>;
  commitUpload(uploadId: string, options?: CommitUploadOptions): Promise<IngestResult>;
  abortUpload(uploadId: string): Promise<AbortUploadResult>;
  listUploads(options?: ListUploadsOptions): AsyncIterable<UploadStatus>;
  purgeUploads(options: PurgeUploadsOptions): Promise<{ purged: number }>;
}

export interface FsBackendConfig {
  id: string;
  kind: 'fs';
  root: string;
  /** fsync before an object becomes visible; default true */
  durable?: boolean;
}
export interface S3BackendConfig {
  id: string;
  kind: 's3';
  bucket: string;
  prefix?: string;
  endpoint?: string;
  region?: string;
  /** taken from AWS_ACCESS_KEY_ID etc. when absent */
  accessKeyId?: string;
  secretAccessKey?: string;
  sessionToken?: string;
}
export type BackendConfig = FsBackendConfig | S3BackendConfig;
export interface DataPlaneConfig {
  backends: BackendConfig[];
  /** the first backend when absent */
  defaultBackend?: string;
  /** count calls and bytes for `metrics()`; default true */
  metrics?: boolean;
}

/** What openDataPlane resolves to: the SPEC's DataPlane, plus a fast path for files and close. */
export interface OpenDataPlane extends DataPlane {
  ingestFile(path: string, options?: IngestOptions): Promise<IngestResult>;
  /** Calls, outcomes, latencies, bytes and backend health in the Prometheus text format (README, "Metrics"). */
  metrics(): Promise<string>;
  /** After close, every call rejects with code CLOSED. */
  close(): Promise<void>;
}
