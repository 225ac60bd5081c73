// The one place that loads the generated napi-rs loader; its types are generated too.
// eslint-disable-next-line @typescript-eslint/no-require-imports
import native = require('../native/binding.js');

export = native;
