//! One client connection: the peer's uid, the handshake, then a loop that reads frames, routes
//! each to its call, keeps the per-call credit and the timeouts, and ends the connection -- only
//! this one -- with GOAWAY on a protocol violation.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use tokio::io::AsyncReadExt;
use tokio::net::unix::OwnedReadHalf;
use tokio::net::UnixStream;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;

use artifactstore_core::wire::Wire;

use crate::calls::{self, CallContext, Upload};
use crate::credit::{Inbound, Outbound};
use crate::dispatch::{self, Started};
use crate::frame::{Frame, FrameCodec, FrameError, Kind, END, MAX_FRAME_BYTES, OPEN};
use crate::handshake::{self, Refusal, ServerHello};
use crate::message::{core_error_frame, error_frame, goaway_frame};
use crate::outbound::{self, Outbox};
use crate::server::Daemon;

/// The window each direction of each call starts with.
pub const WINDOW_BYTES: u32 = 1 << 20;
/// After its last frame, a closing connection reads (and drops) at most this much, for at most
/// [`LINGER`], until the peer closes too: a peer that writes to a closed socket (the client's
/// WINDOW while it reads the end of a serve) gets a reset and loses what it had not read yet.
const LINGER_BYTES: u64 = 256 << 10;
const LINGER: Duration = Duration::from_millis(500);
/// How long after its last call ended a connection waits for the next request in place.
const SPIN: Duration = Duration::from_micros(200);

type Frames = FramedRead<OwnedReadHalf, FrameCodec>;

/// How a connection ends.
enum Ending {
    /// The peer went away or the socket failed: nothing more to say.
    Gone,
    /// All calls are done after GOAWAY (shutdown) or the connection was idle.
    Quiet,
    /// This frame (GOAWAY or a connection-level ERROR) is the last.
    With(Frame),
}

/// Ends the connection for breaking the protocol (or a limit), saying so to the peer and, for the
/// operator, on stderr.
fn violation(what: impl Into<String>, last_stream_id: u32) -> Ending {
    let what = what.into();
    eprintln!("artifactstore-daemon: ending a connection: {what}");
    Ending::With(goaway_frame("INVALID_ARGUMENT", what, last_stream_id))
}

/// Serves one accepted connection to its end; `slot` (its place under the connection limit) is
/// given back as soon as the protocol is over, before the last bytes are drained.
pub async fn run(stream: UnixStream, daemon: Arc<Daemon>, slot: OwnedSemaphorePermit) {
    let refused = daemon.peers.refused_uid(&stream);
    crate::listener::tune(&stream);
    let (read, write) = stream.into_split();
    let writer_failed = CancellationToken::new();
    let outbound::Writer { outbox, last, task: writer } =
        outbound::start(write, daemon.limits.idle_timeout, writer_failed.clone());
    let mut frames = FramedRead::new(read, FrameCodec::before_hello());
    let ending = match refused {
        Some(uid) => {
            let config = daemon.config_source.display();
            let message = format!("uid {uid} may not use this daemon (allowedUids in {config})");
            Ending::With(error_frame(0, "PERMISSION_DENIED", message))
        }
        None => match handshake(&mut frames, &outbox, &daemon).await {
            Err(ending) => ending,
            Ok(()) => {
                Connection::new(&daemon, &mut frames, outbox.clone(), writer_failed, slot.semaphore().clone())
                    .serve()
                    .await
            }
        },
    };
    let peer_still_there = !matches!(ending, Ending::Gone);
    if let Ending::With(frame) = ending {
        let _ = last.send(frame);
    }
    drop(outbox);
    // Without last words the writer ends once the calls, cancelled by now, drop their outboxes.
    let _ = tokio::time::timeout(daemon.limits.idle_timeout, writer).await;
    drop(slot);
    if peer_still_there {
        linger(frames.into_inner()).await;
    }
}

async fn linger(read: OwnedReadHalf) {
    let mut rest = read.take(LINGER_BYTES);
    let _ = tokio::time::timeout(LINGER, tokio::io::copy(&mut rest, &mut tokio::io::sink())).await;
}

async fn handshake(frames: &mut Frames, outbox: &Outbox, daemon: &Daemon) -> Result<(), Ending> {
    let limit = daemon.limits.handshake_timeout;
    let first = match tokio::time::timeout(limit, frames.next()).await {
        Err(_) => return Err(violation(format!("no HELLO within {} ms", limit.as_millis()), 0)),
        Ok(None | Some(Err(FrameError::Io(_)))) => return Err(Ending::Gone),
        Ok(Some(Err(e))) => return Err(violation(e.to_string(), 0)),
        Ok(Some(Ok(frame))) => frame,
    };
    let version = handshake::negotiate(&first).map_err(|refusal| match refusal {
        Refusal::Violation(what) => violation(what, 0),
        Refusal::NoCommonVersion(what) => Ending::With(error_frame(0, "BACKEND_UNAVAILABLE", what)),
    })?;
    let hello = ServerHello {
        version,
        max_frame_bytes: MAX_FRAME_BYTES,
        window_bytes: WINDOW_BYTES,
        max_calls: daemon.limits.max_calls,
        boot_id: daemon.boot_id.clone(),
    };
    outbox.send(Frame::new(Kind::Hello, 0, 0, hello.to_cbor())).await.map_err(|_| Ending::Gone)?;
    frames.decoder_mut().max_payload = MAX_FRAME_BYTES;
    Ok(())
}

/// What the reader keeps of a call under way.
struct Call {
    cancel: CancellationToken,
    /// An ingest whose client side is still open: where its DATA goes and its credit.
    upload: Option<(mpsc::UnboundedSender<Upload>, Arc<Inbound>)>,
    /// A serve: the credit the client grants.
    download: Option<Arc<Outbound>>,
}

struct Connection<'a> {
    daemon: &'a Arc<Daemon>,
    frames: &'a mut Frames,
    outbox: Outbox,
    writer_failed: CancellationToken,
    /// The connection limit's slots: how many connections are open.
    slots: Arc<Semaphore>,
    calls: HashMap<u32, Call>,
    last_stream_id: u32,
    finished: (mpsc::UnboundedSender<u32>, mpsc::UnboundedReceiver<u32>),
    last_heard: Instant,
    /// When the last call under way ended.
    last_call_ended: Instant,
    partial_since: Option<Instant>,
    going_away: bool,
}

impl<'a> Connection<'a> {
    fn new(
        daemon: &'a Arc<Daemon>,
        frames: &'a mut Frames,
        outbox: Outbox,
        writer_failed: CancellationToken,
        slots: Arc<Semaphore>,
    ) -> Self {
        Connection {
            daemon,
            frames,
            outbox,
            writer_failed,
            slots,
            calls: HashMap::new(),
            last_stream_id: 0,
            finished: mpsc::unbounded_channel(),
            last_heard: Instant::now(),
            last_call_ended: Instant::now(),
            partial_since: None,
            going_away: false,
        }
    }

    async fn serve(mut self) -> Ending {
        let ending = self.serve_until_the_end().await;
        // Whatever ended the connection ends its calls: an ingest stores nothing.
        self.calls.values().for_each(|call| call.cancel.cancel());
        ending
    }

    async fn serve_until_the_end(&mut self) -> Ending {
        let limits = &self.daemon.limits;
        let shortest = limits.frame_timeout.min(limits.idle_timeout);
        let mut tick = tokio::time::interval((shortest / 4).min(Duration::from_secs(1)));
        loop {
            self.wait_in_place_for_the_next_request();
            // In this order: the peer's bytes already here are read before a timer looks at how
            // long a frame has been waiting for them (this task may have been held up, not the peer).
            let step = tokio::select! {
                biased;
                _ = self.writer_failed.cancelled() => Err(Ending::Gone),
                Some(id) = self.finished.1.recv() => {
                    self.calls.remove(&id);
                    if self.calls.is_empty() {
                        self.last_call_ended = Instant::now();
                    }
                    Ok(())
                }
                _ = self.daemon.shutdown.cancelled(), if !self.going_away => self.go_away().await,
                frame = self.frames.next() => self.received(frame).await,
                _ = tick.tick() => self.check_timers(),
            };
            if let Err(ending) = step {
                return ending;
            }
            if self.going_away && self.calls.is_empty() {
                return Ending::Quiet;
            }
        }
    }

    async fn received(&mut self, frame: Option<Result<Frame, FrameError>>) -> Result<(), Ending> {
        let frame = match frame {
            None | Some(Err(FrameError::Io(_))) => return Err(Ending::Gone),
            Some(Err(e)) => return Err(self.violation(e.to_string())),
            Some(Ok(frame)) => frame,
        };
        self.last_heard = Instant::now();
        self.partial_since = (!self.frames.read_buffer().is_empty()).then_some(self.last_heard);
        self.on_frame(frame).await
    }

    /// Right after a call, a client usually sends its next one within microseconds: waiting for it
    /// here, polling the socket for up to [`SPIN`], is cheaper than sleeping and being woken. Only
    /// the one connection open waits so: this holds up the runtime's thread, which others may need.
    fn wait_in_place_for_the_next_request(&self) {
        use std::os::fd::AsRawFd;
        let alone = self.slots.available_permits() + 1 >= self.daemon.limits.max_connections as usize;
        if !alone || !self.calls.is_empty() || !self.frames.read_buffer().is_empty() {
            return;
        }
        let socket = self.frames.get_ref().as_ref().as_raw_fd();
        while self.last_call_ended.elapsed() < SPIN {
            let mut poll = libc::pollfd { fd: socket, events: libc::POLLIN, revents: 0 };
            // SAFETY: one pollfd for a descriptor this connection owns, no waiting.
            if unsafe { libc::poll(&mut poll, 1, 0) } != 0 {
                return;
            }
            std::hint::spin_loop();
        }
    }

    fn violation(&self, what: impl Into<String>) -> Ending {
        violation(what, self.last_stream_id)
    }

    async fn send(&self, frame: Frame) -> Result<(), Ending> {
        self.outbox.send(frame).await.map_err(|_| Ending::Gone)
    }

    async fn go_away(&mut self) -> Result<(), Ending> {
        self.going_away = true;
        let message = "the daemon is shutting down: calls under way finish, new calls need a new connection";
        self.send(goaway_frame("CLOSED", message, self.last_stream_id)).await
    }

    fn check_timers(&mut self) -> Result<(), Ending> {
        let limits = &self.daemon.limits;
        let now = Instant::now();
        match self.partial_since {
            _ if self.frames.read_buffer().is_empty() => self.partial_since = None,
            None => self.partial_since = Some(now),
            Some(since) if now - since > limits.frame_timeout => {
                let limit = limits.frame_timeout.as_millis();
                return Err(self.violation(format!("a frame was begun and not completed within {limit} ms")));
            }
            Some(_) => {}
        }
        if self.calls.is_empty() && now - self.last_heard > limits.idle_timeout {
            let message = format!("idle for {} ms: closed", limits.idle_timeout.as_millis());
            return Err(Ending::With(goaway_frame("CLOSED", message, self.last_stream_id)));
        }
        Ok(())
    }

    async fn on_frame(&mut self, frame: Frame) -> Result<(), Ending> {
        match frame.kind {
            Kind::Request => self.open_call(frame).await,
            Kind::Data => self.on_data(frame),
            Kind::Window => self.on_window(frame),
            Kind::Cancel => self.on_cancel(frame),
            Kind::Ping if frame.stream_id == 0 && frame.payload.len() == 8 => {
                self.send(Frame::new(Kind::Pong, 0, 0, frame.payload)).await
            }
            Kind::Pong if frame.stream_id == 0 && frame.payload.len() == 8 => Ok(()),
            Kind::Ping | Kind::Pong => Err(self.violation(format!(
                "{} must be on stream 0 with 8 bytes, not on stream {} with {}",
                frame.kind.name(),
                frame.stream_id,
                frame.payload.len()
            ))),
            Kind::Hello => Err(self.violation("a second HELLO")),
            Kind::Response | Kind::Error | Kind::GoAway => {
                Err(self.violation(format!("{} is sent by the server only", frame.kind.name())))
            }
        }
    }

    async fn open_call(&mut self, frame: Frame) -> Result<(), Ending> {
        let id = frame.stream_id;
        if id % 2 == 0 {
            return Err(self.violation(format!("REQUEST on stream {id}: calls use odd stream ids")));
        }
        if id <= self.last_stream_id {
            let last = self.last_stream_id;
            return Err(self.violation(format!("REQUEST on stream {id} after stream {last}: ids only grow")));
        }
        self.last_stream_id = id;
        let request = dispatch::request(&frame.payload).map_err(|what| self.violation(what))?;
        let max_calls = self.daemon.limits.max_calls;
        if self.going_away {
            return self.send(error_frame(id, "CLOSED", "the daemon is shutting down; connect again")).await;
        }
        if self.calls.len() >= max_calls as usize {
            let message = format!("too many calls at once on one connection ({max_calls})");
            return self.send(error_frame(id, "BACKEND_UNAVAILABLE", message)).await;
        }
        match dispatch::start(&self.daemon.plane, request, frame.has(OPEN)) {
            Ok(started) => {
                self.spawn_call(id, started);
                Ok(())
            }
            Err(error) => self.send(core_error_frame(id, &error)).await,
        }
    }

    fn spawn_call(&mut self, id: u32, started: Started) {
        let cancel = self.daemon.abort.child_token();
        let ctx =
            CallContext { stream_id: id, outbox: self.outbox.clone(), cancel: cancel.clone(), window: WINDOW_BYTES };
        let mut call = Call { cancel, upload: None, download: None };
        let task: calls::Task = match started {
            Started::Unary(pending) => Box::pin(calls::unary(ctx, pending)),
            Started::Ingest(request) => {
                let (chunks, receiver) = mpsc::unbounded_channel();
                let credit = Arc::new(Inbound::new(WINDOW_BYTES));
                call.upload = Some((chunks, credit.clone()));
                let plane = self.daemon.plane.clone();
                Box::pin(calls::ingest(ctx, plane, request, calls::Uploads::new(receiver), credit))
            }
            Started::Serve(opening) => {
                let credit = Arc::new(Outbound::new(WINDOW_BYTES));
                call.download = Some(credit.clone());
                Box::pin(calls::serve(ctx, opening, credit))
            }
        };
        self.calls.insert(id, call);
        let finished = self.finished.0.clone();
        tokio::spawn(async move {
            task.await;
            let _ = finished.send(id);
        });
    }

    /// The call on `stream_id`, `None` for a straggler of a call that has ended; a frame for a
    /// stream never opened (or that cannot be a call) is a violation.
    fn call(&mut self, frame: &Frame) -> Result<Option<&mut Call>, Ending> {
        let id = frame.stream_id;
        if id == 0 || id % 2 == 0 || id > self.last_stream_id {
            return Err(self.violation(format!("{} for stream {id}, which no REQUEST opened", frame.kind.name())));
        }
        Ok(self.calls.get_mut(&id))
    }

    fn on_data(&mut self, frame: Frame) -> Result<(), Ending> {
        let id = frame.stream_id;
        let last_stream_id = self.last_stream_id;
        let Some(call) = self.call(&frame)?.filter(|call| !call.cancel.is_cancelled()) else { return Ok(()) };
        let Some((chunks, credit)) = &call.upload else {
            return Err(violation(format!("DATA for stream {id}, whose client side is closed"), last_stream_id));
        };
        if !credit.spend(frame.payload.len() as u64) {
            let length = frame.payload.len();
            return Err(violation(
                format!("DATA of {length} bytes on stream {id} is beyond its credit"),
                last_stream_id,
            ));
        }
        // A send fails only when the call has ended on its own; its DATA is then dropped.
        if !frame.payload.is_empty() {
            let _ = chunks.send(Upload::Chunk(frame.payload.clone()));
        }
        if frame.has(END) {
            let _ = chunks.send(Upload::End);
            call.upload = None;
        }
        Ok(())
    }

    fn on_window(&mut self, frame: Frame) -> Result<(), Ending> {
        let id = frame.stream_id;
        let last_stream_id = self.last_stream_id;
        let Ok(increment) = <[u8; 4]>::try_from(&frame.payload[..]).map(u32::from_be_bytes) else {
            return Err(self.violation(format!("WINDOW on stream {id} carries {} bytes, not 4", frame.payload.len())));
        };
        let Some(call) = self.call(&frame)? else { return Ok(()) };
        match &call.download {
            Some(credit) if !credit.grant(increment) => {
                Err(violation(format!("WINDOW raises the credit of stream {id} past 2^31 bytes"), last_stream_id))
            }
            _ => Ok(()),
        }
    }

    fn on_cancel(&mut self, frame: Frame) -> Result<(), Ending> {
        if !frame.payload.is_empty() {
            return Err(self.violation(format!("CANCEL on stream {} carries a payload", frame.stream_id)));
        }
        if let Some(call) = self.call(&frame)? {
            call.cancel.cancel();
            // What the client still sends of a cancelled ingest is dropped.
            call.upload = None;
        }
        Ok(())
    }
}
