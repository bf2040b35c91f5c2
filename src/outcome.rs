//! The vocabulary between the stages: what was asked ([`Command`]), and every way a request
//! can end ([`Outcome`]).
//!
//! A refusal of bad input is a [`Refusal`] value, part of normal flow; an infrastructure
//! fault is a [`Fault`], which every protocol answers with its *temporary* error so that the
//! caller retries. A protocol's `render` is one `match` over [`Outcome`]: a reader sees every
//! ending in one place.

use crate::config::ConfigError;
use crate::domain::{Account, Amount, TxnDate, TxnId};

/// A request, parsed: every field is a domain value.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Check(Check),
    Pay(Pay),
    Status(StatusQuery),
}

impl Command {
    pub fn name(&self) -> &'static str {
        match self {
            Command::Check(_) => "check",
            Command::Pay(_) => "pay",
            Command::Status(_) => "status",
        }
    }
}

/// May this account be paid (and this sum, if given)?
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    pub txn_id: Option<TxnId>,
    pub account: Account,
    pub sum: Option<Amount>,
}

/// Credit `sum` to `account`, once per (system, `txn_id`).
#[derive(Debug, Clone, PartialEq)]
pub struct Pay {
    pub txn_id: TxnId,
    pub account: Account,
    pub sum: Amount,
    pub txn_date: TxnDate,
}

/// Was this txn_id paid, and under which `prv_txn`?
#[derive(Debug, Clone, PartialEq)]
pub struct StatusQuery {
    pub txn_id: TxnId,
}

/// The request is refused; retrying the same request will not help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No `command`, or one this endpoint does not know (NoDeny `nod3`).
    NoCommand(String),
    /// The request cannot be read as a whole (body, repeated keys).
    BadRequest(String),
    BadTxnId(String),
    BadAccount(String),
    NoSuchSubscriber,
    BadSum(String),
    SumBelowMin {
        min: Amount,
    },
    SumAboveMax {
        max: Amount,
    },
    /// Well-formed, but more digits than any sum can have: above every maximum.
    SumTooLarge(String),
    BadTxnDate(String),
    /// NoDeny `nod12`: the terminal's date is too far from ours.
    TxnDateOutOfWindow {
        hours: u32,
    },
    /// The txn_id was already paid with another account or sum; nothing was credited.
    Conflict {
        prv_txn: u64,
        account: String,
        sum: Amount,
    },
    /// `status` for a txn_id we never paid.
    UnknownTxn,
    /// `REMOTE_ADDR` is in no system's allow list.
    CallerNotAllowed,
}

impl Refusal {
    /// What the admin reads in the log.
    pub fn detail(&self) -> String {
        match self {
            Refusal::NoCommand(c) if c.is_empty() => "no command".into(),
            Refusal::NoCommand(c) => format!("unknown command '{c}'"),
            Refusal::BadRequest(why)
            | Refusal::BadTxnId(why)
            | Refusal::BadAccount(why)
            | Refusal::BadSum(why)
            | Refusal::BadTxnDate(why) => why.clone(),
            Refusal::NoSuchSubscriber => "no such subscriber".into(),
            Refusal::SumBelowMin { min } => format!("sum below min_sum {min}"),
            Refusal::SumAboveMax { max } => format!("sum above max_sum {max}"),
            Refusal::SumTooLarge(why) => why.clone(),
            Refusal::TxnDateOutOfWindow { hours } => {
                format!("txn_date more than {hours} h from now")
            }
            Refusal::Conflict {
                prv_txn,
                account,
                sum,
            } => {
                format!("conflict: txn already paid as prv_txn {prv_txn} to account {account} sum {sum}")
            }
            Refusal::UnknownTxn => "no such transaction".into(),
            Refusal::CallerNotAllowed => "caller not in any system's allow list".into(),
        }
    }
}

/// Something on our side failed; the caller should retry later. Nothing was credited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// NoDeny `nod1`.
    ConfigMissing(ConfigError),
    /// NoDeny `nod2`.
    ConfigInvalid(ConfigError),
    /// The database could not be reached or read; nothing was written.
    DatabaseRead(String),
    /// A payment could not be committed (NoDeny `nod13`). The transaction was rolled back or
    /// never committed, so the retry either finds the committed row or pays afresh.
    DatabaseWrite(String),
    /// `COMMIT` was sent and its answer never came (the connection dropped): the payment may
    /// be committed or not. Answered as temporary like [`Fault::DatabaseWrite`] — the retry
    /// gets the first answer if it was — but logged for what it is, so that an admin
    /// reconciling from the log does not conclude that no money moved.
    CommitUnknown(String),
    /// A bug, caught before it reached the web server.
    Internal(String),
}

impl Fault {
    pub fn config(e: ConfigError) -> Fault {
        match e {
            ConfigError::Missing { .. } => Fault::ConfigMissing(e),
            ConfigError::Invalid { .. } => Fault::ConfigInvalid(e),
        }
    }

    pub fn detail(&self) -> String {
        match self {
            Fault::ConfigMissing(e) | Fault::ConfigInvalid(e) => e.to_string(),
            Fault::DatabaseRead(why) => format!("database: {why}"),
            Fault::DatabaseWrite(why) => format!("payment not written: {why}"),
            Fault::CommitUnknown(why) => format!(
                "commit outcome unknown: {why}; the payment may be committed: \
                 `paysys txn TXN --system SYSTEM` shows whether it is, and the retry gets the first answer"
            ),
            Fault::Internal(why) => format!("internal error: {why}"),
        }
    }
}

/// Who a check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscriber {
    pub id: u64,
    pub name: String,
    pub balance: Option<Amount>,
}

/// How a request ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Checked {
        subscriber: Subscriber,
        sum: Option<Amount>,
    },
    /// Committed. `repeat`: this txn_id was paid before and this is the first answer again.
    Paid {
        prv_txn: u64,
        sum: Amount,
        repeat: bool,
    },
    /// `status` of a committed payment.
    Found {
        prv_txn: u64,
        sum: Amount,
    },
    Refused(Refusal),
    Failed(Fault),
}

impl Outcome {
    pub fn prv_txn(&self) -> Option<u64> {
        match self {
            Outcome::Paid { prv_txn, .. } | Outcome::Found { prv_txn, .. } => Some(*prv_txn),
            Outcome::Refused(Refusal::Conflict { prv_txn, .. }) => Some(*prv_txn),
            _ => None,
        }
    }

    /// The human reason, for the log; `None` for plain success.
    pub fn detail(&self) -> Option<String> {
        match self {
            Outcome::Refused(r) => Some(r.detail()),
            Outcome::Failed(f) => Some(f.detail()),
            Outcome::Paid { repeat: true, .. } => {
                Some("repeat: first answer returned, nothing credited".into())
            }
            _ => None,
        }
    }
}

/// The request's fields as the caller sent them, for echoing in the answer and the log even
/// when they did not parse. Raw text: escape before use.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Echo {
    pub command: String,
    pub txn_id: String,
    pub account: String,
    pub sum: String,
    /// The whole request as received, for `[log] debug = true`.
    pub dump: String,
}
