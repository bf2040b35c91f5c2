//! The only code that moves money.
//!
//! A payment is one database transaction:
//!
//! 1. `INSERT` our row into `paysys_txn`, whose `UNIQUE (system_name, txn_id)` key is the
//!    exactly-once guarantee. A concurrent insert of the same txn waits on that key until
//!    the first transaction ends, then fails with a duplicate-key error — never
//!    SELECT-then-INSERT, which two processes can both pass.
//! 2. The billing credits the subscriber (its payment row, its balance).
//! 3. Our row learns the billing's payment id; `COMMIT`.
//!
//! Success is reported only after `COMMIT` returned OK. A duplicate key means the txn was
//! paid before: the stored row is the first answer, given again if account and sum match,
//! refused as a conflict if they do not. Any other error is a [`LedgerError`], which the
//! protocol answers as *temporary*: the retry then finds the committed row or none. Every
//! such error leaves nothing committed but one: a connection lost after `COMMIT` was sent
//! ([`LedgerError::CommitUnknown`]), where only the database knows — and says so to the
//! retry, or to `paysys txn`.

use std::net::IpAddr;

use mysql::prelude::Queryable;
use mysql::{Conn, TxOpts};

use crate::billing::{Billing, Credit, Credited};
use crate::db::{server_code, ER_DUP_ENTRY, ER_LOCK_DEADLOCK};
use crate::domain::{Amount, TxnId};
use crate::outcome::Pay;

/// How often a transaction chosen as a deadlock victim is tried again. InnoDB rolled it
/// back whole, so trying again is safe.
const DEADLOCK_ATTEMPTS: u32 = 3;

/// The payment could not be confirmed; the caller should retry. Nothing was committed by
/// this request, except possibly in the [`LedgerError::CommitUnknown`] case.
#[derive(Debug)]
pub enum LedgerError {
    /// The statement failed before COMMIT, or the server refused the COMMIT: rolled back.
    Database(mysql::Error),
    /// COMMIT was sent and no answer came back: the payment may or may not be committed.
    /// `paysys txn` (or the terminal's retry) tells which.
    CommitUnknown(mysql::Error),
    /// The duplicate key said the txn exists, yet its row could not be read back. Rows are
    /// never deleted by us, so only a hand in the database does this; retry, don't guess.
    Vanished,
}

impl From<mysql::Error> for LedgerError {
    fn from(e: mysql::Error) -> Self {
        LedgerError::Database(e)
    }
}

impl std::fmt::Display for LedgerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LedgerError::Database(e) => e.fmt(f),
            LedgerError::CommitUnknown(e) => write!(f, "no answer to COMMIT: {e}"),
            LedgerError::Vanished => f.write_str("paysys_txn row of a duplicate txn_id is missing"),
        }
    }
}

/// How a pay ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Paid {
    /// Committed now.
    New { prv_txn: u64 },
    /// Committed earlier with the same account and sum: the first answer again.
    Repeat { prv_txn: u64 },
    /// Committed earlier with another account or sum: nothing done now.
    Conflict {
        prv_txn: u64,
        account: String,
        sum: Amount,
    },
    /// The subscriber does not exist; rolled back.
    NoSubscriber,
}

/// A committed payment, as `paysys_txn` holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub prv_txn: u64,
    pub account: String,
    pub subscriber_id: u64,
    pub sum: Amount,
}

pub fn pay(
    conn: &mut Conn,
    billing: &dyn Billing,
    system: &str,
    pay: &Pay,
    caller: Option<IpAddr>,
) -> Result<Paid, LedgerError> {
    let mut attempt = 1;
    loop {
        match try_pay(conn, billing, system, pay, caller) {
            Err(LedgerError::Database(e))
                if server_code(&e) == Some(ER_LOCK_DEADLOCK) && attempt < DEADLOCK_ATTEMPTS =>
            {
                attempt += 1;
            }
            result => return result,
        }
    }
}

fn try_pay(
    conn: &mut Conn,
    billing: &dyn Billing,
    system: &str,
    pay: &Pay,
    caller: Option<IpAddr>,
) -> Result<Paid, LedgerError> {
    let mut tx = conn.start_transaction(TxOpts::default())?;
    let inserted = tx.exec_drop(
        "INSERT INTO paysys_txn (system_name, txn_id, account, subscriber_id, amount, txn_date, created, caller_ip) \
         VALUES (?, ?, ?, ?, CAST(? AS DECIMAL(16,2)), ?, NOW(), ?)",
        (
            system,
            pay.txn_id.as_str(),
            pay.account.as_str(),
            pay.account.subscriber_id(),
            pay.sum.to_string(),
            pay.txn_date.sql(),
            caller.map(|ip| ip.to_string()).unwrap_or_default(),
        ),
    );
    match inserted {
        Ok(()) => {}
        Err(e) if server_code(&e) == Some(ER_DUP_ENTRY) => {
            tx.rollback()?;
            return repeat(conn, system, pay);
        }
        Err(e) => return Err(e.into()),
    }
    let prv_txn = tx.last_insert_id().unwrap_or(0);
    let credit = Credit {
        system,
        txn_id: &pay.txn_id,
        account: &pay.account,
        amount: pay.sum,
        txn_date: pay.txn_date,
        caller,
        prv_txn,
    };
    match billing.credit(&mut tx, &credit)? {
        Credited::NoSubscriber => {
            tx.rollback()?;
            Ok(Paid::NoSubscriber)
        }
        Credited::Done { payment_ref } => {
            tx.exec_drop(
                "UPDATE paysys_txn SET payment_ref = ? WHERE id = ?",
                (payment_ref, prv_txn),
            )?;
            match tx.commit() {
                Ok(()) => Ok(Paid::New { prv_txn }),
                // The server answered: it rolled the transaction back (a deadlock or a
                // cluster conflict at commit). Nothing was credited.
                Err(e) if server_code(&e).is_some() => Err(e.into()),
                // No answer to COMMIT (connection lost, timeout): the server may have
                // committed. Still a temporary answer — the retry finds the row or none —
                // but nobody may read this as "not written".
                Err(e) => Err(LedgerError::CommitUnknown(e)),
            }
        }
    }
}

/// The txn was committed before (the duplicate key said so): same payment or a conflict?
fn repeat(conn: &mut Conn, system: &str, pay: &Pay) -> Result<Paid, LedgerError> {
    settled(conn, system, pay)?.ok_or(LedgerError::Vanished)
}

/// What a pay of an already committed txn is answered: the first answer if account and sum
/// match, a conflict if they do not; `None` if the txn was never committed.
///
/// The endpoint asks this before it refuses a pay for today's limits (window, sums): a
/// retry of a payment committed under earlier ones must get its first answer, not a final
/// refusal the terminal would act on (the subscriber has the money).
pub fn settled(conn: &mut Conn, system: &str, pay: &Pay) -> Result<Option<Paid>, mysql::Error> {
    let Some(stored) = find(conn, system, &pay.txn_id)? else {
        return Ok(None);
    };
    Ok(Some(
        if stored.subscriber_id == pay.account.subscriber_id() && stored.sum == pay.sum {
            Paid::Repeat {
                prv_txn: stored.prv_txn,
            }
        } else {
            Paid::Conflict {
                prv_txn: stored.prv_txn,
                account: stored.account,
                sum: stored.sum,
            }
        },
    ))
}

/// The committed payment for (system, txn_id), if any.
///
/// A *locking* read: if a pay of this txn is in flight (its row inserted, not yet
/// committed), this waits for it to end — at most the connection's lock timeout, after
/// which the caller answers "temporary" — instead of answering "no such txn" a moment
/// before the payment commits. A plain consistent read would not see the uncommitted row,
/// and a caller told "unknown" may cancel or re-route a payment that is about to succeed.
/// The shared lock lasts only this statement (autocommit).
pub fn find(conn: &mut Conn, system: &str, txn_id: &TxnId) -> Result<Option<Stored>, mysql::Error> {
    let row: Option<(u64, String, u64, String)> = conn.exec_first(
        "SELECT id, account, subscriber_id, CAST(amount AS CHAR) FROM paysys_txn WHERE system_name = ? AND txn_id = ? LOCK IN SHARE MODE",
        (system, txn_id.as_str()),
    )?;
    Ok(row.and_then(|(prv_txn, account, subscriber_id, sum)| {
        Some(Stored {
            prv_txn,
            account,
            subscriber_id,
            sum: Amount::parse(&sum).ok()?,
        })
    }))
}

/// A `paysys_txn` row, for the admin (`paysys txn`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub prv_txn: u64,
    pub system: String,
    pub txn_id: String,
    pub account: String,
    pub subscriber_id: u64,
    pub amount: String,
    pub txn_date: String,
    pub created: String,
    pub caller_ip: String,
    pub payment_ref: u64,
}

impl Record {
    /// Label and value of each column, in the order an admin reads them.
    pub fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("prv_txn", self.prv_txn.to_string()),
            ("account", self.account.clone()),
            ("subscriber", self.subscriber_id.to_string()),
            ("sum", self.amount.clone()),
            ("txn_date", self.txn_date.clone()),
            ("committed at", self.created.clone()),
            ("caller", self.caller_ip.clone()),
            ("billing row", self.payment_ref.to_string()),
        ]
    }
}

/// A `paysys_txn` row as [`lookup`] selects it, column by column.
type RecordRow = (
    u64,
    String,
    String,
    String,
    u64,
    String,
    String,
    String,
    String,
    u64,
);

/// Every committed payment with this txn id (of `system`, if given). Only committed rows
/// exist, so an empty answer means: not committed.
pub fn lookup(
    conn: &mut Conn,
    txn_id: &TxnId,
    system: Option<&str>,
) -> Result<Vec<Record>, mysql::Error> {
    let rows: Vec<RecordRow> = conn.exec(
        "SELECT id, system_name, txn_id, account, subscriber_id, CAST(amount AS CHAR), \
             CAST(txn_date AS CHAR), CAST(created AS CHAR), caller_ip, payment_ref \
             FROM paysys_txn WHERE txn_id = ? AND (? IS NULL OR system_name = ?) ORDER BY id",
        (txn_id.as_str(), system, system),
    )?;
    Ok(rows
        .into_iter()
        .map(
            |(
                prv_txn,
                system,
                txn_id,
                account,
                subscriber_id,
                amount,
                txn_date,
                created,
                caller_ip,
                payment_ref,
            )| {
                Record {
                    prv_txn,
                    system,
                    txn_id,
                    account,
                    subscriber_id,
                    amount,
                    txn_date,
                    created,
                    caller_ip,
                    payment_ref,
                }
            },
        )
        .collect())
}
