//! The persistent mode: the same executable, started with a listening socket as standard
//! input, serves FastCGI requests until it is stopped.
//!
//! The main thread is the [`Poller`], which accepts on the listener and holds every
//! connection between requests; `PAYSYS_WORKERS` threads serve the requests, one at a time
//! each, each with a database connection of its own, through the same
//! [`pipeline`](crate::pipeline) as a CGI. SIGTERM or SIGINT (how mod_fcgid, systemd and
//! spawn-fcgi stop it) stops it gracefully: requests already read are finished and logged.

use std::io::{Cursor, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cgi::Request;
use crate::db::Connections;
use crate::fastcgi::poller::{self, Handoff, Poller};
use crate::fastcgi::{self, Listener, Next, Stream};
use crate::pipeline::{record, serve_safely, Endpoint};

/// How many threads serve FastCGI requests when `PAYSYS_WORKERS` does not say.
/// mod_fcgid sends a process one request at a time, so one is right there; behind nginx,
/// set it to the number of requests to serve at once.
const DEFAULT_WORKERS: usize = 1;
const MAX_WORKERS: usize = 256;

/// The FastCGI responder for `endpoint` on `listener`; `default_config` is the config
/// for requests whose web server does not name one (`PAYSYS_CONFIG`). Runs until SIGTERM
/// or SIGINT, then finishes the requests in flight; returns the exit code.
pub fn run(endpoint: &'static Endpoint, listener: Listener, default_config: PathBuf) -> i32 {
    let workers = match std::env::var("PAYSYS_WORKERS") {
        Err(_) => DEFAULT_WORKERS,
        Ok(text) => match text.trim().parse::<usize>() {
            Ok(n) if (1..=MAX_WORKERS).contains(&n) => n,
            _ => {
                log::error!(
                    "PAYSYS_WORKERS='{text}' is not a number from 1 to {MAX_WORKERS}; using {DEFAULT_WORKERS}"
                );
                DEFAULT_WORKERS
            }
        },
    };
    // Where the config is when the web server does not say (PAYSYS_CONFIG as a FastCGI
    // parameter): found once, not per request.
    let default_config: &'static Path = Box::leak(default_config.into_boxed_path());
    // Before any worker starts, so that every thread inherits the blocked signals.
    let stop: &'static Stop = Box::leak(Box::default());
    if let Err(e) = stop.install() {
        log::error!("cannot catch SIGTERM ({e}); stopping will cut off requests in flight");
    }
    let (poller, handoff) = match Poller::new(listener, poller::max_held(workers)) {
        Ok(p) => p,
        Err(e) => {
            log::error!("cannot set up the FastCGI socket for polling: {e}");
            return 1;
        }
    };
    let mut started = 0;
    for n in 1..=workers {
        let handoff = Arc::clone(&handoff);
        let spawned = std::thread::Builder::new()
            .name(format!("worker-{n}"))
            .spawn(move || worker(endpoint, &handoff, default_config, stop));
        match spawned {
            Ok(_) => started += 1,
            Err(e) => log::error!("cannot start FastCGI worker {n}: {e}; going on with fewer"),
        }
    }
    if started == 0 {
        // Exiting lets the process manager (systemd, mod_fcgid) start another try.
        log::error!("no FastCGI worker could start; exiting");
        return 1;
    }
    poller.run()
}

/// A graceful stop. A request that has been read is finished — its transaction committed
/// or rolled back, its answer sent, its line logged — before the process exits; nothing new
/// is started once SIGTERM has arrived. (Killing the process mid-payment would not break
/// exactly-once, the server rolls back, but the terminal would get an error and retry.)
#[derive(Default)]
struct Stop {
    stopping: AtomicBool,
    in_flight: AtomicUsize,
}

/// How long a stop waits for the requests in flight: a pay waits at most `lock_timeout`
/// per statement, and process managers send SIGKILL after their own limit anyway.
const STOP_GRACE: Duration = Duration::from_secs(60);

impl Stop {
    /// Blocks SIGTERM and SIGINT in this thread (and so in the workers it starts) and
    /// waits for them in a thread of their own.
    fn install(&'static self) -> Result<(), String> {
        // SAFETY: sigset_t is plain data initialised by sigemptyset before use; the mask
        // change affects only this thread and the threads it starts afterwards.
        let set = unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGTERM);
            libc::sigaddset(&mut set, libc::SIGINT);
            let rc = libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
            if rc != 0 {
                return Err(std::io::Error::from_raw_os_error(rc).to_string());
            }
            set
        };
        std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                let mut signal = 0;
                // SAFETY: `set` and `signal` are valid for the call.
                while unsafe { libc::sigwait(&set, &mut signal) } != 0 {}
                self.stopping.store(true, Ordering::SeqCst);
                let deadline = Instant::now() + STOP_GRACE;
                while self.in_flight.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(5));
                }
                std::process::exit(0);
            })
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// Claims a request for serving until the returned guard is dropped; `None` once
    /// stopping (the request is dropped unserved, which the web server reports as an error
    /// the caller retries).
    fn begin(&self) -> Option<InFlight<'_>> {
        // Counted first, checked second; the signal thread sets first, counts second: one
        // of the two sees the other.
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        let guard = InFlight(self);
        (!self.stopping.load(Ordering::SeqCst)).then_some(guard)
    }
}

/// A request being served; dropping it (also on a panic) lets a stop proceed.
struct InFlight<'a>(&'a Stop);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

fn worker(endpoint: &Endpoint, handoff: &Handoff, default_config: &Path, stop: &Stop) {
    let mut conns = Connections::persistent();
    loop {
        let stream = handoff.take();
        // serve_safely already catches a panic in a request; this is for one in the
        // connection's own handling, which must cost that connection, not a worker.
        let kept = catch_unwind(AssertUnwindSafe(|| {
            next_request(endpoint, stream, &mut conns, default_config, stop)
        }));
        match kept {
            Ok(Some(stream)) => handoff.give_back(stream),
            Ok(None) => handoff.closed(),
            Err(_) => {
                log::error!("FastCGI connection handling panicked; connection dropped");
                conns.done(false);
                handoff.closed();
            }
        }
    }
}

/// Reads and serves the next request of a connection that has bytes to read. Returns the
/// connection if the web server keeps it for more requests: the next one may come much
/// later, and it is the poller that waits for it, not this worker.
fn next_request(
    endpoint: &Endpoint,
    mut stream: Stream,
    conns: &mut Connections,
    default_config: &Path,
    stop: &Stop,
) -> Option<Stream> {
    let fcgi = match fastcgi::read_next(&mut stream) {
        Ok(Next::Request(r)) => r,
        Ok(Next::Idle) => return Some(stream),
        Ok(Next::Closed) => return None,
        Err(e) => {
            log::warn!("{e}; closing the connection");
            return None;
        }
    };
    // Stopping: the request is dropped unserved (see Stop::begin).
    let in_flight = stop.begin()?;
    let started = Instant::now();
    let request = Request::read(|k| fcgi.var(k), &mut Cursor::new(&fcgi.stdin));
    let config_path = fcgi
        .var("PAYSYS_CONFIG")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| default_config.to_path_buf());
    let mut served = serve_safely(endpoint, &request, &config_path, conns);
    let answer = fastcgi::response(fcgi.id, &served.reply.response.to_bytes());
    let (sent, kept) = if served.history.is_none() {
        // The line first: once the web server has the answer, the process may be stopped
        // at any moment, and an answered request must not go unlogged.
        record(&request, &mut served, conns, started);
        let sent = stream.write_all(&answer).and_then(|()| stream.flush());
        let kept = (sent.is_ok() && fcgi.keep_conn).then_some(stream);
        (sent, kept)
    } else {
        // With a request-history row to write (an INSERT: a commit, which waits for the
        // disk), the answer goes first, so that the caller does not wait for the row; a
        // connection the web server does not keep is closed with it. The row and the line
        // follow while the request still counts as in flight, so that a stop (SIGTERM)
        // waits for them as well. (A kept connection's next request waits for them; the
        // web server's other connections go to the other workers.)
        let sent = stream.write_all(&answer).and_then(|()| stream.flush());
        let kept = (sent.is_ok() && fcgi.keep_conn).then_some(stream);
        record(&request, &mut served, conns, started);
        (sent, kept)
    };
    drop(in_flight);
    if let Err(e) = &sent {
        log::error!("cannot write the answer to the web server: {e}");
    }
    kept
}
