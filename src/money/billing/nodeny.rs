//! NoDeny: `users` and `pays`.
//!
//! A subscriber is a `users` row with `mid = 0` (other rows are aliases of a main account).
//! A payment is a `pays` row (`mid` = the subscriber, `cash`, `time` as a Unix time) and
//! `users.balance += cash`. A cancel deletes it as NoDeny's own admin interface deletes a
//! payment, leaving the two events NoDeny leaves ([`NoDeny::cancel`], INSTALL section 17). Old installs keep money in `FLOAT(10,2)`; we send sums as
//! decimal text and do the arithmetic as `DECIMAL`, so a `DECIMAL` column stays exact and a
//! `FLOAT` one is no worse than NoDeny itself makes it.

use std::net::IpAddr;

use mysql::prelude::Queryable;
use mysql::{Conn, Transaction};

use crate::billing::{Billing, BillingRow, Credit, Credited, Uncredit, Uncredited};
use crate::config::{BillingKind, System};
use crate::domain::{parse_balance, Account, AccountKey, Amount, Domain, PaymentCode};
use crate::outcome::{Refusal, Subscriber};

pub mod audit;

pub struct NoDeny;

/// The server's "command denied" errors: a table's privilege, a column's.
const ER_TABLEACCESS_DENIED_ERROR: u16 = 1142;
const ER_COLUMNACCESS_DENIED_ERROR: u16 = 1143;

/// `pays.type` of a payment that adds money to the balance.
const PAYS_TYPE_PAYMENT: u8 = 10;
/// `pays.category` we file terminal payments under (NoDeny's default category).
const PAYS_CATEGORY: u16 = 0;
/// `pays.type` of an event (NoDeny's "Событие": no money).
const PAYS_TYPE_EVENT: u8 = 50;
/// `pays.category` of an event keeping a changed or deleted record as it was ("Измененная
/// запись"); its reason is `id:type:category:cash:bonus:` and the old reason.
pub const PAYS_CATEGORY_OLD_RECORD: u16 = 501;
/// `pays.category` of the event "record changed" ("Изменение записи"); its reason is
/// `old:new`, the 501 row and the record now, `old:0` when it was deleted.
pub const PAYS_CATEGORY_CHANGE: u16 = 502;

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
                admin_ip(c.caller),
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
            guard: None,
        })
    }

    fn payment_rows(
        &self,
        conn: &mut Conn,
        system: &System,
        txn_id: &str,
        payment_ref: u64,
        _prv_txn: u64,
    ) -> Result<Vec<BillingRow>, mysql::Error> {
        let rows = pays_rows(
            conn,
            "SELECT *, FROM_UNIXTIME(time) AS time_as_date FROM pays WHERE id = ?",
            (payment_ref,),
        )?;
        if !rows.is_empty() {
            return Ok(rows);
        }
        // Deleted: by a cancel, or by an admin in NoDeny — both leave the same two events.
        let subscriber: Option<u64> = conn.exec_first(
            "SELECT subscriber_id FROM paysys_txn WHERE system_name = ? AND txn_id = ?",
            (&system.name, txn_id),
        )?;
        match subscriber {
            Some(id) => reversal_rows(conn, id, payment_ref),
            None => Ok(Vec::new()),
        }
    }

    /// Each kind of statement a pay and a cancel run on NoDeny's tables, as `EXPLAIN`
    /// (which the server checks like the statement, and which changes nothing): an install
    /// upgraded without running the grants file again learns it here, not from a terminal's
    /// cancel answered "later" until someone looks.
    fn grant_problems(&self, conn: &mut Conn) -> Result<Vec<String>, mysql::Error> {
        const PROBES: &[(&str, &str)] = &[
            (
                "raise and lower users.balance",
                "EXPLAIN UPDATE users SET balance = balance WHERE id = 0",
            ),
            (
                "read and lock a pays row (a cancel)",
                "EXPLAIN SELECT mid FROM pays WHERE id = 0 FOR UPDATE",
            ),
            (
                "copy a pays row into pays (a cancel's old record)",
                "EXPLAIN INSERT INTO pays (mid, cash, time, admin_id, admin_ip, office, bonus, \
                 reason, coment, type, category) SELECT mid, 0, time, admin_id, admin_ip, office, \
                 '', reason, coment, type, category FROM pays WHERE id = 0",
            ),
            (
                "delete a pays row (a cancel)",
                "EXPLAIN DELETE FROM pays WHERE id = 0",
            ),
        ];
        let mut problems = Vec::new();
        for (what, probe) in PROBES {
            match conn.query_drop(probe) {
                Ok(()) => {}
                Err(mysql::Error::MySqlError(e))
                    if matches!(
                        e.code,
                        ER_TABLEACCESS_DENIED_ERROR | ER_COLUMNACCESS_DENIED_ERROR
                    ) =>
                {
                    problems.push(format!(
                        "the database user may not {what} ({}): run sql/grants-nodeny.sql \
                         again (INSTALL sections 3 and 17)",
                        e.message
                    ))
                }
                Err(e) => return Err(e),
            }
        }
        Ok(problems)
    }

    /// Reverses the payment as NoDeny's own admin interface does when an admin deletes a
    /// payment ("Удалить запись" in `pays.pl`): the old record kept as an event of category
    /// 501, the `pays` row deleted, an event of category 502 saying so, and
    /// `users.balance -= cash` — here in the ledger's transaction, so the cancel mark in
    /// `paysys_txn` and these rows commit together or not at all.
    ///
    /// Why delete rather than add a negative payment: NoDeny reads a deletion as "this
    /// payment did not happen" everywhere — its income reports (`SUM(cash)` of type 10) no
    /// longer count it on the day it was made, the subscriber's own statistics page no
    /// longer lists it, and the admin's history of the subscriber shows the event "Была
    /// удалена запись" with the old record one click away, as for every deletion. A negative
    /// type-10 row would be a second payment in NoDeny's terms: a debit on the cancel's day,
    /// shown to the subscriber as a withdrawal, tied to nothing in NoDeny's screens.
    ///
    /// The row is reversed only while it is still what the credit wrote (this subscriber,
    /// type 10, this sum): a row deleted or edited in NoDeny since is the admin's, and the
    /// cancel is refused rather than taking the money a second time.
    fn cancel(
        &self,
        tx: &mut Transaction<'_>,
        u: &Uncredit<'_>,
    ) -> Result<Uncredited, mysql::Error> {
        // Locked: an admin deleting or editing it in NoDeny meanwhile waits for this
        // transaction (a second cancel already waits on our paysys_txn row).
        let row: Option<(i64, Option<String>, i64, mysql::Value)> = tx.exec_first(
            "SELECT mid, CAST(cash AS DECIMAL(16,2)), type, cash FROM pays WHERE id = ? FOR UPDATE",
            (u.payment_ref,),
        )?;
        let Some((mid, cash, kind, stored)) = row else {
            return Ok(Uncredited::Gone(format!(
                "pays row {} of prv_txn {} (txn {}) is gone: deleted in NoDeny already? \
                 The balance was not touched",
                u.payment_ref, u.prv_txn, u.txn_id
            )));
        };
        let cash = cash.as_deref().and_then(parse_balance);
        if i64::try_from(u.subscriber_id).ok() != Some(mid)
            || !same_cash(&stored, cash, u.amount)
            || kind != i64::from(PAYS_TYPE_PAYMENT)
        {
            return Ok(Uncredited::Gone(format!(
                "pays row {} of prv_txn {} (txn {}) was changed in NoDeny since it was paid \
                 (now mid {mid}, cash {}, type {kind}; paid {} to {}): reverse it there",
                u.payment_ref,
                u.prv_txn,
                u.txn_id,
                cash.map(|c| c.to_string()).unwrap_or_else(|| "?".into()),
                u.amount,
                u.subscriber_id
            )));
        }
        // The balance as the credit raised it: the same DECIMAL text, subtracted.
        tx.exec_drop(
            "UPDATE users SET balance = balance - CAST(? AS DECIMAL(16,2)) WHERE id = ?",
            (u.amount.to_string(), u.subscriber_id),
        )?;
        if tx.affected_rows() != 1 {
            return Ok(Uncredited::Gone(format!(
                "subscriber {} of prv_txn {} (txn {}) is no longer in users: nothing reversed",
                u.subscriber_id, u.prv_txn, u.txn_id
            )));
        }
        // NoDeny's "old record" (category 501): the row's own fields, its time and author,
        // and in reason "id:type:category:cash:bonus:" before the old reason — what NoDeny's
        // screens decode. Copied by the server, so that text in the billing's own charset
        // (cp1251, koi8-r) stays byte for byte what it was.
        tx.exec_drop(
            "INSERT INTO pays (mid, cash, time, admin_id, admin_ip, office, bonus, reason, coment, type, category) \
             SELECT mid, 0, time, admin_id, admin_ip, office, '', \
             CONCAT(id, ':', type, ':', category, ':', CAST(cash AS DECIMAL(16,2)), ':', bonus, ':', reason), \
             coment, ?, ? FROM pays WHERE id = ?",
            (PAYS_TYPE_EVENT, PAYS_CATEGORY_OLD_RECORD, u.payment_ref),
        )?;
        let old_record = tx.last_insert_id().unwrap_or(0);
        tx.exec_drop("DELETE FROM pays WHERE id = ?", (u.payment_ref,))?;
        // NoDeny's "record changed" event (category 502), "old:new" with new 0: deleted. Its
        // author is the system (admin_id 0) at the caller's address; its comment says why.
        tx.exec_drop(
            "INSERT INTO pays (mid, cash, time, admin_id, admin_ip, office, bonus, reason, coment, type, category) \
             VALUES (?, 0, UNIX_TIMESTAMP(), 0, ?, 0, '', ?, ?, ?, ?)",
            (
                u.subscriber_id,
                admin_ip(u.caller),
                format!("{old_record}:0"),
                format!(
                    "paysys cancel: {} txn_id={} prv_txn={}",
                    u.system.name, u.txn_id, u.prv_txn
                ),
                PAYS_TYPE_EVENT,
                PAYS_CATEGORY_CHANGE,
            ),
        )?;
        Ok(Uncredited::Done)
    }
}

/// Whether a `pays.cash` holds what crediting `amount` wrote into it (a cancel, `paysys
/// audit`). A `DECIMAL` column holds the sum itself (`cash`, read as DECIMAL). A
/// `FLOAT(10,2)` one (old installs; sent in the binary protocol as a 4-byte float) holds the
/// sum rounded to a float's 24 bits, which above 131 072 is coarser than a kopeck: 150000.37
/// is kept as 150000.375 and reads back as 150000.38. There the stored float is compared
/// with the float the server makes of the sum (its DECIMAL as the nearest double, then the
/// nearest float): exactly equal or not, never within a tolerance, so a row edited to another
/// sum is refused unless the column cannot tell that sum from ours.
fn same_cash(stored: &mysql::Value, cash: Option<Amount>, amount: Amount) -> bool {
    match stored {
        mysql::Value::Float(f) => amount
            .to_string()
            .parse::<f64>()
            .is_ok_and(|sum| *f == sum as f32),
        _ => cash == Some(amount),
    }
}

/// `pays.admin_ip` of a row paysys writes: the caller's IPv4 address, as NoDeny stores an
/// admin's (`INET_ATON`); 0 for none or IPv6.
fn admin_ip(caller: Option<IpAddr>) -> u32 {
    match caller {
        Some(IpAddr::V4(v4)) => u32::from(v4),
        _ => 0,
    }
}

/// NoDeny's rows of the deleted payment `payment_ref` of subscriber `subscriber_id`, as a
/// cancel leaves them (and as NoDeny's admin interface leaves a payment its admin deleted):
/// the old record (type 50, category 501, reason `payment_ref:10:…`) and the event of its
/// deletion (type 50, category 502, reason `old record's id:0`). Empty: no such deletion.
pub fn reversal_rows(
    conn: &mut Conn,
    subscriber_id: u64,
    payment_ref: u64,
) -> Result<Vec<BillingRow>, mysql::Error> {
    pays_rows(
        conn,
        "SELECT e.*, FROM_UNIXTIME(e.time) AS time_as_date FROM pays o JOIN pays e \
         ON e.mid = o.mid AND (e.id = o.id OR (e.type = ? AND e.category = ? \
         AND e.reason = CONCAT(o.id, ':0'))) \
         WHERE o.mid = ? AND o.type = ? AND o.category = ? AND o.reason LIKE CONCAT(?, ':%') \
         ORDER BY e.id",
        (
            PAYS_TYPE_EVENT,
            PAYS_CATEGORY_CHANGE,
            subscriber_id,
            PAYS_TYPE_EVENT,
            PAYS_CATEGORY_OLD_RECORD,
            payment_ref,
        ),
    )
}

fn pays_rows(
    conn: &mut Conn,
    sql: &str,
    params: impl Into<mysql::Params>,
) -> Result<Vec<BillingRow>, mysql::Error> {
    let rows: Vec<mysql::Row> = conn.exec(sql, params)?;
    Ok(rows
        .into_iter()
        .map(|row| BillingRow {
            table: "pays",
            fields: crate::db::row_fields(row),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sum(text: &str) -> Amount {
        Amount::parse(text).unwrap()
    }

    #[test]
    fn a_float_cash_is_what_the_sum_becomes_in_a_float_exactly() {
        // 150000.37 and 150000.38 are both kept as 150000.375; 150000.36 as 150000.359375.
        let kept = mysql::Value::Float(150_000.375_f64 as f32);
        assert!(same_cash(&kept, Some(sum("150000.38")), sum("150000.37")));
        assert!(!same_cash(&kept, Some(sum("150000.38")), sum("150000.36")));
        assert!(!same_cash(&kept, Some(sum("150000.38")), sum("150000.39")));
        assert!(same_cash(
            &mysql::Value::Float(10.1),
            Some(sum("10.10")),
            sum("10.10")
        ));
        assert!(!same_cash(
            &mysql::Value::Float(10.1),
            Some(sum("10.10")),
            sum("10.11")
        ));
        // DECIMAL: the sum itself.
        let decimal = mysql::Value::Bytes(b"150000.37".to_vec());
        assert!(same_cash(
            &decimal,
            Some(sum("150000.37")),
            sum("150000.37")
        ));
        assert!(!same_cash(
            &decimal,
            Some(sum("150000.37")),
            sum("150000.38")
        ));
        assert!(!same_cash(&decimal, None, sum("150000.37")));
    }
}
