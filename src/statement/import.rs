//! A statement's rows, credited: what `paysys statement import` and `pull` do with the rows
//! a reader ([`crate::statement::onec`], [`crate::statement::privat`], …) gives.
//!
//! For every row, in order:
//!
//! 1. Skipped, listed with the reason, and not stored: a row that could not be read, a
//!    debit, another currency than the account's, a row not posted yet (it comes back
//!    posted), a row on another of the company's accounts.
//! 2. Seen before and closed (credited, a settlement, ignored by the admin): nothing.
//! 3. The admin's rules ([`crate::statement::matching`]): a settlement is stored as such,
//!    never credited; accounts read from the purpose (or mapped from the payer's code) are
//!    looked up in the billing. Exactly one subscriber: credited through the ledger — the
//!    bank's system and the row's id are the payment's (system, txn id), the same UNIQUE
//!    key every payment has, so no file, overlap or pull credits a row twice. None, or
//!    several: the row waits in the queue with the reason (`paysys statement list`).
//!
//! Nothing is guessed: a payer's name that must match and does not, a purpose naming two
//! subscribers, a billing that refuses the subscriber (no bill, payments off) all queue
//! the row. `dry_run` decides every row and writes nothing.

use std::time::Instant;

use chrono::{NaiveDateTime, NaiveTime};

use crate::billing::{self, Billing};
use crate::config::{Config, System};
use crate::db::Connections;
use crate::domain::{Account, Domain, TxnDate, TxnId};
use crate::ledger::{self, PayOrder};
use crate::outcome::{Echo, Fault, Outcome, Pay};
use crate::statement::matching::{self, Verdict};
use crate::statement::store::{self, Pending, State};
use crate::statement::{Direction, RowError, StatementRow};

/// How an import runs.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Decide every row, write nothing.
    pub dry_run: bool,
    /// Where the rows came from (a file name, `pull 2026-12-01..2026-12-05`), kept with
    /// each row.
    pub source: String,
}

/// What became of one row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fate {
    /// Not considered (not stored): why.
    Skipped(String),
    /// Could not be read.
    Unreadable(String),
    /// Handled before (its state then).
    Seen(String),
    /// Credited now (or, in a dry run, would be) to `account`.
    Credited {
        account: String,
        prv_txn: Option<u64>,
    },
    /// Credited before under its id (an earlier import whose row record was lost).
    CreditedBefore { account: String, prv_txn: u64 },
    /// A payment network's lump sum: listed for `paysys reconcile`.
    Settlement(String),
    /// In the queue for the admin: unmatched or ambiguous, and why.
    Queued { state: State, reason: String },
    /// Not decided: the database failed (the next import tries again).
    Failed(String),
}

/// One row's line of the import's listing.
#[derive(Debug, Clone)]
pub struct Line {
    pub row: usize,
    pub id: String,
    pub date: String,
    pub amount: String,
    pub fate: Fate,
}

impl std::fmt::Display for Line {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match &self.fate {
            Fate::Skipped(why) => format!("skipped: {why}"),
            Fate::Unreadable(why) => format!("unreadable: {why}"),
            Fate::Seen(state) => format!("seen before ({state})"),
            Fate::Credited {
                account,
                prv_txn: Some(p),
            } => format!("credited to {account} (prv_txn {p})"),
            Fate::Credited {
                account,
                prv_txn: None,
            } => format!("would be credited to {account}"),
            Fate::CreditedBefore { account, prv_txn } => {
                format!("credited before to {account} (prv_txn {prv_txn})")
            }
            Fate::Settlement(rule) => format!("settlement ({rule}): not credited"),
            Fate::Queued { state, reason } => format!("{}: {reason}", state.name()),
            Fate::Failed(why) => format!("not decided: {why}"),
        };
        write!(
            f,
            "row {} {} {} {} {what}",
            self.row, self.date, self.id, self.amount
        )
    }
}

/// What an import did, for its summary line and exit code.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub rows: usize,
    pub credited: usize,
    pub seen: usize,
    pub settlements: usize,
    pub queued: usize,
    pub skipped: usize,
    pub unreadable: usize,
    pub failed: usize,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} rows: {} credited, {} seen before, {} settlements, {} queued for the admin, \
             {} skipped, {} unreadable, {} not decided (database)",
            self.rows,
            self.credited,
            self.seen,
            self.settlements,
            self.queued,
            self.skipped,
            self.unreadable,
            self.failed
        )
    }
}

impl Summary {
    /// Adds `other`'s counts to these.
    pub fn add(&mut self, other: &Summary) {
        self.rows += other.rows;
        self.credited += other.credited;
        self.seen += other.seen;
        self.settlements += other.settlements;
        self.queued += other.queued;
        self.skipped += other.skipped;
        self.unreadable += other.unreadable;
        self.failed += other.failed;
    }

    fn count(&mut self, fate: &Fate) {
        self.rows += 1;
        match fate {
            Fate::Skipped(_) => self.skipped += 1,
            Fate::Unreadable(_) => self.unreadable += 1,
            Fate::Seen(_) | Fate::CreditedBefore { .. } => self.seen += 1,
            Fate::Credited { .. } => self.credited += 1,
            Fate::Settlement(_) => self.settlements += 1,
            Fate::Queued { .. } => self.queued += 1,
            Fate::Failed(_) => self.failed += 1,
        }
    }
}

/// The id a row is credited under (`paysys_txn.txn_id`, ABillS's `ext_id` after the
/// prefix): the bank's id when it is a payment id as every protocol's is (letters, digits,
/// `-_.:{}`), else `x:` and a digest of it (Monobank's ids end in `=`) — one id per row,
/// the same on every import.
pub fn txn_id_of(row_id: &str) -> TxnId {
    TxnId::parse_token(row_id).unwrap_or_else(|_| {
        use sha2::{Digest, Sha256};
        let digest = Sha256::digest(row_id.as_bytes());
        let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
        // 34 characters of [x:0-9a-f]: always a token.
        TxnId::parse_token(&format!("x:{hex}")).unwrap_or_else(|_| unreachable!())
    })
}

/// How many rows' decisions are written to `paysys_statement` in one transaction. Each
/// commit waits for the server's log to reach the disk (a few milliseconds, as long as the
/// rest of a credited row's work together): a credit's own transaction is the ledger's,
/// but its row's record, and an unmatched row's or a settlement's, wait for the next batch.
const BATCH: usize = 100;

/// Imports `rows` into `bank`'s account, calling `line` for every row; the summary when
/// the rows ran out. Only a database that cannot be reached at all stops it (`Err`): a row
/// that fails is [`Fate::Failed`] and the next import tries it again.
///
/// Rows' decisions are written [`BATCH`] at a time, in one transaction, and their lines are
/// given once they are written: should the write fail, every row of the batch says so
/// (as each would had its own write failed) — a credited row that it was credited but not
/// recorded, which the next import records ([`Fate::CreditedBefore`]: the ledger's key,
/// not this record, is what credits a row once).
pub fn import(
    config: &Config,
    bank: &System,
    rows: impl Iterator<Item = Result<StatementRow, RowError>>,
    options: &Options,
    conns: &mut Connections,
    line: &mut dyn FnMut(&Line),
) -> Result<Summary, String> {
    let billing = billing::of(config.database.billing);
    let mut summary = Summary::default();
    let mut batch: Vec<(Line, Option<Pending>)> = Vec::with_capacity(BATCH);
    for row in rows {
        let (number, id, date, amount, fate, pending) = match row {
            Err(e) => (
                e.row,
                e.id.map(|i| i.to_string()).unwrap_or_default(),
                String::new(),
                String::new(),
                Fate::Unreadable(e.why),
                None,
            ),
            Ok(row) => {
                // A row the batch has closed already (the same row twice in a file).
                let closed = batch.iter().rev().find_map(|(_, p)| {
                    p.as_ref()
                        .filter(|p| p.row.id == row.id && !p.state.open())
                        .map(|p| p.state)
                });
                let (fate, pending) = match closed {
                    Some(state) => (Fate::Seen(state.name().into()), None),
                    None => match one(config, billing, bank, &row, options, conns) {
                        Ok(decided) => decided,
                        Err(e) => {
                            write(config, conns, &mut batch, &mut summary, line);
                            return Err(e);
                        }
                    },
                };
                (
                    row.row,
                    row.id.to_string(),
                    row.date.format("%Y-%m-%d").to_string(),
                    row.amount.to_string(),
                    fate,
                    pending,
                )
            }
        };
        batch.push((
            Line {
                row: number,
                id,
                date,
                amount,
                fate,
            },
            pending,
        ));
        if batch.len() >= BATCH {
            write(config, conns, &mut batch, &mut summary, line);
        }
    }
    write(config, conns, &mut batch, &mut summary, line);
    Ok(summary)
}

/// Writes the batch's decisions in one transaction, then gives and counts its lines —
/// each row whose decision was to be written marked failed if the write failed.
fn write(
    config: &Config,
    conns: &mut Connections,
    batch: &mut Vec<(Line, Option<Pending>)>,
    summary: &mut Summary,
    line: &mut dyn FnMut(&Line),
) {
    let pending: Vec<Pending> = batch.iter().filter_map(|(_, p)| p.clone()).collect();
    let failed = if pending.is_empty() {
        None
    } else {
        match conns.get(&config.database, crate::db::Use::Write) {
            Err(e) => Some(e),
            Ok(conn) => store::record_all(conn, &pending)
                .err()
                .map(|e| e.to_string()),
        }
    };
    for (mut row_line, pending) in batch.drain(..) {
        if let (Some(e), Some(_)) = (&failed, &pending) {
            row_line.fate = match row_line.fate {
                Fate::Credited {
                    prv_txn: Some(p), ..
                }
                | Fate::CreditedBefore { prv_txn: p, .. } => Fate::Failed(format!(
                    "credited (prv_txn {p}), but its row not recorded: {e}; the next import \
                     records it"
                )),
                _ => Fate::Failed(e.clone()),
            };
        }
        summary.count(&row_line.fate);
        line(&row_line);
    }
}

/// Why a row is not one of this account's credits, if it is not.
fn skipped(bank: &System, row: &StatementRow) -> Option<String> {
    let account = bank.statement()?;
    if row.direction == Direction::Debit {
        return Some("a debit".into());
    }
    if let Some(currency) = &row.currency {
        if *currency != account.currency {
            return Some(format!(
                "in {currency}, the account is in {}",
                account.currency
            ));
        }
    }
    if !row.posted {
        return Some("not posted by the bank yet: imported again once it is".into());
    }
    if let (Some(ours), Some(iban)) = (&row.our_account, &account.iban) {
        if ours != iban {
            return Some(format!("on account {ours}, not {iban}"));
        }
    }
    None
}

/// One readable row: its fate, and its decision for `paysys_statement` (written by
/// [`write`], none in a dry run).
fn one(
    config: &Config,
    billing: &dyn Billing,
    bank: &System,
    row: &StatementRow,
    options: &Options,
    conns: &mut Connections,
) -> Result<(Fate, Option<Pending>), String> {
    if let Some(why) = skipped(bank, row) {
        return Ok((Fate::Skipped(why), None));
    }
    let conn = conns.get(&config.database, crate::db::Use::Write)?;
    let failed = |e: mysql::Error| (Fate::Failed(e.to_string()), None);
    let seen = match store::find(conn, &bank.name, row.id.as_str()) {
        Ok(seen) => seen,
        Err(e) => return Ok(failed(e)),
    };
    if let Some(seen) = &seen {
        if !seen.state.open() {
            return Ok((Fate::Seen(seen.state.name().into()), None));
        }
    }
    let txn_id = txn_id_of(row.id.as_str());
    let record = |state: State, reason: &str, account: &str, prv_txn| {
        (!options.dry_run).then(|| Pending {
            bank: bank.name.clone(),
            row: row.clone(),
            txn_id: txn_id.as_str().into(),
            source: options.source.clone(),
            state,
            reason: reason.into(),
            account: account.into(),
            prv_txn,
            admin: String::new(),
        })
    };
    let mut verdict = matching::decide(&config.statement.rules, &bank.name, row);
    // A payer code nobody in the billing has says nothing: the rules below it decide.
    while let Verdict::PayerCodeInBilling { rule, code } = &verdict {
        match billing.payer_code_accounts(conn, bank, code) {
            Ok(found) if found.is_empty() => {
                verdict =
                    matching::decide_after(&config.statement.rules, &bank.name, row, Some(rule));
            }
            Ok(found) => {
                verdict = Verdict::Accounts {
                    rule,
                    accounts: found,
                    payer_name: false,
                };
            }
            Err(e) => return Ok(failed(e)),
        }
    }
    let accounts = match verdict {
        Verdict::Settlement { rule } => {
            let reason = format!("rule at {}", rule.place());
            let pending = record(State::Settlement, &reason, "", None);
            return Ok((Fate::Settlement(reason), pending));
        }
        Verdict::NoRule => {
            let reason = "no rule reads an account from the purpose or the payer's code";
            return Ok(queue(&record, State::Unmatched, reason.into()));
        }
        Verdict::Accounts {
            accounts,
            payer_name,
            ..
        } => (accounts, payer_name),
        // Resolved by the loop above; never here.
        Verdict::PayerCodeInBilling { code, .. } => {
            return Ok((
                Fate::Failed(format!("payer code {code} was not looked up")),
                None,
            ))
        }
    };
    let (texts, payer_name) = accounts;
    // Every account text the rule read, looked up: one subscriber, or the queue.
    let mut found: Vec<(u64, Account, String)> = Vec::new();
    let mut nobody: Vec<String> = Vec::new();
    for text in &texts {
        let account = match Account::parse_by(text, &bank.account) {
            Ok(a) => a,
            Err(why) => {
                nobody.push(format!("'{text}' ({why})"));
                continue;
            }
        };
        match billing.find(conn, bank, &account, Domain::default()) {
            Ok(Ok(s)) => {
                if !found.iter().any(|(id, _, _)| *id == s.id) {
                    found.push((s.id, account, s.name));
                }
            }
            Ok(Err(refusal)) => nobody.push(format!("'{text}' ({})", refusal.detail())),
            Err(e) => return Ok(failed(e)),
        }
    }
    let (account, name) = match found.len() {
        0 => {
            let reason = format!("no subscriber: {}", nobody.join(", "));
            return Ok(queue(&record, State::Unmatched, reason));
        }
        1 => {
            let (_, account, name) = found.remove(0);
            (account, name)
        }
        _ => {
            let named: Vec<String> = found
                .iter()
                .map(|(id, a, _)| format!("'{}' (subscriber {id})", a.as_str()))
                .collect();
            let reason = format!("names several subscribers: {}", named.join(", "));
            return Ok(queue(&record, State::Ambiguous, reason));
        }
    };
    if payer_name && !matching::payer_is(&row.payer_name, &name) {
        let reason = format!(
            "account '{}' is {}, the payer is '{}': the rule wants their names to match",
            account.as_str(),
            crate::outcome::mask_name(&name),
            row.payer_name
        );
        return Ok(queue(&record, State::Unmatched, reason));
    }
    // The same payment may have come before through another kind of statement (a 1C
    // export, then the bank's API): its id differs there, so the ledger cannot tell. A row
    // like a credited one of another kind waits for the admin instead of a second credit.
    match store::credited_elsewhere(conn, &bank.name, row) {
        Ok(Some((number, other, source))) => {
            let reason = format!(
                "maybe the same payment as row {number} ({other}, from {source}), credited \
                 already: the same day, sum and payer in another kind of statement; assign \
                 it if it is another payment, or ignore it"
            );
            return Ok(queue(&record, State::Ambiguous, reason));
        }
        Ok(None) => {}
        Err(e) => return Ok(failed(e)),
    }
    if options.dry_run {
        let fate = Fate::Credited {
            account: account.as_str().into(),
            prv_txn: None,
        };
        return Ok((fate, None));
    }
    // The money: through the ledger, as every payment.
    let when = NaiveDateTime::new(row.date, row.time.unwrap_or(NaiveTime::MIN));
    let params = vec![
        ("statement".to_string(), options.source.clone()),
        ("row".to_string(), row.id.to_string()),
        (
            "purpose".to_string(),
            crate::ledger::column_text(&row.purpose, 200),
        ),
        (
            "payer".to_string(),
            crate::ledger::column_text(&row.payer_name, 100),
        ),
    ];
    let outcome = credit(
        config,
        bank,
        conns,
        &txn_id,
        &account,
        row.amount,
        when,
        params,
        Vec::new(),
    );
    Ok(match outcome {
        Outcome::Paid {
            prv_txn, repeat, ..
        } => {
            let pending = record(State::Credited, "", account.as_str(), Some(prv_txn));
            let fate = if repeat {
                Fate::CreditedBefore {
                    account: account.as_str().into(),
                    prv_txn,
                }
            } else {
                Fate::Credited {
                    account: account.as_str().into(),
                    prv_txn: Some(prv_txn),
                }
            };
            (fate, pending)
        }
        Outcome::Failed(fault) => (Fate::Failed(fault.detail()), None),
        Outcome::Refused(refusal) => {
            let reason = format!("not credited: {}", refusal.detail());
            queue(&record, State::Unmatched, reason)
        }
        other => (Fate::Failed(format!("unexpected outcome {other:?}")), None),
    })
}

/// Credits `sum` to `account` as the payment (`bank`, `txn_id`) through the ledger — exactly
/// once by that pair, as every payment — and writes its journal line (`cmd=statement`);
/// the outcome, a repeat answered as the first time. Shared by the import and the admin's
/// `assign`.
#[allow(clippy::too_many_arguments)]
pub fn credit(
    config: &Config,
    bank: &System,
    conns: &mut Connections,
    txn_id: &TxnId,
    account: &Account,
    sum: crate::domain::Amount,
    when: NaiveDateTime,
    params: Vec<(String, String)>,
    notes: Vec<String>,
) -> Outcome {
    let started = Instant::now();
    let pay = Pay {
        txn_id: txn_id.clone(),
        account: account.clone(),
        sum,
        txn_date: TxnDate::received(when),
    };
    let order = PayOrder {
        system: bank,
        pay: &pay,
        caller: None,
        domain: Domain::default(),
        params: &params,
        booked: None,
        word: None,
        pinned: None,
        created: None,
        one_call: config.database.procedure,
    };
    let billing = billing::of(config.database.billing);
    let outcome = match conns.get(&config.database, crate::db::Use::Write) {
        Err(why) => Outcome::Failed(Fault::DatabaseWrite(why)),
        Ok(conn) => match ledger::pay(conn, billing, &order) {
            Ok(paid) => crate::pipeline::paid_outcome(paid, sum),
            Err(e) => Outcome::Failed(Fault::DatabaseWrite(e.to_string())),
        },
    };
    let echo = Echo {
        command: "statement".into(),
        txn_id: txn_id.as_str().into(),
        account: account.as_str().into(),
        sum: sum.to_string(),
        params,
        ..Echo::default()
    };
    crate::pipeline::record_unrequested(
        config,
        bank,
        echo,
        outcome,
        Domain::default(),
        notes,
        conns,
        started,
    )
}

/// A row's decision for `paysys_statement` (state, reason, account, prv_txn); none in a
/// dry run.
type Record<'a> = dyn Fn(State, &str, &str, Option<u64>) -> Option<Pending> + 'a;

/// The row into the queue (`state`, `reason`).
fn queue(record: &Record<'_>, state: State, reason: String) -> (Fate, Option<Pending>) {
    let pending = record(state, &reason, "", None);
    (Fate::Queued { state, reason }, pending)
}
