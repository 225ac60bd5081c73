// One connection to the daemon: the handshake, then many calls at once, each on its own stream.
// It routes the server's frames to the calls, writes theirs, and ends every call under way when
// the connection ends (connection lost, GOAWAY, or the server breaking the protocol).

import type { Socket } from 'node:net';

import { decodeCbor, encodeCbor } from '../cbor';
import { DataPlaneError, ERROR_CODES, type DataPlaneErrorCode } from '../errors';
import { isRecord } from '../options';
import { SocketReads } from './reads';
import { controlFrame, frameHeader, FrameParser, FrameType, HANDSHAKE_MAX_FRAME_BYTES, MORE, END, type FrameSink } from './frames';

const MAGIC = 'artifactstore-data-plane';
export const PROTOCOL_VERSION = 1;
const HANDSHAKE_TIMEOUT_MS = 5000;
/** Stream ids are u32 and never reused: past this, the next call takes a new connection. */
const LAST_STREAM_ID = 0xffff_ffff;

/** What the server's HELLO says. */
export interface ServerHello {
  version: number;
  maxFrameBytes: number;
  windowBytes: number;
  maxCalls: number;
  bootId: string;
}

/** What a call hears from its stream. After `fail`, or a last frame, it hears nothing more. */
export interface CallEvents {
  response(value: unknown, more: boolean): void;
  data(piece: Buffer, last: boolean): void;
  window(credit: number): void;
  /** The server's ERROR for this call. */
  error(error: DataPlaneError): void;
  fail(error: DataPlaneError): void;
}

/** The ERROR payload as a DataPlaneError with the server's code and message, verbatim. */
function serverError(payload: Buffer): DataPlaneError {
  const value = decodeCbor(payload);
  if (!isRecord(value) || typeof value.code !== 'string' || typeof value.message !== 'string') {
    throw new Error('an ERROR frame without a text code and message');
  }
  const code = (ERROR_CODES as readonly string[]).includes(value.code) ? (value.code as DataPlaneErrorCode) : 'IO';
  return new DataPlaneError(code, value.message);
}

function serverHello(value: unknown): ServerHello {
  const fields = ['version', 'maxFrameBytes', 'windowBytes', 'maxCalls'] as const;
  if (!isRecord(value) || fields.some((f) => !Number.isSafeInteger(value[f]) || (value[f] as number) <= 0) || typeof value.bootId !== 'string') {
    throw new Error(`a HELLO without ${fields.join(', ')} and boot_id`);
  }
  return value as unknown as ServerHello;
}

export class Connection implements FrameSink {
  /** Set once the handshake is done. */
  hello!: ServerHello;
  private readonly parser = new FrameParser(this);
  private readonly calls = new Map<number, CallEvents>();
  private nextStreamId = 1;
  /** Why the connection is over (lost, refused, violation): nothing more is sent or heard. */
  private ended: DataPlaneError | undefined;
  /** The server said GOAWAY: the calls it took may finish, no call may start. */
  private goingAway: DataPlaneError | undefined;
  private handshake: { resolve: () => void; reject: (error: DataPlaneError) => void } | undefined;
  private readonly idleListeners = new Set<() => void>();

  private constructor(
    private readonly socket: Socket,
    reads: SocketReads,
    readonly socketPath: string,
  ) {
    reads.onBytes = (bytes) => this.parser.push(bytes);
    socket.on('error', () => {}); // 'close' follows and says it
    socket.on('close', () => this.end(this.lostError(), false));
    socket.on('drain', () => this.wakeWriters());
  }

  /** Greets the server on a connected socket; rejects as the SPEC says when it refuses us. */
  static async open(socket: Socket, reads: SocketReads, socketPath: string): Promise<Connection> {
    const connection = new Connection(socket, reads, socketPath);
    await connection.greet();
    return connection;
  }

  private greet(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => this.end(this.unavailable(`no HELLO from the daemon within ${HANDSHAKE_TIMEOUT_MS} ms`)),
        HANDSHAKE_TIMEOUT_MS,
      );
      this.handshake = {
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
      this.write([controlFrame(FrameType.HELLO, 0, 0, encodeCbor({ magic: MAGIC, versions: [PROTOCOL_VERSION] }))]);
    });
  }

  /** Whether no call can start on this connection again (it ended, or the server is ending it). */
  get over(): boolean {
    return this.ended !== undefined || this.goingAway !== undefined;
  }

  /** Whether a new call may start here. */
  get usable(): boolean {
    return !this.over && this.nextStreamId <= LAST_STREAM_ID && this.calls.size < this.hello.maxCalls;
  }

  get callCount(): number {
    return this.calls.size;
  }

  /**
   * Sends REQUEST {op, args} on a new stream, and in the same write the frames `more` gives for
   * that stream (the first DATA of an upload). Returns the stream id.
   */
  startCall(op: string, args: Record<string, unknown>, flags: number, events: CallEvents, more?: (streamId: number) => Buffer[]): number {
    if (this.over) throw this.ended ?? this.goingAway;
    const streamId = this.nextStreamId;
    this.nextStreamId += 2;
    const request = controlFrame(FrameType.REQUEST, flags, streamId, encodeCbor({ op, args }));
    this.calls.set(streamId, events);
    if (this.calls.size === 1) this.socket.ref();
    this.write(more ? [request, ...more(streamId)] : [request]);
    return streamId;
  }

  /** A DATA frame's header and payload (not copied); `last` flags it END. */
  static dataFrame(streamId: number, payload: Buffer, last: boolean): Buffer[] {
    return [frameHeader(FrameType.DATA, last ? END : 0, streamId, payload.length), payload];
  }

  sendWindow(streamId: number, credit: number): void {
    const payload = Buffer.allocUnsafe(4);
    payload.writeUInt32BE(credit, 0);
    this.write([controlFrame(FrameType.WINDOW, 0, streamId, payload)]);
  }

  /**
   * Ends a call at once: CANCEL to the server, whose later frames are ignored. Resolves once the
   * server has ended the stream too (its last frame, or the connection's end): by then what the
   * call held in the daemon (an open object, a temporary file) is released.
   */
  cancel(streamId: number): Promise<void> {
    if (!this.calls.has(streamId)) return Promise.resolve();
    if (this.ended) {
      this.forget(streamId);
      return Promise.resolve();
    }
    this.write([controlFrame(FrameType.CANCEL, 0, streamId)]);
    return new Promise((resolve) => {
      // The connection forgets the stream at its last frame, as for any call.
      this.calls.set(streamId, {
        response: (_value, more) => more || resolve(),
        data: (_piece, last) => last && resolve(),
        window: () => {},
        error: () => resolve(),
        fail: () => resolve(),
      });
    });
  }

  /** Whether the socket takes more bytes now; when not, `drained` says when it does. */
  get writable(): boolean {
    return !this.socket.writableNeedDrain || this.ended !== undefined;
  }

  private writers: (() => void)[] = [];
  /** Resolves once the socket has drained (or the connection ended). */
  drained(): Promise<void> {
    if (this.writable) return Promise.resolve();
    return new Promise((resolve) => this.writers.push(resolve));
  }

  private wakeWriters(): void {
    const writers = this.writers;
    this.writers = [];
    for (const wake of writers) wake();
  }

  /** Calls `listener` each time the last call under way ends. */
  onIdle(listener: () => void): void {
    this.idleListeners.add(listener);
  }

  /** Ends the connection (not the daemon); calls still under way fail with `reason`. */
  close(reason: DataPlaneError): void {
    this.end(reason);
  }

  /** Writes frames of calls under way, in order, in one go. */
  write(buffers: Buffer[]): void {
    if (this.ended) return;
    // Frames written in one turn of the event loop (by every call on this connection) leave in
    // one writev: for small calls the system call costs more than the bytes.
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(this.uncork);
    }
    for (const buffer of buffers) this.socket.write(buffer);
  }

  private corked = false;
  private readonly uncork = () => {
    this.corked = false;
    this.socket.uncork();
  };

  private forget(streamId: number): void {
    if (!this.calls.delete(streamId) || this.calls.size > 0) return;
    this.socket.unref();
    for (const listener of this.idleListeners) listener();
  }

  // -------------------------------------------------------------------------------------------
  // Frames from the server

  control(type: FrameType, flags: number, streamId: number, payload: Buffer): void {
    try {
      if (streamId === 0) this.connectionFrame(type, payload);
      else this.callFrame(type, flags, streamId, payload);
    } catch (error) {
      this.violation(`an undecodable frame of type ${type} on stream ${streamId}: ${(error as Error).message}`);
    }
  }

  data(streamId: number, piece: Buffer, last: boolean): void {
    const call = this.callOf(streamId, FrameType.DATA);
    if (!call) return;
    call.data(piece, last); // before forgetting it: a violation it reports must end it too
    if (last) this.forget(streamId);
  }

  violation(message: string): void {
    this.end(this.unavailable(`the daemon broke the protocol: ${message}`));
  }

  private connectionFrame(type: FrameType, payload: Buffer): void {
    switch (type) {
      case FrameType.HELLO:
        return this.helloFrame(payload);
      case FrameType.ERROR:
        // Refused (PERMISSION_DENIED, no common version, too many connections): it closes next.
        return this.end(serverError(payload));
      case FrameType.GOAWAY:
        return this.goAway(payload);
      case FrameType.PING:
        if (!this.handshake) this.write([controlFrame(FrameType.PONG, 0, 0, payload)]);
        return;
      case FrameType.PONG:
        return;
      default:
        return this.violation(`a frame of type ${type} on stream 0`);
    }
  }

  private helloFrame(payload: Buffer): void {
    if (!this.handshake) return this.violation('a second HELLO');
    this.hello = serverHello(decodeCbor(payload));
    if (this.hello.version !== PROTOCOL_VERSION) {
      return this.end(this.unavailable(`the daemon chose protocol version ${this.hello.version}; this client speaks ${PROTOCOL_VERSION}`));
    }
    this.parser.maxFrameBytes = this.hello.maxFrameBytes;
    const { resolve } = this.handshake;
    this.handshake = undefined;
    this.socket.unref(); // an idle connection does not keep the process alive
    resolve();
  }

  /** The server ends the connection: calls it has not taken fail now, the others may finish. */
  private goAway(payload: Buffer): void {
    const value = decodeCbor(payload);
    const lastStreamId = isRecord(value) && Number.isSafeInteger(value.lastStreamId) ? (value.lastStreamId as number) : 0;
    const said = isRecord(value) && typeof value.message === 'string' ? value.message : 'no reason given';
    const reason = this.unavailable(`the daemon is ending the connection (${said})`);
    this.goingAway ??= reason;
    for (const [streamId, call] of this.calls) {
      if (streamId <= lastStreamId) continue;
      this.forget(streamId);
      call.fail(reason);
    }
  }

  private callFrame(type: FrameType, flags: number, streamId: number, payload: Buffer): void {
    const call = this.callOf(streamId, type);
    if (!call) return;
    switch (type) {
      case FrameType.RESPONSE: {
        const more = (flags & MORE) !== 0;
        const value = decodeCbor(payload);
        if (!more) this.forget(streamId);
        return call.response(value, more);
      }
      case FrameType.ERROR: {
        const error = serverError(payload);
        this.forget(streamId);
        return call.error(error);
      }
      case FrameType.WINDOW:
        if (payload.length !== 4) return this.violation(`a WINDOW frame of ${payload.length} bytes on stream ${streamId}`);
        return call.window(payload.readUInt32BE(0));
      default:
        return this.violation(`a frame of type ${type} on stream ${streamId}`);
    }
  }

  /** The call a frame is for; undefined for a call that has ended here (its stragglers are ignored). */
  private callOf(streamId: number, type: FrameType): CallEvents | undefined {
    const call = this.calls.get(streamId);
    if (!call && (streamId % 2 === 0 || streamId >= this.nextStreamId)) {
      this.violation(`a frame of type ${type} for stream ${streamId}, which this client never opened`);
    }
    return call;
  }

  // -------------------------------------------------------------------------------------------
  // The end

  private unavailable(message: string): DataPlaneError {
    return new DataPlaneError('BACKEND_UNAVAILABLE', `${message} (data plane daemon at ${this.socketPath})`);
  }

  private lostError(): DataPlaneError {
    const when = this.parser.midFrame ? ' in the middle of a frame' : '';
    return this.unavailable(`the connection to the daemon was lost${when}`);
  }

  /** Ends the connection once, failing the handshake or every call under way with `reason`. */
  private end(reason: DataPlaneError, destroy = true): void {
    this.ended ??= reason;
    if (destroy) this.socket.destroy();
    this.handshake?.reject(this.ended);
    this.handshake = undefined;
    const calls = [...this.calls.values()];
    this.calls.clear();
    for (const call of calls) call.fail(reason);
    this.wakeWriters();
  }
}
