// `artifactstore`: the data plane's operations from a shell (README, "The command line"). Each
// subcommand translates its arguments into one operation and its result into lines or JSON.

import { Command, CommanderError, Option } from 'commander';

import { DataPlaneError } from '../errors';
import type { OpenDataPlane } from '../types';
import { health, ls, missing, scrub } from './catalogue';
import { reportFailure } from './failure';
import { get, put, rm, statCommand, verify, type CommandContext } from './objects';
import { openStore, type StoreOptions } from './store';
import { listUploads, purgeUploads } from './uploads';

interface GlobalOptions extends StoreOptions {
  json?: boolean;
  progress: boolean;
  backend?: string;
}

type Run = (context: CommandContext, ...args: never[]) => Promise<number>;

/** A reader of stdout that went away (`| head`) ends the command quietly, as SIGPIPE ends `cat`. */
export const EXIT_BROKEN_PIPE = 141;

const brokenPipe = (error: unknown) => (error as NodeJS.ErrnoException | undefined)?.code === 'EPIPE';

/** Runs the command line; resolves to the exit status. */
export async function main(argv: string[]): Promise<number> {
  process.stdout.on('error', (error) => process.exit(brokenPipe(error) ? EXIT_BROKEN_PIPE : reportFailure(error)));
  let status = 0;
  const program = buildProgram((code) => (status = code));
  try {
    await program.parseAsync(argv);
    return status;
  } catch (error) {
    if (error instanceof CommanderError && error.exitCode === 0) return 0; // --help, --version
    if (brokenPipe(error)) return EXIT_BROKEN_PIPE;
    return reportFailure(error);
  }
}

function buildProgram(exit: (status: number) => void): Command {
  const program = new Command('artifactstore')
    .description('The artifact store\'s data plane from a shell: put, get and check objects by content address.')
    .version(`artifactstore ${require('../../package.json').version}`)
    .option('--root <dir>', 'an fs store in this directory')
    .option('--config <file>', "the backends of a daemon's config file (JSON)")
    .option('--socket <path>', 'a daemon on this Unix socket')
    .option('--backend <id>', 'the backend to use (the default one when absent)')
    .option('--json', 'print the result as JSON (camelCase, as in TypeScript)')
    .option('--no-progress', 'no progress bar, even on a terminal')
    .exitOverride()
    .configureOutput({ writeErr: () => {} }); // errors are reported in one line by main
  const action = (run: Run) =>
    async function (this: Command, ...args: unknown[]) {
      exit(await withContext(this.optsWithGlobals() as GlobalOptions, (context) => run(context, ...(args.slice(0, -1) as never[]))));
    };

  program.command('put').argument('<file>', 'a file, or - for stdin').description('store a file; prints its address').action(action(put));
  program
    .command('get')
    .argument('<address>', 'blake3:<hex> or sha256:<hex>')
    .option('--range <start-end>', 'only the bytes [START, END)')
    .option('-o, --output <file>', 'write into FILE (whole, or not at all) instead of stdout')
    .description('write an object\'s bytes to stdout or a file')
    .action(action(get));
  program.command('stat').argument('<address>').description('what the catalogue knows of an object').action(action(statCommand));
  program.command('verify').argument('<address>').description('re-read an object and check its digests').action(action(verify));
  program
    .command('rm')
    .argument('<address>')
    .option('--unless-touched-since <time>', 'keep the object if it was touched at or after this RFC 3339 time')
    .description('delete an object')
    .action(action(rm));
  program
    .command('ls')
    .option('--after <address>', 'start after this address')
    .option('--limit <n>', 'at most this many objects')
    .option('--touched-before <time>', 'only objects last touched before this RFC 3339 time')
    .description('list the objects, ascending by address')
    .action(action(ls));
  program.command('missing').argument('<address...>').description('print the addresses the store does not hold').action(action(missing));
  program.command('health').description('probe every backend').action(action(health));
  program
    .command('scrub')
    .option('--quarantine', 'move corrupt objects to quarantine/')
    .option('--rate <rate>', 'read at most this fast, like 100MB/s')
    .option('--after <address>', 'start after this address (to resume)')
    .description('verify every object of a backend')
    .action(action(scrub));
  const uploads = program.command('uploads').description('resumable uploads');
  uploads
    .command('ls')
    .option('--updated-before <time>', 'only uploads last updated before this RFC 3339 time')
    .description('list the uploads under way')
    .action(action(listUploads));
  uploads
    .command('purge')
    .addOption(new Option('--updated-before <time>', 'remove the uploads last updated before this RFC 3339 time').makeOptionMandatory())
    .description('remove stale uploads')
    .action(action(purgeUploads));
  for (const command of [...program.commands, ...uploads.commands]) command.exitOverride().configureOutput({ writeErr: () => {} });
  for (const parent of [program, uploads]) {
    parent.allowExcessArguments().action(() => Promise.reject(notACommand(parent, parent.args[0])));
  }
  return program;
}

/** A command that only groups others, called alone or with a name it does not know. */
function notACommand(parent: Command, name: string | undefined): DataPlaneError {
  const names = parent.commands.map((command) => command.name()).join(', ');
  const path = parent.parent ? `${parent.parent.name()} ${parent.name()}` : parent.name();
  const what = name === undefined ? `${path} needs a command` : `unknown command '${name}' for ${path}`;
  return new DataPlaneError('INVALID_ARGUMENT', `${what}, one of: ${names} (${path} --help says more)`);
}

/** Opens the store, runs the command with a signal that SIGINT fires, closes the store. */
async function withContext(options: GlobalOptions, run: (context: CommandContext) => Promise<number>): Promise<number> {
  const dp: OpenDataPlane = await openStore(options);
  const interrupted = new AbortController();
  const onInterrupt = () => (interrupted.signal.aborted ? process.exit(130) : interrupted.abort());
  process.on('SIGINT', onInterrupt);
  try {
    return await run({ dp, json: options.json === true, progress: options.progress, backendId: options.backend, signal: interrupted.signal });
  } finally {
    process.off('SIGINT', onInterrupt);
    await dp.close();
  }
}
