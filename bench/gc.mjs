// A full garbage collection on demand (the flag is set at run time, so `node bench/run.mjs` needs
// no --expose-gc): the benchmark collects before each sample so no sample pays for another's garbage.

import v8 from 'node:v8';
import vm from 'node:vm';

v8.setFlagsFromString('--expose-gc');
export const gc = vm.runInNewContext('gc');
