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
 */
import { TextDecoder } from 'util';
import { DataPlaneError } from './errors';

/** Containers may nest this deep; deeper values are rejected rather than risking the stack. */
const MAX_DEPTH = 64;
const HEX_64 = /^[0-9a-f]{64}$/;
const CAMEL_KEY = /^[a-z][a-zA-Z0-9]*$/;
// Paired with CAMEL_KEY so that the two key forms convert into each other without loss.
const SNAKE_KEY = /^[a-z][a-z0-9]*(?:_[a-z][a-z0-9]*)*$/;
// ignoreBOM keeps a leading U+FEFF as text instead of silently dropping it.
const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

const MAJOR_UNSIGNED = 0;
const MAJOR_NEGATIVE = 1;
const MAJOR_BYTES = 2;
const MAJOR_TEXT = 3;
const MAJOR_ARRAY = 4;
const MAJOR_MAP = 5;
const MAJOR_TAG = 6;
const MAJOR_SIMPLE = 7;
const SIMPLE_FALSE = 20;
const SIMPLE_TRUE = 21;

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

const toSnake = (key: string): string => key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
const toCamel = (key: string): string => key.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());

// ---------------------------------------------------------------------------------------------
// Encoding

export function encodeCbor(value: unknown): Buffer {
  return encodeItem(value, '', 0);
}

function encodeItem(value: unknown, path: string, depth: number): Buffer {
  const at = path || 'value';
  switch (typeof value) {
    case 'number':
      return encodeNumber(value, at);
    case 'string':
      return encodeText(value, at);
    case 'boolean':
      return Buffer.of((MAJOR_SIMPLE << 5) | (value ? SIMPLE_TRUE : SIMPLE_FALSE));
    case 'object':
      break;
    default:
      throw invalid(`encodeCbor: ${at} is ${show(value)} (${typeof value}), which has no CBOR form`);
  }
  if (value === null) throw invalid(`encodeCbor: ${at} is null; leave an absent field out instead`);
  if (value instanceof Uint8Array) return Buffer.concat([head(MAJOR_BYTES, value.length), value]);
  if (depth >= MAX_DEPTH) {
    throw invalid(`encodeCbor: ${at} is nested deeper than ${MAX_DEPTH} levels (or is cyclic)`);
  }
  if (Array.isArray(value)) return encodeArray(value, path, depth + 1);
  if (!isPlainObject(value)) throw invalid(`encodeCbor: ${at} is ${show(value)}, not a plain object`);
  const definedKeys = Object.keys(value).filter((key) => value[key] !== undefined);
  const digestField = besideAlgorithm(definedKeys);
  if (digestField === 'hex') return encodeDigest(value, path, depth + 1);
  if (digestField === 'digest') {
    // That is the wire form of a digest; decodeCbor would turn it into {algorithm, hex}.
    throw invalid(`encodeCbor: ${at} has exactly the fields algorithm and digest; write a digest as {algorithm, hex}`);
  }
  return encodeMap(value, path, depth + 1);
}

function encodeNumber(n: number, at: string): Buffer {
  if (!Number.isInteger(n)) throw invalid(`encodeCbor: ${at} is ${n}, not an integer`);
  if (!Number.isSafeInteger(n)) {
    throw invalid(`encodeCbor: ${at} is ${n}, outside the safe integer range ±${Number.MAX_SAFE_INTEGER}`);
  }
  return n >= 0 ? head(MAJOR_UNSIGNED, n) : head(MAJOR_NEGATIVE, -1 - n);
}

function encodeText(s: string, at: string): Buffer {
  // Buffer.from would silently turn a lone surrogate into U+FFFD.
  if (/\p{Cs}/u.test(s)) throw invalid(`encodeCbor: ${at} contains a lone UTF-16 surrogate`);
  const bytes = Buffer.from(s, 'utf8');
  return Buffer.concat([head(MAJOR_TEXT, bytes.length), bytes]);
}

function encodeArray(items: unknown[], path: string, depth: number): Buffer {
  // Array.from visits holes (as undefined), which map and spread would skip or mangle.
  const encoded = Array.from(items, (item, i) => encodeItem(item, `${path}[${i}]`, depth));
  return Buffer.concat([head(MAJOR_ARRAY, items.length), ...encoded]);
}

function encodeMap(object: Record<string, unknown>, path: string, depth: number): Buffer {
  const entries: Buffer[][] = [];
  for (const [key, value] of Object.entries(object)) {
    if (value === undefined) continue;
    const at = path ? `${path}.${key}` : key;
    if (!CAMEL_KEY.test(key)) throw invalid(`encodeCbor: field name ${show(at)} is not camelCase`);
    entries.push([encodeText(toSnake(key), at), encodeItem(value, at, depth)]);
  }
  entries.sort((a, b) => Buffer.compare(a[0], b[0]));
  return Buffer.concat([head(MAJOR_MAP, entries.length), ...entries.flat()]);
}

function encodeDigest(digest: Record<string, unknown>, path: string, depth: number): Buffer {
  const at = path || 'value';
  const { algorithm, hex } = digest;
  if (typeof algorithm !== 'string') throw invalid(`encodeCbor: ${at}.algorithm is ${show(algorithm)}, not a string`);
  if (typeof hex !== 'string' || !HEX_64.test(hex)) {
    throw invalid(`encodeCbor: ${at}.hex is ${show(hex)}, not 64 lowercase hex digits`);
  }
  return encodeMap({ algorithm, digest: Buffer.from(hex, 'hex') }, path, depth);
}

function isPlainObject(value: object): value is Record<string, unknown> {
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** For keys that are exactly `algorithm` and one other, that other key. */
function besideAlgorithm(keys: string[]): string | undefined {
  if (keys.length !== 2 || !keys.includes('algorithm')) return undefined;
  return keys[0] === 'algorithm' ? keys[1] : keys[0];
}

/** The initial byte and shortest argument for `n` (0 <= n <= MAX_SAFE_INTEGER). */
function head(major: number, n: number): Buffer {
  const initial = major << 5;
  if (n < 24) return Buffer.of(initial | n);
  if (n < 0x100) return Buffer.of(initial | 24, n);
  if (n < 0x10000) return withArgument(initial | 25, 2, (b) => b.writeUInt16BE(n, 1));
  if (n < 0x100000000) return withArgument(initial | 26, 4, (b) => b.writeUInt32BE(n, 1));
  return withArgument(initial | 27, 8, (b) => b.writeBigUInt64BE(BigInt(n), 1));
}

function withArgument(initial: number, size: number, write: (b: Buffer) => void): Buffer {
  const b = Buffer.alloc(1 + size);
  b[0] = initial;
  write(b);
  return b;
}

// ---------------------------------------------------------------------------------------------
// Decoding

export function decodeCbor(bytes: Uint8Array): unknown {
  if (!(bytes instanceof Uint8Array)) {
    throw invalid(`decodeCbor: expected a Uint8Array or Buffer, got ${show(bytes)}`);
  }
  const reader = new Reader(bytes);
  const value = reader.item(0);
  if (reader.remaining > 0) {
    throw invalid(`decodeCbor: ${reader.remaining} trailing byte(s) after the value, at byte ${reader.pos}`);
  }
  return value;
}

interface Head {
  major: number;
  info: number;
  arg: number;
  start: number;
}

class Reader {
  pos = 0;

  constructor(private readonly bytes: Uint8Array) {}

  get remaining(): number {
    return this.bytes.length - this.pos;
  }

  item(depth: number): unknown {
    const { major, info, arg, start } = this.head();
    switch (major) {
      case MAJOR_UNSIGNED:
        return arg;
      case MAJOR_NEGATIVE:
        if (arg >= Number.MAX_SAFE_INTEGER) {
          throw invalid(`decodeCbor: integer -1-${arg} at byte ${start} is outside the safe integer range`);
        }
        return -1 - arg;
      case MAJOR_BYTES:
        return Buffer.from(this.take(arg));
      case MAJOR_TEXT:
        return this.text(arg, start);
      case MAJOR_ARRAY:
        return this.array(arg, start, depth);
      case MAJOR_MAP:
        return this.map(arg, start, depth);
      case MAJOR_TAG:
        throw invalid(`decodeCbor: tag ${arg} at byte ${start} is not allowed`);
      default:
        return simple(info, start);
    }
  }

  private head(): Head {
    const start = this.pos;
    const initial = this.take(1)[0];
    const major = initial >> 5;
    const info = initial & 0x1f;
    // Major type 7 (simple values, floats) has no argument we accept beyond `info` itself.
    const arg = major === MAJOR_SIMPLE ? 0 : this.argument(info, start);
    return { major, info, arg, start };
  }

  private argument(info: number, start: number): number {
    if (info < 24) return info;
    if (info === 31) throw invalid(`decodeCbor: indefinite length at byte ${start} is not allowed`);
    if (info > 27) throw invalid(`decodeCbor: reserved additional information ${info} at byte ${start}`);
    const size = 1 << (info - 24);
    let arg = 0;
    // Exact up to 2^53; anything larger stays larger, which is all the check below needs.
    for (const byte of this.take(size)) arg = arg * 256 + byte;
    if (arg > Number.MAX_SAFE_INTEGER) {
      throw invalid(`decodeCbor: argument at byte ${start} exceeds ${Number.MAX_SAFE_INTEGER}`);
    }
    const shortestFrom = size === 1 ? 24 : 2 ** (4 * size);
    if (arg < shortestFrom) throw invalid(`decodeCbor: ${arg} at byte ${start} is not in shortest form`);
    return arg;
  }

  private take(n: number): Uint8Array {
    if (n > this.remaining) {
      throw invalid(`decodeCbor: unexpected end of input at byte ${this.bytes.length} (${n} bytes needed at byte ${this.pos})`);
    }
    this.pos += n;
    return this.bytes.subarray(this.pos - n, this.pos);
  }

  private text(length: number, start: number): string {
    const bytes = this.take(length);
    try {
      return UTF8.decode(bytes);
    } catch {
      throw invalid(`decodeCbor: text string at byte ${start} is not valid UTF-8`);
    }
  }

  private array(count: number, start: number, depth: number): unknown[] {
    this.enter(count, start, depth);
    const items: unknown[] = [];
    for (let i = 0; i < count; i++) items.push(this.item(depth + 1));
    return items;
  }

  private map(count: number, start: number, depth: number): unknown {
    this.enter(count * 2, start, depth);
    const object: Record<string, unknown> = {};
    let previousKey: Uint8Array | undefined;
    for (let i = 0; i < count; i++) {
      const keyStart = this.pos;
      const key = this.key();
      const encodedKey = this.bytes.subarray(keyStart, this.pos);
      const order = previousKey ? Buffer.compare(previousKey, encodedKey) : -1;
      if (order === 0) throw invalid(`decodeCbor: duplicate map key ${show(key)} at byte ${keyStart}`);
      if (order > 0) throw invalid(`decodeCbor: map key ${show(key)} at byte ${keyStart} is out of order`);
      previousKey = encodedKey;
      object[toCamel(key)] = this.item(depth + 1);
    }
    return asDigest(object, start);
  }

  private key(): string {
    const { major, arg, start } = this.head();
    if (major !== MAJOR_TEXT) throw invalid(`decodeCbor: map key at byte ${start} is not a text string`);
    const key = this.text(arg, start);
    if (!SNAKE_KEY.test(key)) throw invalid(`decodeCbor: map key ${show(key)} at byte ${start} is not snake_case`);
    return key;
  }

  /** Checks depth, and that `minItems` one-byte items could still fit, before any item is read. */
  private enter(minItems: number, start: number, depth: number): void {
    if (depth >= MAX_DEPTH) {
      throw invalid(`decodeCbor: container at byte ${start} is nested deeper than ${MAX_DEPTH} levels`);
    }
    if (minItems > this.remaining) {
      throw invalid(`decodeCbor: unexpected end of input at byte ${this.bytes.length} (container at byte ${start} declares more items than remain)`);
    }
  }
}

function simple(info: number, start: number): boolean {
  if (info === SIMPLE_FALSE) return false;
  if (info === SIMPLE_TRUE) return true;
  const what =
    info === 22 ? 'null' :
    info === 23 ? 'undefined' :
    info >= 25 && info <= 27 ? 'a float' :
    info === 31 ? 'a break outside an indefinite-length item' :
    `simple value (additional information ${info})`;
  throw invalid(`decodeCbor: ${what} at byte ${start} is not allowed`);
}

/**
 * `{algorithm: text, digest: bytes(32)}` on the wire is a Digest `{algorithm, hex}` in JS. Both key
 * pairs are reserved for digests, in both directions, so that decoding and encoding stay inverse.
 */
function asDigest(object: Record<string, unknown>, start: number): unknown {
  const field = besideAlgorithm(Object.keys(object));
  if (field === 'hex') throw invalid(`decodeCbor: map at byte ${start} has keys algorithm and hex; a digest is {algorithm, digest}`);
  if (field !== 'digest') return object;
  const { algorithm, digest } = object;
  if (typeof algorithm !== 'string' || !Buffer.isBuffer(digest) || digest.length !== 32) {
    throw invalid(`decodeCbor: digest map at byte ${start} needs a text algorithm and a 32-byte digest`);
  }
  return { algorithm, hex: digest.toString('hex') };
}
