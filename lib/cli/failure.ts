// How a failed command ends: one line on stderr that starts with the SPEC's error code, and the
// exit status of that code.

import { CommanderError } from 'commander';

import { DataPlaneError, ERROR_CODES } from '../errors';
import { EXIT_CODES, EXIT_UNCODED } from './exit-codes';

/** Prints the error's one line; returns the exit status. */
export function reportFailure(error: unknown): number {
  const { code, message } = describeFailure(error);
  process.stderr.write(`${code}: ${oneLine(message)}\n`);
  return code in EXIT_CODES ? EXIT_CODES[code as keyof typeof EXIT_CODES] : EXIT_UNCODED;
}

function describeFailure(error: unknown): { code: string; message: string } {
  if (error instanceof DataPlaneError) return { code: error.code, message: error.message };
  if (error instanceof CommanderError) return { code: 'INVALID_ARGUMENT', message: error.message.replace(/^error: /, '') };
  const nodeCode = (error as NodeJS.ErrnoException | undefined)?.code;
  if (typeof nodeCode === 'string' && (error as NodeJS.ErrnoException).syscall) {
    return { code: 'IO', message: (error as Error).message };
  }
  const coded = error as { code?: unknown; message?: unknown } | undefined;
  if (typeof coded?.code === 'string' && (ERROR_CODES as readonly string[]).includes(coded.code)) {
    return { code: coded.code, message: String(coded.message) };
  }
  return { code: 'ERROR', message: error instanceof Error ? (error.stack ?? error.message) : String(error) };
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ').trim();
}
