//! A queue of chunks bounded by the bytes it holds, not by their count: a caller handing over
//! 64 KiB chunks keeps the consumer as busy as one handing over 1 MiB chunks, in the same memory.
//!
//! A sender that finds the queue full waits until half of it is free, not just room for its
//! chunk, so a consumer draining it wakes the sender once per half queue rather than per chunk:
//! thread wake-ups, not bytes, are what small chunks cost.

use bytes::Bytes;
use std::sync::Arc;
use tokio::sync::{mpsc, AcquireError, Semaphore, TryAcquireError};

/// Creates a queue that holds at most `capacity` bytes (one chunk at a time, whatever its size,
/// when a chunk is larger).
pub(crate) fn chunk_queue(capacity: u32) -> (ChunkSender, ChunkReceiver) {
    let (chunks, receiver) = mpsc::unbounded_channel();
    let room = Arc::new(Semaphore::new(capacity as usize));
    (ChunkSender { chunks, room: room.clone(), capacity }, ChunkReceiver { chunks: receiver, room, capacity })
}

pub(crate) struct ChunkSender {
    chunks: mpsc::UnboundedSender<Bytes>,
    /// Free bytes, one permit each.
    room: Arc<Semaphore>,
    capacity: u32,
}

/// What an attempt to queue a chunk without waiting did with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteOutcome {
    Queued,
    /// No room now: the chunk was not queued; `send` it, which waits.
    Full,
    /// The receiver is gone (for an ingest: it has stopped, and its `finish` says why).
    Stopped,
}

impl ChunkSender {
    /// Queues `chunk` if there is room for it now.
    pub(crate) fn try_send(&self, chunk: Bytes) -> WriteOutcome {
        match self.room.try_acquire_many(cost(&chunk, self.capacity)) {
            Ok(permit) => {
                permit.forget();
                match self.chunks.send(chunk) {
                    Ok(()) => WriteOutcome::Queued,
                    Err(_) => WriteOutcome::Stopped,
                }
            }
            Err(TryAcquireError::NoPermits) => WriteOutcome::Full,
            Err(TryAcquireError::Closed) => WriteOutcome::Stopped,
        }
    }

    /// Queues `chunk`, waiting for room; `false` when the receiver is gone.
    pub(crate) async fn send(&self, chunk: Bytes) -> bool {
        match self.room.try_acquire_many(cost(&chunk, self.capacity)) {
            Ok(permit) => {
                permit.forget();
                return self.chunks.send(chunk).is_ok();
            }
            Err(TryAcquireError::Closed) => return false,
            Err(TryAcquireError::NoPermits) => {}
        }
        self.wait_for_half_free(cost(&chunk, self.capacity)).await.is_ok() && self.chunks.send(chunk).is_ok()
    }

    /// [`Self::send`] for a thread outside the async runtime.
    pub(crate) fn blocking_send(&self, chunk: Bytes) -> bool {
        futures::executor::block_on(self.send(chunk))
    }

    /// Takes room for a chunk of `cost` bytes once half the queue (or all of it, for a chunk that
    /// needs more) is free.
    async fn wait_for_half_free(&self, cost: u32) -> Result<(), AcquireError> {
        let wanted = cost.max(self.capacity / 2);
        self.room.acquire_many(wanted).await?.forget();
        self.room.add_permits((wanted - cost) as usize);
        Ok(())
    }
}

pub(crate) struct ChunkReceiver {
    chunks: mpsc::UnboundedReceiver<Bytes>,
    room: Arc<Semaphore>,
    capacity: u32,
}

impl ChunkReceiver {
    /// The next chunk; `None` once every sender is gone and the queue is empty. Blocking.
    pub(crate) fn blocking_recv(&mut self) -> Option<Bytes> {
        let chunk = self.chunks.blocking_recv()?;
        self.room.add_permits(cost(&chunk, self.capacity) as usize);
        Some(chunk)
    }
}

impl Drop for ChunkReceiver {
    /// A sender waiting for room learns that none will come.
    fn drop(&mut self) {
        self.room.close();
    }
}

/// The room a chunk takes: its length, capped at the whole queue so any chunk fits in time.
fn cost(chunk: &Bytes, capacity: u32) -> u32 {
    u32::try_from(chunk.len()).unwrap_or(u32::MAX).min(capacity)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn chunk(len: usize) -> Bytes {
        Bytes::from(vec![7u8; len])
    }

    #[test]
    fn holds_chunks_up_to_its_capacity_in_bytes() {
        let (sender, mut receiver) = chunk_queue(1024);
        for _ in 0..16 {
            assert_eq!(sender.try_send(chunk(64)), WriteOutcome::Queued);
        }
        assert_eq!(sender.try_send(chunk(1)), WriteOutcome::Full);
        assert_eq!(receiver.blocking_recv().unwrap().len(), 64);
        assert_eq!(sender.try_send(chunk(64)), WriteOutcome::Queued, "a received chunk frees its room");
    }

    #[test]
    fn a_chunk_larger_than_the_queue_waits_for_it_to_be_empty() {
        let (sender, mut receiver) = chunk_queue(1024);
        assert_eq!(sender.try_send(chunk(10)), WriteOutcome::Queued);
        assert_eq!(sender.try_send(chunk(4096)), WriteOutcome::Full);
        receiver.blocking_recv();
        assert_eq!(sender.try_send(chunk(4096)), WriteOutcome::Queued, "an empty queue takes any chunk");
        assert_eq!(sender.try_send(chunk(1)), WriteOutcome::Full);
    }

    #[test]
    fn a_blocked_sender_resumes_once_half_the_queue_is_free() {
        let (sender, mut receiver) = chunk_queue(1024);
        for _ in 0..8 {
            assert_eq!(sender.try_send(chunk(128)), WriteOutcome::Queued);
        }
        let blocked = std::thread::spawn(move || sender.blocking_send(chunk(128)));
        std::thread::sleep(Duration::from_millis(20));
        assert!(!blocked.is_finished(), "a full queue takes no chunk");
        for received in 1..=3 {
            receiver.blocking_recv();
            std::thread::sleep(Duration::from_millis(20));
            assert!(!blocked.is_finished(), "resumed after {received} of 8 chunks were taken");
        }
        receiver.blocking_recv();
        assert!(blocked.join().unwrap(), "resumes once 4 of 8 chunks are taken");
        let received = std::iter::from_fn(|| receiver.blocking_recv()).count();
        assert_eq!(received, 5, "4 queued before and the one sent after");
    }

    #[test]
    fn a_sender_learns_when_the_receiver_is_gone() {
        let (sender, receiver) = chunk_queue(1024);
        assert_eq!(sender.try_send(chunk(1024)), WriteOutcome::Queued);
        let blocked = std::thread::spawn(move || sender.blocking_send(chunk(1)));
        std::thread::sleep(Duration::from_millis(20));
        drop(receiver);
        assert!(!blocked.join().unwrap());
    }

    #[test]
    fn the_receiver_sees_the_end_once_every_sender_is_gone() {
        let (sender, mut receiver) = chunk_queue(1024);
        assert_eq!(sender.try_send(chunk(3)), WriteOutcome::Queued);
        drop(sender);
        assert_eq!(receiver.blocking_recv().unwrap().len(), 3);
        assert!(receiver.blocking_recv().is_none());
    }
}
