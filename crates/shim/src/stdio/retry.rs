//! An upstream output that survives containerd restarting (spec §1.6, Windows): when a
//! write fails because the pipe's server went away, the pipe is dialled again with an
//! exponential backoff (from [`INITIAL_BACKOFF`], intervals up to [`MAX_BACKOFF`]) for at
//! most the runtime options' `io_retry_timeout_in_sec` (0: forever), and the write goes on
//! on the new connection. A write that fails otherwise, or after the budget, fails as is.
//!
//! A transport may accept a write before delivering it and report the failure on the next
//! write (tokio's named pipes do: they copy the bytes and write in the background). With
//! [`Delivery::Deferred`] the last accepted write is kept and written again on the new
//! connection, so no output is lost across the restart.
//!
//! OS-neutral: the dialler and what counts as "the server went away" are given, so the
//! logic is tested here with fakes; the Windows layer supplies named pipes and the pipe
//! error codes.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use tokio::io::AsyncWrite;

use super::Writer;

/// The first wait before dialling again.
pub const INITIAL_BACKOFF: Duration = Duration::from_millis(200);
/// The longest wait between two dials.
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// Each wait is the last one times 3/2 (integer arithmetic: exact waits).
const GROWTH: (u32, u32) = (3, 2);

type DialFuture = Pin<Box<dyn Future<Output = io::Result<Writer>> + Send>>;
/// Dials the upstream pipe again.
pub type Dialer = Arc<dyn Fn() -> DialFuture + Send + Sync>;

enum State {
    Connected(Writer),
    Redialing(DialFuture),
    /// The budget ran out; the error was returned once.
    Failed,
}

/// When a transport reports a failed write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// On the write itself.
    Immediate,
    /// On the next write: the last accepted one may be lost and is written again.
    Deferred,
}

/// A writer that redials its upstream when it goes away.
pub struct RetryWriter {
    state: State,
    delivery: Delivery,
    /// The last accepted write (with [`Delivery::Deferred`]).
    last: Vec<u8>,
    /// What must reach the new connection before anything else.
    replay: Vec<u8>,
    dial: Dialer,
    gone: fn(&io::Error) -> bool,
    /// The redial budget; `None` = forever.
    budget: Option<Duration>,
}

impl std::fmt::Debug for RetryWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RetryWriter")
            .field("budget", &self.budget)
            .finish_non_exhaustive()
    }
}

impl RetryWriter {
    /// Wraps the connected `writer`; `dial` makes a new connection, `gone` tells a write
    /// error that means the server went away; `budget` of zero retries forever.
    pub fn new(
        writer: Writer,
        dial: Dialer,
        gone: fn(&io::Error) -> bool,
        budget: Duration,
        delivery: Delivery,
    ) -> Self {
        Self {
            state: State::Connected(writer),
            delivery,
            last: Vec::new(),
            replay: Vec::new(),
            dial,
            gone,
            budget: (!budget.is_zero()).then_some(budget),
        }
    }

    fn redial(&self) -> DialFuture {
        let dial = self.dial.clone();
        let budget = self.budget;
        Box::pin(async move {
            let start = tokio::time::Instant::now();
            let mut wait = INITIAL_BACKOFF;
            loop {
                let err = match dial().await {
                    Ok(w) => return Ok(w),
                    Err(e) => e,
                };
                if budget.is_some_and(|b| start.elapsed() + wait > b) {
                    return Err(io::Error::new(
                        err.kind(),
                        format!("upstream pipe gone; redialling it failed: {err}"),
                    ));
                }
                tracing::debug!(error = %err, ?wait, "redialling an upstream pipe");
                tokio::time::sleep(wait).await;
                wait = (wait * GROWTH.0 / GROWTH.1).min(MAX_BACKOFF);
            }
        })
    }

    /// Drives a redial; `Ready(Ok)` once connected again.
    fn poll_redial(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let State::Redialing(f) = &mut self.state {
            match ready!(f.as_mut().poll(cx)) {
                Ok(w) => self.state = State::Connected(w),
                Err(e) => {
                    self.state = State::Failed;
                    return Poll::Ready(Err(e));
                }
            }
        }
        Poll::Ready(Ok(()))
    }
}

fn failed() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "upstream pipe gone")
}

impl AsyncWrite for RetryWriter {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        loop {
            ready!(this.poll_redial(cx))?;
            let State::Connected(w) = &mut this.state else {
                return Poll::Ready(Err(failed()));
            };
            if !this.replay.is_empty() {
                match ready!(Pin::new(w).poll_write(cx, &this.replay)) {
                    Ok(n) => {
                        this.replay.drain(..n);
                    }
                    Err(e) if (this.gone)(&e) => this.state = State::Redialing(this.redial()),
                    Err(e) => return Poll::Ready(Err(e)),
                }
                continue;
            }
            match ready!(Pin::new(w).poll_write(cx, buf)) {
                Err(e) if (this.gone)(&e) => {
                    if this.delivery == Delivery::Deferred {
                        // The failure was the last write's: it goes again first.
                        this.replay = std::mem::take(&mut this.last);
                    }
                    this.state = State::Redialing(this.redial());
                }
                Ok(n) => {
                    if this.delivery == Delivery::Deferred {
                        this.last.clear();
                        this.last.extend_from_slice(&buf[..n]);
                    }
                    return Poll::Ready(Ok(n));
                }
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        ready!(this.poll_redial(cx))?;
        match &mut this.state {
            State::Connected(w) => match ready!(Pin::new(w).poll_flush(cx)) {
                // Nothing is buffered here: the next write redials.
                Err(e) if (this.gone)(&e) => Poll::Ready(Ok(())),
                other => Poll::Ready(other),
            },
            _ => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        match &mut this.state {
            State::Connected(w) => match ready!(Pin::new(w).poll_shutdown(cx)) {
                // Closing a pipe whose server is gone: nothing left to close.
                Err(e) if (this.gone)(&e) => Poll::Ready(Ok(())),
                other => Poll::Ready(other),
            },
            // Not connected: there is nothing to close, and no reason to dial to close.
            _ => {
                this.state = State::Failed;
                Poll::Ready(Ok(()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    use tokio::io::AsyncWriteExt;

    use super::*;

    /// A connection: what it got, and whether its server went away.
    #[derive(Default)]
    struct Conn {
        got: Mutex<Vec<u8>>,
        gone: std::sync::atomic::AtomicBool,
    }

    /// How a fake connection behaves once its server went away.
    #[derive(Clone, Copy, PartialEq)]
    enum Mode {
        /// The write fails.
        Immediate,
        /// The first write is accepted and lost; the next one fails (tokio's pipes).
        Deferred,
        /// Every write fails with an error that does not mean "server gone".
        Refuses,
    }

    struct ConnWriter {
        conn: Arc<Conn>,
        mode: Mode,
        failing: bool,
    }

    fn writer(conn: &Arc<Conn>, mode: Mode) -> Writer {
        Box::new(ConnWriter {
            conn: conn.clone(),
            mode,
            failing: false,
        })
    }

    impl AsyncWrite for ConnWriter {
        fn poll_write(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            if self.mode == Mode::Refuses {
                return Poll::Ready(Err(io::ErrorKind::PermissionDenied.into()));
            }
            if self.conn.gone.load(Ordering::SeqCst) {
                if self.mode == Mode::Immediate || self.failing {
                    return Poll::Ready(Err(io::ErrorKind::NotConnected.into()));
                }
                self.failing = true;
                return Poll::Ready(Ok(buf.len()));
            }
            self.conn.got.lock().unwrap().extend_from_slice(buf);
            Poll::Ready(Ok(buf.len()))
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    fn gone(e: &io::Error) -> bool {
        e.kind() == io::ErrorKind::NotConnected
    }

    /// A pipe server that is down for its first `down` dials, then hands out connections.
    struct Server {
        down: usize,
        dials: AtomicUsize,
        conns: Mutex<Vec<Arc<Conn>>>,
    }

    impl Server {
        fn new(down: usize) -> Arc<Self> {
            Arc::new(Self {
                down,
                dials: AtomicUsize::new(0),
                conns: Mutex::new(Vec::new()),
            })
        }

        fn dialer(self: &Arc<Self>) -> Dialer {
            let s = self.clone();
            Arc::new(move || {
                let s = s.clone();
                Box::pin(async move {
                    if s.dials.fetch_add(1, Ordering::SeqCst) < s.down {
                        return Err(io::ErrorKind::NotFound.into());
                    }
                    let c = Arc::new(Conn::default());
                    s.conns.lock().unwrap().push(c.clone());
                    Ok(writer(&c, Mode::Immediate))
                })
            })
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_write_after_the_server_restarted_goes_to_the_new_connection() {
        let first = Arc::new(Conn::default());
        let server = Server::new(3);
        let mut w = RetryWriter::new(
            writer(&first, Mode::Immediate),
            server.dialer(),
            gone,
            Duration::from_secs(30),
            Delivery::Immediate,
        );
        w.write_all(b"before ").await.unwrap();
        first.gone.store(true, Ordering::SeqCst);
        let start = tokio::time::Instant::now();
        w.write_all(b"after").await.unwrap();
        // Down for three dials: waits of 200, 300 and 450 ms before the fourth.
        assert_eq!(start.elapsed(), Duration::from_millis(950));
        assert_eq!(server.dials.load(Ordering::SeqCst), 4);
        assert_eq!(first.got.lock().unwrap().as_slice(), b"before ");
        {
            let conns = server.conns.lock().unwrap();
            assert_eq!(conns.len(), 1);
            assert_eq!(conns[0].got.lock().unwrap().as_slice(), b"after");
        }
        w.shutdown().await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn the_budget_bounds_the_redialling_and_other_errors_are_not_retried() {
        let first = Arc::new(Conn::default());
        let server = Server::new(usize::MAX);
        let mut w = RetryWriter::new(
            writer(&first, Mode::Immediate),
            server.dialer(),
            gone,
            Duration::from_secs(2),
            Delivery::Immediate,
        );
        first.gone.store(true, Ordering::SeqCst);
        let start = tokio::time::Instant::now();
        let err = w.write_all(b"lost").await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound, "{err}");
        assert!(err.to_string().contains("redialling"), "{err}");
        // 200 + 300 + 450 + 675 ms waited; the next wait would pass 2 s.
        assert_eq!(start.elapsed(), Duration::from_millis(1625));
        // Failed stays failed, without dialling again; closing it is fine.
        let dials = server.dials.load(Ordering::SeqCst);
        assert!(w.write_all(b"more").await.is_err());
        assert_eq!(server.dials.load(Ordering::SeqCst), dials);
        w.shutdown().await.unwrap();

        // An error that does not mean "server gone" is returned as is.
        let server = Server::new(0);
        let mut w = RetryWriter::new(
            writer(&Arc::new(Conn::default()), Mode::Refuses),
            server.dialer(),
            gone,
            Duration::ZERO,
            Delivery::Immediate,
        );
        let err = w.write_all(b"x").await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::PermissionDenied);
        assert_eq!(server.dials.load(Ordering::SeqCst), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_write_lost_by_a_deferred_transport_goes_again_on_the_new_connection() {
        let first = Arc::new(Conn::default());
        let server = Server::new(1);
        let mut w = RetryWriter::new(
            writer(&first, Mode::Deferred),
            server.dialer(),
            gone,
            Duration::ZERO,
            Delivery::Deferred,
        );
        w.write_all(b"one ").await.unwrap();
        first.gone.store(true, Ordering::SeqCst);
        // Accepted, not delivered; the next write learns it.
        w.write_all(b"two ").await.unwrap();
        w.write_all(b"three").await.unwrap();
        assert_eq!(first.got.lock().unwrap().as_slice(), b"one ");
        let conns = server.conns.lock().unwrap();
        assert_eq!(conns[0].got.lock().unwrap().as_slice(), b"two three");
    }

    #[tokio::test(start_paused = true)]
    async fn a_zero_budget_redials_for_as_long_as_it_takes() {
        let first = Arc::new(Conn::default());
        // Down for twenty dials: minutes of backoff, 60 s apart at the end.
        let server = Server::new(20);
        let mut w = RetryWriter::new(
            writer(&first, Mode::Immediate),
            server.dialer(),
            gone,
            Duration::ZERO,
            Delivery::Immediate,
        );
        first.gone.store(true, Ordering::SeqCst);
        let start = tokio::time::Instant::now();
        w.write_all(b"late").await.unwrap();
        assert!(start.elapsed() > Duration::from_secs(300));
        assert_eq!(server.dials.load(Ordering::SeqCst), 21);
        assert_eq!(
            server.conns.lock().unwrap()[0]
                .got
                .lock()
                .unwrap()
                .as_slice(),
            b"late"
        );
    }
}
