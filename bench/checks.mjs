// Correctness, every round: each digest a contender reports must match an independent one. The
// large object's references are the SHA-256 ceiling's digest (node:crypto) and the plain
// pipeline's BLAKE3 (hash-wasm) from the same round; the quarters' and the 4 KiB objects' come from
// `Workload.references()` (node:crypto and hash-wasm, computed outside any timing), and the S3 rows'
// large object's from the S3 cases' `reference()` (the same, also untimed).

/** Checks one round's reports; returns how many digests were compared, throws on any mismatch. */
export function checkRepetition(reported, references, sizeBytes) {
  const from = (id) => reported.find((r) => r.id === id)?.digests.find((d) => d.object === 'big');
  const big = { sha256: from('ceiling.sha256')?.sha256, blake3: from('peer.plain')?.blake3, size: sizeBytes };
  if (!big.sha256 || !big.blake3) throw new Error('checks: the SHA-256 ceiling and the plain pipeline must both run every round');
  const expected = (object) => {
    if (object === 'big') return big;
    if (object === 's3' && references.s3) return references.s3;
    const [kind, index] = object.split(':');
    const table = kind === 'quarter' ? references.quarters : kind === 'small' ? references.small : undefined;
    const ref = table?.[Number(index)];
    if (!ref) throw new Error(`checks: no reference for object ${object}`);
    return ref;
  };
  const failures = [];
  let compared = 0;
  for (const { id, digests } of reported) {
    for (const digest of digests) {
      const want = expected(digest.object);
      for (const field of ['sha256', 'blake3', 'size']) {
        if (digest[field] === undefined) continue;
        compared += field === 'size' ? 0 : 1;
        if (digest[field] !== want[field]) failures.push(`${id}: ${digest.object} ${field} ${digest[field]}, expected ${want[field]}`);
      }
    }
  }
  if (failures.length) {
    throw new Error(`${failures.length} digest mismatches:\n  ${failures.slice(0, 10).join('\n  ')}${failures.length > 10 ? '\n  ...' : ''}`);
  }
  return compared;
}
