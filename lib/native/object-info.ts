// An ObjectInfo from the flat fields the addon's quick statObject and its listing pages give
// (crates/node/src/convert.rs, NativeObjectInfo): a literal here costs far less than napi building
// the object a key at a time.

import type { Staged } from '../cbor';
import type { HashAlgorithm, ObjectInfo } from '../types';
import type { NativeObjectPage, ObjectInfoFields } from './addon';

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

/**
 * A listing's page from the addon, staged: the looks read the page's counts, and its objects are
 * made on `value()`, once the next page is asked for (so that the core finds that one meanwhile).
 */
export function stagedPage(page: NativeObjectPage): Staged {
  return {
    peekText: (field) => (field === 'nextAfter' ? page.nextAfter ?? undefined : undefined),
    peekLength: (field) => (field === 'objects' ? page.length : undefined),
    value: () => {
      const { nextAfter } = page;
      return { objects: page.takeObjects().map(objectInfoOf), ...(nextAfter == null ? {} : { nextAfter }) };
    },
  };
}
