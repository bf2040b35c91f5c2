//! `paysys audit` on NoDeny: `pays` and `users.balance` against our ledger.
//!
//! A payment of ours is one `pays` row (`paysys_txn.payment_ref`): the subscriber (`mid`),
//! the sum (`cash`), type 10, and `reason` `"<system> txn_id=<txn_id>"` — the mark by which a
//! `pays` row is known to be ours. Rows of NoDeny's `osmp.pl` carry no mark of their own that
//! paysys knows: a row the old script wrote after the switch is not found here (the
//! payment system's registry, `paysys reconcile`, finds it).
//!
//! The balance: NoDeny's own system check (NoDeny+ `kernel/system_check.pm`) holds that a
//! subscriber's `users.balance` is the sum of all their `pays` rows — charges are `pays`
//! rows with a negative `cash`, a payment deleted in NoDeny's interface is deleted with its
//! sum taken off the balance. So the sum is sound to check, for every subscriber we paid.

use std::collections::BTreeSet;

use mysql::prelude::Queryable;
use mysql::{Params, Transaction};

use crate::billing::audit::{
    amount, id_floor, ledger_where, like_prefix, sql_time, take, Audit, Finding, Kind, LedgerRow,
    Scope, Tally, LEDGER_COLUMNS, LEDGER_WIDTH,
};

pub struct NoDenyAudit;

/// `pays.type` of a payment (as [`super`] writes it).
const PAYS_TYPE_PAYMENT: i64 = 10;

/// The `reason` [`super::NoDeny`] writes into a payment's `pays` row.
pub fn reason(system: &str, txn_id: &str) -> String {
    format!("{system} txn_id={txn_id}")
}

/// A `pays` row.
#[derive(Debug, Clone)]
pub struct Pays {
    pub id: u64,
    pub mid: u64,
    pub cash: String,
    /// `cash` as the column holds it (a float on old installs' `FLOAT(10,2)`), for
    /// comparing a sum the way the cancel does.
    pub stored: mysql::Value,
    pub kind: i64,
    pub reason: String,
}

/// NoDeny's "old record" of a deleted `pays` row (`type` 50, `category` 501): what its
/// admin interface, and paysys's cancel, keep of a payment they delete.
pub const PAYS_CATEGORY_OLD_RECORD: i64 = 501;

/// Whether a payment our ledger cancelled was reversed in NoDeny, as paysys's cancel and
/// NoDeny's own admin interface reverse one (INSTALL section 17): the payment's `pays` row
/// deleted, its sum taken off `users.balance` ([`Audit::balances`] checks that), and an old
/// record of it kept (category 501, reason `"<pays id>:10:…"`). `old_record`: the id of that
/// record, if there is one.
///
/// The one place that says what a reversed NoDeny payment looks like.
pub fn reversed(row: &LedgerRow, pays: Option<&Pays>, old_record: Option<u64>) -> Option<Finding> {
    let when = row.cancelled.as_deref()?;
    if let Some(p) = pays.filter(|p| p.reason == reason(&row.system, &row.txn_id)) {
        return Some(row.finding(
            Kind::NotReversed,
            format!(
                "cancelled in paysys at {when}, but its pays row {} ({} to subscriber {}) is \
                 still there: the subscriber keeps the money",
                p.id, p.cash, p.mid
            ),
            "delete the payment in NoDeny (which takes the sum off the balance), or, if the \
             cancel was wrong, tell the payment system",
        ));
    }
    if old_record.is_none() {
        return Some(row.finding(
            Kind::NotReversed,
            format!(
                "cancelled in paysys at {when} and its pays row {} is gone, but NoDeny keeps \
                 no record of it (pays category 501, reason '{}:10:…'): deleted in the \
                 database by hand",
                row.payment_ref, row.payment_ref
            ),
            "NoDeny's history of the subscriber shows neither the payment nor its cancel: \
             nothing is owed if the balance adds up (a balance line would say); note it for \
             the subscriber's history",
        ));
    }
    None
}

/// Judges one payment of our ledger by its `pays` row.
fn judge(
    row: &LedgerRow,
    pays: Option<&Pays>,
    old_record: Option<u64>,
    found: &mut dyn FnMut(Finding),
) {
    if row.cancelled.is_some() {
        if let Some(f) = reversed(row, pays, old_record) {
            found(f);
        }
        return;
    }
    let sum = row.amount;
    let mark = reason(&row.system, &row.txn_id);
    let Some(p) = pays.filter(|p| p.reason == mark) else {
        let what = match pays {
            Some(p) => format!(
                "pays row {} is another payment's (reason '{}'), not this one's",
                p.id, p.reason
            ),
            None => format!(
                "pays row {} is missing: the balance may not hold this payment of {sum}",
                row.payment_ref
            ),
        };
        found(row.finding(
            Kind::Missing,
            what,
            "see NoDeny's payment history of the subscriber: deleted on purpose, nothing is \
             owed (the payment system still counts it: settle with them); deleted by mistake, \
             add the payment again in NoDeny",
        ));
        return;
    };
    if p.mid != row.subscriber_id {
        found(row.finding(
            Kind::Differs,
            format!(
                "pays row {} credits subscriber {}, paysys credited subscriber {}",
                p.id, p.mid, row.subscriber_id
            ),
            "move the payment to the right subscriber in NoDeny (and the balance with it)",
        ));
    }
    // What the pay wrote: on a FLOAT column the float the sum became (super::same_cash).
    if !super::same_cash(&p.stored, amount(&p.cash).ok(), sum) {
        found(row.finding(
            Kind::Differs,
            format!(
                "pays row {} has cash {}, paysys credited {sum}",
                p.id, p.cash
            ),
            "correct the payment in NoDeny (and the balance with it): paysys_txn holds what \
             was paid",
        ));
    }
    if p.kind != PAYS_TYPE_PAYMENT {
        found(row.finding(
            Kind::Differs,
            format!("pays row {} has type {}, not 10 (a payment)", p.id, p.kind),
            "set its type back to 10 in NoDeny: NoDeny's reports count only type 10 as money",
        ));
    }
}

fn text(bytes: Option<Vec<u8>>) -> String {
    bytes
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

fn db(what: &str) -> impl Fn(mysql::Error) -> String + '_ {
    move |e| {
        let hint = if crate::db::server_code(&e) == Some(1142) {
            ": grant the audit's user SELECT on pays (sql/grants-nodeny.sql)"
        } else {
            ""
        };
        format!("{what}: {e}{hint}")
    }
}

impl Audit for NoDenyAudit {
    fn ledger(
        &self,
        tx: &mut Transaction<'_>,
        scope: &Scope<'_>,
        found: &mut dyn FnMut(Finding),
    ) -> Result<Tally, String> {
        let (filter, params) = ledger_where(scope);
        let sql = format!(
            "SELECT {LEDGER_COLUMNS}, p.id, p.mid, CAST(CAST(p.cash AS DECIMAL(16,2)) AS CHAR), \
             p.type, p.reason, IF(t.cancelled IS NULL, NULL, (SELECT o.id FROM pays o \
             WHERE o.mid = t.subscriber_id AND o.category = {PAYS_CATEGORY_OLD_RECORD} \
             AND o.reason LIKE CONCAT(t.payment_ref, ':%') LIMIT 1)), p.cash \
             FROM paysys_txn t LEFT JOIN pays p ON p.id = t.payment_ref \
             WHERE {filter} ORDER BY t.id"
        );
        let mut tally = Tally::default();
        let rows = tx
            .exec_iter(sql, Params::Positional(params))
            .map_err(db("paysys_txn, pays"))?;
        for row in rows {
            let mut row = row.map_err(db("paysys_txn, pays"))?;
            let ledger = LedgerRow::take(&mut row)?;
            let at = LEDGER_WIDTH;
            let id: Option<u64> = take(&mut row, at)?;
            let pays = match id {
                None => None,
                Some(id) => Some(Pays {
                    id,
                    mid: take(&mut row, at + 1)?,
                    cash: take(&mut row, at + 2)?,
                    stored: take(&mut row, at + 6)?,
                    kind: take(&mut row, at + 3)?,
                    reason: text(take(&mut row, at + 4)?),
                }),
            };
            let old_record: Option<u64> = take(&mut row, at + 5)?;
            tally.rows += 1;
            if ledger.cancelled.is_some() {
                tally.cancelled += 1;
            } else {
                tally.kopecks += i128::from(ledger.amount.kopecks());
            }
            judge(&ledger, pays.as_ref(), old_record, found);
        }
        Ok(tally)
    }

    fn unknown(
        &self,
        tx: &mut Transaction<'_>,
        scope: &Scope<'_>,
        found: &mut dyn FnMut(Finding),
    ) -> Result<Tally, String> {
        let mut tally = Tally::default();
        let names: BTreeSet<&str> = scope.systems.iter().map(|s| s.name.as_str()).collect();
        let Some((from, to)) = scope.billing_range() else {
            return Ok(tally);
        };
        if names.is_empty() {
            return Ok(tally);
        }
        // pays has no key on its time: read from the last pays row of ours before.
        let floor = id_floor(tx, "payment_ref", from)?;
        let marks: Vec<String> = names.iter().map(|n| format!("{n} txn_id=")).collect();
        let likes = vec!["p.reason LIKE ?"; marks.len()].join(" OR ");
        let mut params: Vec<mysql::Value> =
            vec![floor.into(), sql_time(from).into(), sql_time(to).into()];
        params.extend(marks.iter().map(|m| like_prefix(m).into()));
        // pays.time is a Unix time (our rows: the payment's txn_date).
        let rows = tx
            .exec_iter(
                format!(
                    "SELECT p.id, p.mid, CAST(CAST(p.cash AS DECIMAL(16,2)) AS CHAR), p.reason, \
                     CAST(FROM_UNIXTIME(p.time) AS CHAR) FROM pays p \
                     LEFT JOIN paysys_txn t ON t.payment_ref = p.id \
                     WHERE p.id > ? AND p.time >= UNIX_TIMESTAMP(?) AND p.time < UNIX_TIMESTAMP(?) \
                     AND ({likes}) AND t.id IS NULL ORDER BY p.id"
                ),
                Params::Positional(params),
            )
            .map_err(db("pays"))?;
        for row in rows {
            let mut row = row.map_err(db("pays"))?;
            let id: u64 = take(&mut row, 0)?;
            let mid: u64 = take(&mut row, 1)?;
            let cash: String = take(&mut row, 2)?;
            let reason = text(take(&mut row, 3)?);
            let at: Option<String> = take(&mut row, 4)?;
            tally.rows += 1;
            let system = marks
                .iter()
                .zip(&names)
                .find(|(m, _)| reason.starts_with(m.as_str()))
                .map(|(_, n)| n.to_string())
                .unwrap_or_default();
            found(Finding {
                kind: Kind::Unknown,
                system,
                txn_id: String::new(),
                what: format!(
                    "pays row {id} ('{reason}', {cash} to subscriber {mid}, {}) is not in \
                     paysys_txn",
                    at.unwrap_or_default()
                ),
                todo: "written by hand with paysys's mark, or copied: if the payment is real \
                       leave it, else delete it in NoDeny"
                    .to_string(),
            });
        }
        Ok(tally)
    }

    fn balances(
        &self,
        tx: &mut Transaction<'_>,
        scope: &Scope<'_>,
        found: &mut dyn FnMut(Finding),
    ) -> Result<Tally, String> {
        let (filter, params) = ledger_where(scope);
        let rows = tx
            .exec_iter(
                format!(
                    "SELECT u.id, CAST(CAST(u.balance AS DECIMAL(16,2)) AS CHAR), \
                     CAST(CAST(IFNULL((SELECT SUM(p.cash) FROM pays p WHERE p.mid = u.id), 0) \
                     AS DECIMAL(20,2)) AS CHAR) FROM users u \
                     WHERE u.id IN (SELECT t.subscriber_id FROM paysys_txn t WHERE {filter}) \
                     ORDER BY u.id"
                ),
                Params::Positional(params),
            )
            .map_err(db("users, pays"))?;
        let mut tally = Tally::default();
        for row in rows {
            let mut row = row.map_err(db("users, pays"))?;
            let id: u64 = take(&mut row, 0)?;
            let balance: String = take(&mut row, 1)?;
            let sum: String = take(&mut row, 2)?;
            tally.rows += 1;
            if amount(&balance) != amount(&sum) {
                found(Finding {
                    kind: Kind::Balance,
                    system: String::new(),
                    txn_id: String::new(),
                    what: format!(
                        "subscriber {id}: balance {balance}, but the pays rows add up to {sum}"
                    ),
                    todo: "the balance was changed without a pays row (by hand, or by a module \
                           that writes none), or a pays row was changed or deleted without the \
                           balance: see the subscriber's history in NoDeny and correct one of \
                           them"
                        .to_string(),
                });
            }
        }
        Ok(tally)
    }

    fn limits(&self) -> &'static [&'static str] {
        &[
            "unknown rows: only pays rows with paysys's mark (reason '<system> txn_id=…') are \
             known to be a payment system's; a row NoDeny's osmp.pl wrote after the switch has \
             none (paysys reconcile with the system's registry finds it)",
            "balance: sound where every change of a balance writes a pays row, as NoDeny's \
             own system check requires; FLOAT money columns are compared to the kopeck after \
             rounding",
            "cancel: a cancelled payment is checked by its pays row being gone and NoDeny's \
             old record of it (category 501) being there; the record-changed event (502) \
             is not looked for",
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Amount;

    fn row(cancelled: Option<&str>) -> LedgerRow {
        LedgerRow {
            system: "osmp".into(),
            txn_id: "666".into(),
            subscriber_id: 5907,
            amount: Amount::from_kopecks(1025),
            payment_ref: 7,
            prv_txn: 3,
            cancelled: cancelled.map(str::to_string),
        }
    }

    fn pays(mid: u64, cash: &str, reason: &str) -> Pays {
        Pays {
            id: 7,
            mid,
            cash: cash.into(),
            stored: mysql::Value::NULL,
            kind: 10,
            reason: reason.into(),
        }
    }

    fn judged(row: &LedgerRow, p: Option<&Pays>) -> Vec<Finding> {
        judged_with(row, p, Some(9))
    }

    fn judged_with(row: &LedgerRow, p: Option<&Pays>, old: Option<u64>) -> Vec<Finding> {
        let mut all = Vec::new();
        judge(row, p, old, &mut |f| all.push(f));
        all
    }

    #[test]
    fn a_payment_and_its_pays_row() {
        let ok = pays(5907, "10.25", "osmp txn_id=666");
        assert!(judged(&row(None), Some(&ok)).is_empty());
        let kinds = |f: Vec<Finding>| f.iter().map(|f| f.kind).collect::<Vec<_>>();
        assert_eq!(kinds(judged(&row(None), None)), [Kind::Missing]);
        assert_eq!(
            kinds(judged(
                &row(None),
                Some(&pays(5907, "10.25", "osmp txn_id=667"))
            )),
            [Kind::Missing]
        );
        assert_eq!(
            kinds(judged(
                &row(None),
                Some(&pays(3, "10.20", "osmp txn_id=666"))
            )),
            [Kind::Differs, Kind::Differs]
        );
        // Cancelled: its row must be gone; another payment's row under the id is not it.
        assert_eq!(
            kinds(judged(&row(Some("2026-12-07 10:00:00")), Some(&ok))),
            [Kind::NotReversed]
        );
        assert!(judged(&row(Some("2026-12-07 10:00:00")), None).is_empty());
        // Gone without NoDeny's old record of it: deleted by hand.
        assert_eq!(
            kinds(judged_with(&row(Some("2026-12-07 10:00:00")), None, None)),
            [Kind::NotReversed]
        );
        assert!(judged(
            &row(Some("2026-12-07 10:00:00")),
            Some(&pays(3, "1.00", "by hand"))
        )
        .is_empty());
    }
}
