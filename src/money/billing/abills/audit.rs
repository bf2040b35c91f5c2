//! `paysys audit` on ABillS: `payments`, `paysys_log`, `bills`, `fees` against our ledger.
//!
//! What a payment of ours is in ABillS ([`super`]): a `payments` row (`paysys_txn.payment_ref`;
//! the subscriber, the sum, the bill raised, `ext_id` its text) and a `paysys_log` row
//! (`paysys_txn.prv_txn`; status 2, the subscriber, the sum, the system's id and the same
//! text). A payment ABillS's own script made before the switch and a terminal retried after
//! it has no `payment_ref`: its `payments` row is the one whose `ext_id` is its log row's
//! text. A cancel deletes the `payments` row and marks the log row 3, and lowers the bill.
//!
//! The balance: ABillS keeps no sum to compare a deposit with, but every recorded change of
//! a bill says what the deposit was before it (`payments.last_deposit`, `fees.last_deposit`).
//! So from one recorded change to the next, the deposit must have moved by exactly the first
//! one's sum (a payment adds it, a fee takes it), plus our own cancels between them (our
//! ledger knows them; ABillS keeps no row of a deleted payment). Where it did not, money
//! moved without a row: a payment or fee deleted in ABillS, or the deposit edited by hand.
//! The last change in the range, when the range reaches now, must leave today's deposit.
//! The columns keep seconds: a payment and a fee in the same second are put in order by the
//! deposits they record; where neither fits, that step is not judged.

use std::collections::BTreeSet;

use mysql::prelude::Queryable;
use mysql::{Params, Transaction};

use super::txn_ids::{Seen, TxnIds};
use crate::billing::audit::{
    amount, id_floor, ledger_where, like_prefix, money_of_micros, sql_time, take, Audit, Finding,
    Kind, LedgerRow, Scope, Tally, LEDGER_COLUMNS, LEDGER_WIDTH,
};
use crate::config::System;

pub struct AbillsAudit;

/// `paysys_log.status` (ABillS's Paysys_Base).
const COMPLETE: u8 = 2;
const CANCELLED: u8 = 3;

fn status_name(status: u8) -> &'static str {
    match status {
        1 => "processing",
        2 => "complete",
        3 => "cancelled",
        4 => "expired",
        6 => "payment error",
        _ => "unknown to paysys",
    }
}

/// Half a kopeck in millionths: closer than this, two deposits are the same (ABillS adds
/// in `DOUBLE`; fees have four decimals).
const HALF_KOPECK: i128 = 5_000;

/// A `payments` row of a payment.
#[derive(Debug, Clone)]
struct Payment {
    id: u64,
    uid: u64,
    sum: String,
    bill_id: u64,
    ext_id: String,
}

/// A `paysys_log` row of a payment.
#[derive(Debug, Clone)]
struct Log {
    id: u64,
    uid: u64,
    sum: String,
    status: u8,
    system_id: u64,
    transaction_id: String,
}

/// Whether `text` is one of the texts of `txn_id` under `prefix` (whole, cut, hashed).
fn is_text_of(prefix: &str, txn_id: &str, text: &str) -> bool {
    let whole = format!("{prefix}:{txn_id}");
    text == whole || matches!(TxnIds::new(prefix, txn_id).seen(text), Seen::Exact(_))
}

/// Judges one payment of our ledger by its ABillS rows. Returns whether the row could be
/// judged at all.
fn judge(
    row: &LedgerRow,
    system: Option<&System>,
    payment: Option<&Payment>,
    bill: Option<(u64, u64)>,
    log: Option<&Log>,
    found: &mut dyn FnMut(Finding),
) -> bool {
    let sum = row.amount;
    let mut say = |kind: Kind, what: String, todo: &str| found(row.finding(kind, what, todo));
    // Whether a row's text is this payment's: unknown for a system no longer configured.
    let ours =
        |text: &str| system.is_none_or(|s| is_text_of(&s.abills.txn_prefix, &row.txn_id, text));
    // A payments row that is another payment's (an id reused, a row rewritten by hand) is
    // as good as none for this one.
    let payment = match payment {
        Some(p) if !ours(&p.ext_id) => {
            if row.cancelled.is_none() {
                say(
                    Kind::Missing,
                    format!(
                        "payments row {} is another payment's (ext_id '{}'), not this one's",
                        p.id, p.ext_id
                    ),
                    "find this payment's own row in ABillS (paysys txn shows it); if there is \
                     none, the subscriber was not credited: add the payment in ABillS by hand. \
                     If the system's txn_prefix was changed in the config since, set it back",
                );
            }
            None
        }
        other => other,
    };
    if let Some(when) = &row.cancelled {
        if let Some(p) = payment {
            say(
                Kind::NotReversed,
                format!(
                    "cancelled in paysys at {when}, but its payments row {} ({} to uid {}, bill {}) \
                     is still there: the subscriber keeps the money",
                    p.id, p.sum, p.uid, p.bill_id
                ),
                "delete the payment in ABillS (which takes the sum off the bill), or, if the \
                 cancel was wrong, tell the payment system",
            );
        }
        if let Some(l) = log.filter(|l| l.status != CANCELLED) {
            say(
                Kind::NotReversed,
                format!(
                    "cancelled in paysys at {when}, but paysys_log row {} has status {} ({}), \
                     not 3 (cancelled)",
                    l.id,
                    l.status,
                    status_name(l.status)
                ),
                &format!(
                    "set it in ABillS's Paysys log, or: UPDATE paysys_log SET status = 3 WHERE \
                     id = {}",
                    l.id
                ),
            );
        }
        return true;
    }

    // Not cancelled: both rows, agreeing.
    match log {
        None => say(
            Kind::Missing,
            format!("paysys_log row {} (its prv_txn) is missing", row.prv_txn),
            "ABillS's Paysys screens do not show this payment; if its payments row is there the \
             money is on the bill: nothing is owed, re-create the log row only if ABillS's \
             reports need it",
        ),
        Some(l) => {
            if l.status != COMPLETE {
                let todo = if l.status == CANCELLED && payment.is_none() {
                    "it was cancelled in ABillS, not through paysys: cancel it in paysys too \
                     (the payment system's cancel), so that a retry or a status is not answered \
                     as paid"
                } else {
                    "set it to 2 (complete) in ABillS's Paysys log: the payment is committed"
                };
                say(
                    Kind::Differs,
                    format!(
                        "paysys_log row {} has status {} ({}), not 2 (complete)",
                        l.id,
                        l.status,
                        status_name(l.status)
                    ),
                    todo,
                );
            }
            if l.uid != row.subscriber_id {
                say(
                    Kind::Differs,
                    format!(
                        "paysys_log row {} names uid {}, paysys credited uid {}",
                        l.id, l.uid, row.subscriber_id
                    ),
                    "find out who was meant to be paid; correct the row in ABillS",
                );
            }
            if amount(&l.sum) != Ok(sum) {
                say(
                    Kind::Differs,
                    format!(
                        "paysys_log row {} has sum {}, paysys credited {sum}",
                        l.id, l.sum
                    ),
                    "correct the sum of the log row in ABillS: paysys_txn holds what was paid",
                );
            }
            if !ours(&l.transaction_id) {
                say(
                    Kind::Differs,
                    format!(
                        "paysys_log row {} is another payment's (transaction_id '{}')",
                        l.id, l.transaction_id
                    ),
                    "look the payment up with paysys txn: its own log row is missing. If the \
                     system's txn_prefix was changed in the config since, set it back",
                );
            } else if let Some(s) = system.filter(|s| u64::from(s.abills.id) != l.system_id) {
                say(
                    Kind::Differs,
                    format!(
                        "paysys_log row {} has system_id {}, system {} is {} in the config",
                        l.id, l.system_id, s.name, s.abills.id
                    ),
                    "make abills_id in the config the system's paysys_id in ABillS \
                     (paysys import-abills shows it)",
                );
            }
        }
    }
    let Some(p) = payment else {
        if row.payment_ref == 0 {
            // ABillS's script paid it before the switch; its text may have been cut to a
            // width the log row and the payment do not share.
            if log
                .is_some_and(|l| super::txn_ids::WIDTHS.contains(&l.transaction_id.chars().count()))
            {
                return false;
            }
            say(
                Kind::Missing,
                format!(
                    "no payments row with its text{} (paid by ABillS's script before the switch, \
                     retried since)",
                    log.map(|l| format!(" '{}'", l.transaction_id))
                        .unwrap_or_default()
                ),
                "look in ABillS's payments for it: deleted by hand, the subscriber was not \
                 credited",
            );
        } else {
            say(
                Kind::Missing,
                format!(
                    "payments row {} is missing: the deposit does not show this payment of {sum}",
                    row.payment_ref
                ),
                "see ABillS's admin log for the payment: deleted on purpose, cancel it in paysys \
                 too; deleted by mistake, add it again in ABillS",
            );
        }
        return true;
    };
    if p.uid != row.subscriber_id {
        say(
            Kind::Differs,
            format!(
                "payments row {} credits uid {}, paysys credited uid {}",
                p.id, p.uid, row.subscriber_id
            ),
            "move the payment to the right subscriber in ABillS",
        );
    }
    if amount(&p.sum) != Ok(sum) {
        say(
            Kind::Differs,
            format!(
                "payments row {} has sum {}, paysys credited {sum}",
                p.id, p.sum
            ),
            "correct the payment in ABillS (and the bill's deposit with it): paysys_txn holds \
             what was paid",
        );
    }
    match bill {
        None => say(
            Kind::Differs,
            format!(
                "payments row {} raised bill {}, which does not exist",
                p.id, p.bill_id
            ),
            "find the subscriber's bill in ABillS and move the payment to it",
        ),
        Some((bill_id, owner)) if owner > 0 && owner != p.uid => say(
            Kind::Differs,
            format!(
                "payments row {} raised bill {bill_id}, which is uid {owner}'s, not uid {}'s",
                p.id, p.uid
            ),
            "move the payment to the subscriber's own bill in ABillS",
        ),
        Some(_) => {}
    }
    true
}

fn payment_of(row: &mut mysql::Row, at: usize) -> Result<Option<Payment>, String> {
    let id: Option<u64> = take(row, at)?;
    Ok(match id {
        None => None,
        Some(id) => Some(Payment {
            id,
            uid: take(row, at + 1)?,
            sum: take(row, at + 2)?,
            bill_id: take(row, at + 3)?,
            ext_id: take(row, at + 4)?,
        }),
    })
}

fn log_of(row: &mut mysql::Row, at: usize) -> Result<Option<Log>, String> {
    let id: Option<u64> = take(row, at)?;
    Ok(match id {
        None => None,
        Some(id) => Some(Log {
            id,
            uid: take(row, at + 1)?,
            sum: take(row, at + 2)?,
            status: take(row, at + 3)?,
            system_id: take(row, at + 4)?,
            transaction_id: take(row, at + 5)?,
        }),
    })
}

/// The prefixes (`"<prefix>:"`) of the systems in scope, each once, with the first system
/// that has it.
fn prefixes<'a>(scope: &'a Scope<'_>) -> Vec<(String, &'a System)> {
    let mut seen = BTreeSet::new();
    scope
        .systems
        .iter()
        .filter(|s| seen.insert(s.abills.txn_prefix.clone()))
        .map(|s| (format!("{}:", s.abills.txn_prefix), *s))
        .collect()
}

fn db(what: &str) -> impl Fn(mysql::Error) -> String + '_ {
    move |e| format!("{what}: {e}")
}

impl Audit for AbillsAudit {
    fn ledger(
        &self,
        tx: &mut Transaction<'_>,
        scope: &Scope<'_>,
        found: &mut dyn FnMut(Finding),
    ) -> Result<Tally, String> {
        let (filter, params) = ledger_where(scope);
        // p: the payment by our payment_ref; p2: by its log row's text, for a payment
        // ABillS's script made before the switch (payment_ref 0).
        let sql = format!(
            "SELECT {LEDGER_COLUMNS}, \
             IFNULL(p.id, p2.id), IFNULL(p.uid, p2.uid), \
             CAST(CAST(IFNULL(p.sum, p2.sum) AS DECIMAL(16,2)) AS CHAR), \
             IFNULL(p.bill_id, p2.bill_id), IFNULL(p.ext_id, p2.ext_id), \
             b.id, b.uid, \
             l.id, l.uid, CAST(CAST(l.sum AS DECIMAL(16,2)) AS CHAR), l.status, l.system_id, \
             l.transaction_id \
             FROM paysys_txn t \
             LEFT JOIN payments p ON p.id = t.payment_ref \
             LEFT JOIN paysys_log l ON l.id = t.prv_txn \
             LEFT JOIN payments p2 ON p2.ext_id = IF(t.payment_ref = 0, l.transaction_id, NULL) \
             LEFT JOIN bills b ON b.id = IFNULL(p.bill_id, p2.bill_id) \
             WHERE {filter} ORDER BY t.id, p2.id"
        );
        let mut tally = Tally::default();
        let rows = tx
            .exec_iter(sql, Params::Positional(params))
            .map_err(db("paysys_txn, payments, paysys_log"))?;
        // The payment just judged and its payments row: `ext_id` has no UNIQUE key, so the
        // text of a payment ABillS's script made can be on more than one row (its script
        // credited it twice), and each comes as one more row of the same payment, next to
        // the first.
        let mut previous: Option<(String, String, Option<u64>)> = None;
        for row in rows {
            let mut row = row.map_err(db("paysys_txn, payments, paysys_log"))?;
            let ledger = LedgerRow::take(&mut row)?;
            let at = LEDGER_WIDTH;
            let payment = payment_of(&mut row, at)?;
            let bill_id: Option<u64> = take(&mut row, at + 5)?;
            let bill_uid: Option<u64> = take(&mut row, at + 6)?;
            let log = log_of(&mut row, at + 7)?;
            let bill = bill_id.map(|id| (id, bill_uid.unwrap_or(0)));
            if let Some((system, txn_id, first)) = &previous {
                if *system == ledger.system && *txn_id == ledger.txn_id {
                    if let Some(p) = &payment {
                        found(ledger.finding(
                            Kind::Unknown,
                            format!(
                                "payments row {} ({} to uid {}, bill {}) carries ext_id '{}' as \
                                 payments row {} does: ABillS's script credited this payment \
                                 more than once",
                                p.id,
                                p.sum,
                                p.uid,
                                p.bill_id,
                                p.ext_id,
                                first.map(|id| id.to_string()).unwrap_or_default()
                            ),
                            "the payment system paid it once (paysys txn shows the payment): \
                             delete the extra payments row in ABillS, which takes its sum off \
                             the bill; if the payer did pay twice, the second payment needs a \
                             txn of its own from the payment system",
                        ));
                    }
                    continue;
                }
            }
            previous = Some((
                ledger.system.clone(),
                ledger.txn_id.clone(),
                payment.as_ref().map(|p| p.id),
            ));
            tally.rows += 1;
            if ledger.cancelled.is_some() {
                tally.cancelled += 1;
            } else {
                tally.kopecks += i128::from(ledger.amount.kopecks());
            }
            let system = scope.system(&ledger.system);
            if !judge(&ledger, system, payment.as_ref(), bill, log.as_ref(), found) {
                tally.unjudged += 1;
            }
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
        let prefixes = prefixes(scope);
        let Some(range) = scope.billing_range() else {
            return Ok(tally);
        };
        if prefixes.is_empty() {
            return Ok(tally);
        }
        let (from, to) = (sql_time(range.0), sql_time(range.1));
        let system_of = |text: &str| -> String {
            prefixes
                .iter()
                .find(|(p, _)| text.starts_with(p.as_str()))
                .map(|(_, s)| s.name.clone())
                .unwrap_or_default()
        };
        let likes = vec!["ext_id LIKE ?"; prefixes.len()].join(" OR ");
        let mut params: Vec<mysql::Value> = vec![from.clone().into(), to.clone().into()];
        params.extend(prefixes.iter().map(|(p, _)| like_prefix(p).into()));
        // A payments row of ours is one some paysys_txn row names by payment_ref.
        let rows = tx
            .exec_iter(
                format!(
                    "SELECT p.id, p.uid, CAST(CAST(p.sum AS DECIMAL(16,2)) AS CHAR), p.ext_id, \
                     CAST(p.date AS CHAR), p.bill_id FROM payments p \
                     LEFT JOIN paysys_txn t ON t.payment_ref = p.id \
                     WHERE p.date >= ? AND p.date < ? AND ({likes}) AND t.id IS NULL \
                     ORDER BY p.id"
                ),
                Params::Positional(params),
            )
            .map_err(db("payments"))?;
        for row in rows {
            let mut row = row.map_err(db("payments"))?;
            let (id, uid, sum, ext_id, date, bill): (u64, u64, String, String, String, u64) = (
                take(&mut row, 0)?,
                take(&mut row, 1)?,
                take(&mut row, 2)?,
                take(&mut row, 3)?,
                take(&mut row, 4)?,
                take(&mut row, 5)?,
            );
            tally.rows += 1;
            found(Finding {
                kind: Kind::Unknown,
                system: system_of(&ext_id),
                txn_id: String::new(),
                what: format!(
                    "payments row {id} ('{ext_id}', {sum} to uid {uid}, bill {bill}, {date}) is \
                     not in paysys_txn"
                ),
                todo: "written by hand or by ABillS's old script after the switch: make sure \
                       the old paysys_check.cgi is gone from every web server; if the payment is \
                       real, leave it, else delete it in ABillS"
                    .to_string(),
            });
        }

        // paysys_log has no key on its time: read from the last log row of ours before.
        let floor = id_floor(tx, "prv_txn", range.0)?;
        let ids: BTreeSet<u8> = scope.systems.iter().map(|s| s.abills.id).collect();
        let marks = vec!["?"; ids.len()].join(", ");
        let likes = vec!["l.transaction_id LIKE ?"; prefixes.len()].join(" OR ");
        let mut params: Vec<mysql::Value> = vec![floor.into(), from.into(), to.into()];
        params.extend(ids.iter().map(|&i| mysql::Value::from(i)));
        params.extend(prefixes.iter().map(|(p, _)| like_prefix(p).into()));
        // Rows of card orders not paid (1, 4, 6) are the page's, not payments.
        let rows = tx
            .exec_iter(
                format!(
                    "SELECT l.id, l.uid, CAST(CAST(l.sum AS DECIMAL(16,2)) AS CHAR), \
                     l.transaction_id, l.status, CAST(l.datetime AS CHAR) FROM paysys_log l \
                     LEFT JOIN paysys_txn t ON t.prv_txn = l.id \
                     WHERE l.id > ? AND l.datetime >= ? AND l.datetime < ? AND l.status IN (2, 3) \
                     AND l.system_id IN ({marks}) AND ({likes}) AND t.id IS NULL \
                     ORDER BY l.id"
                ),
                Params::Positional(params),
            )
            .map_err(db("paysys_log"))?;
        for row in rows {
            let mut row = row.map_err(db("paysys_log"))?;
            let (id, uid, sum, text, status, at): (u64, u64, String, String, u8, String) = (
                take(&mut row, 0)?,
                take(&mut row, 1)?,
                take(&mut row, 2)?,
                take(&mut row, 3)?,
                take(&mut row, 4)?,
                take(&mut row, 5)?,
            );
            tally.rows += 1;
            found(Finding {
                kind: Kind::Unknown,
                system: system_of(&text),
                txn_id: String::new(),
                what: format!(
                    "paysys_log row {id} ('{text}', {sum} to uid {uid}, status {status}, {at}) is \
                     not in paysys_txn"
                ),
                todo: "written by hand or by ABillS's old script after the switch: make sure \
                       the old paysys_check.cgi is gone from every web server, and compare it \
                       with the payment system's registry"
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
        let (from, to) = scope.range();
        let prefixes = prefixes(scope);
        // Whether a payment is one of our systems' (by its text): a bill with one in the
        // range, or with one of our cancels, is one our payments touched. Every bill's
        // changes in the range are read, in one sorted pass, and only the touched bills'
        // are judged: no per-bill query, no list of bills held.
        let ours = if prefixes.is_empty() {
            "0".to_string()
        } else {
            format!("({})", vec!["p.ext_id LIKE ?"; prefixes.len()].join(" OR "))
        };
        let only = if scope.system.is_some() {
            " AND t.system_name = ?"
        } else {
            ""
        };
        let sql = format!(
            "SELECT p.bill_id, CAST(p.date AS CHAR), 0, p.id, p.uid, p.last_deposit, p.sum, \
             {ours}, b.deposit FROM payments p JOIN bills b ON b.id = p.bill_id \
             WHERE p.date >= ? AND p.date < ? \
             UNION ALL \
             SELECT f.bill_id, CAST(f.date AS CHAR), 1, f.id, f.uid, f.last_deposit, -f.sum, 0, \
             b.deposit FROM fees f JOIN bills b ON b.id = f.bill_id \
             WHERE f.date >= ? AND f.date < ? \
             UNION ALL \
             SELECT b.id, CAST(t.cancelled AS CHAR), 2, t.id, t.subscriber_id, NULL, -t.amount, \
             1, b.deposit FROM paysys_txn t JOIN users u ON u.uid = t.subscriber_id \
             LEFT JOIN companies c ON c.id = u.company_id \
             JOIN bills b ON b.id = IF(u.company_id > 0, c.bill_id, u.bill_id) \
             WHERE t.cancelled >= ? AND t.cancelled < ? AND t.payment_ref > 0{only} \
             ORDER BY 1, 2, 3, 4"
        );
        let mut params: Vec<mysql::Value> = prefixes
            .iter()
            .map(|(p, _)| like_prefix(p).into())
            .collect();
        for _ in 0..3 {
            params.push(from.clone().into());
            params.push(to.clone().into());
        }
        if let Some(s) = scope.system {
            params.push(s.into());
        }
        let rows = tx.exec_iter(sql, Params::Positional(params)).map_err(|e| {
            let hint = if crate::db::server_code(&e) == Some(1142) {
                ": grant the audit's user SELECT on fees (sql/grants-abills.sql)"
            } else {
                ""
            };
            format!("payments, fees, bills: {e}{hint}")
        })?;
        let mut chain = Chain::default();
        let mut tally = Tally::default();
        let tally_ref = &mut tally;
        // A bill's findings wait until it is known to be one our payments touched.
        let mut held: Vec<Finding> = Vec::new();
        let mut settle = |chain: &mut Chain, held: &mut Vec<Finding>| {
            chain.end(scope, &mut |f| held.push(f));
            if chain.touched {
                tally_ref.rows += 1;
                tally_ref.unjudged += chain.unjudged;
                for f in held.drain(..) {
                    found(f);
                }
            }
            held.clear();
        };
        for row in rows {
            let mut row = row.map_err(db("payments, fees, bills"))?;
            let bill: u64 = take(&mut row, 0)?;
            let at: String = take(&mut row, 1)?;
            let kind: u8 = take(&mut row, 2)?;
            let id: u64 = take(&mut row, 3)?;
            let uid: u64 = take(&mut row, 4)?;
            let last: Option<f64> = take(&mut row, 5)?;
            let delta: f64 = take(&mut row, 6)?;
            let is_ours: i64 = take(&mut row, 7)?;
            let deposit: f64 = take(&mut row, 8)?;
            let change = Change {
                at,
                kind,
                id,
                uid,
                last: last.map(micros_of),
                delta: micros_of(delta),
            };
            if chain.bill != Some(bill) {
                settle(&mut chain, &mut held);
                chain = Chain {
                    bill: Some(bill),
                    deposit: micros_of(deposit),
                    ..Chain::default()
                };
            }
            chain.touched |= is_ours != 0;
            chain.add(change, &mut |f| held.push(f));
        }
        settle(&mut chain, &mut held);
        Ok(tally)
    }

    fn limits(&self) -> &'static [&'static str] {
        &[
            "balance: ABillS keeps no row of a payment or fee deleted in its web interface: \
             such a deletion shows as a deposit that moved without a row (only our own cancels \
             are known, from paysys_txn)",
            "balance: ABillS keeps seconds: a payment and a fee of one bill in the same \
             second are put in order by the deposits they record; where neither fits, that \
             step is not judged",
            "balance: a deposit changed in ABillS's web interface without a payment or fee \
             (a hand edit) cannot be told from a deleted row",
        ]
    }
}

/// A `DOUBLE` of ABillS's money columns (six decimals at most) in millionths.
fn micros_of(value: f64) -> i128 {
    (value * 1e6).round() as i128
}

/// One recorded change of a bill's deposit, or one of our cancels (no `last`: ABillS keeps
/// no row of it).
#[derive(Debug, Clone)]
struct Change {
    at: String,
    kind: u8,
    id: u64,
    uid: u64,
    last: Option<i128>,
    delta: i128,
}

impl Change {
    fn describe(&self) -> String {
        let what = match self.kind {
            0 => "payment",
            1 => "fee",
            _ => "paysys cancel of",
        };
        format!(
            "{what} {} ({}, {}{})",
            self.id,
            self.at,
            if self.delta >= 0 { "+" } else { "" },
            money_of_micros(self.delta)
        )
    }
}

/// Follows one bill's deposit from change to change.
///
/// Changes come ordered by second, then kind, then id. Within one second the order of a
/// payment and a fee is not known (within one kind it is: a bill's row lock orders them,
/// and the id is taken under it), so a second's changes are gathered and linked by what
/// they say: the next change is the one whose deposit before is what the last one left.
#[derive(Debug, Default)]
struct Chain {
    bill: Option<u64>,
    /// `bills.deposit` now.
    deposit: i128,
    /// The last change with a recorded deposit, and what it left.
    after: Option<(Change, i128)>,
    /// Our cancels since it.
    silent: Vec<Change>,
    /// The changes of the second being gathered.
    second: Vec<Change>,
    /// Whether one of our payments or cancels is among its changes.
    touched: bool,
    /// Steps whose order could not be told.
    unjudged: u64,
}

impl Chain {
    fn add(&mut self, change: Change, found: &mut dyn FnMut(Finding)) {
        if self.second.first().is_some_and(|c| c.at != change.at) {
            self.flush(found);
        }
        self.second.push(change);
    }

    /// Links the gathered second's changes into the chain.
    fn flush(&mut self, found: &mut dyn FnMut(Finding)) {
        let mut queues: [std::collections::VecDeque<Change>; 2] = Default::default();
        let mut cancels = Vec::new();
        for c in self.second.drain(..) {
            match (c.kind, c.last) {
                (0, Some(_)) => queues[0].push_back(c),
                (1, Some(_)) => queues[1].push_back(c),
                _ => cancels.push(c),
            }
        }
        let both = !queues[0].is_empty() && !queues[1].is_empty();
        loop {
            let heads: Vec<usize> = (0..2).filter(|&k| !queues[k].is_empty()).collect();
            if heads.is_empty() {
                break;
            }
            let last = |k: usize| queues[k].front().and_then(|c| c.last).unwrap_or(0);
            let pick = match &self.after {
                // The chain's start: the head the other one follows goes first.
                None => {
                    let follows = |a: usize, b: usize| {
                        queues[a]
                            .front()
                            .zip(queues[b].front())
                            .is_some_and(|(x, y)| {
                                (x.last.unwrap_or(0) + x.delta - y.last.unwrap_or(0)).abs()
                                    < HALF_KOPECK
                            })
                    };
                    if heads.len() == 2 && follows(1, 0) && !follows(0, 1) {
                        1
                    } else {
                        heads[0]
                    }
                }
                Some((_, left)) => {
                    let moved: i128 = self.silent.iter().map(|c| c.delta).sum();
                    let expected = left + moved;
                    let fits = |k: usize| (last(k) - expected).abs() < HALF_KOPECK;
                    if let Some(&k) = heads.iter().find(|&&k| fits(k)) {
                        k
                    } else if !cancels.is_empty() {
                        // Our cancels of this second came before.
                        self.silent.append(&mut cancels);
                        continue;
                    } else {
                        let k = heads[0];
                        if both {
                            self.unjudged += 1;
                        } else if let (Some((prev, _)), Some(next)) =
                            (&self.after, queues[k].front())
                        {
                            found(self.gap(prev, expected, next, last(k)));
                        }
                        k
                    }
                }
            };
            let Some(change) = queues[pick].pop_front() else {
                break;
            };
            let left = change.last.unwrap_or(0) + change.delta;
            self.silent.clear();
            self.after = Some((change, left));
        }
        self.silent.append(&mut cancels);
    }

    fn gap(&self, prev: &Change, expected: i128, next: &Change, before: i128) -> Finding {
        let bill = self.bill.unwrap_or(0);
        let cancels = if self.silent.is_empty() {
            String::new()
        } else {
            format!(
                " and {}",
                self.silent
                    .iter()
                    .map(Change::describe)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        Finding {
            kind: Kind::Balance,
            system: String::new(),
            txn_id: String::new(),
            what: format!(
                "bill {bill} (uid {}): after {}{cancels} the deposit should be {}, but {} found \
                 it {}: {} moved without a row",
                next.uid,
                prev.describe(),
                money_of_micros(expected),
                next.describe(),
                money_of_micros(before),
                money_of_micros(before - expected)
            ),
            todo: "a payment or fee deleted in ABillS, or the deposit changed by hand, between \
                   those two: see ABillS's admin log for the subscriber; nothing to do if it was \
                   meant"
                .to_string(),
        }
    }

    /// The bill's last change against its deposit now, when the range reaches now.
    fn end(&mut self, scope: &Scope<'_>, found: &mut dyn FnMut(Finding)) {
        self.flush(found);
        let (Some(bill), Some((last, left))) = (self.bill, &self.after) else {
            return;
        };
        if !scope.reaches_now {
            return;
        }
        let expected = left + self.silent.iter().map(|c| c.delta).sum::<i128>();
        if (self.deposit - expected).abs() < HALF_KOPECK {
            return;
        }
        {
            found(Finding {
                kind: Kind::Balance,
                system: String::new(),
                txn_id: String::new(),
                what: format!(
                    "bill {bill} (uid {}): after its last change, {}, the deposit should be {}, \
                     but it is {}: {} moved without a row",
                    last.uid,
                    last.describe(),
                    money_of_micros(expected),
                    money_of_micros(self.deposit),
                    money_of_micros(self.deposit - expected)
                ),
                todo: "a payment or fee deleted in ABillS, or the deposit changed by hand, since: \
                       see ABillS's admin log for the subscriber; nothing to do if it was meant"
                    .to_string(),
            });
        }
    }
}
