// What the portable packages promise, shared by the scripts that build and pack them and by the
// test that checks the packed tarballs (__test__/portable.test.mjs).

import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The newest glibc symbol version a shipped binary may need: RHEL/CentOS 7's, napi-rs's usual floor. */
export const GLIBC_BASELINE = '2.17';

/**
 * The shared libraries a shipped binary may load: glibc's own and libgcc_s, present on every
 * glibc system. The dynamic loader is on the list because a shared object using thread-local
 * storage imports __tls_get_addr from it (GLIBC_2.3), which a Rust cdylib cannot avoid.
 */
export const ALLOWED_LIBRARIES = [
  'libc.so.6',
  'libm.so.6',
  'libdl.so.2',
  'libpthread.so.0',
  'libgcc_s.so.1',
  'ld-linux-x86-64.so.2',
  'ld-linux-aarch64.so.1',
];

const root = fileURLToPath(new URL('..', import.meta.url));

/** Where `npm run pack:portable` leaves the tarballs, with packed.json naming them. */
export const PACK_DIR = join(root, 'target', 'portable', 'packed');
