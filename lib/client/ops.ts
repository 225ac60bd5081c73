// The op table: each DataPlane method's operation name on the wire and the args it sends, checked
// with the same validators as in-process (the daemon's core checks the values and names them).

import { addressText } from '../address';
import { backendIdOf, byteRangeOf, isRecord, nativeIngestOptions } from '../options';
import type { AddressLike, BackendOptions, IngestOptions, ServeOptions } from '../types';

type Args = Record<string, unknown>;

/** The map without its absent fields and empty maps (absent fields are left out on the wire). */
function present(fields: Args): Args {
  return Object.fromEntries(
    Object.entries(fields).filter(([, value]) => value !== undefined && !(isRecord(value) && !Array.isArray(value) && Object.keys(value).length === 0)),
  );
}

function ingestArgs(options: IngestOptions | undefined): Args {
  const o = nativeIngestOptions(options);
  return present({
    hints: present({ sizeHint: o.sizeHint, primaryAlgorithm: o.primaryAlgorithm, backendId: o.backendId }),
    expect: present({ sizeBytes: o.expectSizeBytes, sha256: o.expectSha256, primary: o.expectPrimary }),
  });
}

function addressArgs(address: AddressLike, options: BackendOptions | undefined): Args {
  const text = addressText(address);
  return present({ address: text, backendId: backendIdOf(options) });
}

function serveArgs(address: AddressLike, options: ServeOptions | undefined): Args {
  const text = addressText(address);
  const byteRange = byteRangeOf(isRecord(options) ? options.byteRange : undefined);
  return present({ address: text, byteRange, backendId: backendIdOf(options) });
}

/** One line per operation: its name on the wire and its args. */
export const OPS = {
  ingestStream: { op: 'ingest_stream', args: ingestArgs },
  ingestFile: { op: 'ingest_stream', args: ingestArgs },
  serveObject: { op: 'serve_object', args: serveArgs },
  verifyObject: { op: 'verify_object', args: addressArgs },
  deleteObject: { op: 'delete_object', args: addressArgs },
  backendHealth: { op: 'backend_health', args: (): Args => ({}) },
} as const;
