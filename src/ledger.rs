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
//! refused as a conflict if they do not. Any other error leaves nothing committed and is
//! a [`LedgerError`], which the protocol answers as *temporary*: the retry then finds the
//! committed row or none.

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

/// Nothing was committed by this request; the caller should retry.
#[derive(Debug)]
pub enum LedgerError {
    Database(mysql::Error),
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
            tx.commit()?;
            Ok(Paid::New { prv_txn })
        }
    }
}

/// The txn was committed before (the duplicate key said so): same payment or a conflict?
fn repeat(conn: &mut Conn, system: &str, pay: &Pay) -> Result<Paid, LedgerError> {
    let stored = find(conn, system, &pay.txn_id)?.ok_or(LedgerError::Vanished)?;
    if stored.subscriber_id == pay.account.subscriber_id() && stored.sum == pay.sum {
        Ok(Paid::Repeat {
            prv_txn: stored.prv_txn,
        })
    } else {
        Ok(Paid::Conflict {
            prv_txn: stored.prv_txn,
            account: stored.account,
            sum: stored.sum,
        })
    }
}

/// The committed payment for (system, txn_id), if any.
pub fn find(conn: &mut Conn, system: &str, txn_id: &TxnId) -> Result<Option<Stored>, mysql::Error> {
    let row: Option<(u64, String, u64, String)> = conn.exec_first(
        "SELECT id, account, subscriber_id, CAST(amount AS CHAR) FROM paysys_txn WHERE system_name = ? AND txn_id = ?",
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
