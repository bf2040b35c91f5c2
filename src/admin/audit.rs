//! `paysys audit`: our ledger against the billing's own rows, read only.
//!
//! For every payment in `paysys_txn` committed or cancelled in the range, the billing's rows
//! of it must exist and agree; a cancelled one's must have been reversed. Rows of our
//! systems that the ledger does not know (written by hand, or by the old script still
//! running after the switch) are listed. Where the billing keeps what makes it checkable,
//! the balances of the subscribers our payments touched must add up. What each billing's
//! tables can and cannot tell is its own ([`crate::billing::audit`]); this module runs the
//! questions, prints each discrepancy with what to do, and the totals.
//!
//! **A payment's day here is the day paysys committed it** (`paysys_txn.created`, or
//! `cancelled` for a cancel): when its billing rows were written. `report` and `reconcile`
//! go by `txn_date`, the provider's time, to add up to a registry; a bank statement
//! credited a week after its date is audited on the day it was credited.
//!
//! Every query streams inside one read-only transaction with a consistent snapshot: a
//! payment committing during the audit is seen whole or not at all, and memory does not
//! grow with the range (bench_10_audit: a million payments).
//!
//! Card orders (`paysys_order`) and bank statements (`paysys_statement`) credit through the
//! same ledger, so auditing `paysys_txn` covers them.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::PathBuf;

use chrono::{Duration, Local, NaiveDate, NaiveDateTime, NaiveTime};
use mysql::prelude::Queryable;
use mysql::{AccessMode, TxOpts};

use crate::billing::audit::{Finding, Kind, Scope, Tally};
use crate::config::Config;
use crate::progress::Progress;
use crate::reconcile::money;

/// Exit codes: nothing found, discrepancies, or the run failed.
pub const CLEAN: u8 = 0;
pub const FOUND: u8 = 1;
pub const ERROR: u8 = 2;

/// The longest range one audit covers.
const MAX_DAYS: i64 = 3700;

pub const USAGE: &str =
    "usage: paysys audit [--from YYYY-MM-DD] [--to YYYY-MM-DD] [--system S] [CONFIG]

Our ledger (paysys_txn) against the billing's own rows, for the payments committed or
cancelled from --from to --to (both days included; default: yesterday and today):

  missing       a payment of ours without its billing row (NoDeny pays; ABillS payments
                or paysys_log), or whose row is another payment's
  differs       the billing's row names another subscriber, sum, status (ABillS paysys_log:
                2 complete), bill or system than our ledger
  not-reversed  a payment cancelled in paysys whose billing rows are still there
  unknown       a billing row of our systems that paysys_txn does not know: written by
                hand, or by the old script still running after the switch (looked for from
                paysys's first payment on)
  balance       ABillS: a bill's deposit moved between two recorded changes (payments,
                fees, our cancels) by more than they account for; NoDeny: a balance that is
                not the sum of the subscriber's pays rows (as NoDeny's own check holds)

Each discrepancy is one line: the kind, system= and txn=, what was found and what to do.
Then the totals, and what this billing's tables cannot tell. One line also goes to the
log file (cmd=audit). A payment's day is the day paysys committed it, when its billing
rows were written (not its txn_date). Only reads; one consistent snapshot.

  --from, --to  the days (the config's time zone, as the database's DATETIMEs)
  --system S    only this payment system's payments and rows
  CONFIG        default: $PAYSYS_CONFIG, or ../etc/paysys.toml next to this program

Run daily by etc/systemd/paysys-audit.timer: a failed unit is a discrepancy or an error.

Exit status: 0 nothing found, 1 discrepancies, 2 usage, config or database error.";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Args {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub system: Option<String>,
    pub config: Option<PathBuf>,
}

/// `None` for `--help`. `today`: the default range is the day before it and it.
pub fn parse_args(args: &[String], today: NaiveDate) -> Result<Option<Args>, String> {
    let (mut from, mut to, mut system, mut config) = (None, None, None, None);
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        if arg == "-h" || arg == "--help" {
            return Ok(None);
        }
        if !arg.starts_with('-') {
            if config.is_some() {
                return Err(format!("one CONFIG, not also '{arg}'"));
            }
            config = Some(PathBuf::from(arg));
            continue;
        }
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(v.to_string())),
            _ => (arg.as_str(), None),
        };
        let value = match inline.or_else(|| rest.next().cloned()) {
            Some(v) => v,
            None => return Err(format!("{name} needs a value")),
        };
        let date = |value: &str| {
            NaiveDate::parse_from_str(value, "%Y-%m-%d")
                .map_err(|_| format!("{name} '{value}' is not a date YYYY-MM-DD"))
        };
        match name {
            "--from" => from = Some(date(&value)?),
            "--to" => to = Some(date(&value)?),
            "--system" => system = Some(value),
            _ => return Err(format!("unknown option {name}")),
        }
    }
    let to = to.unwrap_or(today);
    let from = from.unwrap_or_else(|| to.pred_opt().unwrap_or(to));
    if to < from {
        return Err(format!("--to {to} is before --from {from}"));
    }
    if (to - from).num_days() >= MAX_DAYS {
        return Err(format!("at most {MAX_DAYS} days in one audit"));
    }
    Ok(Some(Args {
        from,
        to,
        system,
        config,
    }))
}

/// What the run found, for the totals and the log line.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub by_kind: BTreeMap<Kind, u64>,
    pub ledger: Tally,
    pub unknown: Tally,
    pub balances: Tally,
    pub switch: Option<NaiveDateTime>,
    /// How long each question took the server and us, in seconds.
    pub took: [f64; 3],
}

impl Summary {
    pub fn discrepancies(&self) -> u64 {
        self.by_kind.values().sum()
    }

    fn counted(&self) -> String {
        let parts: Vec<String> = Kind::ALL
            .iter()
            .filter_map(|k| {
                self.by_kind
                    .get(k)
                    .filter(|n| **n > 0)
                    .map(|n| format!("{n} {}", k.name()))
            })
            .collect();
        parts.join(", ")
    }
}

/// A finding as one line: greppable by kind, `system=` and `txn=`, like the log.
pub fn line(f: &Finding) -> String {
    let mut text = f.kind.name().to_string();
    if !f.system.is_empty() {
        text.push_str(&format!(" system={}", f.system));
    }
    if !f.txn_id.is_empty() {
        text.push_str(&format!(" txn={}", f.txn_id));
    }
    format!("{text}: {}. To do: {}.", f.what, f.todo)
}

/// `paysys audit …`; `config_path` resolves the config as the other commands do.
pub fn command(args: &[String], config_path: impl Fn(Option<PathBuf>) -> PathBuf) -> u8 {
    let today = Local::now().date_naive();
    let args = match parse_args(args, today) {
        Ok(Some(a)) => a,
        Ok(None) => {
            println!("{USAGE}");
            return CLEAN;
        }
        Err(why) => {
            eprintln!("paysys audit: {why}\n{USAGE}");
            return ERROR;
        }
    };
    let config = match Config::load(&config_path(args.config.clone())) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("paysys audit: {e}");
            return ERROR;
        }
    };
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let started = std::time::Instant::now();
    let result = run(&args, &config, &mut out);
    let _ = out.flush();
    let (code, comment) = match &result {
        Ok(s) if s.discrepancies() == 0 => (CLEAN, "clean".to_string()),
        Ok(s) => (FOUND, s.counted()),
        Err(why) => {
            eprintln!("paysys audit: {why}");
            (ERROR, why.clone())
        }
    };
    let summary = result.unwrap_or_default();
    let log = crate::journal::Line::new(Local::now(), std::process::id())
        .field("cmd", "audit")
        .field("from", &args.from.to_string())
        .field("to", &args.to.to_string())
        .field("system", args.system.as_deref().unwrap_or(""))
        .field("result", &code.to_string())
        .field("payments", &summary.ledger.rows.to_string())
        .field("discrepancies", &summary.discrepancies().to_string())
        .field("ms", &started.elapsed().as_millis().to_string())
        .quoted("comment", &comment)
        .finish();
    crate::journal::record(&config.log.file, &log);
    code
}

fn run(args: &Args, config: &Config, out: &mut impl Write) -> Result<Summary, String> {
    let billing = crate::billing::of(config.database.billing);
    let audit = billing.audit();
    let mut progress = Progress::stderr();
    // The server may sort a year of rows before the first one comes: the socket waits
    // longer than a payment's would.
    let mut database = config.database.clone();
    database.lock_timeout = database.lock_timeout.max(600);
    let mut conn = crate::db::connect(&database, crate::db::Use::Read)
        .map_err(|e| format!("database: {e}"))?;
    let keys: u64 = conn
        .query_first(
            "SELECT COUNT(DISTINCT INDEX_NAME) FROM information_schema.STATISTICS \
             WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'paysys_txn' \
             AND INDEX_NAME IN ('payment_ref', 'cancelled')",
        )
        .map_err(|e| format!("database: {e}"))?
        .unwrap_or(0);
    if keys < 2 {
        return Err(
            "paysys_txn lacks the keys payment_ref and cancelled the audit reads \
                    by: load sql/paysys.sql again (it adds them and changes nothing else)"
                .into(),
        );
    }
    // One snapshot for every question, and a server-side promise that nothing is written.
    let mut tx = conn
        .start_transaction(
            TxOpts::default()
                .set_with_consistent_snapshot(true)
                .set_access_mode(Some(AccessMode::ReadOnly)),
        )
        .map_err(|e| format!("database: {e}"))?;
    let switch: Option<String> = tx
        .query_first("SELECT CAST(MIN(created) AS CHAR) FROM paysys_txn")
        .map_err(|e| format!("paysys_txn: {e}"))?
        .flatten();
    let switch = switch
        .as_deref()
        .and_then(|s| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").ok());
    let from = args.from.and_time(NaiveTime::MIN);
    let to = args
        .to
        .succ_opt()
        .ok_or_else(|| format!("{} has no next day", args.to))?
        .and_time(NaiveTime::MIN);
    let systems = config
        .systems
        .iter()
        .filter(|s| args.system.as_deref().is_none_or(|only| only == s.name))
        .collect::<Vec<_>>();
    let scope = Scope {
        from,
        to,
        system: args.system.as_deref(),
        systems,
        switch,
        reaches_now: to > Local::now().naive_local() - Duration::seconds(1),
    };

    let w = |e: io::Error| format!("stdout: {e}");
    writeln!(
        out,
        "paysys audit {} .. {}, {}, {} (payments committed or cancelled on these days)",
        args.from,
        args.to,
        match &args.system {
            Some(s) => format!("system {s}"),
            None => "all systems".into(),
        },
        billing.kind().name()
    )
    .map_err(w)?;
    if let Some(name) = args.system.as_deref().filter(|_| scope.systems.is_empty()) {
        writeln!(
            out,
            "note: system {name} is not in the config: its payments are checked, but the \
             billing's rows of it are not looked for (their marks come from the config)"
        )
        .map_err(w)?;
    }
    let mut summary = Summary {
        switch,
        ..Summary::default()
    };
    // Findings are printed as they come; a write error ends the run (exit 2).
    let mut failed: Option<io::Error> = None;
    let mut by_kind: BTreeMap<Kind, u64> = BTreeMap::new();
    let mut found = |f: Finding| {
        *by_kind.entry(f.kind).or_default() += 1;
        if failed.is_none() {
            if let Err(e) = writeln!(out, "{}", line(&f)) {
                failed = Some(e);
            }
        }
    };
    let clock = std::time::Instant::now();
    progress.stage("checking paysys_txn against the billing's rows…");
    summary.ledger = audit.ledger(&mut tx, &scope, &mut found)?;
    summary.took[0] = clock.elapsed().as_secs_f64();
    progress.stage("looking for billing rows paysys_txn does not know…");
    summary.unknown = audit.unknown(&mut tx, &scope, &mut found)?;
    summary.took[1] = clock.elapsed().as_secs_f64() - summary.took[0];
    progress.stage("checking the balances of the subscribers paid…");
    summary.balances = audit.balances(&mut tx, &scope, &mut found)?;
    summary.took[2] = clock.elapsed().as_secs_f64() - summary.took[0] - summary.took[1];
    drop(tx);
    progress.clear();
    if let Some(e) = failed {
        return Err(w(e));
    }
    summary.by_kind = by_kind;
    write_totals(out, &summary, &scope, audit.limits()).map_err(w)?;
    Ok(summary)
}

fn write_totals(
    out: &mut impl Write,
    s: &Summary,
    scope: &Scope<'_>,
    limits: &[&str],
) -> io::Result<()> {
    writeln!(out)?;
    let l = &s.ledger;
    writeln!(
        out,
        "payments   {} checked: {} credited ({}), {} cancelled{}",
        l.rows,
        l.rows - l.cancelled,
        money(l.kopecks),
        l.cancelled,
        if l.unjudged > 0 {
            format!(
                "; {} not judged (paid by the old script before the switch under a cut id: \
                 see paysys txn)",
                l.unjudged
            )
        } else {
            String::new()
        }
    )?;
    match scope.billing_range() {
        Some((from, _)) => writeln!(
            out,
            "billing    {} rows of our systems not in paysys_txn (looked for from {from}{})",
            s.unknown.rows,
            if Some(from) == scope.switch {
                ", paysys's first payment"
            } else {
                ""
            }
        )?,
        None => writeln!(
            out,
            "billing    not looked at: paysys committed no payment before the range ends"
        )?,
    }
    writeln!(
        out,
        "balances   {} checked{}{}",
        s.balances.rows,
        if s.balances.unjudged > 0 {
            format!(
                ", {} steps not judged (two kinds of change in one second)",
                s.balances.unjudged
            )
        } else {
            String::new()
        },
        if scope.reaches_now {
            ""
        } else {
            " (the range ends before today: today's balances not compared)"
        }
    )?;
    writeln!(
        out,
        "took       {:.1} s: payments {:.1} s, billing rows {:.1} s, balances {:.1} s",
        s.took.iter().sum::<f64>(),
        s.took[0],
        s.took[1],
        s.took[2]
    )?;
    for limit in limits {
        writeln!(out, "not checkable: {limit}")?;
    }
    if s.discrepancies() == 0 {
        writeln!(out, "\nclean: no discrepancy")
    } else {
        writeln!(
            out,
            "\n{} discrepancies: {}",
            s.discrepancies(),
            s.counted()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    fn day(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn arguments() {
        let today = day("2026-12-07");
        let a = parse_args(&[], today).unwrap().unwrap();
        assert_eq!((a.from, a.to), (day("2026-12-06"), today));
        assert_eq!((a.system, a.config), (None, None));
        let a = parse_args(
            &s(&[
                "--from=2026-01-01",
                "--to",
                "2026-01-31",
                "--system",
                "osmp",
                "x.toml",
            ]),
            today,
        )
        .unwrap()
        .unwrap();
        assert_eq!((a.from, a.to), (day("2026-01-01"), day("2026-01-31")));
        assert_eq!(a.system.as_deref(), Some("osmp"));
        assert_eq!(a.config, Some(PathBuf::from("x.toml")));
        // --to alone: that day and the one before.
        let a = parse_args(&s(&["--to", "2026-03-10"]), today)
            .unwrap()
            .unwrap();
        assert_eq!(a.from, day("2026-03-09"));
        // --from alone: from then to today.
        let a = parse_args(&s(&["--from", "2026-11-01"]), today)
            .unwrap()
            .unwrap();
        assert_eq!((a.from, a.to), (day("2026-11-01"), today));
        assert_eq!(parse_args(&s(&["--help"]), today).unwrap(), None);
        for bad in [
            &["--from", "2026-12-08", "--to", "2026-12-07"][..],
            &["--from", "7.12.2026"],
            &["--since", "2026-12-01"],
            &["--system"],
            &["a.toml", "b.toml"],
        ] {
            assert!(parse_args(&s(bad), today).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_finding_is_one_greppable_line() {
        let f = Finding {
            kind: Kind::Missing,
            system: "osmp".into(),
            txn_id: "666".into(),
            what: "payments row 7 is missing".into(),
            todo: "add it again".into(),
        };
        assert_eq!(
            line(&f),
            "missing system=osmp txn=666: payments row 7 is missing. To do: add it again."
        );
    }
}
