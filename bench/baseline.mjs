// An earlier commit of this package, built beside this one (scripts/build-baseline.mjs), whose
// rows run in the same rounds as ours: what a change cost, measured in one run's environment.

import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

/** `{ dir, commit, openDataPlane }` of the built checkout at `dir`. */
export async function loadBaseline(dir) {
  const root = path.resolve(dir);
  const entry = path.join(root, 'dist', 'index.js');
  if (!existsSync(entry)) {
    throw new Error(`--baseline ${dir}: no ${entry}; node scripts/build-baseline.mjs [COMMIT] builds one`);
  }
  const commit = execFileSync('git', ['-C', root, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
  const { openDataPlane } = await import(pathToFileURL(entry).href);
  return { dir: root, commit, openDataPlane };
}
