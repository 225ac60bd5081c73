// S3 rows (issue 4): our data plane with an s3 backend beside @aws-sdk/client-s3 and
// @aws-sdk/lib-storage doing the same hashing in Node, both against one versitygw started for the
// run on 127.0.0.1 (scripts/s3-server.mjs). Each side writes under its own prefix (ours/, peer/), so
// neither deduplicates against the other; what a sample stores is deleted after it, untimed.
//
//   ingest  ours: ingestStream, 1 MiB chunks from memory, sizeHint (multipart to a staging key,
//           copy to objects/blake3/aa/bb/<hex>, delete the staging key)
//           peer: lib-storage Upload of a stream that SHA-256 (node:crypto) and BLAKE3 (hash-wasm)
//           see on its way out, to a staging key; then CopyObject to objects/blake3/aa/bb/<hex>
//           and DeleteObject of the staging key
//   serve   ours: serveObject, whole object; peer: GetObjectCommand, Body streamed. Both read the
//           same stored objects, ingested by ours under read/ once for the run (like the fs reads).
//   4 KiB   one after another. ours: ingestStream / serveObject; peer: SHA-256 + BLAKE3 in memory
//           then one PutObject to the final key / GetObjectCommand.
//
// Served bytes are compared chunk by chunk, while they stream, with a copy of the bytes stored (a
// memcmp, on both sides alike): an exact check that costs far less than hashing them again inside
// the timing.

import { createHash, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Readable } from 'node:stream';
import { openDataPlane } from '@artifactstore/data-plane';
import { CopyObjectCommand, DeleteObjectCommand, GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { createBLAKE3 } from 'hash-wasm';
import { chunksOf, referenceDigester, single } from '../data.mjs';
import { startS3Server, VERSITYGW_VERSION } from '../../scripts/s3-server.mjs';
import { ingested, MiB, pool, timed } from './common.mjs';

// The SDK's first client warns that its releases after January 2027 will need Node >= 22; the
// version in package-lock.json runs on Node 20 (its engines say >= 20), so the warning is noise here.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const BUCKET = 'bench';
/** The S3 rows' sizes: the large object is at most this, the 4 KiB rows at most this many objects. */
export const S3_LIMITS = { objectBytes: 256 * MiB, objects: 500, quickObjectBytes: 32 * MiB, quickObjects: 100 };

export function s3Sizes({ objectBytes, smallObjects, quick }) {
  return {
    s3Bytes: Math.min(objectBytes, quick ? S3_LIMITS.quickObjectBytes : S3_LIMITS.objectBytes),
    s3Objects: Math.min(smallObjects, quick ? S3_LIMITS.quickObjects : S3_LIMITS.objects),
  };
}

const sdkVersion = (name) => {
  try {
    const require = createRequire(import.meta.url);
    return JSON.parse(readFileSync(require.resolve(`${name}/package.json`), 'utf8')).version;
  } catch {
    return 'unknown';
  }
};

const blake3Key = (prefix, hex) => `${prefix}objects/blake3/${hex.slice(0, 2)}/${hex.slice(2, 4)}/${hex}`;

/**
 * Starts versitygw, an S3Client and our data plane for the run, and stores the read objects (the
 * workload's current bytes). `reference(work)` gives the round's reference digests of the large S3
 * object; `close()` stops everything, and runs at most once.
 */
export async function startS3({ s3Bytes, s3Objects }, work) {
  const server = await startS3Server({ bucket: BUCKET });
  let client;
  let dp;
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    try {
      await dp?.close();
    } finally {
      client?.destroy();
      await server.stop();
    }
  };
  try {
    const credentials = { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey };
    // The SDK's defaults otherwise (checksums: CRC32 on every PutObject and UploadPart, which
    // versitygw accepts; Upload: 5 MiB parts, 4 at a time; keep-alive connections).
    client = new S3Client({ endpoint: server.endpoint, region: server.region, forcePathStyle: true, credentials });
    dp = await openDataPlane({ backends: [server.backend('s3', 'ours/'), server.backend('s3-read', 'read/')] });
    const health = await dp.backendHealth();
    if (!health.healthy) throw new Error(`the S3 backends are not healthy: ${JSON.stringify(health.backends)}`);
  } catch (error) {
    await close().catch(() => {});
    throw error;
  }
  let read;
  try {
    read = await storeReadObjects(dp, work.big.subarray(0, s3Bytes), work.smallObjects.slice(0, s3Objects));
  } catch (error) {
    await close().catch(() => {});
    throw new Error(`storing the S3 read objects: ${error.message}`, { cause: error });
  }

  const s3 = {
    server,
    client,
    dp,
    bytes: s3Bytes,
    objects: s3Objects,
    /** The read objects: { big: { address, key, bytes }, small: [{ address, key, bytes }] }. */
    read,
    close,
    info: {
      server: `versitygw ${VERSITYGW_VERSION} (posix backend), ${server.endpoint}, data in ${server.dataDir}`,
      sdk: `@aws-sdk/client-s3 ${sdkVersion('@aws-sdk/client-s3')}, @aws-sdk/lib-storage ${sdkVersion('@aws-sdk/lib-storage')}`,
    },
    /** The round's reference digests of the large S3 object (node:crypto, hash-wasm), computed untimed. */
    async reference(work) {
      return (await referenceDigester())(work.big.subarray(0, s3Bytes));
    },
  };
  return s3;
}

/**
 * Stores copies of `big` and of each of `small` under read/ with our ingest; checks their digests
 * against node:crypto and hash-wasm. The copies stay in memory for the serve rows' byte checks.
 */
async function storeReadObjects(dp, big, small) {
  const digest = await referenceDigester();
  const store = async (what, bytes, chunkBytes) => {
    const result = await dp.ingestStream(chunksOf(bytes, chunkBytes), { hints: { sizeHint: bytes.length, backendId: 's3-read' } });
    const want = digest(bytes);
    if (result.sha256Digest.hex !== want.sha256 || result.primaryDigest.hex !== want.blake3) {
      throw new Error(`${what}: ingest gave ${result.sha256Digest.hex} / ${result.primaryDigest.hex}, node:crypto / hash-wasm ${want.sha256} / ${want.blake3}`);
    }
    return { address: result.primaryDigest, key: result.receipt.locator, bytes };
  };
  const bigRead = await store('big', Buffer.from(big), MiB);
  const smallRead = [];
  for (let i = 0; i < small.length; i++) smallRead.push(await store(`small:${i}`, Buffer.from(small[i]), small[i].length));
  return { big: bigRead, small: smallRead };
}

/** Drains `body`, comparing every chunk with `expected` at its offset; returns the byte count. */
async function drainSame(what, body, expected) {
  let offset = 0;
  for await (const chunk of body) {
    if (offset + chunk.length > expected.length || !chunk.equals(expected.subarray(offset, offset + chunk.length))) {
      throw new Error(`${what}: the bytes served at offset ${offset} (${chunk.length}) are not the bytes stored`);
    }
    offset += chunk.length;
  }
  if (offset !== expected.length) throw new Error(`${what}: served ${offset} bytes, expected ${expected.length}`);
  return offset;
}

/** The SDK peer's ingest of a large object: hash on the way out, Upload to staging, copy, delete staging. */
async function sdkIngest(client, bytes) {
  const sha256 = createHash('sha256');
  const blake3 = await createBLAKE3();
  let size = 0;
  async function* hashing() {
    for await (const chunk of chunksOf(bytes, MiB)) {
      sha256.update(chunk);
      blake3.update(chunk);
      size += chunk.length;
      yield chunk;
    }
  }
  const staging = `peer/staging/${randomUUID()}`;
  await new Upload({ client, params: { Bucket: BUCKET, Key: staging, Body: Readable.from(hashing()) } }).done();
  const hex = blake3.digest('hex');
  const key = blake3Key('peer/', hex);
  await client.send(new CopyObjectCommand({ Bucket: BUCKET, Key: key, CopySource: `${BUCKET}/${staging}` }));
  await client.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: staging }));
  return { key, digest: { sha256: sha256.digest('hex'), blake3: hex, size } };
}

/** The SDK peer's ingest of a small object: both digests in memory, one PutObject to the final key. */
async function sdkPut(client, blake3, bytes) {
  blake3.init();
  const hex = blake3.update(bytes).digest('hex');
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  const key = blake3Key('peer/', hex);
  await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: bytes }));
  return { key, digest: { sha256, blake3: hex, size: bytes.length } };
}

const removeKeys = (client, keys) => pool(16, keys.length, (i) => client.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: keys[i] })));
const removeOurs = (dp, addresses) => pool(16, addresses.length, (i) => dp.deleteObject(addresses[i], { backendId: 's3' }));

export function s3Cases({ s3Bytes, s3Objects }) {
  const big = (ctx) => ctx.work.big.subarray(0, s3Bytes);
  const small = (ctx) => ctx.work.smallObjects.slice(0, s3Objects);
  return [
    {
      id: 'peer.s3.upload',
      label: 'AWS SDK: Upload + hashing in Node, CopyObject, DeleteObject',
      group: 'peer',
      unit: 'GB/s',
      amount: s3Bytes,
      async run(ctx) {
        const { seconds, cpuSeconds, value } = await timed(() => sdkIngest(ctx.s3.client, big(ctx)));
        await removeKeys(ctx.s3.client, [value.key]);
        return { seconds, cpuSeconds, digests: [{ object: 's3', ...value.digest }] };
      },
    },
    {
      id: 'ours.s3.ingest',
      label: 'ingestStream, 1 MiB chunks from memory, sizeHint',
      group: 'ours',
      unit: 'GB/s',
      amount: s3Bytes,
      peers: ['peer.s3.upload'],
      async run(ctx) {
        const bytes = big(ctx);
        const { dp } = ctx.s3;
        const { seconds, cpuSeconds, value } = await timed(() => dp.ingestStream(chunksOf(bytes, MiB), { hints: { sizeHint: bytes.length, backendId: 's3' } }));
        await removeOurs(dp, [value.primaryDigest]);
        return { seconds, cpuSeconds, digests: [ingested('s3', value)] };
      },
    },
    {
      id: 'peer.s3.get',
      label: 'AWS SDK: GetObjectCommand, Body streamed',
      group: 'peer',
      unit: 'GB/s',
      amount: s3Bytes,
      async run(ctx) {
        const { client, read } = ctx.s3;
        const { seconds, cpuSeconds } = await timed(async () => {
          const { Body } = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: read.big.key }));
          return drainSame('GetObject', Body, read.big.bytes);
        });
        return { seconds, cpuSeconds, digests: [] };
      },
    },
    {
      id: 'ours.s3.serve',
      label: 'serveObject, whole object',
      group: 'ours',
      unit: 'GB/s',
      amount: s3Bytes,
      peers: ['peer.s3.get'],
      async run(ctx) {
        const { dp, read } = ctx.s3;
        const { seconds, cpuSeconds } = await timed(async () => drainSame('serveObject', await dp.serveObject(read.big.address, { backendId: 's3-read' }), read.big.bytes));
        return { seconds, cpuSeconds, digests: [] };
      },
    },
    {
      id: 'peer.s3.small.put',
      label: `AWS SDK: hash in memory + PutObject, ${s3Objects} x 4 KiB one after another`,
      group: 'peer',
      unit: 'objects/s',
      amount: s3Objects,
      async run(ctx) {
        const objects = small(ctx);
        const { client } = ctx.s3;
        const blake3 = await createBLAKE3();
        const stored = new Array(objects.length);
        const { seconds, cpuSeconds } = await timed(async () => {
          for (let i = 0; i < objects.length; i++) stored[i] = await sdkPut(client, blake3, objects[i]);
        });
        await removeKeys(client, stored.map((s) => s.key));
        return { seconds, cpuSeconds, digests: stored.map((s, i) => ({ object: `small:${i}`, ...s.digest })) };
      },
    },
    {
      id: 'ours.s3.small.ingest',
      label: `ingestStream, ${s3Objects} x 4 KiB one after another`,
      group: 'ours',
      unit: 'objects/s',
      amount: s3Objects,
      peers: ['peer.s3.small.put'],
      async run(ctx) {
        const objects = small(ctx);
        const { dp } = ctx.s3;
        const results = new Array(objects.length);
        const { seconds, cpuSeconds } = await timed(async () => {
          for (let i = 0; i < objects.length; i++) {
            results[i] = await dp.ingestStream(single(objects[i]), { hints: { sizeHint: objects[i].length, backendId: 's3' } });
          }
        });
        await removeOurs(dp, results.map((r) => r.primaryDigest));
        return { seconds, cpuSeconds, digests: results.map((result, i) => ingested(`small:${i}`, result)) };
      },
    },
    {
      id: 'peer.s3.small.get',
      label: `AWS SDK: GetObjectCommand, ${s3Objects} x 4 KiB one after another`,
      group: 'peer',
      unit: 'objects/s',
      amount: s3Objects,
      async run(ctx) {
        const { client, read } = ctx.s3;
        const { seconds, cpuSeconds } = await timed(async () => {
          for (const object of read.small) {
            const { Body } = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: object.key }));
            await drainSame('GetObject 4 KiB', Body, object.bytes);
          }
        });
        return { seconds, cpuSeconds, digests: [] };
      },
    },
    {
      id: 'ours.s3.small.serve',
      label: `serveObject, ${s3Objects} x 4 KiB one after another`,
      group: 'ours',
      unit: 'objects/s',
      amount: s3Objects,
      peers: ['peer.s3.small.get'],
      async run(ctx) {
        const { dp, read } = ctx.s3;
        const { seconds, cpuSeconds } = await timed(async () => {
          for (const object of read.small) await drainSame('serveObject 4 KiB', await dp.serveObject(object.address, { backendId: 's3-read' }), object.bytes);
        });
        return { seconds, cpuSeconds, digests: [] };
      },
    },
  ];
}
