// The table of operations, as every data plane in this package sends them: each method's name on
// the wire (the core's `api::OPERATIONS`) and the request it sends, checked with the package's
// validators (the core checks the values again and names them). The in-process plane and the
// daemon's client both follow it.

import { addressText, parseContentAddress } from './address';
import { describe } from './describe';
import { DataPlaneError } from './errors';
import {
  backendIdOf,
  byteRangeOf,
  checkedIngestOptions,
  isRecord,
  optionalBoolean,
  optionalCount,
  optionalPositive,
  optionalRecord,
  optionalString,
  optionalTime,
} from './options';
import type {
  AddressLike,
  AppendUploadOptions,
  CommitUploadOptions,
  DeleteOptions,
  IngestOptions,
  ListOptions,
  ListUploadsOptions,
  PurgeUploadsOptions,
  ScrubOptions,
  ServeOptions,
} from './types';

export type Request = Record<string, unknown>;

/** The map without its absent fields and empty maps (absent fields are left out on the wire). */
function present(fields: Request): Request {
  const empty = (value: unknown) => isRecord(value) && !Array.isArray(value) && Object.keys(value).length === 0;
  return Object.fromEntries(Object.entries(fields).filter(([, value]) => value !== undefined && !empty(value)));
}

function ingestRequest(options: IngestOptions | undefined): Request {
  const o = checkedIngestOptions(options);
  return present({
    hints: present({ sizeHint: o.sizeHint, primaryAlgorithm: o.primaryAlgorithm, backendId: o.backendId }),
    expect: present({ sizeBytes: o.expectSizeBytes, sha256: o.expectSha256, primary: o.expectPrimary }),
  });
}

/** An upload's id: any text goes to the core (which answers NOT_FOUND for one that names nothing). */
function uploadRequest(uploadId: string): Request {
  if (typeof uploadId !== 'string') {
    throw new DataPlaneError('INVALID_ARGUMENT', `uploadId must be a string, got ${describe(uploadId)}`);
  }
  return { uploadId };
}

function appendRequest(uploadId: string, options: AppendUploadOptions): Request {
  const offset = optionalCount(optionalRecord(options, 'options').offset, 'options.offset');
  if (offset === undefined) throw new DataPlaneError('INVALID_ARGUMENT', 'appendUpload: options.offset is required (the upload\'s current offset)');
  return { ...uploadRequest(uploadId), offset };
}

function commitRequest(uploadId: string, options: CommitUploadOptions | undefined): Request {
  const { expect } = ingestRequest({ expect: optionalRecord(options, 'options').expect } as IngestOptions);
  return present({ ...uploadRequest(uploadId), expect });
}

function listUploadsRequest(options: ListUploadsOptions | undefined): Request {
  const all = optionalRecord(options, 'options');
  return present({ backendId: backendIdOf(all), updatedBefore: optionalTime(all.updatedBefore, 'options.updatedBefore') });
}

function purgeUploadsRequest(options: PurgeUploadsOptions): Request {
  const all = optionalRecord(options, 'options');
  const updatedBefore = optionalTime(all.updatedBefore, 'options.updatedBefore');
  if (updatedBefore === undefined) throw new DataPlaneError('INVALID_ARGUMENT', 'purgeUploads: options.updatedBefore is required');
  return present({ updatedBefore, backendId: backendIdOf(all) });
}

function addressRequest(address: AddressLike, options: unknown): Request {
  const text = addressText(address);
  return present({ address: text, backendId: backendIdOf(options) });
}

function serveRequest(address: AddressLike, options: ServeOptions | undefined): Request {
  const text = addressText(address);
  const all = optionalRecord(options, 'options');
  const byteRange = byteRangeOf(all.byteRange);
  const verify = optionalBoolean(all.verify, 'options.verify');
  return present({ address: text, byteRange, backendId: backendIdOf(options), verify: verify === false ? false : undefined });
}

function deleteRequest(address: AddressLike, options: DeleteOptions | undefined): Request {
  const request = addressRequest(address, options);
  const since = optionalTime(optionalRecord(options, 'options').unlessTouchedSince, 'options.unlessTouchedSince');
  return present({ ...request, unlessTouchedSince: since });
}

function findMissingRequest(addresses: AddressLike[], options: unknown): Request {
  if (!Array.isArray(addresses)) {
    throw new DataPlaneError('INVALID_ARGUMENT', `findMissing: addresses must be an array, got ${describe(addresses)}`);
  }
  return present({ addresses: addresses.map(addressText), backendId: backendIdOf(options) });
}

/** An address given as the text where a listing starts. */
function after(options: Record<string, unknown>): string | undefined {
  const text = optionalString(options.after, 'options.after');
  if (text !== undefined) parseContentAddress(text);
  return text;
}

/** The first page of a listing; `limit` is the caller's, the plane pages within it. */
function listRequest(options: ListOptions | undefined): Request {
  const all = optionalRecord(options, 'options');
  return present({
    backendId: backendIdOf(all),
    after: after(all),
    limit: optionalCount(all.limit, 'options.limit'),
    touchedBefore: optionalTime(all.touchedBefore, 'options.touchedBefore'),
  });
}

/** The first page of a scrub. */
function scrubRequest(options: ScrubOptions | undefined): Request {
  const all = optionalRecord(options, 'options');
  return present({
    backendId: backendIdOf(all),
    after: after(all),
    quarantine: optionalBoolean(all.quarantine, 'options.quarantine'),
    bytesPerSecond: optionalPositive(all.bytesPerSecond, 'options.bytesPerSecond'),
  });
}

/** One line per operation: its name on the wire and the request it sends. */
export const OPERATIONS = {
  ingestStream: { op: 'ingest_stream', request: ingestRequest },
  // Read on the caller's side and sent as an ingest: no plane hands a path to another process.
  ingestFile: { op: 'ingest_stream', request: ingestRequest },
  serveObject: { op: 'serve_object', request: serveRequest },
  verifyObject: { op: 'verify_object', request: addressRequest },
  deleteObject: { op: 'delete_object', request: deleteRequest },
  backendHealth: { op: 'backend_health', request: (): Request => ({}) },
  statObject: { op: 'stat_object', request: addressRequest },
  touchObject: { op: 'touch_object', request: addressRequest },
  findMissing: { op: 'find_missing', request: findMissingRequest },
  listObjects: { op: 'list_objects', request: listRequest },
  scrub: { op: 'scrub', request: scrubRequest },
  createUpload: { op: 'create_upload', request: ingestRequest },
  appendUpload: { op: 'append_upload', request: appendRequest },
  uploadStatus: { op: 'upload_status', request: uploadRequest },
  commitUpload: { op: 'commit_upload', request: commitRequest },
  abortUpload: { op: 'abort_upload', request: uploadRequest },
  listUploads: { op: 'list_uploads', request: listUploadsRequest },
  purgeUploads: { op: 'purge_uploads', request: purgeUploadsRequest },
  metrics: { op: 'metrics', request: (): Request => ({}) },
} as const;
