// Command-line options of `npm run bench`.

const MiB = 1024 * 1024;

export const USAGE = `usage: node bench/run.mjs [--quick] [--root DIR] [--reps N] [--size-mib N] [--objects N] [--list-objects N] [--out DIR] [--no-durable] [--no-s3] [--baseline DIR]

  --quick        small run (32 MiB objects, 500 small objects, 5 repetitions): well under a minute
  --root DIR     where the temporary stores live (default: /dev/shm when present, else the OS temp dir)
  --reps N       measured repetitions, interleaved round-robin (default 5; at least 1)
  --size-mib N   size of the large objects in MiB (default 1024; --quick: 32)
  --objects N    number of 4 KiB objects per sample (default 5000; --quick: 500)
  --list-objects N  objects in the store the listObjects row lists (default 1000000; --quick: 20000)
  --out DIR      where latest.json and latest.svg go (default bench/results; --quick writes latest-quick.*)
  --no-durable   skip the durable: true rows
  --no-s3        skip the S3 rows (otherwise a versitygw is started on 127.0.0.1 for the run; the
                 S3 rows use at most 256 MiB and 500 x 4 KiB objects, --quick: 32 MiB and 100)
  --baseline DIR an earlier commit of this package, built (node scripts/build-baseline.mjs makes one):
                 its 4 KiB ingests one after another run beside ours in every round`;

export function parseArgs(argv) {
  const options = {
    quick: false,
    root: undefined,
    reps: undefined,
    sizeMiB: undefined,
    objects: undefined,
    listObjects: undefined,
    out: undefined,
    durable: true,
    s3: true,
    baseline: undefined,
    help: false,
  };
  const value = (i, name) => {
    if (i + 1 >= argv.length) throw new Error(`${name} needs a value`);
    return argv[i + 1];
  };
  const count = (text, name, min) => {
    const n = Number(text);
    if (!Number.isSafeInteger(n) || n < min) throw new Error(`${name} must be an integer >= ${min}, got ${JSON.stringify(text)}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    switch (arg) {
      case '--quick': options.quick = true; break;
      case '--no-durable': options.durable = false; break;
      case '--no-s3': options.s3 = false; break;
      case '--help': case '-h': options.help = true; break;
      case '--root': options.root = value(i++, arg); break;
      case '--out': options.out = value(i++, arg); break;
      case '--baseline': options.baseline = value(i++, arg); break;
      case '--reps': options.reps = count(value(i++, arg), arg, 1); break;
      case '--size-mib': options.sizeMiB = count(value(i++, arg), arg, 4); break;
      case '--objects': options.objects = count(value(i++, arg), arg, 16); break;
      case '--list-objects': options.listObjects = count(value(i++, arg), arg, 1); break;
      default: throw new Error(`unknown option ${JSON.stringify(arg)}\n${USAGE}`);
    }
  }
  const sizeBytes = (options.sizeMiB ?? (options.quick ? 32 : 1024)) * MiB;
  const objects = options.objects ?? (options.quick ? 500 : 5000);
  return {
    ...options,
    listObjects: options.listObjects ?? (options.quick ? 20_000 : 1_000_000),
    reps: options.reps ?? 5,
    sizeBytes,
    // The small objects are cut from the start of the large one, so they must fit in it.
    objects: Math.min(objects, Math.floor(sizeBytes / 4096)),
  };
}
