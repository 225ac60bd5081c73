// SPEC Semantics, Content address: formatContentAddress and parseContentAddress (pure functions,
// tested directly), and the INVALID_ADDRESS an operation gives for a malformed AddressLike (in the
// conformance suite, through every opener).

import test from 'ava';

import { DataPlaneError, formatContentAddress, parseContentAddress } from '@artifactstore/data-plane';

import { conformanceTest } from './conformance.mjs';
import { bytes, chunked, rejects } from './helpers.mjs';

const HEX = 'a'.repeat(64);

const SAMPLES = [
  { algorithm: 'blake3', hex: 'af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262' },
  { algorithm: 'sha256', hex: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855' },
  { algorithm: 'blake3', hex: '0'.repeat(64) },
  { algorithm: 'sha256', hex: 'f'.repeat(64) },
];

test('Content address: formatContentAddress gives "<algorithm>:<hex>" and parseContentAddress reads it back', (t) => {
  for (const address of SAMPLES) {
    const text = formatContentAddress(address);
    t.is(text, `${address.algorithm}:${address.hex}`);
    const parsed = parseContentAddress(text);
    t.deepEqual(parsed, address);
    t.deepEqual(Object.keys(parsed).sort(), ['algorithm', 'hex']);
    t.is(formatContentAddress(parsed), text);
  }
});

conformanceTest('Content address: a real ingest result round-trips through the text form', async (t, { dp }) => {
  const result = await dp.ingestStream(chunked(bytes(3000, 44)));
  for (const digest of [result.primaryDigest, result.sha256Digest]) {
    t.deepEqual(parseContentAddress(formatContentAddress(digest)), { algorithm: digest.algorithm, hex: digest.hex });
  }
  t.true(result.receipt.locator.endsWith(result.primaryDigest.hex));
});

function assertInvalidAddress(t, run, mentions, what) {
  const error = t.throws(run, { instanceOf: DataPlaneError }, what);
  if (!error) return;
  t.is(error.code, 'INVALID_ADDRESS', what);
  t.true(
    mentions.some((text) => error.message.includes(text)),
    `${what}: message ${JSON.stringify(error.message)} contains one of ${JSON.stringify(mentions)}`,
  );
}

test('Content address: parseContentAddress accepts exactly the SPEC form; anything else is INVALID_ADDRESS naming the value', (t) => {
  const hex = SAMPLES[0].hex;
  const bad = [
    `blake3:${hex.slice(1)}`, // 63 hex
    `blake3:${hex}0`, // 65 hex
    `BLAKE3:${hex}`,
    `Blake3:${hex}`,
    `blake3:${hex.toUpperCase()}`,
    `blake3:${hex.slice(0, 63)}A`,
    `blake3:${hex.slice(0, 63)}g`,
    `blake3:${'z'.repeat(64)}`,
    `blake3:${hex.slice(0, 30)}-${hex.slice(31)}`,
    `blake3::${hex}`,
    `blake3:${hex}:`,
    `blake3:a:${hex}`,
    `:${hex}`,
    `blake3:`,
    `blake3${hex}`,
    hex,
    ` blake3:${hex}`,
    `blake3:${hex} `,
    `blake3: ${hex}`,
    `blake3 :${hex}`,
    `blake3:${hex}\n`,
    `\tsha256:${hex}`,
    `md5:${'a'.repeat(32)}`,
    `md5:${hex}`,
    `sha512:${hex}`,
    `sha-256:${hex}`,
    `blake3:0x${hex.slice(2)}`,
    `blake3:${hex.slice(0, 63)}\u0000`,
    `blake3:${hex.slice(0, 63)}\u0661`, // an Arabic-Indic digit
  ];
  for (const text of bad) {
    // A control character may be shown escaped; the rest of the value must be there as it is.
    const printable = text.replace(/[\u0000-\u001f]/g, '');
    assertInvalidAddress(t, () => parseContentAddress(text), [text, JSON.stringify(text), printable], JSON.stringify(text));
  }
  assertInvalidAddress(t, () => parseContentAddress(''), ['""', "''"], 'empty string');
});

test('Content address: parseContentAddress rejects non-string input with INVALID_ADDRESS', (t) => {
  const values = [undefined, null, 5, true, {}, [], SAMPLES[0], Buffer.from(`blake3:${HEX}`), Symbol('x')];
  for (const value of values) {
    const mentions = typeof value === 'symbol' ? ['Symbol', 'symbol'] : [String(value), JSON.stringify(value) ?? 'undefined'];
    assertInvalidAddress(t, () => parseContentAddress(value), mentions, typeof value === 'symbol' ? 'symbol' : String(JSON.stringify(value)));
  }
});

test('Content address: formatContentAddress rejects malformed objects with INVALID_ADDRESS naming the bad value', (t) => {
  const cases = [
    [{ algorithm: 'md5', hex: HEX }, ['md5']],
    [{ algorithm: 'BLAKE3', hex: HEX }, ['BLAKE3']],
    [{ algorithm: 'blake3', hex: HEX.toUpperCase() }, [HEX.toUpperCase()]],
    [{ algorithm: 'blake3', hex: HEX.slice(1) }, [HEX.slice(1)]],
    [{ algorithm: 'blake3', hex: `${HEX}0` }, [`${HEX}0`]],
    [{ algorithm: 'blake3', hex: 'xyz' }, ['xyz']],
    [{ algorithm: 'blake3', hex: ` ${HEX.slice(1)}` }, [` ${HEX.slice(1)}`]],
    [{ algorithm: 'blake3:x', hex: HEX }, ['blake3:x']],
    [{ algorithm: 'blake3' }, ['blake3']],
    [{ hex: HEX }, [HEX]],
    [{ algorithm: 5, hex: HEX }, ['5']],
    [{ algorithm: 'blake3', hex: 12345 }, ['12345']],
    [{}, ['{}']],
    [[], ['[]']],
    [null, ['null']],
    [undefined, ['undefined']],
    [42, ['42']],
  ];
  for (const [value, mentions] of cases) {
    assertInvalidAddress(t, () => formatContentAddress(value), mentions, String(JSON.stringify(value)));
  }
});

conformanceTest('Content address: operations reject a malformed AddressLike with INVALID_ADDRESS before touching a backend', async (t, { dp }) => {
  const bad = [
    { algorithm: 'blake3' },
    { algorithm: 'blake3', hex: HEX.toUpperCase() },
    { algorithm: 'md5', hex: HEX },
    `blake3:${HEX.slice(1)}`,
    '',
    null,
    42,
  ];
  for (const address of bad) {
    for (const [name, call] of Object.entries({
      serveObject: () => dp.serveObject(address),
      verifyObject: () => dp.verifyObject(address),
      deleteObject: () => dp.deleteObject(address),
    })) {
      await rejects(t, call(), 'INVALID_ADDRESS', { what: `${name}(${JSON.stringify(address)})` });
    }
  }
});
