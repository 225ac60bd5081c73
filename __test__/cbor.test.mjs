import test from 'ava';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { encodeCbor, decodeCbor, DataPlaneError } from '@artifactstore/data-plane';

const here = path.dirname(fileURLToPath(import.meta.url));
const vectors = JSON.parse(readFileSync(path.join(here, '..', '..', 'shared', 'cbor-vectors.json'), 'utf8'));

const hex = (value) => encodeCbor(value).toString('hex');
const bytes = (h) => Buffer.from(h.replace(/\s+/g, ''), 'hex');
const invalid = { instanceOf: DataPlaneError, code: 'INVALID_ARGUMENT' };

const BLAKE3 = { algorithm: 'blake3', hex: '6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85' };
const SHA256 = { algorithm: 'sha256', hex: 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad' };
const RECEIPT = {
  backendId: 'local',
  locator: `objects/blake3/64/37/${BLAKE3.hex}`,
  sizeBytes: 2 ** 40 + 3,
  storedAt: '2026-11-24T04:06:36.000Z',
  deduplicated: false,
};
const VERIFIED = {
  contentAddress: BLAKE3,
  verified: true,
  actualPrimaryDigest: BLAKE3,
  actualSha256Digest: SHA256,
  actualSizeBytes: 3,
};
const HEALTH_FULL = {
  backendId: 'local', kind: 'fs', healthy: true, latencyMicros: 85,
  detail: 'ok', freeBytes: 85899345920, totalBytes: 270582939648,
};
const HEALTH_MINIMAL = { backendId: 'bucket', kind: 's3', healthy: false, latencyMicros: 3000000 };

const SPEC_VALUES = {
  Digest: SHA256,
  IngestHints: { sizeHint: 2 ** 33, primaryAlgorithm: 'blake3', backendId: 'bucket' },
  'IngestHints, empty': {},
  IngestExpectations: { sizeBytes: 0, sha256: SHA256.hex, primary: BLAKE3.hex },
  StorageReceipt: RECEIPT,
  IngestResult: { primaryDigest: BLAKE3, sha256Digest: SHA256, sizeBytes: 3, receipt: { ...RECEIPT, sizeBytes: 3 } },
  'VerifyResult, verified': VERIFIED,
  'VerifyResult, mismatch': { ...VERIFIED, verified: false, actualSizeBytes: 0, mismatch: 'size 0 ≠ 3' },
  DeletionResult: { contentAddress: SHA256, backendId: 'bucket', deleted: false },
  'BackendHealth, all fields': HEALTH_FULL,
  'BackendHealth, required fields': HEALTH_MINIMAL,
  BackendStatus: { healthy: false, backends: [HEALTH_FULL, HEALTH_MINIMAL] },
  'BackendStatus, no backends': { healthy: true, backends: [] },
};

/** The same value with every object's keys in reverse order. */
function reverseKeys(value) {
  if (Array.isArray(value)) return value.map(reverseKeys);
  if (value === null || typeof value !== 'object' || value instanceof Uint8Array) return value;
  return Object.fromEntries(Object.entries(value).reverse().map(([k, v]) => [k, reverseKeys(v)]));
}

/** mulberry32: a small seeded PRNG so the fuzz run is reproducible. */
function prng(seed) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

for (const vector of vectors.cases) {
  test(`golden vector "${vector.name}" encodes to its bytes and decodes to its value`, (t) => {
    t.is(hex(vector.value), vector.cbor);
    t.deepEqual(decodeCbor(bytes(vector.cbor)), vector.value);
  });
}

for (const [name, value] of Object.entries(SPEC_VALUES)) {
  test(`${name} round-trips and re-encodes byte for byte`, (t) => {
    const encoded = encodeCbor(value);
    t.true(Buffer.isBuffer(encoded));
    const decoded = decodeCbor(encoded);
    t.deepEqual(decoded, value);
    t.deepEqual(encodeCbor(decoded), encoded);
  });
}

test('key order does not change the bytes', (t) => {
  for (const value of Object.values(SPEC_VALUES)) {
    t.is(hex(reverseKeys(value)), hex(value));
  }
});

test('map keys are snake_case on the wire and camelCase after decoding', (t) => {
  const encoded = encodeCbor({ latencyMicros: 1, actualSha256Digest: 2 });
  t.true(encoded.includes(Buffer.from('latency_micros')));
  t.true(encoded.includes(Buffer.from('actual_sha256_digest')));
  t.false(encoded.includes(Buffer.from('latencyMicros')));
  t.deepEqual(decodeCbor(encoded), { latencyMicros: 1, actualSha256Digest: 2 });
});

test('a digest is {algorithm: text, digest: 32 bytes} on the wire', (t) => {
  const wire = `a2 66 646967657374 5820 ${SHA256.hex} 69 616c676f726974686d 66 736861323536`;
  t.is(hex(SHA256), wire.replace(/ /g, ''));
  t.deepEqual(decodeCbor(bytes(wire)), SHA256);
});

test('a size above 2^32 is a major type 0 integer with an 8-byte argument', (t) => {
  const encoded = encodeCbor({ sizeBytes: 2 ** 40 + 3 });
  const key = Buffer.from('size_bytes');
  const at = encoded.indexOf(key) + key.length;
  t.is(encoded[at], 0x1b);
  t.is(encoded.subarray(at + 1).toString('hex'), '0000010000000003');
  t.deepEqual(decodeCbor(encoded), { sizeBytes: 2 ** 40 + 3 });
});

test('integers use the shortest argument at every size', (t) => {
  const cases = [
    [0, '00'], [23, '17'], [24, '1818'], [255, '18ff'], [256, '190100'], [65535, '19ffff'],
    [65536, '1a00010000'], [2 ** 32 - 1, '1affffffff'], [2 ** 32, '1b0000000100000000'],
    [Number.MAX_SAFE_INTEGER, '1b001fffffffffffff'], [-1, '20'], [-24, '37'], [-25, '3818'],
    [-256, '38ff'], [-257, '390100'], [-(2 ** 32) - 1, '3b0000000100000000'],
    [-Number.MAX_SAFE_INTEGER, '3b001ffffffffffffe'],
  ];
  for (const [n, expected] of cases) {
    t.is(hex(n), expected, String(n));
    t.is(decodeCbor(bytes(expected)), n);
  }
});

test('non-integer numbers are rejected, naming the field and value', (t) => {
  const error = t.throws(() => encodeCbor({ sizeBytes: 1.5 }), invalid);
  t.regex(error.message, /sizeBytes is 1\.5, not an integer/);
  for (const n of [NaN, Infinity, -Infinity, 2 ** 53, -(2 ** 53), 0.1]) {
    t.throws(() => encodeCbor({ receipt: { sizeBytes: n } }), { ...invalid, message: /receipt\.sizeBytes/ });
  }
});

test('null is rejected; undefined fields are left out', (t) => {
  t.throws(() => encodeCbor({ detail: null }), { ...invalid, message: /detail is null/ });
  t.throws(() => encodeCbor(null), invalid);
  t.is(hex({ ...HEALTH_MINIMAL, detail: undefined, freeBytes: undefined }), hex(HEALTH_MINIMAL));
  t.false(encodeCbor({ a: 1, detail: undefined }).includes(Buffer.from('detail')));
  t.throws(() => encodeCbor({ backends: [undefined] }), { ...invalid, message: /backends\[0\]/ });
  t.throws(() => encodeCbor(undefined), invalid);
});

test('byte strings are plain major type 2 and decode as Buffer', (t) => {
  t.is(hex(new Uint8Array([1, 2, 3])), '43010203');
  t.is(hex(Buffer.alloc(0)), '40');
  const decoded = decodeCbor(new Uint8Array([0x43, 1, 2, 3]));
  t.true(Buffer.isBuffer(decoded));
  t.deepEqual([...decoded], [1, 2, 3]);
});

test('values with no CBOR form here are rejected on encode', (t) => {
  const cases = {
    bigint: { sizeBytes: 5n },
    function: { f: () => 1 },
    symbol: { s: Symbol('x') },
    date: { storedAt: new Date(0) },
    map: { m: new Map() },
    'typed array other than Uint8Array': { v: new Uint16Array(2) },
    'non-camelCase key': { size_bytes: 1 },
    'capitalised key': { SizeBytes: 1 },
    'digest with short hex': { primaryDigest: { algorithm: 'blake3', hex: 'abcd' } },
    'digest with uppercase hex': { primaryDigest: { algorithm: 'blake3', hex: BLAKE3.hex.toUpperCase() } },
    'digest with non-string algorithm': { primaryDigest: { algorithm: 3, hex: BLAKE3.hex } },
    'wire-form digest': { primaryDigest: { algorithm: 'blake3', digest: Buffer.alloc(32) } },
    'lone surrogate': { detail: 'a\ud800b' },
  };
  for (const [name, value] of Object.entries(cases)) {
    t.throws(() => encodeCbor(value), invalid, name);
  }
  const cyclic = { a: 1 };
  cyclic.self = cyclic;
  t.throws(() => encodeCbor(cyclic), { ...invalid, message: /nested deeper/ });
});

test('nesting is limited to 64 levels in both directions', (t) => {
  let deep = 0;
  for (let i = 0; i < 64; i++) deep = [deep];
  t.deepEqual(decodeCbor(encodeCbor(deep)), deep);
  t.throws(() => encodeCbor([deep]), invalid);
  t.throws(() => decodeCbor(Buffer.concat([Buffer.alloc(65, 0x81), Buffer.of(0)])), { ...invalid, message: /nested deeper/ });
  t.throws(() => decodeCbor(Buffer.alloc(100000, 0x81)), invalid);
});

test('strict decoding rejects every non-canonical or unsupported form', (t) => {
  const cases = {
    'half float': 'f93c00',
    'single float': 'fa3fc00000',
    'double float': 'fb3ff8000000000000',
    'map with a float value': 'a16161fb3ff8000000000000',
    tag: 'c11a00000000',
    'typed-array tag': 'd84043010203',
    'indefinite array': '9f00ff',
    'indefinite map': 'bf616100ff',
    'indefinite text': '7f616100ff',
    'indefinite byte string': '5f4100ff',
    'lone break': 'ff',
    'unsorted keys': 'a2616201616101',
    'keys sorted as text but not by encoded bytes': 'a2626161016162 01',
    'duplicate keys': 'a2616101616101',
    'integer map key': 'a10101',
    'camelCase map key': 'a1666b696e644f6601',
    'trailing bytes': '0000',
    'truncated integer': '1901',
    'truncated text': '6261',
    'truncated map': 'a16161',
    'truncated array': '8201',
    'empty input': '',
    'non-shortest 1-byte integer': '1817',
    'non-shortest 2-byte integer': '1900ff',
    'non-shortest 4-byte integer': '1a0000ffff',
    'non-shortest 8-byte integer': '1b00000000ffffffff',
    'non-shortest negative integer': '3800',
    'non-shortest text length': '780161',
    'non-shortest map length': 'b800',
    'integer above 2^53 - 1': '1b0020000000000000',
    'negative integer below -(2^53 - 1)': '3b001fffffffffffff',
    'largest uint64': '1bffffffffffffffff',
    'huge byte string length': '5b0000000100000000',
    'huge array count': '9affffffff',
    'huge map count': 'baffffffff',
    'map count beyond 2^53': 'bbffffffffffffffff',
    'reserved additional information': '1c',
    null: 'f6',
    undefined: 'f7',
    'simple value': 'f820',
    'invalid UTF-8': '61ff',
    'UTF-8 surrogate': '63eda080',
    'overlong UTF-8': '62c0af',
    'digest of 31 bytes': 'a266646967657374581f' + '00'.repeat(31) + '69616c676f726974686d66626c616b6533',
    'digest with integer algorithm': 'a2666469676573745820' + '00'.repeat(32) + '69616c676f726974686d01',
    'digest as {algorithm, hex}': 'a263686578616169616c676f726974686d6161',
  };
  for (const [name, h] of Object.entries(cases)) {
    t.throws(() => decodeCbor(bytes(h)), invalid, name);
  }
});

test('decode errors name the position', (t) => {
  t.throws(() => decodeCbor(bytes('8201')), { ...invalid, message: /unexpected end of input at byte 2/ });
  t.throws(() => decodeCbor(bytes('820100ff')), { ...invalid, message: /trailing byte.*at byte 3/ });
  t.throws(() => decodeCbor(bytes('8201f93c00')), { ...invalid, message: /float at byte 2/ });
});

test('decodeCbor accepts only a Uint8Array', (t) => {
  t.is(decodeCbor(new Uint8Array([0x01])), 1);
  for (const input of ['00', [0], new ArrayBuffer(1), new DataView(new ArrayBuffer(1)), undefined, null, 0]) {
    t.throws(() => decodeCbor(input), invalid);
  }
});

test('decodeCbor of arbitrary bytes decodes canonically or throws a DataPlaneError', (t) => {
  const random = prng(0xc0b0);
  const byte = () => Math.floor(random() * 256);
  const goldens = vectors.cases.map((vector) => bytes(vector.cbor));
  const inputs = [];
  for (let i = 0; i < 3000; i++) {
    inputs.push(Buffer.from(Array.from({ length: Math.floor(random() * 24) }, byte)));
  }
  // Mutated golden encodings reach deep into the decoder, which pure noise rarely does.
  for (let i = 0; i < 3000; i++) {
    const input = Buffer.from(goldens[i % goldens.length]);
    for (let flips = 1 + Math.floor(random() * 3); flips > 0; flips--) {
      input[Math.floor(random() * input.length)] = byte();
    }
    inputs.push(random() < 0.2 ? input.subarray(0, Math.floor(random() * input.length)) : input);
  }
  let decoded = 0;
  for (const input of inputs) {
    let value;
    try {
      value = decodeCbor(input);
    } catch (error) {
      if (!(error instanceof DataPlaneError) || error.code !== 'INVALID_ARGUMENT') {
        t.fail(`input ${input.toString('hex')} threw ${error}`);
        return;
      }
      continue;
    }
    decoded++;
    // Strict decoding accepts only canonical input, so it must re-encode to the very same bytes.
    t.is(encodeCbor(value).toString('hex'), input.toString('hex'));
  }
  t.true(decoded > 100, `only ${decoded} inputs decoded`);
});

test('a tag anywhere in the input is refused, naming its byte, before anything acts on it', (t) => {
  // Shared-value tags (28, 29) inside an array, a date tag inside a map value, a self-described header.
  const cases = [['82d81c8001d81d00', 28, 1], ['a16161c11a00000000', 1, 3], ['d9d9f700', 55799, 0]];
  for (const [h, tag, at] of cases) {
    t.throws(() => decodeCbor(bytes(h)), { ...invalid, message: new RegExp(`tag ${tag} at byte ${at} is not allowed`) }, h);
  }
});

test('decodeCbor leaves its input as it was and hands back byte strings of its own', (t) => {
  const input = encodeCbor({ blob: Buffer.from('abc'), sizeBytes: 2 ** 40 });
  const before = Buffer.from(input);
  const decoded = decodeCbor(input);
  t.deepEqual(input, before);
  t.deepEqual(Object.keys(input).filter((key) => !/^\d+$/.test(key)), [], 'no property added to the input');
  input.fill(0);
  t.is(decoded.blob.toString(), 'abc');
});

test('decode errors name the field or the byte of what is not canonical', (t) => {
  const cases = {
    'a161611bffffffffffffffff': /a is 18446744073709551615, outside the safe integer range/,
    a26162016161fb3ff8000000000000: /value has the map key "a" after "b", out of canonical order/,
    a16161fb3ff8000000000000: /a is 1\.5, a float/,
    a1616181f93c00: /a float at byte 4/,
    a2616101616102: /map at byte 0 repeats a key/,
    '811b0000000000000001': /\[0\] is 1 in 8 bytes, not in shortest form/,
    '826161': /unexpected end of input at byte 3/,
    '8161ff': /text string at byte 1 is not valid UTF-8/,
  };
  for (const [h, message] of Object.entries(cases)) t.throws(() => decodeCbor(bytes(h)), { ...invalid, message }, h);
});
