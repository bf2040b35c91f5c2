//! The pipeline of one request, as a CGI executable runs it:
//!
//! request → config → gate → protocol::parse → policy → billing / ledger → protocol::render
//! → journal.
//!
//! [`serve`] decides; it touches no process state, so tests and the admin command line can
//! call it. [`run`] is what `main` calls: it reads the process's CGI environment, writes the
//! answer to stdout and the line to the log, and makes sure no panic reaches the web server.

use std::net::IpAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::Instant;

use chrono::{DateTime, Local};

use crate::billing;
use crate::cgi::Request;
use crate::config::{self, Config};
use crate::db;
use crate::gate;
use crate::journal::{self, Line};
use crate::ledger::{self, Paid};
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

/// Decides one request. `config_path` is the main config file; `now` the server's time.
pub fn serve(
    protocol: &dyn Protocol,
    request: &Request,
    config_path: &Path,
    now: DateTime<Local>,
) -> Served {
    let echo = protocol.echo(request);
    let (outcome, system, log_file, debug) = match Config::load(config_path) {
        Err(e) => {
            let log_file = config::default_log_file(&config::base_of(config_path));
            (Outcome::Failed(Fault::config(e)), None, log_file, false)
        }
        Ok(config) => {
            let (outcome, system) = decide(protocol, request, &config, now);
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
        Ok(command) => match policy::check(system, &command, now.naive_local()) {
            Err(refusal) => Outcome::Refused(refusal),
            Ok(()) => execute(config, &system.name, &command, request.remote_addr),
        },
    };
    (outcome, Some(system.name.clone()))
}

/// The part that talks to the database.
fn execute(config: &Config, system: &str, command: &Command, caller: Option<IpAddr>) -> Outcome {
    let Some(billing) = billing::by_name(&config.database.billing) else {
        // Config loading already refused unknown billings; this is a bug if reached.
        return Outcome::Failed(Fault::Internal(format!(
            "billing '{}' unknown",
            config.database.billing
        )));
    };
    let is_pay = matches!(command, Command::Pay(_));
    let usage = if is_pay {
        db::Use::Write
    } else {
        db::Use::Read
    };
    let mut conn = match db::connect(&config.database, usage) {
        Ok(conn) => conn,
        // A pay that could not even connect was not written: NoDeny's nod13 all the same.
        Err(why) if is_pay => return Outcome::Failed(Fault::DatabaseWrite(why)),
        Err(why) => return Outcome::Failed(Fault::DatabaseRead(why)),
    };
    match command {
        Command::Check(check) => match billing.find(&mut conn, &check.account) {
            Ok(Some(subscriber)) => Outcome::Checked {
                subscriber,
                sum: check.sum,
            },
            Ok(None) => Outcome::Refused(Refusal::NoSuchSubscriber),
            Err(e) => Outcome::Failed(Fault::DatabaseRead(e.to_string())),
        },
        Command::Pay(pay) => match ledger::pay(&mut conn, billing, system, pay, caller) {
            Ok(Paid::New { prv_txn }) => Outcome::Paid {
                prv_txn,
                sum: pay.sum,
                repeat: false,
            },
            Ok(Paid::Repeat { prv_txn }) => Outcome::Paid {
                prv_txn,
                sum: pay.sum,
                repeat: true,
            },
            Ok(Paid::Conflict {
                prv_txn,
                account,
                sum,
            }) => Outcome::Refused(Refusal::Conflict {
                prv_txn,
                account,
                sum,
            }),
            Ok(Paid::NoSubscriber) => Outcome::Refused(Refusal::NoSuchSubscriber),
            Err(e) => Outcome::Failed(Fault::DatabaseWrite(e.to_string())),
        },
        Command::Status(query) => match ledger::find(&mut conn, system, &query.txn_id) {
            Ok(Some(stored)) => Outcome::Found {
                prv_txn: stored.prv_txn,
                sum: stored.sum,
            },
            Ok(None) => Outcome::Refused(Refusal::UnknownTxn),
            Err(e) => Outcome::Failed(Fault::DatabaseRead(e.to_string())),
        },
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
    let request = Request::from_process();
    let exe = std::env::current_exe().ok();
    let env_config = std::env::var_os("PAYSYS_CONFIG")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    let config_path = config::locate(env_config.as_deref(), exe.as_deref());
    let now = Local::now();

    let served = catch_unwind(AssertUnwindSafe(|| {
        serve(protocol, &request, &config_path, now)
    }))
    .unwrap_or_else(|panic| {
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
            log_file: config::default_log_file(&config::base_of(&config_path)),
            debug: false,
        }
    });

    if let Err(e) = served
        .reply
        .response
        .write_to(&mut std::io::stdout().lock())
    {
        log::error!("cannot write the answer to the web server: {e}");
    }
    let line = log_line(&request, &served, Local::now(), std::process::id(), started);
    journal::record(&served.log_file, &line);
    0
}
