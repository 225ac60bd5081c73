// The metrics (README, "Metrics"): after known traffic, dp.metrics() on every plane and the
// daemon's --metrics-address endpoint give exact counts, read with a Prometheus text parser.

import test from 'ava';
import { execFile } from 'node:child_process';
import { connectDataPlane, DataPlaneError, openDataPlane } from '@artifactstore/data-plane';
import parsePrometheus from 'parse-prometheus-text-format';
import { conformanceTest } from './conformance.mjs';
import { DAEMON, startDaemon } from './fixtures/daemon.mjs';
import { tempDir } from './fixtures/support.mjs';
import { bytes, chunked, collect, KiB } from './helpers.mjs';

const ABSENT = `blake3:${'0'.repeat(64)}`;

/** The value of `name` with exactly these labels (besides none other), as a number. */
function value(families, name, labels = {}) {
  const family = families.find((f) => f.name === name);
  if (!family) throw new Error(`no metric ${name}`);
  const same = (m) => Object.keys(m.labels ?? {}).length === Object.keys(labels).length && Object.entries(labels).every(([k, v]) => m.labels[k] === v);
  const sample = family.metrics.find(same);
  if (!sample) throw new Error(`no ${name}${JSON.stringify(labels)} in ${JSON.stringify(family.metrics)}`);
  return Number(sample.value ?? sample.count);
}

/** Known traffic: 4 ingests (two refused), 2 serves, a stat that finds nothing, a verify, a findMissing. */
async function traffic(dp) {
  const small = await dp.ingestStream([bytes(4 * KiB, 1)]);
  await dp.ingestStream(chunked(bytes(300 * KiB, 2), 64 * KiB));
  await t_rejects(dp.ingestStream([bytes(10, 3)], { expect: { sizeBytes: 11 } }), 'INTEGRITY_MISMATCH');
  await t_rejects(dp.ingestStream([bytes(10, 4)], { hints: { backendId: 'nowhere' } }), 'UNKNOWN_BACKEND');
  await collect(await dp.serveObject(small.primaryDigest));
  await collect(await dp.serveObject(small.primaryDigest, { byteRange: [100, 200] }));
  await t_rejects(dp.statObject(ABSENT), 'NOT_FOUND');
  await dp.verifyObject(small.primaryDigest);
  await dp.findMissing([ABSENT]);
}

async function t_rejects(promise, code) {
  const error = await promise.then(() => undefined, (e) => e);
  if (!(error instanceof DataPlaneError) || error.code !== code) throw new Error(`expected ${code}, got ${error}`);
}

function checkTraffic(t, text, backendId) {
  const families = parsePrometheus(text);
  const calls = (operation, code) => value(families, 'artifactstore_calls_total', { operation, code });
  t.is(calls('ingest_stream', 'OK'), 2);
  t.is(calls('ingest_stream', 'INTEGRITY_MISMATCH'), 1);
  t.is(calls('ingest_stream', 'UNKNOWN_BACKEND'), 1, 'refused before any byte: counted, its bytes not');
  t.is(calls('serve_object', 'OK'), 2);
  t.is(calls('stat_object', 'NOT_FOUND'), 1);
  t.is(calls('stat_object', 'OK'), 0);
  t.is(calls('verify_object', 'OK'), 1);
  t.is(calls('find_missing', 'OK'), 1);
  t.is(calls('delete_object', 'OK'), 0);
  // parse-prometheus-text-format 1.1 drops the labels of a histogram's series: read its count's line.
  t.regex(text, /^artifactstore_call_duration_seconds_count\{operation="ingest_stream"\} 4$/m, 'one duration per call');
  t.regex(text, /^artifactstore_call_duration_seconds_bucket\{operation="serve_object",le="\+Inf"\} 2$/m);
  t.is(value(families, 'artifactstore_calls_in_flight', { operation: 'serve_object' }), 0);
  t.is(value(families, 'artifactstore_ingested_bytes_total', { backend: backendId }), 4 * KiB + 300 * KiB + 10);
  t.is(value(families, 'artifactstore_served_bytes_total', { backend: backendId }), 4 * KiB + 100);
  t.is(families.find((f) => f.name === 'artifactstore_call_duration_seconds').type, 'HISTOGRAM');
  const up = families.find((f) => f.name === 'artifactstore_backend_up').metrics;
  t.deepEqual(up.map((m) => [m.labels.backend, m.value]), [[backendId, '1']]);
  t.false(text.includes('operation="metrics"'), 'reading the figures is no call');
  return families;
}

conformanceTest('metrics() counts every call by operation and outcome, and the bytes in and out', async (t, { dp, backendId }) => {
  await traffic(dp);
  checkTraffic(t, await dp.metrics(), backendId);
});

test('the daemon serves the same figures on --metrics-address, with its connections', async (t) => {
  const root = await tempDir(t, 'dp-metrics-');
  const daemon = await startDaemon({ backends: [{ id: 'local', kind: 'fs', root, durable: false }] }, {}, { args: ['--metrics-address', '127.0.0.1:0'] });
  t.teardown(() => daemon.stop());
  t.regex(daemon.metricsUrl, /^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
  const dp = await connectDataPlane({ socketPath: daemon.socketPath });
  t.teardown(() => dp.close());
  await traffic(dp);
  const response = await fetch(daemon.metricsUrl);
  t.is(response.status, 200);
  t.regex(response.headers.get('content-type'), /^text\/plain; version=0\.0\.4/);
  const families = checkTraffic(t, await response.text(), 'local');
  t.is(value(families, 'artifactstore_daemon_connections_in_flight'), 1, "the client's one connection");
  t.is(value(families, 'artifactstore_daemon_connections_total'), 1);
  const viaClient = parsePrometheus(await dp.metrics());
  t.is(value(viaClient, 'artifactstore_calls_total', { operation: 'ingest_stream', code: 'OK' }), 2, "dp.metrics() on a client: the daemon's");
  t.is((await fetch(new URL('/other', daemon.metricsUrl))).status, 404);
});

test('--metrics-address takes a bare port on the loopback address, and refuses what is not an address', async (t) => {
  const root = await tempDir(t, 'dp-metrics-');
  const config = { backends: [{ id: 'local', kind: 'fs', root }] };
  const refused = await new Promise((resolve) =>
    execFile(DAEMON, ['--config', '/nonexistent.json', '--metrics-address', 'everywhere'], (error, stdout, stderr) => resolve({ error, stderr })),
  );
  t.not(refused.error?.code ?? 0, 0);
  t.regex(refused.stderr, /--metrics-address "everywhere" is not HOST:PORT/);
  const daemon = await startDaemon(config, {}, { args: ['--metrics-address', '0'] });
  t.teardown(() => daemon.stop());
  t.regex(daemon.metricsUrl, /^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
});

test('a backend whose probe fails is down in the figures, the others up', async (t) => {
  const root = await tempDir(t, 'dp-metrics-');
  const gone = { id: 'gone', kind: 's3', bucket: 'b', endpoint: 'http://127.0.0.1:9', region: 'us-east-1', accessKeyId: 'a', secretAccessKey: 'b' };
  const dp = await openDataPlane({ backends: [{ id: 'local', kind: 'fs', root }, gone] });
  t.teardown(() => dp.close());
  const families = parsePrometheus(await dp.metrics());
  t.is(value(families, 'artifactstore_backend_up', { backend: 'local', kind: 'fs' }), 1);
  t.is(value(families, 'artifactstore_backend_up', { backend: 'gone', kind: 's3' }), 0);
  t.true(value(families, 'artifactstore_backend_free_bytes', { backend: 'local' }) > 0);
  t.is(value(families, 'artifactstore_calls_total', { operation: 'backend_health', code: 'OK' }), 0, 'the probe is not a call');
});
