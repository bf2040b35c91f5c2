//! NoDeny: `users` and `pays`.
//!
//! A subscriber is a `users` row with `mid = 0` (other rows are aliases of a main account).
//! A payment is a `pays` row (`mid` = the subscriber, `cash`, `time` as a Unix time) and
//! `users.balance += cash`. Old installs keep money in `FLOAT(10,2)`; we send sums as
//! decimal text and do the arithmetic as `DECIMAL`, so a `DECIMAL` column stays exact and a
//! `FLOAT` one is no worse than NoDeny itself makes it.

use std::net::IpAddr;

use mysql::prelude::Queryable;
use mysql::{Conn, Transaction};

use crate::billing::{Billing, BillingRow, Credit, Credited, Uncredit, Uncredited};
use crate::config::{BillingKind, System};
use crate::domain::{parse_balance, Account, AccountKey, Domain, PaymentCode};
use crate::outcome::{Refusal, Subscriber};

pub mod audit;

pub struct NoDeny;

/// `pays.type` of a payment that adds money to the balance.
const PAYS_TYPE_PAYMENT: u8 = 10;
/// `pays.category` we file terminal payments under (NoDeny's default category).
const PAYS_CATEGORY: u16 = 0;

impl Billing for NoDeny {
    fn kind(&self) -> BillingKind {
        BillingKind::NoDeny
    }

    fn tables(&self) -> &'static [&'static str] {
        &["users", "pays"]
    }

    fn audit(&self) -> &'static dyn crate::billing::audit::Audit {
        &audit::NoDenyAudit
    }

    fn find(
        &self,
        conn: &mut Conn,
        system: &System,
        account: &Account,
        _domain: Domain,
    ) -> Result<Result<Subscriber, Refusal>, mysql::Error> {
        let Some(id) = account.subscriber_id() else {
            return Ok(Err(Refusal::NoSuchSubscriber));
        };
        let row: Option<(u64, Option<Vec<u8>>, Option<String>)> = conn.exec_first(
            "SELECT id, name, CAST(balance AS DECIMAL(16,2)) FROM users WHERE id = ? AND mid = 0",
            (id,),
        )?;
        Ok(row
            .map(|(id, name, balance)| Subscriber {
                id,
                // NoDeny databases are often cp1251 or koi8-r; the server converts to the
                // connection's utf8mb4, and anything left over must not fail a payment.
                name: name
                    .map(|n| String::from_utf8_lossy(&n).into_owned())
                    .unwrap_or_default(),
                balance: balance.as_deref().and_then(parse_balance),
                // NoDeny's groups are not read: its merchants are picked by account.
                group: None,
                account: Some(match system.account.keys.first() {
                    Some(AccountKey::PaymentCode) => PaymentCode::for_id(id).to_string(),
                    _ => id.to_string(),
                }),
            })
            .ok_or(Refusal::NoSuchSubscriber))
    }

    fn credit(&self, tx: &mut Transaction<'_>, c: &Credit<'_>) -> Result<Credited, mysql::Error> {
        // NoDeny's keys (payment code, id) are numbers: the config allows no other.
        let Some(id) = c.account.subscriber_id() else {
            return Ok(Credited::Refused(Refusal::NoSuchSubscriber));
        };
        // The balance first: it tells whether the subscriber exists (CLIENT_FOUND_ROWS makes
        // affected_rows "rows matched") and takes the row lock that orders payments to one
        // subscriber.
        tx.exec_drop(
            "UPDATE users SET balance = balance + CAST(? AS DECIMAL(16,2)) WHERE id = ? AND mid = 0",
            (c.amount.to_string(), id),
        )?;
        if tx.affected_rows() != 1 {
            return Ok(Credited::Refused(Refusal::NoSuchSubscriber));
        }
        let admin_ip: u32 = match c.caller {
            Some(IpAddr::V4(v4)) => u32::from(v4),
            _ => 0,
        };
        let reason = format!("{} txn_id={}", c.system.name, c.txn_id);
        let coment = format!(
            "paysys prv_txn={} account={}",
            c.txn_row,
            c.account.as_str()
        );
        tx.exec_drop(
            "INSERT INTO pays (mid, cash, time, admin_id, admin_ip, office, bonus, reason, coment, type, category) \
             VALUES (?, CAST(? AS DECIMAL(16,2)), ?, 0, ?, 0, '', ?, ?, ?, ?)",
            (
                id,
                c.amount.to_string(),
                c.txn_date.unix_time(),
                admin_ip,
                reason,
                coment,
                PAYS_TYPE_PAYMENT,
                PAYS_CATEGORY,
            ),
        )?;
        Ok(Credited::Done {
            subscriber_id: id,
            payment_ref: tx.last_insert_id().unwrap_or(0),
            prv_txn: None,
        })
    }

    fn payment_rows(
        &self,
        conn: &mut Conn,
        _system: &System,
        _txn_id: &str,
        payment_ref: u64,
        _prv_txn: u64,
    ) -> Result<Vec<BillingRow>, mysql::Error> {
        let rows: Vec<mysql::Row> = conn.exec(
            "SELECT *, FROM_UNIXTIME(time) AS time_as_date FROM pays WHERE id = ?",
            (payment_ref,),
        )?;
        Ok(rows
            .into_iter()
            .map(|row| BillingRow {
                table: "pays",
                fields: crate::db::row_fields(row),
            })
            .collect())
    }

    /// NoDeny's `osmp.pl` never reversed a payment, and its admins do it by hand in NoDeny:
    /// a cancel is refused rather than guessed at.
    fn cancel(
        &self,
        _tx: &mut Transaction<'_>,
        _payment: &Uncredit<'_>,
    ) -> Result<Uncredited, mysql::Error> {
        Ok(Uncredited::NotSupported)
    }
}
