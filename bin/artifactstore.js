#!/usr/bin/env node
// `npx artifactstore ...`: the command line of the data plane (README, "The command line"); its
// code is lib/cli/, compiled into dist/cli/.
'use strict';

require('../dist/cli/main.js')
  .main(process.argv)
  .then((status) => {
    process.exitCode = status;
  });
