//! The pipeline of one request, as a CGI executable runs it:
//!
//! request → config → gate → protocol::parse → policy → billing / ledger → protocol::render
//! → journal.
//!
//! [`serve`] decides; it touches no process state, so tests and the admin command line can
//! call it. [`run`] is what `main` calls. Started as a CGI, it reads the process's CGI
//! environment, writes the answer to stdout and the line to the log, and exits. Started
//! with a listening socket as standard input, it is a FastCGI responder ([`crate::fastcgi`])
//! and does the same for each request it accepts, keeping its database connection between
//! them. Either way no panic reaches the web server.

use std::io::{Cursor, Write};
use std::net::IpAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Local};

use crate::billing;
use crate::cgi::Request;
use crate::config::{self, Config};
use crate::db::{self, Connections};
use crate::domain::Amount;
use crate::fastcgi::poller::{self, Handoff, Poller};
use crate::fastcgi::{self, Listener, Next, Stream};
use crate::gate;
use crate::journal::{self, Line};
use crate::ledger::{self, LedgerError, Paid};
use crate::outcome::{Command, Echo, Fault, Outcome, Refusal};
use crate::policy;
use crate::protocol::{ParseContext, Protocol, Reply};

/// What a request came to: the answer, and what the journal needs to describe it.
pub struct Served {
    pub reply: Reply,
    pub outcome: Outcome,
    pub echo: Echo,
    /// The system the caller was identified as, if it got that far.
    pub system: Option<String>,
    pub log_file: PathBuf,
    pub debug: bool,
}

/// Decides one request. `config_path` is the main config file; `now` the server's time;
/// `conns` where the database connection comes from.
pub fn serve(
    protocol: &dyn Protocol,
    request: &Request,
    config_path: &Path,
    now: DateTime<Local>,
    conns: &mut Connections,
) -> Served {
    let echo = protocol.echo(request);
    let (outcome, system, log_file, debug) = match Config::load(config_path) {
        Err(e) => {
            let log_file = config::default_log_file(&config::base_of(config_path));
            (Outcome::Failed(Fault::config(e)), None, log_file, false)
        }
        Ok(config) => {
            let (outcome, system) = decide(protocol, request, &config, now, conns);
            (outcome, system, config.log.file.clone(), config.log.debug)
        }
    };
    let reply = protocol.render(&echo, &outcome);
    Served {
        reply,
        outcome,
        echo,
        system,
        log_file,
        debug,
    }
}

fn decide(
    protocol: &dyn Protocol,
    request: &Request,
    config: &Config,
    now: DateTime<Local>,
    conns: &mut Connections,
) -> (Outcome, Option<String>) {
    // The caller first: someone we do not know learns nothing about the request's validity.
    let Some(system) = gate::identify(&config.systems, request.remote_addr, |s| {
        s.protocol == protocol.name()
    }) else {
        return (Outcome::Refused(Refusal::CallerNotAllowed), None);
    };
    let ctx = ParseContext {
        account_key: system.account,
        now: now.naive_local(),
        test: system.test,
    };
    let outcome = match protocol.parse(request, &ctx) {
        Err(refusal) => Outcome::Refused(refusal),
        Ok(command) => match (policy::check(system, &command, &now), &command) {
            // A check or status outside today's limits needs no database to be refused.
            // A pay does: it may be the retry of one committed under earlier limits.
            (Err(refusal), Command::Check(_) | Command::Status(_)) => Outcome::Refused(refusal),
            (admitted, _) => {
                let outcome = execute(
                    config,
                    &system.name,
                    &command,
                    admitted,
                    request.remote_addr,
                    conns,
                );
                // After a database error the connection's state is unknown: never reuse it.
                conns.done(!matches!(outcome, Outcome::Failed(_)));
                outcome
            }
        },
    };
    (outcome, Some(system.name.clone()))
}

/// The part that talks to the database. `admitted`: what the system's limits said of the
/// command.
fn execute(
    config: &Config,
    system: &str,
    command: &Command,
    admitted: Result<(), Refusal>,
    caller: Option<IpAddr>,
    conns: &mut Connections,
) -> Outcome {
    let Some(billing) = billing::by_name(&config.database.billing) else {
        // Config loading already refused unknown billings; this is a bug if reached.
        return Outcome::Failed(Fault::Internal(format!(
            "billing '{}' unknown",
            config.database.billing
        )));
    };
    let is_pay = matches!(command, Command::Pay(_));
    // Pays write; status may wait on a pay of the same txn in flight (ledger::find): both
    // need the lock timeouts. A check only reads what is committed.
    let usage = match command {
        Command::Pay(_) | Command::Status(_) => db::Use::Write,
        Command::Check(_) => db::Use::Read,
    };
    let conn = match conns.get(&config.database, usage) {
        Ok(conn) => conn,
        // A pay that could not even connect was not written: NoDeny's nod13 all the same.
        Err(why) if is_pay => return Outcome::Failed(Fault::DatabaseWrite(why)),
        Err(why) => return Outcome::Failed(Fault::DatabaseRead(why)),
    };
    match command {
        Command::Check(check) => match billing.find(conn, &check.account) {
            Ok(Some(subscriber)) => Outcome::Checked {
                subscriber,
                sum: check.sum,
            },
            Ok(None) => Outcome::Refused(Refusal::NoSuchSubscriber),
            Err(e) => Outcome::Failed(Fault::DatabaseRead(e.to_string())),
        },
        Command::Pay(pay) => match admitted {
            Ok(()) => match ledger::pay(conn, billing, system, pay, caller) {
                Ok(paid) => paid_outcome(paid, pay.sum),
                Err(LedgerError::CommitUnknown(e)) => {
                    Outcome::Failed(Fault::CommitUnknown(e.to_string()))
                }
                Err(e) => Outcome::Failed(Fault::DatabaseWrite(e.to_string())),
            },
            // Outside today's limits: refused, unless this txn was committed before, in
            // which case its first answer stands (invariant 3: the window or the limits may
            // have changed since, and the retry of a paid payment must not be told it failed).
            Err(refusal) => match ledger::settled(conn, system, pay) {
                Ok(Some(paid)) => paid_outcome(paid, pay.sum),
                Ok(None) => Outcome::Refused(refusal),
                // Not knowing whether it is a repeat, a final refusal could be wrong.
                Err(e) => Outcome::Failed(Fault::DatabaseRead(e.to_string())),
            },
        },
        Command::Status(query) => match ledger::find(conn, system, &query.txn_id) {
            Ok(Some(stored)) => Outcome::Found {
                prv_txn: stored.prv_txn,
                sum: stored.sum,
            },
            Ok(None) => Outcome::Refused(Refusal::UnknownTxn),
            Err(e) => Outcome::Failed(Fault::DatabaseRead(e.to_string())),
        },
    }
}

/// The outcome of a pay the ledger has settled.
fn paid_outcome(paid: Paid, sum: Amount) -> Outcome {
    match paid {
        Paid::New { prv_txn } => Outcome::Paid {
            prv_txn,
            sum,
            repeat: false,
        },
        Paid::Repeat { prv_txn } => Outcome::Paid {
            prv_txn,
            sum,
            repeat: true,
        },
        Paid::Conflict {
            prv_txn,
            account,
            sum,
        } => Outcome::Refused(Refusal::Conflict {
            prv_txn,
            account,
            sum,
        }),
        Paid::NoSubscriber => Outcome::Refused(Refusal::NoSuchSubscriber),
    }
}

/// The journal line for a served request.
pub fn log_line(
    request: &Request,
    served: &Served,
    at: DateTime<Local>,
    pid: u32,
    started: Instant,
) -> String {
    let ip = if request.remote_addr_text.is_empty() {
        "-"
    } else {
        &request.remote_addr_text
    };
    let ms = format!("{:.1}", started.elapsed().as_secs_f64() * 1000.0);
    let prv_txn = served
        .outcome
        .prv_txn()
        .map(|p| p.to_string())
        .unwrap_or_default();
    let mut line = Line::new(at, pid)
        .field("ip", ip)
        .field("system", served.system.as_deref().unwrap_or("-"))
        .field("cmd", &served.echo.command)
        .field("txn", &served.echo.txn_id)
        .field("account", &served.echo.account)
        .field("sum", &served.echo.sum)
        .field("result", &served.reply.result)
        .field("prv_txn", &prv_txn)
        .field("ms", &ms)
        .quoted("comment", &served.reply.comment);
    if let Some(detail) = served.outcome.detail() {
        line = line.quoted("detail", &detail);
    }
    if served.debug {
        line = line.quoted("request", &served.echo.dump);
    }
    line.finish()
}

/// `main` of a CGI executable speaking `protocol`. Always answers; returns the exit code.
pub fn run(protocol: &'static dyn Protocol) -> i32 {
    let started = Instant::now();
    let _ = simplelog::WriteLogger::init(
        log::LevelFilter::Warn,
        simplelog::Config::default(),
        std::io::stderr(),
    );
    if let Some(listener) = Listener::from_stdin() {
        return run_fastcgi(protocol, listener);
    }
    let request = Request::from_process();
    let config_path = config_path(std::env::var_os("PAYSYS_CONFIG"));
    let mut conns = Connections::per_request();
    let served = serve_safely(protocol, &request, &config_path, &mut conns);
    if let Err(e) = served
        .reply
        .response
        .write_to(&mut std::io::stdout().lock())
    {
        log::error!("cannot write the answer to the web server: {e}");
    }
    record(&request, &served, started);
    0
}

/// The main config file: `PAYSYS_CONFIG` if set, else `../etc/paysys.toml` beside the
/// executable's directory.
fn config_path(from_env: Option<std::ffi::OsString>) -> PathBuf {
    let exe = std::env::current_exe().ok();
    let env_config = from_env.filter(|v| !v.is_empty()).map(PathBuf::from);
    config::locate(env_config.as_deref(), exe.as_deref())
}

/// [`serve`], with a panic turned into the protocol's temporary error.
fn serve_safely(
    protocol: &dyn Protocol,
    request: &Request,
    config_path: &Path,
    conns: &mut Connections,
) -> Served {
    let now = Local::now();
    catch_unwind(AssertUnwindSafe(|| {
        serve(protocol, request, config_path, now, conns)
    }))
    .unwrap_or_else(|panic| {
        // Whatever the connection was doing when the panic struck, it is not to be trusted.
        conns.done(false);
        let why = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panic".into());
        let outcome = Outcome::Failed(Fault::Internal(why));
        let echo = Echo::default();
        Served {
            reply: protocol.render(&echo, &outcome),
            outcome,
            echo,
            system: None,
            log_file: config::default_log_file(&config::base_of(config_path)),
            debug: false,
        }
    })
}

/// Writes the request's log line (after the answer has gone out).
fn record(request: &Request, served: &Served, started: Instant) {
    let line = log_line(request, served, Local::now(), std::process::id(), started);
    journal::record(&served.log_file, &line);
}

/// How many threads serve FastCGI requests when `PAYSYS_WORKERS` does not say.
/// mod_fcgid sends a process one request at a time, so one is right there; behind nginx,
/// set it to the number of requests to serve at once.
const DEFAULT_WORKERS: usize = 1;
const MAX_WORKERS: usize = 256;

/// The FastCGI responder: the main thread is the [`Poller`], which accepts on `listener`
/// and holds every connection between requests; `PAYSYS_WORKERS` threads serve the
/// requests, one at a time each, each with a database connection of its own. Runs until
/// SIGTERM or SIGINT (how mod_fcgid, systemd and spawn-fcgi stop it), then finishes the
/// requests in flight.
fn run_fastcgi(protocol: &'static dyn Protocol, listener: Listener) -> i32 {
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
    let default_config: &'static Path =
        Box::leak(config_path(std::env::var_os("PAYSYS_CONFIG")).into_boxed_path());
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
            .spawn(move || worker(protocol, &handoff, default_config, stop));
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

fn worker(protocol: &dyn Protocol, handoff: &Handoff, default_config: &Path, stop: &Stop) {
    let mut conns = Connections::persistent();
    loop {
        let stream = handoff.take();
        // serve_safely already catches a panic in a request; this is for one in the
        // connection's own handling, which must cost that connection, not a worker.
        let kept = catch_unwind(AssertUnwindSafe(|| {
            next_request(protocol, stream, &mut conns, default_config, stop)
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
    protocol: &dyn Protocol,
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
    let served = serve_safely(protocol, &request, &config_path, conns);
    // The line first: once the web server has the answer, the process may be stopped
    // at any moment, and an answered request must not go unlogged.
    record(&request, &served, started);
    let answer = fastcgi::response(fcgi.id, &served.reply.response.to_bytes());
    let sent = stream.write_all(&answer).and_then(|()| stream.flush());
    drop(in_flight);
    if let Err(e) = &sent {
        log::error!("cannot write the answer to the web server: {e}");
    }
    (sent.is_ok() && fcgi.keep_conn).then_some(stream)
}
