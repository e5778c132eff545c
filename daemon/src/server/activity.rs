//! What the daemon knows about each open client connection: whether a call is in
//! progress, when the last one ended, and whether it has been told to close.
//! Calls find their connection by the peer address.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Waker;
use std::time::Duration;

use tokio::time::Instant;

/// One connection's activity.
#[derive(Debug)]
pub(super) struct Activity {
    born: Instant,
    calls: AtomicUsize,
    /// Milliseconds after `born` when the last call ended (0: none yet).
    last_ms: AtomicU64,
    closing: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

impl Activity {
    fn new() -> Self {
        Activity {
            born: Instant::now(),
            calls: AtomicUsize::new(0),
            last_ms: AtomicU64::new(0),
            closing: AtomicBool::new(false),
            waker: Mutex::new(None),
        }
    }

    /// Marks a call as in progress until the guard drops.
    pub(super) fn begin(self: &Arc<Self>) -> CallGuard {
        self.calls.fetch_add(1, Ordering::SeqCst);
        CallGuard(Arc::clone(self))
    }

    /// When the connection was last busy (its start when it never was), or `None`
    /// while a call is in progress.
    pub(super) fn idle_since(&self) -> Option<Instant> {
        if self.calls.load(Ordering::SeqCst) > 0 {
            return None;
        }
        Some(self.born + Duration::from_millis(self.last_ms.load(Ordering::SeqCst)))
    }

    /// Whether [`Activity::close`] was called.
    pub(super) fn closing(&self) -> bool {
        self.closing.load(Ordering::SeqCst)
    }

    /// Remembers the task to wake when the connection is told to close.
    pub(super) fn register(&self, waker: &Waker) {
        let mut slot = lock(&self.waker);
        if !slot.as_ref().is_some_and(|w| w.will_wake(waker)) {
            *slot = Some(waker.clone());
        }
    }

    /// Tells the connection to close (it does at its next read).
    pub(super) fn close(&self) {
        self.closing.store(true, Ordering::SeqCst);
        if let Some(w) = lock(&self.waker).take() {
            w.wake();
        }
    }
}

/// A call in progress on a connection; dropping it ends the call.
#[derive(Debug)]
pub(super) struct CallGuard(Arc<Activity>);

impl Drop for CallGuard {
    fn drop(&mut self) {
        let a = &self.0;
        let ms = a.born.elapsed().as_millis().max(1) as u64;
        // Stamp the end first, so that an idle check never sees no calls with the
        // stamp of an older one.
        a.last_ms.fetch_max(ms, Ordering::SeqCst);
        a.calls.fetch_sub(1, Ordering::SeqCst);
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The open connections by peer address.
#[derive(Debug, Clone, Default)]
pub(super) struct Connections(Arc<Mutex<HashMap<SocketAddr, Arc<Activity>>>>);

impl Connections {
    /// Records a new connection from `peer`.
    pub(super) fn open(&self, peer: SocketAddr) -> Arc<Activity> {
        let activity = Arc::new(Activity::new());
        lock(&self.0).insert(peer, Arc::clone(&activity));
        activity
    }

    /// Forgets the connection from `peer` (if it is still `activity`'s).
    pub(super) fn closed(&self, peer: SocketAddr, activity: &Arc<Activity>) {
        let mut map = lock(&self.0);
        if map.get(&peer).is_some_and(|a| Arc::ptr_eq(a, activity)) {
            map.remove(&peer);
        }
    }

    /// The connection from `peer`.
    pub(super) fn get(&self, peer: SocketAddr) -> Option<Arc<Activity>> {
        lock(&self.0).get(&peer).cloned()
    }

    /// Tells the connection idle longest (no call in progress, not already
    /// closing) to close; false when every connection is busy.
    pub(super) fn close_idlest(&self) -> bool {
        let map = lock(&self.0);
        let idlest = map
            .values()
            .filter(|a| !a.closing())
            .filter_map(|a| Some((a.idle_since()?, a)))
            .min_by_key(|(since, _)| *since);
        match idlest {
            Some((_, a)) => {
                a.close();
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[tokio::test]
    async fn a_call_makes_a_connection_busy_until_it_ends() {
        let conns = Connections::default();
        let a = conns.open(addr(1));
        let born = a.idle_since().unwrap();
        let call = a.begin();
        assert_eq!(a.idle_since(), None);
        tokio::time::sleep(Duration::from_millis(5)).await;
        drop(call);
        assert!(a.idle_since().unwrap() > born);
    }

    #[tokio::test]
    async fn the_idlest_connection_is_closed_first_and_busy_ones_never() {
        let conns = Connections::default();
        let old = conns.open(addr(1));
        tokio::time::sleep(Duration::from_millis(5)).await;
        let busy = conns.open(addr(2));
        let _call = busy.begin();
        tokio::time::sleep(Duration::from_millis(5)).await;
        let young = conns.open(addr(3));
        assert!(conns.close_idlest());
        assert!(old.closing() && !young.closing());
        assert!(conns.close_idlest());
        assert!(young.closing());
        assert!(!conns.close_idlest(), "the busy connection stays");
        assert!(!busy.closing());
        conns.closed(addr(1), &old);
        assert!(conns.get(addr(1)).is_none());
        assert!(conns.get(addr(2)).is_some());
    }
}
