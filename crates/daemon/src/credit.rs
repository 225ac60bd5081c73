//! Per-call flow control (PROTOCOL.md, "Flow control"): what the client may still send on a call,
//! and what the server may still send on it. Both start at the window of the server's HELLO.

use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::Semaphore;

/// No call's credit may exceed this, however many WINDOW frames a peer sends.
pub const MAX_CREDIT: u64 = 1 << 31;

/// Bytes the client may still send on an ingest: the reader spends, the call grants.
#[derive(Debug)]
pub struct Inbound(AtomicU64);

impl Inbound {
    pub fn new(window: u32) -> Self {
        Inbound(AtomicU64::new(window.into()))
    }

    /// `false` when `n` bytes exceed the credit (a violation); only the connection's reader spends,
    /// so the credit cannot shrink between the check and the spending.
    pub fn spend(&self, n: u64) -> bool {
        if n > self.0.load(Ordering::Acquire) {
            return false;
        }
        self.0.fetch_sub(n, Ordering::AcqRel);
        true
    }

    /// Call this before sending the WINDOW frame, so the client never spends credit not yet here.
    pub fn grant(&self, n: u64) {
        self.0.fetch_add(n, Ordering::AcqRel);
    }
}

/// Bytes the server may still send on a serve: the client grants, the call waits and spends.
#[derive(Debug)]
pub struct Outbound(Semaphore);

impl Outbound {
    pub fn new(window: u32) -> Self {
        Outbound(Semaphore::new(window as usize))
    }

    /// `false` when the grant would raise the credit past [`MAX_CREDIT`] (a violation).
    pub fn grant(&self, n: u32) -> bool {
        if self.0.available_permits() as u64 + u64::from(n) > MAX_CREDIT {
            return false;
        }
        self.0.add_permits(n as usize);
        true
    }

    /// Waits until `n` bytes of credit are there and spends them.
    pub async fn spend(&self, n: u32) {
        if let Ok(permits) = self.0.acquire_many(n).await {
            permits.forget();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inbound_credit_is_spent_and_granted() {
        let credit = Inbound::new(10);
        assert!(credit.spend(6));
        assert!(!credit.spend(5));
        credit.grant(1);
        assert!(credit.spend(5));
        assert!(!credit.spend(1));
    }

    #[tokio::test]
    async fn outbound_credit_waits_and_is_capped() {
        let credit = std::sync::Arc::new(Outbound::new(4));
        credit.spend(4).await;
        let waiting = tokio::spawn({
            let credit = credit.clone();
            async move { credit.spend(3).await }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        assert!(credit.grant(3));
        waiting.await.unwrap();
        assert!(!credit.grant(u32::MAX));
    }
}
