//! Who holds the web server's connections between requests.
//!
//! A web server that keeps its FastCGI connections (nginx `fastcgi_keep_conn on`, Apache
//! reusing backend connections) holds a pool of them, most idle at any moment. A worker
//! that waited on one idle connection would be lost to all the others until that one spoke
//! or timed out; with as many idle connections as workers, new requests would wait past the
//! 60 s a terminal waits. So no worker waits on a connection. One poller (the process's
//! main thread) holds the listening socket and every idle connection and waits on all of
//! them at once (`poll(2)`); a connection goes to the workers only when it has bytes to
//! read. A worker reads and serves that one request and gives a kept connection back. An
//! idle connection costs a file descriptor and nothing else.
//!
//! Bounds, so that neither a forgetful web server nor a flood of connections exhausts the
//! process: a connection idle for [`IDLE_LIMIT`] is closed; at most [`max_held`]
//! connections are open at once (idle, waiting for a worker or being served), and beyond
//! that the longest idle one is closed to make room, or, with none idle, new connections
//! wait in the socket's queue. A worker waits at most [`IO_TIMEOUT`] for a web server that
//! stops in the middle of a request.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::{Listener, Readiness, Stream};

/// How long a worker waits on a web server that has begun a request (or is taking its
/// answer) and gone silent, before it closes the connection. Past the 60 s of a terminal:
/// a request that slow is lost anyway, and the terminal retries.
pub const IO_TIMEOUT: Duration = Duration::from_secs(75);

/// How long an idle connection is kept. Longer than web servers keep idle upstream
/// connections themselves (nginx's `keepalive_timeout` in an upstream block: 60 s), so that
/// it is the web server that closes one, never we just as it sends a request on it.
pub const IDLE_LIMIT: Duration = Duration::from_secs(300);

/// The most connections held at once, when the file-descriptor limit allows as many: far
/// more than a web server keeps (nginx's `keepalive` is per worker, typically 8 to 64).
pub const MAX_HELD: usize = 1024;

/// Connections accepted in one go before the idle ones are looked at again.
const ACCEPT_BATCH: usize = 64;

/// How soon to try again after a failed `accept` (out of file descriptors, say), or to look
/// again whether room has been made when every connection held is busy.
const RETRY: Duration = Duration::from_millis(100);

/// How many connections to hold at once with `RLIMIT_NOFILE` at `soft_limit`: [`MAX_HELD`],
/// or fewer so that the workers keep descriptors for their database connections, the log
/// and the config files.
pub fn held_limit(soft_limit: u64, workers: usize) -> usize {
    let reserve = 32 + 4 * workers;
    usize::try_from(soft_limit)
        .unwrap_or(usize::MAX)
        .saturating_sub(reserve)
        .clamp(16, MAX_HELD)
}

/// [`held_limit`] for this process.
pub fn max_held(workers: usize) -> usize {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is valid for writes; getrlimit does not keep the pointer.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return held_limit(1024, workers);
    }
    held_limit(limit.rlim_cur, workers)
}

/// The workers' side: connections that have a request, and the way back for kept ones.
pub struct Handoff {
    /// Connections with bytes to read, oldest first.
    ready: Mutex<VecDeque<Stream>>,
    has_ready: Condvar,
    /// Kept connections given back, for the poller to wait on again.
    returned: Mutex<Vec<Stream>>,
    /// Written to wake the poller when a connection comes back.
    wake: UnixStream,
    /// Connections out of the poller's hands: waiting in `ready`, being served, or in
    /// `returned` not yet taken back.
    lent: AtomicUsize,
}

/// A mutex whose holder panicked still guards a usable queue: nothing is ever left half
/// changed while it is held.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Handoff {
    /// Waits for a connection that has a request (or at least bytes) to read. The caller
    /// then owes either [`Handoff::give_back`] or [`Handoff::closed`].
    pub fn take(&self) -> Stream {
        let mut ready = lock(&self.ready);
        loop {
            if let Some(stream) = ready.pop_front() {
                return stream;
            }
            ready = self
                .has_ready
                .wait(ready)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// A taken connection the web server keeps for more requests: back to the poller.
    pub fn give_back(&self, stream: Stream) {
        lock(&self.returned).push(stream);
        // A full pipe means a wake-up is pending already; nothing else can go wrong that
        // waking again would help with.
        let _ = (&self.wake).write(&[1]);
    }

    /// A taken connection has been closed (dropped).
    pub fn closed(&self) {
        self.lent.fetch_sub(1, Ordering::SeqCst);
    }

    fn lend(&self, stream: Stream) {
        self.lent.fetch_add(1, Ordering::SeqCst);
        lock(&self.ready).push_back(stream);
        self.has_ready.notify_one();
    }
}

/// An idle connection, and since when.
struct Idle {
    stream: Stream,
    since: Instant,
}

/// The listening socket and the idle connections.
pub struct Poller {
    listener: Listener,
    /// Oldest first: connections join at the end, with the time they joined.
    idle: Vec<Idle>,
    /// The read side of [`Handoff::wake`].
    woken: UnixStream,
    handoff: Arc<Handoff>,
    max_held: usize,
    /// No `accept` before this, after one failed.
    accept_after: Option<Instant>,
    /// Closing idle connections to make room has been logged (once per episode).
    evicting: bool,
}

impl Poller {
    /// Takes over `listener`, holding at most `max_held` connections at once.
    pub fn new(listener: Listener, max_held: usize) -> io::Result<(Poller, Arc<Handoff>)> {
        // Several processes may accept on one socket (spawn-fcgi -F, a socket shared on
        // purpose): a connection poll announced may be gone when we accept, and a blocking
        // accept would then hang the poller and every idle connection with it.
        listener.set_nonblocking(true)?;
        let (woken, wake) = UnixStream::pair()?;
        woken.set_nonblocking(true)?;
        wake.set_nonblocking(true)?;
        let handoff = Arc::new(Handoff {
            ready: Mutex::new(VecDeque::new()),
            has_ready: Condvar::new(),
            returned: Mutex::new(Vec::new()),
            wake,
            lent: AtomicUsize::new(0),
        });
        let poller = Poller {
            listener,
            idle: Vec::new(),
            woken,
            handoff: Arc::clone(&handoff),
            max_held,
            accept_after: None,
            evicting: false,
        };
        Ok((poller, handoff))
    }

    /// Accepts connections and hands over those with a request, until the process ends.
    pub fn run(mut self) -> ! {
        loop {
            self.turn();
        }
    }

    fn held(&self) -> usize {
        self.idle.len() + self.handoff.lent.load(Ordering::SeqCst)
    }

    /// One wait, and what follows from it.
    fn turn(&mut self) {
        let now = Instant::now();
        self.take_back(now);
        self.close_expired(now);
        let held = self.held();
        if held < self.max_held {
            self.evicting = false;
        }
        let accept_paused = self.accept_after.is_some_and(|t| now < t);
        // At the limit with nothing idle to close: new connections wait in the socket's
        // queue until a worker closes one (looked at again every RETRY).
        let full = held >= self.max_held && self.idle.is_empty();
        let accepting = !accept_paused && !full;

        let mut fds = Vec::with_capacity(2 + self.idle.len());
        fds.push(pollfd(self.woken.as_raw_fd()));
        if accepting {
            fds.push(pollfd(self.listener.as_raw_fd()));
        }
        let first_idle = fds.len();
        fds.extend(self.idle.iter().map(|c| pollfd(c.stream.as_raw_fd())));

        let mut wait = self
            .idle
            .first()
            .map(|c| (c.since + IDLE_LIMIT).saturating_duration_since(now));
        if !accepting {
            wait = Some(wait.map_or(RETRY, |w| w.min(RETRY)));
        }
        let timeout = wait.map_or(-1, |w| {
            // Rounded up: waking a millisecond early would only mean waiting again.
            i32::try_from(w.as_millis().saturating_add(1)).unwrap_or(i32::MAX)
        });
        let nfds = libc::nfds_t::try_from(fds.len()).unwrap_or(libc::nfds_t::MAX);
        // SAFETY: `fds` is a valid array of `nfds` pollfd for the duration of the call;
        // every fd in it belongs to a socket this poller owns.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), nfds, timeout) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                log::error!("FastCGI: poll failed: {e}; trying again");
                std::thread::sleep(RETRY);
            }
            return;
        }
        if n == 0 {
            return;
        }
        if fds[0].revents != 0 {
            self.drain_wake();
        }
        // The idle connections before any accept: `fds` lists them in `self.idle`'s order.
        let events: Vec<libc::c_short> = fds[first_idle..].iter().map(|p| p.revents).collect();
        let idle = std::mem::take(&mut self.idle);
        for (conn, revents) in idle.into_iter().zip(events) {
            if revents == 0 {
                self.idle.push(conn);
                continue;
            }
            match conn.stream.readiness() {
                Readiness::Data => self.handoff.lend(conn.stream),
                // Dropped, so closed: the web server closed its end.
                Readiness::Closed => {}
                // POLLIN with nothing to read after all: wait on. Any other event (an error,
                // a hang-up) with nothing to read would only repeat: close.
                Readiness::Nothing if revents == libc::POLLIN => self.idle.push(conn),
                Readiness::Nothing => {}
            }
        }
        if accepting && fds[1].revents != 0 {
            self.accept(now);
        }
    }

    /// Kept connections the workers gave back join the idle ones.
    fn take_back(&mut self, now: Instant) {
        let returned = std::mem::take(&mut *lock(&self.handoff.returned));
        for stream in returned {
            self.handoff.lent.fetch_sub(1, Ordering::SeqCst);
            self.idle.push(Idle { stream, since: now });
        }
    }

    /// Closes the connections idle for IDLE_LIMIT or longer (the oldest come first).
    fn close_expired(&mut self, now: Instant) {
        let expired = self
            .idle
            .partition_point(|c| now.saturating_duration_since(c.since) >= IDLE_LIMIT);
        self.idle.drain(..expired);
    }

    fn drain_wake(&mut self) {
        let mut buf = [0u8; 64];
        // Until WouldBlock: the bytes only say "look at `returned`", however many there are.
        while matches!((&self.woken).read(&mut buf), Ok(n) if n > 0) {}
    }

    /// Accepts the connections waiting on the listener, as idle connections: the web
    /// server's request may follow at once or later, and only then does one go to a worker.
    fn accept(&mut self, now: Instant) {
        for _ in 0..ACCEPT_BATCH {
            if self.held() >= self.max_held && self.idle.is_empty() {
                return;
            }
            match self.listener.accept() {
                Ok(Some(stream)) => match stream.set_timeouts(IO_TIMEOUT) {
                    Ok(()) => self.idle.push(Idle { stream, since: now }),
                    Err(e) => log::error!("FastCGI connection: cannot set timeouts: {e}"),
                },
                // A peer that is not admitted: closed and logged.
                Ok(None) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted
                    ) => {}
                Err(e) => {
                    // Out of file descriptors, most likely: the listener stays readable, so
                    // pause rather than spin.
                    log::error!("FastCGI accept failed: {e}; trying again in a moment");
                    self.accept_after = Some(now + RETRY);
                    return;
                }
            }
            if self.held() > self.max_held && self.idle.len() > 1 {
                if !self.evicting {
                    log::warn!(
                        "FastCGI: {} connections open, the most this process holds; closing \
                         the longest idle ones to admit new ones (does the web server keep \
                         more connections than it needs? nginx: lower `keepalive` in the \
                         upstream block)",
                        self.max_held
                    );
                    self.evicting = true;
                }
                self.idle.remove(0);
            }
        }
    }
}

fn pollfd(fd: std::os::fd::RawFd) -> libc::pollfd {
    libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connections_held_leave_room_for_the_workers_files() {
        for (soft, workers, expected) in [
            (1024, 1, 988),
            (1024, 4, 976),
            (65536, 8, MAX_HELD),
            (u64::MAX, 256, MAX_HELD), // RLIM_INFINITY
            (64, 8, 16),               // a tiny limit: still a few
        ] {
            assert_eq!(held_limit(soft, workers), expected, "{soft} {workers}");
        }
    }
}
