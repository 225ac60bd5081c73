/** The stable codes of the SPEC; every rejection the package produces carries one. */
export const ERROR_CODES = [
  'NOT_FOUND',
  'INVALID_ADDRESS',
  'INVALID_RANGE',
  'INVALID_ARGUMENT',
  'UNKNOWN_BACKEND',
  'UNSUPPORTED_ALGORITHM',
  'INTEGRITY_MISMATCH',
  'ABORTED',
  'BACKEND_UNAVAILABLE',
  'CLOSED',
  'IO',
  'PERMISSION_DENIED',
  'CONFLICT',
] as const;

export type DataPlaneErrorCode = (typeof ERROR_CODES)[number];

export class DataPlaneError extends Error {
  readonly code: DataPlaneErrorCode;

  constructor(code: DataPlaneErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DataPlaneError';
    this.code = code;
  }
}
