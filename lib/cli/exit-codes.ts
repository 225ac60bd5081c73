// The exit status of `artifactstore` for each of the SPEC's error codes (README, "The command
// line"): 0 is success, 1 a failure that carries no code, 2 a bad command line or argument.

import type { DataPlaneErrorCode } from '../errors';

export const EXIT_CODES: Readonly<Record<DataPlaneErrorCode, number>> = {
  INVALID_ARGUMENT: 2,
  NOT_FOUND: 3,
  INVALID_ADDRESS: 4,
  INVALID_RANGE: 5,
  UNKNOWN_BACKEND: 6,
  UNSUPPORTED_ALGORITHM: 7,
  INTEGRITY_MISMATCH: 8,
  ABORTED: 9,
  BACKEND_UNAVAILABLE: 10,
  CLOSED: 11,
  IO: 12,
  PERMISSION_DENIED: 13,
  CONFLICT: 14,
};

/** A failure that is not a DataPlaneError (a bug, most likely). */
export const EXIT_UNCODED = 1;
