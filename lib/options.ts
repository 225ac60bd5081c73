// Checks the shape of what callers pass (types only: the core checks values and names them too)
// and flattens it into the arguments a data plane's backend takes.

import { describe } from './describe';
import { DataPlaneError, type DataPlaneErrorCode } from './errors';
import type { DataPlaneConfig, IngestOptions } from './types';

/** IngestOptions without its signal, flattened: hints and expectations side by side. */
export interface CheckedIngestOptions {
  backendId?: string;
  primaryAlgorithm?: string;
  sizeHint?: number;
  expectSizeBytes?: number;
  expectSha256?: string;
  expectPrimary?: string;
}

function fail(code: DataPlaneErrorCode, message: string): never {
  throw new DataPlaneError(code, message);
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

export function optionalString(value: unknown, field: string): string | undefined {
  if (value === undefined || typeof value === 'string') return value;
  return fail('INVALID_ARGUMENT', `${field} must be a string, got ${describe(value)}`);
}

export function optionalCount(value: unknown, field: string): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) return value;
  return fail('INVALID_ARGUMENT', `${field} must be a non-negative integer, got ${describe(value)}`);
}

export function optionalRecord(value: unknown, field: string): Record<string, unknown> {
  if (value === undefined) return {};
  if (isRecord(value)) return value;
  return fail('INVALID_ARGUMENT', `${field} must be an object, got ${describe(value)}`);
}

export function optionalSignal(value: unknown): AbortSignal | undefined {
  if (value === undefined || value instanceof AbortSignal) return value;
  return fail('INVALID_ARGUMENT', `options.signal must be an AbortSignal, got ${describe(value)}`);
}

const STRING_FIELDS = ['id', 'kind', 'root', 'bucket', 'prefix', 'endpoint', 'region', 'accessKeyId', 'secretAccessKey', 'sessionToken'] as const;

/** One backend configuration, its fields checked for type (values are the core's to judge). */
export type CheckedBackend = { [field in (typeof STRING_FIELDS)[number]]?: string } & { durable?: boolean };

export function checkedBackends(config: DataPlaneConfig): { backends: CheckedBackend[]; defaultBackend?: string } {
  if (!isRecord(config)) fail('INVALID_ARGUMENT', `the configuration must be an object, got ${describe(config)}`);
  if (!Array.isArray(config.backends)) {
    fail('INVALID_ARGUMENT', `backends must be an array of backend configurations, got ${describe(config.backends)}`);
  }
  const backends = config.backends.map((backend: unknown, index: number) => {
    if (!isRecord(backend)) fail('INVALID_ARGUMENT', `backends[${index}] must be an object, got ${describe(backend)}`);
    const checked: CheckedBackend = {};
    for (const field of STRING_FIELDS) checked[field] = optionalString(backend[field], `backends[${index}].${field}`);
    if (backend.durable !== undefined && typeof backend.durable !== 'boolean') {
      fail('INVALID_ARGUMENT', `backends[${index}].durable must be a boolean, got ${describe(backend.durable)}`);
    }
    checked.durable = backend.durable as boolean | undefined;
    return checked;
  });
  return { backends, defaultBackend: optionalString(config.defaultBackend, 'defaultBackend') };
}

export function checkedIngestOptions(options: IngestOptions | undefined): CheckedIngestOptions {
  const all = optionalRecord(options, 'options');
  const hints = optionalRecord(all.hints, 'options.hints');
  const expect = optionalRecord(all.expect, 'options.expect');
  const primary = hints.primaryAlgorithm;
  if (primary !== undefined && typeof primary !== 'string') {
    fail('UNSUPPORTED_ALGORITHM', `unsupported hash algorithm ${describe(primary)} (expected "blake3" or "sha256")`);
  }
  return {
    backendId: optionalString(hints.backendId, 'hints.backendId'),
    primaryAlgorithm: primary,
    sizeHint: optionalCount(hints.sizeHint, 'hints.sizeHint'),
    expectSizeBytes: optionalCount(expect.sizeBytes, 'expect.sizeBytes'),
    expectSha256: optionalString(expect.sha256, 'expect.sha256'),
    expectPrimary: optionalString(expect.primary, 'expect.primary'),
  };
}

/** The backendId of a serve, verify or delete call. */
export function backendIdOf(options: unknown): string | undefined {
  return optionalString(optionalRecord(options, 'options').backendId, 'options.backendId');
}

/** A byte range as [start, end], half-open; bad shapes reject with INVALID_RANGE naming the range. */
export function byteRangeOf(range: unknown): [number, number] | undefined {
  if (range === undefined) return undefined;
  const valid =
    Array.isArray(range) &&
    range.length === 2 &&
    [0, 1].every((i) => Number.isSafeInteger(range[i]) && range[i] >= 0); // holes in a sparse array are not numbers
  if (!valid) {
    fail('INVALID_RANGE', `invalid byte range ${describe(range)}: expected [start, end] with integers 0 <= start <= end`);
  }
  return range as [number, number];
}

const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})$/;

/** A time given as RFC 3339 text (`new Date().toISOString()` gives one). */
export function optionalTime(value: unknown, field: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'string' && RFC3339.test(value) && !Number.isNaN(Date.parse(value))) return value;
  return fail('INVALID_ARGUMENT', `${field} must be an RFC 3339 time like "2026-12-01T08:30:00.000Z", got ${describe(value)}`);
}

export function optionalBoolean(value: unknown, field: string): boolean | undefined {
  if (value === undefined || typeof value === 'boolean') return value;
  return fail('INVALID_ARGUMENT', `${field} must be a boolean, got ${describe(value)}`);
}

export function optionalFunction<F extends (...args: never[]) => unknown>(value: unknown, field: string): F | undefined {
  if (value === undefined || typeof value === 'function') return value as F | undefined;
  return fail('INVALID_ARGUMENT', `${field} must be a function, got ${describe(value)}`);
}

/** A positive integer (a rate). */
export function optionalPositive(value: unknown, field: string): number | undefined {
  if (value === undefined || (typeof value === 'number' && Number.isSafeInteger(value) && value > 0)) return value;
  return fail('INVALID_ARGUMENT', `${field} must be a positive integer, got ${describe(value)}`);
}
