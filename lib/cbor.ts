/**
 * Deterministic CBOR (RFC 8949 §4.2.1) for the SPEC types: the representation the daemon speaks.
 *
 * - JS field names are camelCase; on the wire map keys are their snake_case form.
 * - A digest `{algorithm, hex}` travels as `{algorithm: text, digest: bytes(32)}`.
 * - Numbers are integers within ±Number.MAX_SAFE_INTEGER, in both directions; bigint is not accepted
 *   and a wire integer outside that range is rejected, so every decoded value encodes again.
 * - `undefined` fields are left out of maps; `null` has no encoding.
 * - Decoding is strict: it accepts exactly what `encodeCbor` produces, so whatever it accepts
 *   re-encodes to the same bytes. Every rejection is a DataPlaneError with code INVALID_ARGUMENT.
 *
 * cbor-x writes and reads the bytes. Here each value is mapped to its wire form and back, checked
 * on the way, and put in the shape cbor-x writes deterministically: map keys inserted in canonical
 * order, integers beyond 32 bits as bigint (cbor-x writes larger numbers as float64). Strictness
 * is by comparison: decoded bytes must be exactly the encoding of what they decoded to.
 */
import type * as CborX from 'cbor-x';

import { arrayLengthOf, departure, firstTag, malformation, textOf, topLevelHeads } from './cbor-heads';
import { DataPlaneError } from './errors';

/** Containers may nest this deep; deeper values are rejected rather than risking the stack. */
const MAX_DEPTH = 64;
const HEX_64 = /^[0-9a-f]{64}$/;
const CAMEL_KEY = /^[a-z][a-zA-Z0-9]*$/;
// Paired with CAMEL_KEY so that the two key forms convert into each other without loss.
const SNAKE_KEY = /^[a-z][a-z0-9]*(?:_[a-z][a-z0-9]*)*$/;
const LONE_SURROGATE = /\p{Cs}/u;
// cbor-x writes a number as an integer (in at most 4 bytes of argument) only within these bounds,
// and a bigint always with 8 bytes.
const MAX_4_BYTE_INTEGER = 0xffffffff;
const MIN_4_BYTE_INTEGER = -0x100000000;

declare global {
  interface String {
    /** ES2024, in Node since 20: false when the string holds a lone surrogate. */
    isWellFormed(): boolean;
  }
}

// No records (tag 105), no typed-array tags, map heads as short as their size, nothing shared or
// packed: plain RFC 8949 items only.
const WIRE_OPTIONS = {
  useRecords: false,
  mapsAsObjects: true,
  tagUint8Array: false,
  variableMapSize: true,
  pack: false,
  structuredClone: false,
  bundleStrings: false,
  useSelfDescribedHeader: false,
} as const;
// The build without eval and without cbor-x's optional native string decoder (cbor-extract): this
// half of the package loads no native code.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { Decoder, Encoder } = require('cbor-x/index-no-eval') as typeof CborX;
const encoder = new Encoder(WIRE_OPTIONS);
const decoder = new Decoder(WIRE_OPTIONS);

function invalid(message: string): DataPlaneError {
  return new DataPlaneError('INVALID_ARGUMENT', message);
}

function show(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value);
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'object' && value !== null) {
    const name = (value as { constructor?: { name?: unknown } }).constructor?.name;
    return typeof name === 'string' ? `an instance of ${name}` : 'an object';
  }
  return String(value);
}

/**
 * A key conversion, remembered: the SPEC's few dozen field names come back all the time. Only
 * valid keys are remembered, and only so many, so hostile input cannot fill the memory.
 */
function rememberedConversion(valid: RegExp, convert: (key: string) => string): (key: string) => string | undefined {
  const known = new Map<string, string>();
  return (key) => {
    let converted = known.get(key);
    if (converted !== undefined) return converted;
    if (!valid.test(key)) return undefined;
    converted = convert(key);
    if (known.size < 1024) known.set(key, converted);
    return converted;
  };
}
/** The snake_case form of a camelCase key; undefined for any other key. */
const toSnake = rememberedConversion(CAMEL_KEY, (key) => key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`));
/** The camelCase form of a snake_case key; undefined for any other key. */
const toCamel = rememberedConversion(SNAKE_KEY, (key) => key.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase()));
/** RFC 8949 §4.2.1 order for the keys allowed here (ASCII): shorter first, then bytewise. */
const canonicalOrder = (a: string, b: string): number => a.length - b.length || (a < b ? -1 : a > b ? 1 : 0);

function isPlainObject(value: object): value is Record<string, unknown> {
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** For keys that are exactly `algorithm` and one other, that other key. */
function besideAlgorithm(keys: string[]): string | undefined {
  if (keys.length !== 2 || !keys.includes('algorithm')) return undefined;
  return keys[0] === 'algorithm' ? keys[1] : keys[0];
}

// ---------------------------------------------------------------------------------------------
// Encoding

export function encodeCbor(value: unknown): Buffer {
  return encoder.encode(toWire(value, '', 0));
}

/** The value as cbor-x should write it; throws naming the first part that has no CBOR form here. */
function toWire(value: unknown, path: string, depth: number): unknown {
  const at = path || 'value';
  switch (typeof value) {
    case 'number':
      return wireInteger(value, at);
    case 'string':
      // cbor-x would write a lone surrogate as invalid UTF-8 (or silently as U+FFFD).
      if (LONE_SURROGATE.test(value)) throw invalid(`encodeCbor: ${at} contains a lone UTF-16 surrogate`);
      return value;
    case 'boolean':
      return value;
    case 'object':
      break;
    default:
      throw invalid(`encodeCbor: ${at} is ${show(value)} (${typeof value}), which has no CBOR form`);
  }
  if (value === null) throw invalid(`encodeCbor: ${at} is null; leave an absent field out instead`);
  if (value instanceof Uint8Array) return value;
  if (depth >= MAX_DEPTH) {
    throw invalid(`encodeCbor: ${at} is nested deeper than ${MAX_DEPTH} levels (or is cyclic)`);
  }
  // Array.from visits holes (as undefined), which map and spread would skip or mangle.
  if (Array.isArray(value)) return Array.from(value, (item, i) => toWire(item, `${path}[${i}]`, depth + 1));
  if (!isPlainObject(value)) throw invalid(`encodeCbor: ${at} is ${show(value)}, not a plain object`);
  const definedKeys = Object.keys(value).filter((key) => value[key] !== undefined);
  const digestField = besideAlgorithm(definedKeys);
  if (digestField === 'hex') return wireDigest(value, at);
  if (digestField === 'digest') {
    // That is the wire form of a digest; decodeCbor would turn it into {algorithm, hex}.
    throw invalid(`encodeCbor: ${at} has exactly the fields algorithm and digest; write a digest as {algorithm, hex}`);
  }
  return wireMap(value, definedKeys, path, depth + 1);
}

function wireInteger(n: number, at: string): number | bigint {
  if (!Number.isInteger(n)) throw invalid(`encodeCbor: ${at} is ${n}, not an integer`);
  if (!Number.isSafeInteger(n)) {
    throw invalid(`encodeCbor: ${at} is ${n}, outside the safe integer range ±${Number.MAX_SAFE_INTEGER}`);
  }
  return n > MAX_4_BYTE_INTEGER || n < MIN_4_BYTE_INTEGER ? BigInt(n) : n;
}

function wireMap(object: Record<string, unknown>, keys: string[], path: string, depth: number): Record<string, unknown> {
  const entries = keys.map((key): [string, unknown] => {
    const at = path ? `${path}.${key}` : key;
    const wireKey = toSnake(key);
    if (wireKey === undefined) throw invalid(`encodeCbor: field name ${show(at)} is not camelCase`);
    return [wireKey, toWire(object[key], at, depth)];
  });
  // cbor-x writes a map's keys in the order they were inserted.
  return Object.fromEntries(entries.sort((a, b) => canonicalOrder(a[0], b[0])));
}

function wireDigest(digest: Record<string, unknown>, at: string): Record<string, unknown> {
  const { algorithm, hex } = digest;
  if (typeof algorithm !== 'string') throw invalid(`encodeCbor: ${at}.algorithm is ${show(algorithm)}, not a string`);
  if (LONE_SURROGATE.test(algorithm)) throw invalid(`encodeCbor: ${at}.algorithm contains a lone UTF-16 surrogate`);
  if (typeof hex !== 'string' || !HEX_64.test(hex)) {
    throw invalid(`encodeCbor: ${at}.hex is ${show(hex)}, not 64 lowercase hex digits`);
  }
  return { digest: Buffer.from(hex, 'hex'), algorithm }; // canonical order: "digest" is the shorter key
}

// ---------------------------------------------------------------------------------------------
// Decoding

export function decodeCbor(bytes: Uint8Array): unknown {
  if (!(bytes instanceof Uint8Array)) {
    throw invalid(`decodeCbor: expected a Uint8Array or Buffer, got ${show(bytes)}`);
  }
  // cbor-x would act on tags (dates, shared and packed values, records): none gets that far.
  const tag = firstTag(bytes);
  if (tag) throw invalid(`decodeCbor: tag ${tag.tag} at byte ${tag.at} is not allowed`);
  const item = firstItem(bytes);
  const value = fromWire(item, [], 0);
  // The item passed the checks, so cbor-x writes it canonically: anything else in the input, a
  // longer form, a float, a repeated key, bytes after it, makes the two differ.
  const again = encoder.encode(item);
  if (!again.equals(bytes)) throw invalid(`decodeCbor: ${departure(bytes, again, firstDifference(bytes, again))}`);
  return value;
}

/**
 * `decodeCbor` of bytes the package's own core wrote (the in-process addon's results): the same
 * values and checks of each, without the comparison with a canonical encoding that bytes from a
 * peer get (the core writes canonical CBOR; the comparison costs as much as the decoding).
 */
export function decodeOwnCbor(bytes: Uint8Array): unknown {
  return stageOwnCbor(bytes).value();
}

/**
 * An answer that can be looked at before it is checked and converted. The looks are unchecked:
 * only for looking ahead (where a listing's next page starts), never for a result.
 */
export interface Staged {
  /** A text field of the answer, as it came. */
  peekText(field: string): string | undefined;
  /** How many items an array field of the answer holds, as it came. */
  peekLength(field: string): number | undefined;
  /** The answer, checked and converted (throws as decodeCbor does). */
  value(): unknown;
}

/** An answer already decoded and checked, staged. */
export function staged(answer: unknown): Staged {
  const field = (name: string): unknown => (typeof answer === 'object' && answer !== null ? (answer as Record<string, unknown>)[name] : undefined);
  return {
    peekText: (name) => {
      const value = field(name);
      return typeof value === 'string' ? value : undefined;
    },
    peekLength: (name) => {
      const value = field(name);
      return Array.isArray(value) ? value.length : undefined;
    },
    value: () => answer,
  };
}

/**
 * `decodeOwnCbor` in two steps: the looks read the heads of the top-level map's values only, so
 * that the next page can be asked for before cbor-x decodes this one; `value()` decodes, checks
 * and converts.
 */
export function stageOwnCbor(bytes: Uint8Array): Staged {
  let heads: ReturnType<typeof topLevelHeads>;
  let decoded: Staged | undefined;
  // Bytes whose heads do not read as a map (none the core writes) are looked at decoded.
  const head = (field: string) => (heads ??= topLevelHeads(bytes) ?? new Map()).get(toSnake(field) ?? field);
  const fallback = () => (decoded ??= staged(decodeOwnCbor(bytes)));
  return {
    peekText: (field) => {
      const found = head(field);
      return found ? textOf(bytes, found) : heads?.size ? undefined : fallback().peekText(field);
    },
    peekLength: (field) => {
      const found = head(field);
      return found ? arrayLengthOf(found) : heads?.size ? undefined : fallback().peekLength(field);
    },
    value: () => fromWire(firstItem(bytes), [], 0),
  };
}

/** The first item in `bytes` as cbor-x decodes it (what follows it is for the comparison to find). */
function firstItem(bytes: Uint8Array): unknown {
  // A view of our own: cbor-x caches a DataView on the object it is given.
  const view = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let item: unknown;
  try {
    decoder.decodeMultiple(view, (value: unknown) => {
      item = value;
      return false;
    });
  } catch (error) {
    throw notWellFormed(error, bytes);
  }
  return item;
}

function notWellFormed(error: unknown, bytes: Uint8Array): DataPlaneError {
  if ((error as { incomplete?: boolean } | null)?.incomplete) {
    return invalid(`decodeCbor: unexpected end of input at byte ${bytes.length}`);
  }
  if (error instanceof RangeError && /call stack/i.test(error.message)) {
    return invalid(`decodeCbor: the input is nested deeper than ${MAX_DEPTH} levels`);
  }
  const reason = malformation(bytes);
  if (reason) return invalid(`decodeCbor: ${reason}`);
  return invalid(`decodeCbor: not well-formed CBOR (${error instanceof Error ? error.message : String(error)})`);
}

function firstDifference(a: Uint8Array, b: Uint8Array): number {
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) if (a[i] !== b[i]) return i;
  return length;
}

/** The keys and indices from the top of a decoded value down to the part being looked at. */
type Trail = (string | number)[];

/** A trail as messages name it: `objects[3].sizeBytes`, or `value` for the top. */
function spelled(trail: Trail): string {
  let path = '';
  for (const part of trail) path += typeof part === 'number' ? `[${part}]` : path ? `.${part}` : part;
  return path || 'value';
}

/**
 * A decoded item as a SPEC value; throws naming the first part that is not one. `trail` is where
 * the item is, pushed to and popped on the way down and spelled out only for a message: building
 * each field's path as text cost more than decoding it.
 */
function fromWire(value: unknown, trail: Trail, depth: number): unknown {
  switch (typeof value) {
    case 'number':
      // Integers of up to 32 bits decode as numbers; any other number was a float.
      if (!Number.isSafeInteger(value)) throw invalid(`decodeCbor: ${spelled(trail)} is ${value}, a float; floats are not allowed`);
      return value;
    case 'bigint':
      // An 8-byte integer: cbor-x writes one back in 8 bytes, right only beyond 32 bits.
      if (value > BigInt(Number.MAX_SAFE_INTEGER) || value < -BigInt(Number.MAX_SAFE_INTEGER)) {
        throw invalid(`decodeCbor: ${spelled(trail)} is ${value}, outside the safe integer range ±${Number.MAX_SAFE_INTEGER}`);
      }
      if (value <= BigInt(MAX_4_BYTE_INTEGER) && value >= BigInt(MIN_4_BYTE_INTEGER)) {
        throw invalid(`decodeCbor: ${spelled(trail)} is ${value} in 8 bytes, not in shortest form`);
      }
      return Number(value);
    case 'string':
      return wellFormed(value, trail);
    case 'boolean':
      return value;
    case 'object':
      break;
    default:
      throw invalid(`decodeCbor: ${spelled(trail)} is ${show(value)}, which is not allowed`);
  }
  if (value === null) throw invalid(`decodeCbor: ${spelled(trail)} is null, which is not allowed`);
  if (value instanceof Uint8Array) return Buffer.from(value); // a copy: the input stays the caller's
  if (depth >= MAX_DEPTH) {
    throw invalid(`decodeCbor: ${spelled(trail)} is nested deeper than ${MAX_DEPTH} levels`);
  }
  if (Array.isArray(value)) {
    const items = new Array<unknown>(value.length);
    for (let i = 0; i < value.length; i++) {
      trail.push(i);
      items[i] = fromWire(value[i], trail, depth + 1);
      trail.pop();
    }
    return items;
  }
  if (!isPlainObject(value)) throw invalid(`decodeCbor: ${spelled(trail)} decodes to ${show(value)}, which is not allowed`);
  const keys = Object.keys(value);
  const digestField = besideAlgorithm(keys);
  if (digestField === 'digest') return asDigest(value, keys, trail);
  if (digestField === 'hex') throw invalid(`decodeCbor: ${spelled(trail)} has keys algorithm and hex; a digest is {algorithm, digest}`);
  const object: Record<string, unknown> = {};
  // cbor-x keeps the keys in the order they came (a repeated key, once, where it came first).
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i];
    const field = toCamel(key);
    if (field === undefined) throw invalid(`decodeCbor: ${spelled(trail)} has the map key ${show(key)}, which is not snake_case`);
    if (i > 0 && canonicalOrder(keys[i - 1], key) > 0) {
      throw invalid(`decodeCbor: ${spelled(trail)} has the map key ${show(key)} after ${show(keys[i - 1])}, out of canonical order`);
    }
    trail.push(field);
    object[field] = fromWire(value[key], trail, depth + 1);
    trail.pop();
  }
  return object;
}

/**
 * `{algorithm: text, digest: bytes(32)}` on the wire is a Digest `{algorithm, hex}` in JS. Both key
 * pairs are reserved for digests, in both directions, so that decoding and encoding stay inverse.
 */
function asDigest(value: Record<string, unknown>, keys: string[], trail: Trail): { algorithm: string; hex: string } {
  if (keys[0] !== 'digest') throw invalid(`decodeCbor: ${spelled(trail)} has the map key "digest" after "algorithm", out of canonical order`);
  const { algorithm, digest } = value;
  if (typeof algorithm !== 'string' || !(digest instanceof Uint8Array) || digest.length !== 32) {
    throw invalid(`decodeCbor: digest ${spelled(trail)} needs a text algorithm and a 32-byte digest`);
  }
  // Read in place (a listing holds two digests per object): the hex is a copy of its own.
  const bytes = Buffer.isBuffer(digest) ? digest : Buffer.from(digest.buffer, digest.byteOffset, digest.byteLength);
  return { algorithm: wellFormed(algorithm, [...trail, 'algorithm']), hex: bytes.toString('hex') };
}

/** Decoded text as it came; a lone surrogate is what cbor-x makes of UTF-8 that encodes one. */
function wellFormed(text: string, trail: Trail): string {
  if (!text.isWellFormed()) throw invalid(`decodeCbor: text at ${spelled(trail)} is not valid UTF-8`);
  return text;
}
