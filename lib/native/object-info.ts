// An ObjectInfo from the flat fields the addon's quick statObject gives (crates/node/src/convert.rs,
// NativeObjectInfo): a literal here costs far less than napi building the object a key at a time.

import type { HashAlgorithm, ObjectInfo } from '../types';
import type { ObjectInfoFields } from './addon';

export function objectInfoOf(fields: ObjectInfoFields): ObjectInfo {
  const [algorithm, hex, sha256Hex, sizeBytes, backendId, locator, storedAt, touchedAt] = fields;
  return {
    contentAddress: { algorithm: algorithm as HashAlgorithm, hex },
    sha256Digest: { algorithm: 'sha256', hex: sha256Hex },
    sizeBytes,
    backendId,
    locator,
    storedAt,
    touchedAt,
  };
}
