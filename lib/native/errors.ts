import { DataPlaneError, ERROR_CODES, type DataPlaneErrorCode } from '../errors';

const NATIVE_MESSAGE = /^([A-Z_]+): ([\s\S]*)$/;

/**
 * The native addon reports a core error as "<CODE>: <message>"; this turns it into a DataPlaneError.
 * Anything else (a bug, never expected) becomes IO so that callers still see the one error class.
 */
export function fromNativeError(error: unknown): DataPlaneError {
  if (error instanceof DataPlaneError) return error;
  const message = error instanceof Error ? error.message : String(error);
  const match = NATIVE_MESSAGE.exec(message);
  const code = match?.[1] as DataPlaneErrorCode | undefined;
  if (match && code && (ERROR_CODES as readonly string[]).includes(code)) {
    return new DataPlaneError(code, match[2]);
  }
  return new DataPlaneError('IO', message, { cause: error });
}

/** Runs a native call and rethrows its failure as a DataPlaneError. */
export async function translateNative<T>(call: () => Promise<T> | T): Promise<T> {
  try {
    return await call();
  } catch (error) {
    throw fromNativeError(error);
  }
}
