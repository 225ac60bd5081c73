// `node scripts/build-baseline.mjs [COMMIT]`: checks out an earlier commit of this package beside
// this one (a git worktree under .cache/) and builds its addon and its TypeScript, for
// `npm run bench -- --baseline DIR` to run its rows in the same rounds as ours. COMMIT defaults to
// the last one before the catalogue (issue 11), whose 4 KiB ingests its target compares with.
// Cargo builds it into target/baseline, so this checkout's build is left as it is.

import { spawnSync } from 'node:child_process';
import { existsSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const BEFORE_THE_CATALOGUE = 'b03dac0';

const root = fileURLToPath(new URL('..', import.meta.url));

function run(command, args, options = {}) {
  const outcome = spawnSync(command, args, { stdio: 'inherit', ...options });
  if (outcome.status !== 0) {
    console.error(`build-baseline: ${command} ${args.join(' ')} failed (${outcome.status ?? outcome.signal})`);
    process.exit(1);
  }
}

const commit = process.argv[2] ?? BEFORE_THE_CATALOGUE;
const dir = join(root, '.cache', `baseline-${commit}`);
if (!existsSync(dir)) run('git', ['-C', root, 'worktree', 'add', '--detach', dir, commit]);
if (!existsSync(join(dir, 'node_modules'))) symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'));
const env = { ...process.env, CARGO_TARGET_DIR: join(root, 'target', 'baseline') };
run('npm', ['run', '--silent', 'build:native'], { cwd: dir, env });
run('npm', ['run', '--silent', 'build:ts'], { cwd: dir, env });
console.log(`built ${commit} in ${dir}: npm run bench -- --baseline ${dir}`);
