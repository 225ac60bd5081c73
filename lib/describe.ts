// How values appear in error messages.

/** A value as it appears in an error message: JSON where it has a JSON form. */
export function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

// What Rust's `{:?}` escapes in a string besides `\0 \t \r \n " \`: characters it does not count as
// printable (control, format, private-use, unassigned, separators other than the space) and
// combining marks (Grapheme_Extend).
const RUST_ESCAPED = /[\0\t\r\n"\\]|[\p{Cc}\p{Cf}\p{Co}\p{Cn}\p{Zl}\p{Zp}\p{Grapheme_Extend}]|(?! )\p{Zs}/gu;
const RUST_SHORT_ESCAPES: Record<string, string> = { '\0': '\\0', '\t': '\\t', '\r': '\\r', '\n': '\\n', '"': '\\"', '\\': '\\\\' };

/**
 * A string quoted as the Rust core quotes it (`{:?}`), so that a message made here reads exactly
 * like the same message made by the core. Lone surrogates become U+FFFD, as they do on their way
 * into the addon.
 */
export function rustQuoted(text: string): string {
  const wellFormed = text.replace(/\p{Cs}/gu, '\uFFFD');
  const escaped = wellFormed.replace(
    RUST_ESCAPED,
    (c) => RUST_SHORT_ESCAPES[c] ?? `\\u{${c.codePointAt(0)!.toString(16)}}`,
  );
  return `"${escaped}"`;
}
