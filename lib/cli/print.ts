// What a command prints on stdout: its result as JSON with --json (camelCase, as in TypeScript),
// or lines for a person.

import { formatContentAddress } from '../address';
import type { Digest } from '../types';

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

export function printLine(line: string): void {
  process.stdout.write(`${line}\n`);
}

/** A result's fields, one per line, aligned; digests in their text form, absent fields left out. */
export function printFields(record: object): void {
  const entries = Object.entries(record).filter(([, value]) => value !== undefined);
  const width = Math.max(...entries.map(([key]) => key.length));
  for (const [key, value] of entries) printLine(`${key.padEnd(width)}  ${text(value)}`);
}

function text(value: unknown): string {
  if (isDigest(value)) return formatContentAddress(value);
  if (value !== null && typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

function isDigest(value: unknown): value is Digest {
  return value !== null && typeof value === 'object' && 'algorithm' in value && 'hex' in value;
}
