// Content addresses in their one text form "<algorithm>:<64 lowercase hex>", parsed and formatted
// here, with the core's messages (crates/core/src/identity.rs), so that no native code is needed.

import { rustQuoted, describe } from './describe';
import { DataPlaneError } from './errors';
import type { AddressLike, ContentAddress, HashAlgorithm } from './types';

const ALGORITHMS: readonly string[] = ['blake3', 'sha256'] satisfies HashAlgorithm[];
const HEX_DIGEST = /^[0-9a-f]{64}$/;

function invalidAddress(text: string, reason: string): DataPlaneError {
  return new DataPlaneError('INVALID_ADDRESS', `invalid content address ${rustQuoted(text)}: ${reason}`);
}

/** Parses exactly "<algorithm>:<64 lowercase hex>"; anything else throws INVALID_ADDRESS. */
export function parseContentAddress(text: string): ContentAddress {
  if (typeof text !== 'string') {
    throw new DataPlaneError('INVALID_ADDRESS', `invalid content address ${describe(text)}: expected a string`);
  }
  const colon = text.indexOf(':');
  if (colon < 0) throw invalidAddress(text, 'expected "<algorithm>:<hex>"');
  const algorithm = text.slice(0, colon);
  const hex = text.slice(colon + 1);
  if (!ALGORITHMS.includes(algorithm)) throw invalidAddress(text, 'the algorithm must be "blake3" or "sha256"');
  if (!HEX_DIGEST.test(hex)) throw invalidAddress(text, 'expected 64 lowercase hex digits');
  return { algorithm: algorithm as HashAlgorithm, hex };
}

/** Gives the text form "<algorithm>:<hex>"; an object of the wrong shape throws INVALID_ADDRESS. */
export function formatContentAddress(address: ContentAddress): string {
  const { algorithm, hex } = (address ?? {}) as Partial<ContentAddress>;
  if (address === null || typeof address !== 'object' || typeof algorithm !== 'string' || typeof hex !== 'string') {
    throw new DataPlaneError(
      'INVALID_ADDRESS',
      `invalid content address ${describe(address)}: expected { algorithm, hex }`,
    );
  }
  const text = `${algorithm}:${hex}`;
  parseContentAddress(text);
  return text;
}

/** The text form of any AddressLike, for calls that take the text (and validate strings themselves). */
export function addressText(address: AddressLike): string {
  return typeof address === 'string' ? address : formatContentAddress(address);
}
