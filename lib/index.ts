export { openDataPlane } from './native/data-plane';
export { parseContentAddress, formatContentAddress } from './address';
export { DataPlaneError, ERROR_CODES } from './errors';
export type { DataPlaneErrorCode } from './errors';
export { encodeCbor, decodeCbor } from './cbor';
export type * from './types';
export { connectDataPlane, type ConnectOptions } from './client/connect';
