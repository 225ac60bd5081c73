// A real S3 server (versitygw, posix backend) for tests and benchmarks.
//
//   node scripts/s3-server.mjs install   build versitygw into <repo>/.cache/bin
//   node scripts/s3-server.mjs start     start a server, print its config as one JSON line
//
// Library: ensureVersitygw(), startS3Server({ bucket }), s3Request(config, method, path, opts).
// No npm dependencies; Node 20 built-ins only. Needs Go (reaches the Go module proxy) to install.
import { spawn, execFile } from 'node:child_process';
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { existsSync, rmSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

export const VERSITYGW_MODULE = 'github.com/versity/versitygw';
export const VERSITYGW_VERSION = 'v1.7.0';
const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BIN_DIR = path.join(REPO_ROOT, '.cache', 'bin');
export const VERSITYGW_BIN = path.join(BIN_DIR, 'versitygw');

const log = (msg) => process.stderr.write(`[s3-server] ${msg}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const tail = (s, n = 4000) => (s.length > n ? '…' + s.slice(-n) : s);

/** Is the binary at `bin` a working versitygw built from the pinned module version? */
async function isPinnedBuild(bin) {
  if (!existsSync(bin)) return false;
  try {
    await execFileP(bin, ['--version']);
    const { stdout } = await execFileP('go', ['version', '-m', bin]);
    return stdout.split('\n').some((l) => /^\s*mod\s/.test(l) && l.includes(`${VERSITYGW_MODULE}\t${VERSITYGW_VERSION}`));
  } catch {
    return false;
  }
}

/** Installs versitygw (pinned) into <repo>/.cache/bin unless already there; returns the binary path. */
export async function ensureVersitygw() {
  if (process.env.VERSITYGW_BIN) return process.env.VERSITYGW_BIN;
  if (await isPinnedBuild(VERSITYGW_BIN)) return VERSITYGW_BIN;
  await mkdir(BIN_DIR, { recursive: true });
  const pkg = `${VERSITYGW_MODULE}/cmd/versitygw@${VERSITYGW_VERSION}`;
  log(`go install ${pkg} into ${BIN_DIR} (first build takes a few minutes)…`);
  const started = Date.now();
  let stderr = '';
  const code = await new Promise((resolve) => {
    const child = spawn('go', ['install', '-v', pkg], {
      env: { ...process.env, GOBIN: BIN_DIR },
      stdio: ['ignore', 'inherit', 'pipe'],
    });
    child.stderr.on('data', (d) => {
      stderr = tail(stderr + d, 16000);
      process.stderr.write(d);
    });
    child.on('error', (err) => { stderr += `\n${err.message}`; resolve(-1); });
    child.on('exit', (c) => resolve(c));
  });
  if (code !== 0 || !(await isPinnedBuild(VERSITYGW_BIN))) {
    throw new Error(`installing versitygw failed: \`go install ${pkg}\` (GOBIN=${BIN_DIR}) ` +
      `exited with ${code}${code === 0 ? ' but the binary does not run or is not the pinned version' : ''}.\n` +
      `go stderr (tail):\n${tail(stderr)}`);
  }
  log(`installed versitygw ${VERSITYGW_VERSION} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return VERSITYGW_BIN;
}

async function freePort() {
  const srv = net.createServer();
  await new Promise((res, rej) => srv.once('error', rej).listen(0, '127.0.0.1', res));
  const { port } = srv.address();
  await new Promise((res) => srv.close(res));
  return port;
}

function canConnect(port) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

// ---- SigV4 (S3 flavour: path not double-encoded, payload hash in x-amz-content-sha256) ----
const sha256 = (data) => createHash('sha256').update(data).digest('hex');
const hmac = (key, data) => createHmac('sha256', key).update(data).digest();
const enc = (s) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());

/**
 * Signs and sends an S3 request with fetch. `path` is raw ('/bucket/some key'); each segment is encoded.
 * opts: { query: {k: v}, headers: {k: v}, body: Buffer|string, unsignedPayload: bool, date: Date }.
 * Every given header is signed. Returns the fetch Response.
 */
export async function s3Request(cfg, method, rawPath, opts = {}) {
  const { query = {}, body, unsignedPayload = false, date = new Date() } = opts;
  const url = new URL(cfg.endpoint);
  const canonicalUri = rawPath.split('/').map(enc).join('/');
  const canonicalQuery = Object.entries(query)
    .map(([k, v]) => [enc(k), enc(String(v ?? ''))])
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`).join('&');
  const amzDate = date.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
  const day = amzDate.slice(0, 8);
  const payloadHash = unsignedPayload ? 'UNSIGNED-PAYLOAD' : sha256(body ?? '');
  const headers = { host: url.host, 'x-amz-date': amzDate, 'x-amz-content-sha256': payloadHash };
  for (const [k, v] of Object.entries(opts.headers ?? {})) headers[k.toLowerCase()] = String(v);
  const names = Object.keys(headers).sort();
  const signedHeaders = names.join(';');
  const canonicalHeaders = names.map((k) => `${k}:${headers[k].trim().replace(/\s+/g, ' ')}\n`).join('');
  const canonicalRequest = [method, canonicalUri, canonicalQuery, canonicalHeaders, signedHeaders, payloadHash].join('\n');
  const scope = `${day}/${cfg.region}/s3/aws4_request`;
  const stringToSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256(canonicalRequest)].join('\n');
  let key = hmac('AWS4' + cfg.secretAccessKey, day);
  for (const part of [cfg.region, 's3', 'aws4_request']) key = hmac(key, part);
  const signature = createHmac('sha256', key).update(stringToSign).digest('hex');
  headers.authorization = `AWS4-HMAC-SHA256 Credential=${cfg.accessKeyId}/${scope}, ` +
    `SignedHeaders=${signedHeaders}, Signature=${signature}`;
  delete headers.host; // fetch sets it (same value)
  const target = `${url.origin}${canonicalUri}${canonicalQuery ? '?' + canonicalQuery : ''}`;
  return fetch(target, { method, headers, body });
}

/** Starts versitygw (posix backend) on a free 127.0.0.1 port with a fresh data dir and creates `bucket`. */
export async function startS3Server({ bucket = 'artifacts' } = {}) {
  const bin = await ensureVersitygw();
  const port = await freePort();
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 's3-server-'));
  const rootDir = path.join(dataDir, 'root'); // buckets live here
  const sidecarDir = path.join(dataDir, 'sidecar'); // metadata, only if the fs lacks user xattrs
  await mkdir(rootDir);
  const accessKeyId = `test-access-${randomBytes(8).toString('hex')}`;
  const secretAccessKey = `test-secret-${randomBytes(16).toString('hex')}`;
  let useSidecar = false;
  let child = null;
  let output = '';

  const args = () => ['--port', `127.0.0.1:${port}`, '--quiet', '--keep-alive',
    'posix', ...(useSidecar ? ['--sidecar', sidecarDir] : []), rootDir];

  const killNow = () => { try { child?.kill('SIGKILL'); } catch {} };
  const onExit = () => { killNow(); rmSync(dataDir, { recursive: true, force: true }); };
  process.on('exit', onExit);

  async function start() {
    if (child && child.exitCode === null && child.signalCode === null) throw new Error('S3 server already running');
    output = '';
    const proc = spawn(bin, args(), {
      env: { ...process.env, ROOT_ACCESS_KEY: accessKeyId, ROOT_SECRET_KEY: secretAccessKey },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child = proc;
    // 'close' (not 'exit') so that all of its output has been read
    const exited = new Promise((resolve) => {
      proc.once('close', (code, sig) => resolve(`exit code ${code}, signal ${sig}`));
      proc.once('error', (err) => resolve(err.message));
    });
    for (const s of [proc.stdout, proc.stderr]) {
      s.on('data', (d) => { output = tail(output + d, 16000); });
      s.unref(); // a forgotten server must not keep the parent alive; 'exit' handler kills it
    }
    proc.unref();
    const deadline = Date.now() + 20000;
    for (;;) {
      const early = await Promise.race([exited, sleep(0).then(() => null)]);
      if (early) {
        if (!useSidecar && /xattr/i.test(output)) { // versitygw's own xattr probe failed: use a sidecar
          useSidecar = true;
          await mkdir(sidecarDir, { recursive: true });
          return start();
        }
        throw new Error(`versitygw exited early (${early}): ${bin} ${args().join(' ')}\n${tail(output)}`);
      }
      if (await canConnect(port)) return;
      if (Date.now() > deadline) {
        killNow();
        throw new Error(`versitygw did not answer on 127.0.0.1:${port} within 20 s\n${tail(output)}`);
      }
      await sleep(50);
    }
  }

  async function terminate(signal = 'SIGTERM', graceMs = 3000) {
    const proc = child;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const gone = new Promise((r) => proc.once('exit', r));
    proc.ref(); // keep the event loop alive until it has exited
    proc.kill(signal);
    if (signal !== 'SIGKILL' && !(await Promise.race([gone.then(() => true), sleep(graceMs)]))) proc.kill('SIGKILL');
    await gone;
  }

  try {
    await start();
  } catch (err) {
    process.off('exit', onExit);
    await rm(dataDir, { recursive: true, force: true });
    throw err;
  }
  const config = {
    endpoint: `http://127.0.0.1:${port}`, region: 'us-east-1', bucket, accessKeyId, secretAccessKey,
    dataDir, rootDir, sidecar: useSidecar ? sidecarDir : null,
  };
  const server = {
    ...config,
    get pid() { return child?.pid; },
    /** Server output (stdout+stderr tail), for diagnostics. */
    get output() { return output; },
    /** A data plane's backend options for this server's bucket under `prefix` (fields overridable). */
    backend: (id, prefix, overrides = {}) => ({
      id, kind: 's3', bucket, prefix, endpoint: config.endpoint, region: config.region, accessKeyId, secretAccessKey, ...overrides,
    }),
    /** Signed request against this server, see s3Request. */
    request: (method, p, opts) => s3Request(config, method, p, opts),
    /** SIGKILL the server; the data dir stays, start() brings it back on the same port. */
    kill: () => terminate('SIGKILL'),
    start,
    /** Stop (SIGKILL by default, or e.g. 'SIGTERM') and start again on the same port and data dir. */
    restart: async ({ signal = 'SIGKILL' } = {}) => { await terminate(signal); await start(); },
    /** Stop the server and remove its data dir. */
    stop: async () => {
      await terminate('SIGTERM');
      process.off('exit', onExit);
      await rm(dataDir, { recursive: true, force: true });
    },
  };
  try {
    const res = await server.request('PUT', `/${bucket}`);
    if (!res.ok) throw new Error(`creating bucket ${bucket} failed: HTTP ${res.status} ${await res.text()}`);
  } catch (err) {
    await server.stop();
    throw err;
  }
  return server;
}

// ---- CLI ----
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const cmd = process.argv[2];
  try {
    if (cmd === 'install') {
      log(`versitygw ready: ${await ensureVersitygw()}`);
    } else if (cmd === 'start') {
      const server = await startS3Server({ bucket: process.argv[3] ?? 'artifacts' });
      const { endpoint, region, bucket, accessKeyId, secretAccessKey, dataDir, pid } = server;
      process.stdout.write(JSON.stringify({ endpoint, region, bucket, accessKeyId, secretAccessKey, dataDir, pid }) + '\n');
      const keepAlive = setInterval(() => {}, 1 << 30);
      const shutdown = async () => { clearInterval(keepAlive); await server.stop(); process.exit(0); };
      process.once('SIGINT', shutdown);
      process.once('SIGTERM', shutdown);
    } else {
      process.stderr.write('usage: node scripts/s3-server.mjs install | start [bucket]\n');
      process.exit(2);
    }
  } catch (err) {
    process.stderr.write(`${err.stack ?? err}\n`);
    process.exit(1);
  }
}
