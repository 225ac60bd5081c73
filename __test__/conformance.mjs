// The conformance suite's machinery. A SPEC rule is declared once, with `conformanceTest` (over a
// fresh store) or `openerTest` (the test builds its own configurations), and runs once per way of
// opening a data plane (OPENERS) and, for conformanceTest, per backend kind: its title ends in
// `[<opener>, <kind>]` or `[<opener>]`. Such tests use only the public API of the plane they are
// given, and the store's view from outside (stores.mjs).

import test from 'ava';
import { connectDataPlane, openDataPlane } from '@artifactstore/data-plane';
import { startDaemon } from './fixtures/daemon.mjs';
import { descriptorsUnder } from './fixtures/support.mjs';
import { BACKEND_KINDS, newStore } from './stores.mjs';

/**
 * The ways of opening a data plane. An opener is { name, open(config) }, where open resolves
 * { dp, pid, stop }:
 *   dp    an open data plane over `config` (a configuration it cannot honour rejects as
 *         openDataPlane does: a DataPlaneError naming the field);
 *   pid   the process whose descriptors hold the store's files (tests that look for files left
 *         open read /proc/<pid>/fd);
 *   stop  ends what open set up (a process, a socket); called once dp is closed.
 * The daemon opener writes `config` to a config file, starts artifactstore-daemon on a socket of
 * its own (fixtures/daemon.mjs: a configuration it cannot honour rejects as openDataPlane does),
 * and connects to it; stop() is SIGTERM, and waits for the daemon's exit.
 */
export const OPENERS = [
  {
    name: 'in-process',
    open: async (config) => ({ dp: await openDataPlane(config), pid: process.pid, stop: async () => {} }),
  },
  {
    name: 'daemon',
    async open(config) {
      const daemon = await startDaemon(config);
      try {
        return { dp: await connectDataPlane({ socketPath: daemon.socketPath }), pid: daemon.pid, stop: () => daemon.stop() };
      } catch (error) {
        await daemon.kill();
        throw error;
      }
    },
  },
];

/**
 * What a test gets to open planes through `opener`:
 *   opener               its name;
 *   open(config)         resolves a plane, closed (and the opener's set-up stopped) when `t` ends;
 *   openFilesUnder(dir, dp)  what the process behind plane `dp` holds open below `dir`.
 */
function planes(t, opener) {
  const pids = new Map();
  return {
    opener: opener.name,
    async open(config) {
      const { dp, pid, stop } = await opener.open(config);
      pids.set(dp, pid);
      t.teardown(async () => {
        await dp.close();
        await stop();
      });
      return dp;
    },
    openFilesUnder(dir, dp) {
      if (!pids.has(dp)) throw new Error('openFilesUnder: not a plane this test opened');
      return descriptorsUnder(dir, pids.get(dp)).map(({ target }) => target);
    },
  };
}

/**
 * Declares a SPEC rule that runs once per opener and backend kind (`kinds`, default both) with
 * `dp` open over a fresh store. The body gets (t, context): the store's fields (stores.mjs), dp,
 * backendId, config, open, opener, openFilesUnder(dir) (of dp's process), and newStore(options)
 * for another fresh store of the same kind. `storeOptions` go to the store factory.
 */
export function conformanceTest(title, body, { kinds = BACKEND_KINDS, serial = false, ...storeOptions } = {}) {
  for (const opener of OPENERS) {
    for (const kind of kinds) {
      (serial ? test.serial : test)(`${title} [${opener.name}, ${kind}]`, async (t) => {
        const store = await newStore(t, kind, storeOptions);
        const context = planes(t, opener);
        const config = { backends: [store.backend] };
        const dp = await context.open(config);
        await body(t, {
          ...store,
          ...context,
          dp,
          backendId: store.backend.id,
          config,
          openFilesUnder: (dir) => context.openFilesUnder(dir, dp),
          newStore: (options) => newStore(t, kind, options),
        });
      });
    }
  }
}

/** Declares a SPEC rule that runs once per opener; the body gets (t, { opener, open, openFilesUnder }). */
export function openerTest(title, body) {
  for (const opener of OPENERS) {
    test(`${title} [${opener.name}]`, (t) => body(t, planes(t, opener)));
  }
}
