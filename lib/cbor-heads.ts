// CBOR read head by head, without decoding values: to refuse tags before the decoder acts on them,
// and to say where and why bytes that decoded are not the canonical encoding of their value.

import { TextDecoder } from 'node:util';

const MAJOR_BYTES = 2;
const MAJOR_TEXT = 3;
const MAJOR_ARRAY = 4;
const MAJOR_MAP = 5;
const MAJOR_TAG = 6;
const MAJOR_SIMPLE = 7;
const INDEFINITE = 31;

const UTF8 = new TextDecoder('utf-8', { fatal: true });

export interface Head {
  /** where the item starts: its initial byte */
  start: number;
  major: number;
  info: number;
  /** the argument (a length, a count, a tag number); approximate beyond 2^53 */
  argument: number;
  /** where its argument ends: a string's bytes begin here */
  contentStart: number;
  /** where the head, and a definite string's bytes, end: the next head begins here */
  end: number;
}

/** The head at `start`, or undefined where the input ends before it does. */
function headAt(bytes: Uint8Array, start: number): Head | undefined {
  if (start >= bytes.length) return undefined;
  const major = bytes[start] >> 5;
  const info = bytes[start] & 0x1f;
  const size = info >= 24 && info <= 27 ? 1 << (info - 24) : 0;
  const contentStart = start + 1 + size;
  if (contentStart > bytes.length) return undefined;
  let argument = info < 24 ? info : 0;
  for (let i = start + 1; i < contentStart; i++) argument = argument * 256 + bytes[i];
  const string = (major === MAJOR_BYTES || major === MAJOR_TEXT) && info !== INDEFINITE;
  return { start, major, info, argument, contentStart, end: string ? contentStart + argument : contentStart };
}

/**
 * Every head in order, nested items included (CBOR puts an item's contents right after its head),
 * until `stop` returns true or the input ends.
 */
function findHead(bytes: Uint8Array, stop: (head: Head) => boolean): Head | undefined {
  for (let head = headAt(bytes, 0); head; head = headAt(bytes, head.end)) {
    if (stop(head)) return head;
  }
  return undefined;
}

/** The position and number of the first tag in `bytes`, if there is one. */
export function firstTag(bytes: Uint8Array): { at: number; tag: number } | undefined {
  const head = findHead(bytes, (h) => h.major === MAJOR_TAG);
  return head && { at: head.start, tag: head.argument };
}

/**
 * What makes `bytes` malformed or not allowed here, if a head says so: reserved additional
 * information, an indefinite length, a simple value other than false, true, null and undefined.
 */
export function malformation(bytes: Uint8Array): string | undefined {
  const head = findHead(bytes, (h) => isReserved(h.info) || h.info === INDEFINITE || (h.major === MAJOR_SIMPLE && !KNOWN_SIMPLE.has(h.info)));
  if (!head) return undefined;
  if (isReserved(head.info)) return `reserved additional information ${head.info} at byte ${head.start}`;
  if (head.major === MAJOR_SIMPLE) return `${simpleValue(head.info)} at byte ${head.start} is not allowed`;
  return `indefinite length at byte ${head.start} is not allowed`;
}

/** false, true, null, undefined and the floats: what cbor-x decodes to a value of its own. */
const KNOWN_SIMPLE = new Set([20, 21, 22, 23, 25, 26, 27]);
const isReserved = (info: number): boolean => info >= 28 && info < INDEFINITE;

/**
 * Why `bytes`, which decoded, differ from `canonical`, the encoding of what they decoded to (the
 * two agree before byte `at` and differ at it): the reason, naming the byte where the item starts.
 */
export function departure(bytes: Uint8Array, canonical: Uint8Array, at: number): string {
  if (at === canonical.length) return `${bytes.length - at} trailing byte(s) after the value, at byte ${at}`;
  const head = findHead(bytes, (h) => at < h.end);
  if (!head) return `not canonical CBOR from byte ${at}`;
  const { start, major, info, argument } = head;
  if (major === MAJOR_SIMPLE) return `${simpleValue(info)} at byte ${start} is not allowed`;
  if (info === INDEFINITE) return `indefinite length at byte ${start} is not allowed`;
  if (at < head.contentStart && info >= 24 && info <= 27 && argument < shortestFrom(info)) return `${argument} at byte ${start} is not in shortest form`;
  if (major === MAJOR_MAP && at < head.contentStart) return `map at byte ${start} repeats a key`;
  if (major === MAJOR_TEXT && !isUtf8(bytes.subarray(head.contentStart, head.end))) return `text string at byte ${start} is not valid UTF-8`;
  return `not canonical CBOR at byte ${at} (the item at byte ${start})`;
}

/** The smallest argument that needs the argument size `info` gives (24: one byte, ... 27: eight). */
function shortestFrom(info: number): number {
  return info === 24 ? 24 : 2 ** (4 * (1 << (info - 24)));
}

function isUtf8(bytes: Uint8Array): boolean {
  try {
    UTF8.decode(bytes);
    return true;
  } catch {
    return false;
  }
}

function simpleValue(info: number): string {
  if (info === 22) return 'null';
  if (info === 23) return 'undefined';
  if (info >= 25 && info <= 27) return 'a float';
  if (info === INDEFINITE) return 'a break outside an indefinite-length item';
  return `simple value (additional information ${info})`;
}

/**
 * Where the item at `at` ends, its contents skipped head by head; undefined where the input ends
 * first or a length is indefinite.
 */
function itemEnd(bytes: Uint8Array, at: number): number | undefined {
  let position = at;
  for (let pending = 1; pending > 0; pending--) {
    const head = headAt(bytes, position);
    if (!head || head.info === INDEFINITE) return undefined;
    if (head.major === MAJOR_ARRAY) pending += head.argument;
    else if (head.major === MAJOR_MAP) pending += 2 * head.argument;
    else if (head.major === MAJOR_TAG) pending += 1;
    position = head.end;
  }
  return position;
}

/**
 * The heads of the values of a top-level map of text keys, by key, without decoding any value:
 * a look at a field or two of a large answer before it is decoded. Undefined where `bytes` holds
 * no such map.
 */
export function topLevelHeads(bytes: Uint8Array): Map<string, Head> | undefined {
  const map = headAt(bytes, 0);
  if (!map || map.major !== MAJOR_MAP || map.info === INDEFINITE) return undefined;
  const heads = new Map<string, Head>();
  let position: number | undefined = map.end;
  for (let i = 0; i < map.argument; i++) {
    const key = headAt(bytes, position);
    if (!key || key.major !== MAJOR_TEXT || key.info === INDEFINITE || key.end > bytes.length) return undefined;
    const value = headAt(bytes, key.end);
    if (!value) return undefined;
    heads.set(Buffer.from(bytes.buffer, bytes.byteOffset + key.contentStart, key.argument).toString('utf8'), value);
    position = itemEnd(bytes, key.end);
    if (position === undefined) return undefined;
  }
  return heads;
}

/** A text item's string, undefined for any other item. */
export function textOf(bytes: Uint8Array, head: Head): string | undefined {
  if (head.major !== MAJOR_TEXT || head.info === INDEFINITE || head.end > bytes.length) return undefined;
  return Buffer.from(bytes.buffer, bytes.byteOffset + head.contentStart, head.argument).toString('utf8');
}

/** An array item's length, undefined for any other item. */
export function arrayLengthOf(head: Head): number | undefined {
  return head.major === MAJOR_ARRAY && head.info !== INDEFINITE ? head.argument : undefined;
}
