//! `paysys requests`: the request history (`[log] database = true`) read back, one line
//! per request; and its old rows deleted, a thousand at a time ([`crate::history::purge`]).

use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{Duration, Local, NaiveDate};

use crate::config::Config;
use crate::history::{self, Filter, Row};

pub const USAGE: &str = "usage: paysys requests [--system S] [--txn T] [--account A] [--from YYYY-MM-DD] [--to YYYY-MM-DD] [--config CONFIG]
       paysys requests --purge-before YYYY-MM-DD [--config CONFIG]
       paysys requests --purge [--config CONFIG]
  The request history ([log] database = true): every request a known payment system made
  (a terminal's check, pay, status, cancel; a card provider's callback; a statement pull's
  call to the bank) and our answer, oldest first, at most 10000, one line each:
    <id> <time> <system> ip=… <method> cmd=… txn=… account=… sum=… status=ok|error
    result=… prv_txn=… uid=… error=\"…\" request=\"…\" response=\"…\"
  Secrets of the requests (signatures, tokens, card data) were masked before they were
  written. On ABillS the rows are ABillS's paysys_requests (its own script's as well):
  --txn and --account find the rows whose request names them as a whole word, and --txn
  also those of the payment's paysys_log row. --from/--to: on or after/before these days.
  --purge-before D deletes the rows from before day D; --purge those older than
  [log] keep_days (default 92; 0 keeps all), as etc/systemd/paysys-requests-purge.timer
  does daily; both a thousand rows per statement, so requests writing meanwhile never
  wait long.
  Exit 0: listed (also none) or purged; 2: usage, config or database error.";

const OK: u8 = 0;
const ERROR: u8 = 2;
const LIMIT: u32 = 10_000;

#[derive(Debug, Default)]
struct Args {
    filter: Filter,
    purge_before: Option<NaiveDate>,
    purge: bool,
    config: Option<PathBuf>,
}

fn day(name: &str, text: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|_| format!("{name} '{text}' is not a date YYYY-MM-DD"))
}

/// `None`: `--help`.
fn parse_args(args: &[String]) -> Result<Option<Args>, String> {
    let mut a = Args::default();
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        if matches!(arg.as_str(), "-h" | "--help") {
            return Ok(None);
        }
        if arg == "--purge" {
            a.purge = true;
            continue;
        }
        let value = rest
            .next()
            .ok_or_else(|| format!("{arg}: a value is missing"))?;
        let twice = || format!("{arg} given twice");
        match arg.as_str() {
            "--system" if a.filter.system.is_none() => a.filter.system = Some(value.clone()),
            "--txn" if a.filter.txn.is_none() => a.filter.txn = Some(value.clone()),
            "--account" if a.filter.account.is_none() => a.filter.account = Some(value.clone()),
            "--from" if a.filter.from.is_none() => a.filter.from = Some(day(arg, value)?),
            "--to" if a.filter.to.is_none() => a.filter.to = Some(day(arg, value)?),
            "--purge-before" if a.purge_before.is_none() => a.purge_before = Some(day(arg, value)?),
            "--config" if a.config.is_none() => a.config = Some(PathBuf::from(value)),
            "--system" | "--txn" | "--account" | "--from" | "--to" | "--purge-before"
            | "--config" => return Err(twice()),
            other => return Err(format!("unknown option '{other}'")),
        }
    }
    let filtered = a.filter.system.is_some()
        || a.filter.txn.is_some()
        || a.filter.account.is_some()
        || a.filter.from.is_some()
        || a.filter.to.is_some();
    if (a.purge || a.purge_before.is_some()) && filtered {
        return Err("a purge takes no filter: it deletes every system's old rows".into());
    }
    if a.purge && a.purge_before.is_some() {
        return Err("--purge or --purge-before, not both".into());
    }
    Ok(Some(a))
}

pub fn command(args: &[String], config_path: impl Fn(Option<PathBuf>) -> PathBuf) -> u8 {
    let args = match parse_args(args) {
        Ok(Some(a)) => a,
        Ok(None) => {
            println!("{USAGE}");
            return OK;
        }
        Err(why) => {
            eprintln!("paysys requests: {why}\n{USAGE}");
            return ERROR;
        }
    };
    match run(&args, &config_path(args.config.clone())) {
        Ok(()) => OK,
        Err(why) => {
            eprintln!("paysys requests: {why}");
            ERROR
        }
    }
}

fn run(args: &Args, path: &Path) -> Result<(), String> {
    let config = Config::load(path).map_err(|e| e.to_string())?;
    let usage = if args.purge || args.purge_before.is_some() {
        crate::db::Use::Write
    } else {
        crate::db::Use::Read
    };
    let mut conn =
        crate::db::connect(&config.database, usage).map_err(|e| format!("database: {e}"))?;
    let before = match (args.purge, args.purge_before) {
        (_, Some(day)) => Some(day.and_time(chrono::NaiveTime::MIN)),
        (true, None) if config.log.keep_days == 0 => {
            eprintln!("paysys requests: [log] keep_days = 0: every row is kept");
            return Ok(());
        }
        (true, None) => Some(
            (Local::now().date_naive() - Duration::days(i64::from(config.log.keep_days)))
                .and_time(chrono::NaiveTime::MIN),
        ),
        (false, None) => None,
    };
    if let Some(before) = before {
        let deleted = history::purge(&mut conn, config.database.billing, before)?;
        eprintln!(
            "paysys requests: {deleted} rows from before {} deleted",
            before.format("%Y-%m-%d")
        );
        return Ok(());
    }
    if !config.log.database {
        eprintln!(
            "paysys requests: note: [log] database is off, so no new rows are written \
             (the rows below are from before, or ABillS's own)"
        );
    }
    // Each row is written as it comes, none kept: the listing may be long (10000 rows of
    // up to 16000 characters each).
    let mut out = std::io::stdout().lock();
    let mut failed = None;
    let n = history::list(
        &mut conn,
        &config,
        &args.filter,
        LIMIT,
        &mut |row| match writeln!(out, "{}", line(&row)) {
            Ok(()) => true,
            Err(e) => {
                failed = Some(e);
                false
            }
        },
    )?;
    match failed.or_else(|| out.flush().err()) {
        None => {
            eprintln!("paysys requests: {n} rows");
            Ok(())
        }
        Some(e) => Err(format!("output: {e}")),
    }
}

/// One row on one line, as the log line writes fields.
pub fn line(r: &Row) -> String {
    let mut line = crate::journal::Line::plain(&format!("{} {}", r.id, r.at))
        .field("system", &r.system)
        .field("ip", &r.caller)
        .field("method", &r.method)
        .field("cmd", &r.command)
        .field("txn", &r.txn_id)
        .field("account", &r.account)
        .field("sum", &r.sum)
        .field("status", if r.failed { "error" } else { "ok" })
        .field("result", &r.result);
    if r.prv_txn != 0 {
        line = line.field("prv_txn", &r.prv_txn.to_string());
    }
    if r.uid != 0 {
        line = line.field("uid", &r.uid.to_string());
    }
    if !r.error.is_empty() {
        line = line.quoted("error", &r.error);
    }
    line.quoted_whole("request", &r.request)
        .quoted_whole("response", &r.response)
        .finish()
        .trim_end()
        .to_string()
}
