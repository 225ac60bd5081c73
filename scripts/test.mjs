// `npm test`: builds what changed, runs the Rust suite, the ava suite and the quick benchmark,
// prints the summaries and one closing line with the totals. Exits non-zero when any of them fails.

import { spawn } from 'node:child_process';

function run(command, args, { capture = false } = {}) {
  return new Promise((resolve) => {
    const child = spawn(command, args, { stdio: ['ignore', capture ? 'pipe' : 'inherit', capture ? 'pipe' : 'inherit'] });
    let output = '';
    const keep = (stream, sink) =>
      stream?.on('data', (data) => {
        output += data;
        sink.write(data);
      });
    keep(child.stdout, process.stdout);
    keep(child.stderr, process.stderr);
    child.on('close', (code, signal) => resolve({ ok: code === 0, output, code: code ?? signal }));
  });
}

function sum(output, pattern) {
  return [...output.matchAll(pattern)].reduce((total, match) => total + Number(match[1]), 0);
}

const build = await run('npm', ['run', '--silent', 'build']);
if (!build.ok) {
  console.error(`build failed (${build.code})`);
  process.exit(1);
}

// The fault tests inject failures with libfiu and build a small LD_PRELOAD shim: install what is
// missing (a no-op when present).
const tools = await run('bash', ['scripts/install-test-tools.sh']);
if (!tools.ok) {
  console.error('installing the fault-test tools failed (scripts/install-test-tools.sh)');
  process.exit(1);
}

// The release tarballs, with their binaries built for glibc 2.17 on x64 and arm64, for
// __test__/portable.test.mjs to check (a few minutes from scratch, mostly the two LTO builds).
const packStarted = Date.now();
const portable = await run('npm', ['run', '--silent', 'pack:portable']);
if (!portable.ok) {
  console.error(`building and packing the portable tarballs failed (${portable.code}): npm run pack:portable`);
  process.exit(1);
}
console.log(`portable tarballs built and packed in ${Math.round((Date.now() - packStarted) / 1000)} s`);

const rust = await run('cargo', ['test', '--workspace', '--color', 'never'], { capture: true });
const ava = await run('npx', ['ava'], { capture: true });

// The benchmark, small, once: it checks every digest it produces, so it cannot rot unnoticed
// (it asserts no times).
const bench = await run('node', ['bench/run.mjs', '--quick']);

const rustPassed = sum(rust.output, /test result: \w+\. (\d+) passed/g);
const rustFailed = sum(rust.output, /test result: \w+\. \d+ passed; (\d+) failed/g);
const avaPassed = sum(ava.output, /(\d+) tests? passed/g);
const avaFailed = sum(ava.output, /(\d+) (?:tests? failed|uncaught exceptions?|unhandled rejections?|tests? timed out)/g);

console.log('\nSummary');
console.log(`  cargo test: ${rustPassed} passed, ${rustFailed} failed${rust.ok ? '' : ` (exit ${rust.code})`}`);
console.log(`  ava:        ${avaPassed} passed, ${avaFailed} failed${ava.ok ? '' : ` (exit ${ava.code})`}`);
console.log(`  bench:      --quick ${bench.ok ? 'ran, every digest checked' : `FAILED (exit ${bench.code})`}`);
const failed = rustFailed + avaFailed + (rust.ok ? 0 : rustFailed ? 0 : 1) + (ava.ok ? 0 : avaFailed ? 0 : 1) + (bench.ok ? 0 : 1);
console.log(`tests: ${rustPassed + avaPassed} passed, ${failed} failed`);
process.exit(rust.ok && ava.ok && bench.ok ? 0 : 1);
