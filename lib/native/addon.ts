// The one place that loads the generated napi-rs loader (native/binding.js), and only when first
// asked: the package imports, and everything but openDataPlane works, where the addon cannot load.

import { DataPlaneError } from '../errors';

type Binding = typeof import('../../native/binding');
export type { NativeDataPlane, NativeIngest, NativeObjectPage, NativeObjectReader, ObjectInfoFields } from '../../native/binding';
// A const enum: its values are inlined where used, so this re-export loads nothing.
export { WriteOutcome } from '../../native/binding';

const PACKAGE = '@artifactstore/data-plane';

let binding: Binding | undefined;

/** The addon, loaded on the first call; BACKEND_UNAVAILABLE, saying what to do, when it cannot load. */
export function addon(): Binding {
  binding ??= load();
  return binding;
}

function load(): Binding {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require('../../native/binding.js') as Binding;
  } catch (error) {
    const { platform, target } = thisPlatform();
    throw new DataPlaneError(
      'BACKEND_UNAVAILABLE',
      `openDataPlane: the native addon of ${PACKAGE} could not be loaded on ${platform}. ` +
        `Install the platform package ${PACKAGE}-${target} (npm installs it with the package where one is published), ` +
        'build the addon from source with Rust (`npm run build` in a clone of the repository), ' +
        'or use connectDataPlane to reach a data-plane daemon, which needs no native code here.',
      { cause: error },
    );
  }
}

/** This process's platform as people name it ("linux-x64, glibc 2.41") and as napi-rs names its packages. */
function thisPlatform(): { platform: string; target: string } {
  const { platform, arch } = process;
  if (platform === 'linux') {
    const glibc = glibcVersion();
    return {
      platform: `${platform}-${arch}, ${glibc ? `glibc ${glibc}` : 'musl libc'}`,
      target: `${platform}-${arch}-${glibc ? 'gnu' : 'musl'}`,
    };
  }
  return { platform: `${platform}-${arch}`, target: platform === 'win32' ? `${platform}-${arch}-msvc` : `${platform}-${arch}` };
}

/** The glibc this process runs on, from Node's diagnostic report; undefined on musl. */
function glibcVersion(): string | undefined {
  const report = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined;
  return report?.header?.glibcVersionRuntime;
}
