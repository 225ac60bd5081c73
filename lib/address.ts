import { DataPlaneError, fromNativeError as translate } from './errors';
import native from './native';
import type { AddressLike, ContentAddress, HashAlgorithm } from './types';

/** A value as it appears in an error message. */
export function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

/** Parses exactly "<algorithm>:<64 lowercase hex>"; anything else throws INVALID_ADDRESS. */
export function parseContentAddress(text: string): ContentAddress {
  if (typeof text !== 'string') {
    throw new DataPlaneError('INVALID_ADDRESS', `invalid content address ${describe(text)}: expected a string`);
  }
  try {
    const { algorithm, hex } = native.parseAddress(text);
    return { algorithm: algorithm as HashAlgorithm, hex };
  } catch (error) {
    throw translate(error);
  }
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

/** The text form of any AddressLike, for the native calls (which validate strings themselves). */
export function addressText(address: AddressLike): string {
  return typeof address === 'string' ? address : formatContentAddress(address);
}
