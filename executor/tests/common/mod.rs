//! Helpers shared by the executor's integration tests.
#![allow(dead_code)]

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// How long a test waits for something that should happen at once; only a hung runtime
/// takes this long.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// Waits until `condition` holds, failing the test after [`PATIENCE`].
pub fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Drives `future` on this thread, failing the test if it is not ready after [`PATIENCE`]:
/// a future that never resolves is reported instead of hanging the test run.
pub fn block_on_within<F: Future>(what: &str, future: F) -> F::Output {
    struct Unpark(std::thread::Thread);

    impl std::task::Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }

    let deadline = Instant::now() + PATIENCE;
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        let now = Instant::now();
        assert!(now < deadline, "timed out waiting for {what}");
        std::thread::park_timeout(deadline - now);
    }
}

/// A one-way gate: tasks wait on it, the test opens it.
#[derive(Clone, Default)]
pub struct Gate {
    inner: Arc<Mutex<(bool, Vec<Waker>)>>,
}

impl Gate {
    pub fn open(&self) {
        let wakers = {
            let mut inner = self.inner.lock();
            inner.0 = true;
            std::mem::take(&mut inner.1)
        };
        wakers.into_iter().for_each(Waker::wake);
    }

    pub fn wait(&self) -> impl Future<Output = ()> + Send + 'static {
        let inner = Arc::clone(&self.inner);
        std::future::poll_fn(move |cx| {
            let mut inner = inner.lock();
            if inner.0 {
                Poll::Ready(())
            } else {
                inner.1.push(cx.waker().clone());
                Poll::Pending
            }
        })
    }
}

/// Blocks the thread that polls it until the returned opener is called: a way to hold a
/// worker still while a test lines up work behind it.
pub fn thread_blocker() -> (
    impl Future<Output = ()> + Send + 'static,
    impl FnOnce(),
    Arc<AtomicUsize>,
) {
    let (release, released) = std::sync::mpsc::channel::<()>();
    let blocking = Arc::new(AtomicUsize::new(0));
    let flag = Arc::clone(&blocking);
    let future = async move {
        flag.store(1, Ordering::SeqCst);
        let _ = released.recv_timeout(PATIENCE);
    };
    (
        future,
        move || {
            let _ = release.send(());
        },
        blocking,
    )
}

/// Where a [`Parked`] future leaves its waker.
pub type WakerSlot = Arc<Mutex<Option<Waker>>>;

/// A future that stores its waker in a slot and waits forever; it counts its polls and drops.
pub struct Parked {
    pub slot: WakerSlot,
    pub polls: Arc<AtomicUsize>,
    pub drops: Arc<AtomicUsize>,
}

impl Parked {
    /// The future, its waker slot, its poll count and its drop count.
    pub fn new() -> (Parked, WakerSlot, Arc<AtomicUsize>, Arc<AtomicUsize>) {
        let slot = Arc::new(Mutex::new(None));
        let polls = Arc::new(AtomicUsize::new(0));
        let drops = Arc::new(AtomicUsize::new(0));
        let parked = Parked {
            slot: Arc::clone(&slot),
            polls: Arc::clone(&polls),
            drops: Arc::clone(&drops),
        };
        (parked, slot, polls, drops)
    }
}

impl Future for Parked {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.polls.fetch_add(1, Ordering::SeqCst);
        *self.slot.lock() = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl Drop for Parked {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::SeqCst);
    }
}

/// Runs `f` with panic messages silenced (for tests that panic on purpose).
pub fn quietly<R>(f: impl FnOnce() -> R) -> R {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let message = info
                .payload()
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| info.payload().downcast_ref::<String>().cloned())
                .unwrap_or_default();
            if !message.contains("on purpose") {
                default(info);
            }
        }));
    });
    f()
}
