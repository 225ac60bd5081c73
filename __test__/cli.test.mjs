// The `artifactstore` command line (SPEC "The command line"): every subcommand through pipes and
// on a real terminal, --json parsed, exit codes per error code, the progress bar on a terminal and
// never on a pipe, and the store given by --root, --config or --socket.

import test from 'ava';
import { spawn } from 'node:child_process';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { openDataPlane } from '@artifactstore/data-plane';
import { EXIT_CODES } from '../dist/cli/exit-codes.js';
import { CLI, runCli, runCliOnTerminal } from './fixtures/cli.mjs';
import { startDaemon } from './fixtures/daemon.mjs';
import { tempDir } from './fixtures/support.mjs';
import { bytes, MiB } from './helpers.mjs';

const ABSENT = `blake3:${'0'.repeat(64)}`;
const ADDRESS = /^(blake3|sha256):[0-9a-f]{64}$/;
const plainText = (text) => text.replace(/\x1b(\[[0-9;?]*[A-Za-z]|[78])/g, '');

async function store(t) {
  const dir = await tempDir(t, 'dp-cli-');
  const file = join(dir, 'source.bin');
  await writeFile(file, bytes(3 * MiB, 7));
  return { dir, root: join(dir, 'store'), file };
}

/** Runs the command through pipes and checks it failed with `code` in one line on stderr. */
async function fails(t, args, code, options) {
  const run = await runCli(args, options);
  t.is(run.code, EXIT_CODES[code], `${args.join(' ')}: ${run.stderr}`);
  t.regex(run.stderr, new RegExp(`^${code}: \\S.*\\n$`), args.join(' '));
  t.is(run.stderr.split('\n').length, 2, 'one line');
  return run;
}

async function ok(t, args, options) {
  const run = await runCli(args, options);
  t.is(run.code, 0, `${args.join(' ')}: ${run.stderr}`);
  t.is(run.stderr, '', 'nothing on stderr, no bar on a pipe');
  return run;
}

const json = (run) => JSON.parse(run.stdout.toString());
const jsonLines = (run) => run.stdout.toString().trim().split('\n').filter(Boolean).map((line) => JSON.parse(line));

test('put, get, stat, verify and rm through pipes, as text and as --json', async (t) => {
  const { dir, root, file } = await store(t);
  const source = await readFile(file);
  const put = await ok(t, ['--root', root, 'put', file]);
  const address = put.stdout.toString().trim().split('\n').at(-1);
  t.regex(address, ADDRESS);
  const fromStdin = json(await ok(t, ['--root', root, 'put', '-', '--json'], { input: source }));
  t.is(`blake3:${fromStdin.primaryDigest.hex}`, address);
  t.true(fromStdin.receipt.deduplicated);
  t.is(fromStdin.sizeBytes, source.length);

  t.deepEqual((await ok(t, ['--root', root, 'get', address])).stdout, source, 'raw bytes on stdout');
  t.deepEqual((await ok(t, ['--root', root, 'get', address, '--range', '10-20'])).stdout, source.subarray(10, 20));
  const out = join(dir, 'out.bin');
  const got = json(await ok(t, ['--root', root, 'get', address, '-o', out, '--json']));
  t.deepEqual(await readFile(out), source);
  t.like(got, { sizeBytes: source.length, totalSizeBytes: source.length, path: out });

  const info = json(await ok(t, ['--root', root, 'stat', `sha256:${fromStdin.sha256Digest.hex}`, '--json']));
  t.like(info, { contentAddress: fromStdin.primaryDigest, sha256Digest: fromStdin.sha256Digest, sizeBytes: source.length, backendId: 'local' });
  const statText = (await ok(t, ['--root', root, 'stat', address])).stdout.toString();
  t.regex(statText, new RegExp(`^contentAddress +${address}$`, 'm'));
  t.regex(statText, new RegExp(`^sizeBytes +${source.length}$`, 'm'));

  t.is((await ok(t, ['--root', root, 'verify', address])).stdout.toString(), `verified ${address}\n`);
  t.true(json(await ok(t, ['--root', root, 'verify', address, '--json'])).verified);

  const kept = json(await ok(t, ['--root', root, 'rm', address, '--unless-touched-since', '2000-01-01T00:00:00Z', '--json']));
  t.like(kept, { deleted: false, touchedAt: info.touchedAt });
  t.is((await ok(t, ['--root', root, 'rm', address])).stdout.toString(), `deleted ${address}\n`);
  t.is((await ok(t, ['--root', root, 'rm', address])).stdout.toString(), `absent ${address}\n`);
  await fails(t, ['--root', root, 'stat', address], 'NOT_FOUND');
  await fails(t, ['--root', root, 'get', address], 'NOT_FOUND');
});

test('ls, missing, health and scrub through pipes; a corrupt object fails verify and scrub', async (t) => {
  const { root, dir } = await store(t);
  const stored = [];
  for (const seed of [1, 2, 3]) {
    const file = join(dir, `f${seed}`);
    await writeFile(file, bytes(1000 * seed, seed));
    stored.push((await ok(t, ['--root', root, 'put', file])).stdout.toString().trim());
  }
  const sorted = [...stored].sort();
  const listed = jsonLines(await ok(t, ['--root', root, 'ls', '--json']));
  t.deepEqual(listed.map((info) => `blake3:${info.contentAddress.hex}`), sorted);
  const page = (await ok(t, ['--root', root, 'ls', '--after', sorted[0], '--limit', '1'])).stdout.toString();
  t.regex(page, new RegExp(`^${sorted[1]}\\t\\d+\\t\\S+\\n$`));

  t.is((await ok(t, ['--root', root, 'missing', stored[0], ABSENT])).stdout.toString(), `${ABSENT}\n`);
  t.deepEqual(json(await ok(t, ['--root', root, 'missing', stored[0], ABSENT, '--json'])), [{ algorithm: 'blake3', hex: '0'.repeat(64) }]);

  const health = json(await ok(t, ['--root', root, 'health', '--json']));
  t.like(health, { healthy: true, backends: [{ backendId: 'local', kind: 'fs', healthy: true }] });
  t.regex((await ok(t, ['--root', root, 'health'])).stdout.toString(), /^local\tfs\thealthy\t\d+us/);

  const clean = json(await ok(t, ['--root', root, 'scrub', '--json', '--rate', '100MB/s']));
  t.like(clean, { checkedObjects: 3, checkedBytes: 6000, corrupt: [], complete: true });

  const victim = listed.find((info) => `blake3:${info.contentAddress.hex}` === stored[1]);
  const path = join(root, victim.locator);
  await chmod(path, 0o644);
  await writeFile(path, bytes(2000, 99));
  const verify = await fails(t, ['--root', root, 'verify', stored[1]], 'INTEGRITY_MISMATCH');
  t.is(verify.stdout.toString(), `CORRUPT ${stored[1]}\n`);
  const scrub = await fails(t, ['--root', root, 'scrub', '--quarantine', '--json'], 'INTEGRITY_MISMATCH');
  t.like(json(scrub), { checkedObjects: 3, quarantined: 1, corrupt: [{ verified: false }] });
  await fails(t, ['--root', root, 'stat', stored[1]], 'NOT_FOUND');
});

test('bad input fails with its code in one line and the exit status of that code', async (t) => {
  const { root, file } = await store(t);
  const address = (await ok(t, ['--root', root, 'put', file])).stdout.toString().trim();
  await fails(t, ['--root', root, 'get', 'blake3:zz'], 'INVALID_ADDRESS');
  await fails(t, ['--root', root, 'get', address, '--range', '5-1'], 'INVALID_RANGE');
  await fails(t, ['--root', root, 'get', address, '--range', 'five'], 'INVALID_RANGE');
  await fails(t, ['--root', root, '--backend', 'elsewhere', 'stat', address], 'UNKNOWN_BACKEND');
  await fails(t, ['--root', root, 'put', join(root, 'no-such-file')], 'IO');
  t.regex((await fails(t, ['--root', root, 'frobnicate'], 'INVALID_ARGUMENT')).stderr, /unknown command 'frobnicate'.*one of: put, get/);
  t.regex((await fails(t, ['--root', root], 'INVALID_ARGUMENT')).stderr, /artifactstore needs a command, one of: put, get/);
  t.regex((await fails(t, ['--root', root, 'uploads'], 'INVALID_ARGUMENT')).stderr, /artifactstore uploads needs a command, one of: ls, purge/);
  t.regex((await fails(t, ['--root', root, 'uploads', 'frob'], 'INVALID_ARGUMENT')).stderr, /unknown command 'frob' for artifactstore uploads/);
  await fails(t, ['--root', root, 'put'], 'INVALID_ARGUMENT');
  await fails(t, ['stat', address], 'INVALID_ARGUMENT');
  await fails(t, ['--root', root, '--socket', '/nowhere', 'stat', address], 'INVALID_ARGUMENT');
  await fails(t, ['--root', root, 'scrub', '--rate', 'fast'], 'INVALID_ARGUMENT');
  await fails(t, ['--root', root, 'ls', '--limit', '-3'], 'INVALID_ARGUMENT');
  await fails(t, ['--root', root, 'rm', address, '--unless-touched-since', 'yesterday'], 'INVALID_ARGUMENT');
  await fails(t, ['--root', root, 'uploads', 'purge'], 'INVALID_ARGUMENT');
  await fails(t, ['--root', root, 'uploads', 'purge', '--updated-before', 'soon'], 'INVALID_ARGUMENT');
  await fails(t, ['--socket', join(root, 'no.sock'), 'health'], 'BACKEND_UNAVAILABLE', { env: {} });
  const help = await runCli(['--help']);
  t.is(help.code, 0);
  t.regex(help.stdout.toString(), /Usage: artifactstore/);
});

test('uploads ls lists the resumable uploads with their offsets, and uploads purge removes those last updated before a time', async (t) => {
  const { root } = await store(t);
  const dp = await openDataPlane({ backends: [{ id: 'local', kind: 'fs', root, durable: false }] });
  const { uploadId } = await dp.createUpload();
  await dp.appendUpload(uploadId, [bytes(1000, 3)], { offset: 0 });
  await dp.close();
  t.deepEqual(jsonLines(await ok(t, ['--root', root, 'uploads', 'ls', '--json'])).map((u) => [u.uploadId, u.offset]), [[uploadId, 1000]]);
  t.regex((await ok(t, ['--root', root, 'uploads', 'ls'])).stdout.toString(), new RegExp(`^${uploadId}\t1000\t`));
  t.is((await ok(t, ['--root', root, 'uploads', 'ls', '--updated-before', '2000-01-01T00:00:00Z'])).stdout.toString(), '');
  t.regex((await ok(t, ['--root', root, 'uploads', 'purge', '--updated-before', '2000-01-01T00:00:00Z'])).stdout.toString(), /purged 0 uploads/);
  const later = new Date(Date.now() + 60_000).toISOString();
  t.regex((await ok(t, ['--root', root, 'uploads', 'purge', '--updated-before', later])).stdout.toString(), /purged 1 uploads/);
  t.is((await ok(t, ['--root', root, 'uploads', 'ls'])).stdout.toString(), '');
});

test('on a terminal every subcommand prints what it prints on a pipe, and put, get -o and scrub show a progress bar', async (t) => {
  const { root, file, dir } = await store(t);
  const address = (await ok(t, ['--root', root, 'put', file])).stdout.toString().trim();
  const out = join(dir, 'out.bin');
  const commands = [
    [['put', file], true],
    [['get', address, '-o', out], true],
    [['scrub'], true],
    [['get', address, '--range', '0-0']],
    [['stat', address, '--json']],
    [['verify', address]],
    [['ls']],
    [['missing', ABSENT]],
    [['health', '--json']],
    [['rm', address, '--unless-touched-since', '2000-01-01T00:00:00Z']],
    [['stat', ABSENT]],
    [['uploads', 'ls']],
  ];
  for (const [args, hasBar] of commands) {
    const piped = await runCli(['--root', root, ...args]);
    const terminal = await runCliOnTerminal(['--root', root, ...args]);
    const what = args.join(' ');
    t.is(terminal.code, piped.code, what);
    const text = plainText(terminal.output);
    const lines = `${piped.stdout}${piped.stderr}`.split('\n').filter(Boolean);
    // health's latency differs from one probe to the next; everything else is the same.
    if (what.startsWith('health')) t.true(JSON.parse(text.trim().split('\n').at(-1)).healthy);
    else for (const line of lines) t.true(text.includes(line), `${what}: ${line} in ${JSON.stringify(text)}`);
    t.is(piped.stderr.includes('ETA'), false, `${what}: no bar on a pipe`);
    if (hasBar) t.regex(text, new RegExp(`${args[0]} [=-]+ 100% \\| [\\d.]+[kMG]?B/[\\d.]+[kMG]?B \\| [\\d.]+[kMG]?B/s \\| ETA`), what);
    else t.false(text.includes('ETA'), `${what}: no bar`);
  }
  t.deepEqual(await readFile(out), await readFile(file));
  const quiet = await runCliOnTerminal(['--root', root, '--no-progress', 'put', file]);
  t.is(plainText(quiet.output), `${address}\n`, '--no-progress: the address alone');
});

test('--config takes the backends of a daemon config file; --socket goes through a running daemon', async (t) => {
  const { dir, root, file } = await store(t);
  const backends = [{ id: 'main', kind: 'fs', root }];
  const config = join(dir, 'daemon.json');
  await writeFile(config, JSON.stringify({ socketPath: join(dir, 'unused.sock'), socketMode: '600', backends }));
  const address = (await ok(t, ['--config', config, 'put', file])).stdout.toString().trim();
  t.is(json(await ok(t, ['--config', config, 'stat', address, '--json'])).backendId, 'main');
  await writeFile(config, '{"backends": ');
  await fails(t, ['--config', config, 'ls'], 'INVALID_ARGUMENT');
  await fails(t, ['--config', join(dir, 'absent.json'), 'ls'], 'IO');

  const daemon = await startDaemon({ backends });
  t.teardown(() => daemon.stop());
  const socket = ['--socket', daemon.socketPath];
  t.deepEqual((await ok(t, [...socket, 'get', address])).stdout, await readFile(file));
  const again = json(await ok(t, [...socket, 'put', file, '--json']));
  t.true(again.receipt.deduplicated);
  t.deepEqual(jsonLines(await ok(t, [...socket, 'ls', '--json'])).map((info) => info.contentAddress.hex), [address.slice(7)]);
  t.like(json(await ok(t, [...socket, 'scrub', '--json'])), { checkedObjects: 1, complete: true });
  const terminal = await runCliOnTerminal([...socket, 'put', file]);
  t.is(terminal.code, 0);
  t.regex(plainText(terminal.output), new RegExp(`100% .*\\n?${address}`));
  await fails(t, [...socket, 'stat', ABSENT], 'NOT_FOUND');
});

// Serial: the other tests of this file run commands synchronously, which would hold up this one's
// timer (it fired after the scrub had ended in a loaded run).
test.serial('SIGINT stops a scrub with ABORTED and says where to resume; --after goes on from there', async (t) => {
  const { root, dir } = await store(t);
  for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) {
    const file = join(dir, `f${seed}`);
    await writeFile(file, bytes(1000, seed));
    await ok(t, ['--root', root, 'put', file]);
  }
  // 4 s per object: 32 s in all, stopped after about 3 (a loaded machine may take 2 to start it).
  const child = spawn(process.execPath, [CLI, '--root', root, 'scrub', '--rate', '250', '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => (stdout += chunk));
  child.stderr.on('data', (chunk) => (stderr += chunk));
  await new Promise((resolve) => setTimeout(resolve, 3000));
  child.kill('SIGINT');
  const code = await new Promise((resolve) => child.on('close', resolve));
  t.is(code, EXIT_CODES.ABORTED, stderr);
  const report = JSON.parse(stdout);
  t.false(report.complete);
  t.true(report.checkedObjects >= 1 && report.checkedObjects < 8, `${report.checkedObjects} checked`);
  t.is(stderr, `ABORTED: scrub stopped; resume with --after ${report.resumeAfter}\n`);
  const rest = json(await ok(t, ['--root', root, 'scrub', '--after', report.resumeAfter, '--json']));
  t.is(report.checkedObjects + rest.checkedObjects, 8);
  t.true(rest.complete);
});

test('get into a file from a terminal shows its bar; get onto the terminal itself does not', async (t) => {
  const { root, file, dir } = await store(t);
  const address = (await ok(t, ['--root', root, 'put', file])).stdout.toString().trim();
  const out = join(dir, 'redirected.bin');
  const redirected = await runCliOnTerminal(['--root', root, 'get', address], { stdout: out });
  t.is(redirected.code, 0);
  t.regex(plainText(redirected.output), /get [=-]+ 100% \| 3MB\/3MB/);
  t.deepEqual(await readFile(out), await readFile(file));
  const onTerminal = await runCliOnTerminal(['--root', root, 'get', address, '--range', '0-64']);
  t.is(onTerminal.code, 0);
  t.false(onTerminal.output.includes('ETA'), 'no bar among the bytes');
});

test('health of a store with an unreachable backend lists it and exits with BACKEND_UNAVAILABLE', async (t) => {
  const { dir, root } = await store(t);
  const config = join(dir, 'daemon.json');
  const gone = { id: 'gone', kind: 's3', bucket: 'b', endpoint: 'http://127.0.0.1:9', region: 'us-east-1', accessKeyId: 'a', secretAccessKey: 'b' };
  await writeFile(config, JSON.stringify({ backends: [{ id: 'local', kind: 'fs', root }, gone] }));
  const run = await fails(t, ['--config', config, 'health', '--json'], 'BACKEND_UNAVAILABLE');
  t.like(json(run), { healthy: false, backends: [{ backendId: 'local', healthy: true }, { backendId: 'gone', healthy: false }] });
  t.regex(run.stderr, /^BACKEND_UNAVAILABLE: unhealthy: gone \(/);
});

test('a reader of stdout that goes away ends get quietly, with the status SIGPIPE gives cat', async (t) => {
  const { root, dir } = await store(t);
  const big = join(dir, 'big.bin');
  await writeFile(big, bytes(32 * MiB, 3));
  const address = (await ok(t, ['--root', root, 'put', big])).stdout.toString().trim();
  const child = spawn(process.execPath, [CLI, '--root', root, 'get', address], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk) => (stderr += chunk));
  child.stdout.once('data', () => child.stdout.destroy());
  const code = await new Promise((resolve) => child.on('close', resolve));
  t.is(code, 141);
  t.is(stderr, '');
});
