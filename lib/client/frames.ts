// The daemon protocol's frames (PROTOCOL.md, "Frames"): the 12-byte header, and a parser that
// turns the socket's reads into frames without copying DATA payloads.

export const HEADER_BYTES = 12;

export const FrameType = {
  HELLO: 1,
  REQUEST: 2,
  RESPONSE: 3,
  DATA: 4,
  ERROR: 5,
  CANCEL: 6,
  WINDOW: 7,
  GOAWAY: 8,
  PING: 9,
  PONG: 10,
} as const;
export type FrameType = (typeof FrameType)[keyof typeof FrameType];

/** DATA: the last DATA frame of this direction of the call. */
export const END = 0x01;
/** REQUEST: the client sends DATA for this call. */
export const OPEN = 0x02;
/** RESPONSE: the server sends DATA after it. */
export const MORE = 0x02;

/** The flags each type may carry when it comes from the server; anything else is a violation. */
const SERVER_FLAGS: Partial<Record<number, number>> = {
  [FrameType.HELLO]: 0,
  [FrameType.RESPONSE]: MORE,
  [FrameType.DATA]: END,
  [FrameType.ERROR]: 0,
  [FrameType.WINDOW]: 0,
  [FrameType.GOAWAY]: 0,
  [FrameType.PING]: 0,
  [FrameType.PONG]: 0,
};

/** Before HELLO both sides limit frames to this; after it, to the server's max_frame_bytes. */
export const HANDSHAKE_MAX_FRAME_BYTES = 64 * 1024;

export function frameHeader(type: FrameType, flags: number, streamId: number, length: number): Buffer {
  const header = Buffer.allocUnsafe(HEADER_BYTES);
  writeHeader(header, type, flags, streamId, length);
  return header;
}

/** A whole frame in one buffer: for control frames, whose payloads are small. */
export function controlFrame(type: FrameType, flags: number, streamId: number, payload?: Uint8Array): Buffer {
  const length = payload?.length ?? 0;
  const frame = Buffer.allocUnsafe(HEADER_BYTES + length);
  writeHeader(frame, type, flags, streamId, length);
  if (payload) frame.set(payload, HEADER_BYTES);
  return frame;
}

function writeHeader(into: Buffer, type: FrameType, flags: number, streamId: number, length: number): void {
  into.writeUInt32BE(length, 0);
  into.writeUInt32BE(streamId, 4);
  into[8] = type;
  into[9] = flags;
  into.writeUInt16BE(0, 10);
}

export interface FrameSink {
  /** A control frame (any type but DATA), its payload whole. */
  control(type: FrameType, flags: number, streamId: number, payload: Buffer): void;
  /**
   * A piece of a DATA frame's payload, as a view into the socket's read (never copied). `last`:
   * this piece completes a frame flagged END (an empty END frame gives one empty piece).
   */
  data(streamId: number, piece: Buffer, last: boolean): void;
  /** The peer broke the protocol; nothing more is parsed. */
  violation(message: string): void;
}

/**
 * Feeds socket reads in, calls the sink per frame. Only a header split across reads, or a control
 * payload split across reads, is copied; DATA payloads are handed on as subarrays of the reads.
 */
export class FrameParser {
  /** Raised to the server's max_frame_bytes once HELLO is read. */
  maxFrameBytes = HANDSHAKE_MAX_FRAME_BYTES;
  private readonly header = Buffer.alloc(HEADER_BYTES);
  private headerFill = 0;
  /** The frame whose payload is being read, if any. */
  private current: { type: FrameType; flags: number; streamId: number; remaining: number; pieces: Buffer[] } | undefined;
  private broken = false;

  constructor(private readonly sink: FrameSink) {}

  push(chunk: Buffer): void {
    let offset = 0;
    while (offset < chunk.length && !this.broken) {
      offset = this.current ? this.payload(chunk, offset) : this.headerBytes(chunk, offset);
    }
  }

  /** Whether a frame has been started and not finished (the connection ended mid-frame). */
  get midFrame(): boolean {
    return this.headerFill > 0 || this.current !== undefined;
  }

  private headerBytes(chunk: Buffer, offset: number): number {
    const take = Math.min(HEADER_BYTES - this.headerFill, chunk.length - offset);
    chunk.copy(this.header, this.headerFill, offset, offset + take);
    this.headerFill += take;
    if (this.headerFill === HEADER_BYTES) {
      this.headerFill = 0;
      this.startFrame();
    }
    return offset + take;
  }

  private startFrame(): void {
    const length = this.header.readUInt32BE(0);
    const streamId = this.header.readUInt32BE(4);
    const type = this.header[8] as FrameType;
    const flags = this.header[9];
    const allowed = SERVER_FLAGS[type];
    if (allowed === undefined) return this.fail(`a frame of unknown type ${type} on stream ${streamId}`);
    if ((flags & ~allowed) !== 0) return this.fail(`a frame of type ${type} with unknown flags 0x${flags.toString(16)}`);
    if (this.header.readUInt16BE(10) !== 0) return this.fail(`a frame of type ${type} with nonzero reserved bits`);
    if (length > this.maxFrameBytes) {
      return this.fail(`a frame of ${length} bytes, above the limit of ${this.maxFrameBytes}`);
    }
    this.current = { type, flags, streamId, remaining: length, pieces: [] };
    if (length === 0) this.finishFrame();
  }

  private payload(chunk: Buffer, offset: number): number {
    const frame = this.current!;
    const take = Math.min(frame.remaining, chunk.length - offset);
    const piece = chunk.subarray(offset, offset + take);
    frame.remaining -= take;
    if (frame.type === FrameType.DATA) {
      if (frame.remaining === 0) this.finishFrame(piece);
      else this.sink.data(frame.streamId, piece, false);
    } else {
      frame.pieces.push(piece);
      if (frame.remaining === 0) this.finishFrame();
    }
    return offset + take;
  }

  private finishFrame(lastPiece: Buffer = Buffer.alloc(0)): void {
    const { type, flags, streamId, pieces } = this.current!;
    this.current = undefined;
    if (type === FrameType.DATA) {
      this.sink.data(streamId, lastPiece, (flags & END) !== 0);
    } else {
      const payload = pieces.length === 1 ? pieces[0] : Buffer.concat(pieces);
      this.sink.control(type, flags, streamId, payload);
    }
  }

  private fail(message: string): void {
    this.broken = true;
    this.sink.violation(message);
  }
}
