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
//! With `[database] procedure = true` (ABillS), a terminal's plain new pay is first offered
//! to the billing's stored procedure, which runs these same steps inside the server in one
//! `CALL` and answers after its `COMMIT`; a pay it does not make (anything but the plain
//! case) it rolls back and hands back to these steps ([`Billing::pay_in_one_call`]).
//!
//! A pay of one of our orders (a card order, a booked one) locks the order's row before
//! step 1, whichever way it is paid, as cancelling an unpaid order does: pays of one
//! order queue there before they write anything.
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
use mysql::{Conn, Transaction, TxOpts};

use crate::billing::{
    Billing, Credit, Credited, OneCalled, Uncredit, Uncredited, UncreditedRecorded,
};
use crate::config::System;
use crate::db::{
    connection_lost, deadlock_victim, server_code, ER_AUTOINC_READ_FAILED, ER_DUP_ENTRY,
    ER_LOCK_DEADLOCK, ER_LOCK_WAIT_TIMEOUT,
};
use crate::domain::{Amount, Domain, TxnDate, TxnId};
use crate::outcome::{CancelOrder, OrderRef, Pay, Refusal};

/// How often a transaction chosen as a deadlock victim is tried again. InnoDB rolled it
/// back whole, so trying again is safe. Pays to one subscriber at once (a bill's row, the
/// gaps of ABillS's payments and paysys_log keys) deadlock each other now and then; with
/// three attempts back to back, about one in eight of eight concurrent pays to one ABillS
/// account still ended in a temporary error (bench_6_protocols_web).
const DEADLOCK_ATTEMPTS: u32 = 8;

/// The payment could not be confirmed; the caller should retry. Nothing was committed by
/// this request, except possibly in the [`LedgerError::CommitUnknown`] case.
#[derive(Debug)]
pub enum LedgerError {
    /// The statement failed before COMMIT, or the server refused the COMMIT: rolled back.
    Database(mysql::Error),
    /// COMMIT was sent and no answer came back: the payment may or may not be committed.
    /// `paysys txn` (or the terminal's retry) tells which.
    CommitUnknown(mysql::Error),
    /// Chosen as a deadlock victim on every one of [`DEADLOCK_ATTEMPTS`] tries (on a Galera
    /// node: a certification conflict with a transaction of another node, which the server
    /// also reports as error 1213). Each try was rolled back whole.
    Deadlocked { attempts: u32, last: mysql::Error },
    /// The duplicate key said the txn exists, yet its row could not be read back. Rows are
    /// never deleted by us, so only a hand in the database does this; retry, don't guess.
    Vanished,
    /// A pay made looking first was still sent to look first: a billing's fault, never
    /// its data's. Rolled back; nothing was credited.
    LookedFirst,
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
            LedgerError::Deadlocked { attempts, last } => write!(
                f,
                "rolled back as a deadlock victim {attempts} times in a row, nothing written: {last}"
            ),
            LedgerError::Vanished => f.write_str("paysys_txn row of a duplicate txn_id is missing"),
            LedgerError::LookedFirst => {
                f.write_str("the billing asked a pay made looking first to look first again")
            }
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
    /// Committed earlier and cancelled since: not paid again.
    Cancelled { prv_txn: u64 },
    /// The billing refused (no such subscriber, disabled, …); rolled back.
    Refused(Refusal),
}

/// A committed payment, as `paysys_txn` holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// The number the payment was answered with.
    pub prv_txn: u64,
    pub txn_id: String,
    pub account: String,
    pub subscriber_id: u64,
    pub sum: Amount,
    /// The billing's payment row (NoDeny `pays.id`, ABillS `payments.id`).
    pub payment_ref: u64,
    pub cancelled: bool,
}

/// A pay, with what the billing records besides the command.
#[derive(Debug, Clone, Copy)]
pub struct PayOrder<'a> {
    pub system: &'a System,
    pub pay: &'a Pay,
    pub caller: Option<IpAddr>,
    pub domain: Domain,
    pub params: &'a [(String, String)],
    /// The booked order this pay confirms (EasyPay), by its PaymentId: locked and checked
    /// in the pay's own transaction, so that a cancel of the order racing the confirmation
    /// either comes first (the pay is refused) or finds it paid (it reverses the payment).
    pub booked: Option<u64>,
    /// A card provider's word the pay settles (its status, its id of the payment, when it
    /// said so), kept on the booked order by the same UPDATE that marks it paid.
    pub word: Option<&'a ProviderWord>,
    /// The subscriber a card order was made for: the pay credits them or nobody.
    pub pinned: Option<u64>,
    /// When the payment is recorded as made (`paysys_txn.created`), where the caller read
    /// the database server's clock already (a confirmation, with its order: [`Order::now`])
    /// and answers with that time; `None`: the server's `NOW()` at the INSERT.
    pub created: Option<&'a str>,
    /// `[database] procedure`: a plain new pay is first offered to the billing's stored
    /// procedure ([`Billing::pay_in_one_call`]).
    pub one_call: bool,
}

impl<'a> PayOrder<'a> {
    /// What the billing is asked to credit for this pay, our row being `txn_row`.
    fn credit(&self, txn_row: u64, look_last: bool) -> Credit<'a> {
        Credit {
            system: self.system,
            txn_id: &self.pay.txn_id,
            account: &self.pay.account,
            amount: self.pay.sum,
            txn_date: self.pay.txn_date,
            caller: self.caller,
            domain: self.domain,
            params: self.params,
            txn_row,
            order_opened: self.booked.is_some() && self.word.is_some(),
            look_last,
        }
    }
}

/// A card provider's word on an order, as the order keeps it for the admin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderWord {
    pub status: String,
    pub provider_ref: String,
    /// `%Y-%m-%d %H:%M:%S%.3f`, when the provider dates its words (Monobank).
    pub at: Option<String>,
}

pub fn pay(
    conn: &mut Conn,
    billing: &dyn Billing,
    order: &PayOrder<'_>,
) -> Result<Paid, LedgerError> {
    // A billing's look for rows of the txn written beside us (ABillS's own script) is
    // left to the statement that completes our row, where it takes no gap lock that two
    // pays of new txns would both hold and then both wait on with their inserts. Only when
    // that look finds something is the pay made again, looking first, under lock.
    let look_last = order.booked.is_none();
    if order.one_call && order.booked.is_none() && order.pinned.is_none() {
        if let Some(paid) = with_deadlock_retries(|| pay_in_one_call(conn, billing, order))? {
            return Ok(paid);
        }
    }
    if let Some(paid) = with_deadlock_retries(|| try_pay(conn, billing, order, look_last))? {
        return Ok(paid);
    }
    with_deadlock_retries(|| try_pay(conn, billing, order, false))?.ok_or(LedgerError::LookedFirst)
}

/// A terminal's new pay in one CALL of the billing's stored procedure, which runs the
/// statements [`try_pay`] would send, in a transaction of its own. `None`: nothing written,
/// and the pay is for [`try_pay`] (not the plain case, or no procedure). A repeat is answered
/// from our stored row, as [`try_pay`]'s duplicate key is. The procedure rolls back before
/// it raises an error, so a deadlock victim's is tried again like [`try_pay`]'s; a CALL
/// that got no answer may have committed, as a COMMIT without one may.
fn pay_in_one_call(
    conn: &mut Conn,
    billing: &dyn Billing,
    order: &PayOrder<'_>,
) -> Result<Option<Paid>, LedgerError> {
    let (system, pay) = (order.system, order.pay);
    match billing.pay_in_one_call(conn, &order.credit(0, true)) {
        Ok(OneCalled::Paid { prv_txn, .. }) => Ok(Some(Paid::New { prv_txn })),
        Ok(OneCalled::Stored) => repeat(conn, &system.name, pay).map(Some),
        Ok(OneCalled::Usual) => Ok(None),
        // No answer, or an error the procedure raised once COMMIT was sent (SQLSTATE
        // 08007, "transaction resolution unknown"): committed or not, only the database
        // knows, as after a COMMIT without an answer.
        Err(e) if connection_lost(&e) || resolution_unknown(&e) => {
            Err(LedgerError::CommitUnknown(e))
        }
        Err(e) => Err(e.into()),
    }
}

/// SQLSTATE 08007, "transaction resolution unknown": what a billing's stored procedure
/// raises for an error at or after its COMMIT (`sql/abills-pay.sql`).
fn resolution_unknown(e: &mysql::Error) -> bool {
    matches!(e, mysql::Error::MySqlError(m) if m.state == "08007")
}

/// Runs `attempt` again when InnoDB (or a Galera certification) chose it as a deadlock
/// victim: it was rolled back whole, so trying again is safe.
fn with_deadlock_retries<T>(
    mut attempt: impl FnMut() -> Result<T, LedgerError>,
) -> Result<T, LedgerError> {
    let mut n = 1;
    loop {
        match attempt() {
            Err(LedgerError::Database(e)) if deadlock_victim(&e) => {
                if n >= DEADLOCK_ATTEMPTS {
                    return Err(LedgerError::Deadlocked {
                        attempts: n,
                        last: e,
                    });
                }
                // A short pause that grows and differs between the victims, so that the
                // same transactions do not meet in the same order again.
                std::thread::sleep(deadlock_pause(n));
                n += 1;
            }
            result => return result,
        }
    }
}

/// The pause before attempt `n + 1`: 2·n ms plus up to 4 ms of jitter from the clock and
/// the process id — at most 18 ms, well inside any terminal's patience.
fn deadlock_pause(n: u32) -> std::time::Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let jitter = (nanos ^ std::process::id().wrapping_mul(2_654_435_761)) % 4_000;
    std::time::Duration::from_micros(u64::from(2_000 * n.min(7) + jitter))
}

/// `e` as the retries must read it. Error 1467 is a deadlock victim's when the server
/// ended the transaction waiting for an AUTO-INC lock; it is also what a wait for that lock
/// that ran out of `lock_timeout` says, which rolls back the statement alone. The
/// transaction tells them apart: gone after a deadlock, still open after a timeout, which
/// is then answered as the lock wait timeout it is (1205), not tried again.
fn read_autoinc_failure(tx: &mut Transaction<'_>, e: mysql::Error) -> mysql::Error {
    if server_code(&e) != Some(ER_AUTOINC_READ_FAILED) {
        return e;
    }
    match tx.query_first::<u8, _>("SELECT @@in_transaction") {
        Ok(Some(0)) => e,
        _ => mysql::Error::MySqlError(mysql::MySqlError {
            state: "HY000".into(),
            code: ER_LOCK_WAIT_TIMEOUT,
            message: format!("{e} (a wait for the table's AUTO-INC lock ran out of lock_timeout)"),
        }),
    }
}

/// COMMIT, telling a refused commit (rolled back) from one whose answer never came.
fn commit(tx: Transaction<'_>) -> Result<(), LedgerError> {
    match tx.commit() {
        Ok(()) => Ok(()),
        // A deadlock or a cluster certification conflict at commit: rolled back whole,
        // nothing changed, and safe to try again.
        Err(e) if server_code(&e) == Some(ER_LOCK_DEADLOCK) => Err(e.into()),
        // Any other error, or no answer at all (connection lost, timeout): the transaction
        // may be committed — on a Galera node that lost the primary component during
        // replication, for one, the writeset can commit on the other nodes while this one
        // answers an error. Still a temporary answer — the retry finds the row or none —
        // but nobody may read this as "not written".
        Err(e) => Err(LedgerError::CommitUnknown(e)),
    }
}

/// A pay refused from a known payment system, as one `paysys_refusal` row: what the caller
/// sent and what it was answered. Built from text as received, so every field is cut to
/// its column and has no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusalRecord {
    pub system: String,
    pub txn_id: String,
    pub account: String,
    /// The sum as sent, if it was one.
    pub amount: Option<Amount>,
    pub result: String,
    pub comment: String,
    pub reason: String,
    pub caller_ip: String,
}

/// `text` as a column of `max` characters takes it: control characters as spaces, the
/// rest cut off.
pub fn column_text(text: &str, max: usize) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(max)
        .collect()
}

impl RefusalRecord {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        system: &str,
        txn_id: &str,
        account: &str,
        sum: &str,
        result: &str,
        comment: &str,
        reason: &str,
        caller_ip: &str,
    ) -> RefusalRecord {
        RefusalRecord {
            system: column_text(system, 32),
            txn_id: column_text(txn_id, TxnId::MAX_LEN),
            account: column_text(account, 64),
            amount: Amount::parse(sum).ok(),
            result: column_text(result, 16),
            comment: column_text(comment, 32),
            reason: column_text(reason, 255),
            caller_ip: column_text(caller_ip, 45),
        }
    }
}

/// Writes `record` (one autocommit `INSERT`; the time is the database's, as `created` of
/// `paysys_txn` is).
pub fn record_refusal(conn: &mut Conn, record: &RefusalRecord) -> Result<(), mysql::Error> {
    conn.exec_drop(
        "INSERT INTO paysys_refusal (at, system_name, txn_id, account, amount, result, comment, \
         reason, caller_ip) VALUES (NOW(), ?, ?, ?, CAST(? AS DECIMAL(16,2)), ?, ?, ?, ?)",
        (
            &record.system,
            &record.txn_id,
            &record.account,
            record.amount.map(|a| a.to_string()),
            &record.result,
            &record.comment,
            &record.reason,
            &record.caller_ip,
        ),
    )
}

/// One attempt at [`pay`]; `None`: rolled back, because the guard of a credit made with
/// `look_last` did not hold (a row of the txn written beside us meanwhile), or the billing
/// asked to look first ([`Credited::LookFirst`]).
fn try_pay(
    conn: &mut Conn,
    billing: &dyn Billing,
    order: &PayOrder<'_>,
    look_last: bool,
) -> Result<Option<Paid>, LedgerError> {
    let (system, pay) = (order.system, order.pay);
    let mut tx = conn.start_transaction(TxOpts::default())?;
    // A booked order is locked first, as its other pays lock it (a card callback's and a
    // confirmation's first statement) and as its cancel does: two pays of one order queue
    // on its row. Locked after our row instead, the two met as a deadlock, and a first
    // statement that waited for our row's key held paysys_txn's AUTO-INC lock meanwhile,
    // and with it every pay's INSERT.
    if let Some(id) = order.booked {
        tx.exec_drop(
            "SELECT id FROM paysys_order WHERE system_name = ? AND id = ? FOR UPDATE",
            (&system.name, id),
        )?;
    }
    // The subscriber a card order was made for, who alone may be credited by its pay.
    let pinned = order.pinned;
    let inserted = tx.exec_drop(
        "INSERT INTO paysys_txn (system_name, txn_id, account, subscriber_id, amount, txn_date, created, caller_ip, domain_id) \
         VALUES (?, ?, ?, ?, CAST(? AS DECIMAL(16,2)), ?, IFNULL(?, NOW()), ?, ?)",
        (
            &system.name,
            pay.txn_id.as_str(),
            pay.account.as_str(),
            // Known now for numeric keys; the billing says whom it credited below.
            pay.account.subscriber_id().unwrap_or(0),
            pay.sum.to_string(),
            pay.txn_date.sql(),
            order.created,
            order.caller.map(|ip| ip.to_string()).unwrap_or_default(),
            order.domain.id(),
        ),
    );
    match inserted {
        Ok(()) => {}
        Err(e) if server_code(&e) == Some(ER_DUP_ENTRY) => {
            tx.rollback()?;
            return repeat(conn, &system.name, pay).map(Some);
        }
        Err(e) => return Err(read_autoinc_failure(&mut tx, e).into()),
    }
    let row = tx.last_insert_id().unwrap_or(0);
    let credit = order.credit(row, look_last);
    let credited = billing
        .credit(&mut tx, &credit)
        .map_err(|e| read_autoinc_failure(&mut tx, e))?;
    let guard = match &credited {
        Credited::Done { guard, .. } => guard.clone(),
        _ => None,
    };
    let (subscriber_id, payment_ref, prv_txn, paid) = match credited {
        Credited::Refused(refusal) => {
            tx.rollback()?;
            return Ok(Some(Paid::Refused(refusal)));
        }
        Credited::LookFirst => {
            tx.rollback()?;
            return Ok(None);
        }
        // The account names somebody else now than when the card order was made (a login
        // renamed, an account given to another subscriber): the money is not theirs.
        Credited::Done { subscriber_id, .. } if pinned.is_some_and(|p| p != subscriber_id) => {
            tx.rollback()?;
            return Ok(Some(Paid::Refused(Refusal::BadAccount(format!(
                "account '{}' names subscriber {subscriber_id} now; the order was made for \
                 subscriber {}",
                pay.account.as_str(),
                pinned.unwrap_or_default()
            )))));
        }
        Credited::Done {
            subscriber_id,
            payment_ref,
            prv_txn,
            ..
        } => {
            let prv_txn = prv_txn.unwrap_or(row);
            (subscriber_id, payment_ref, prv_txn, Paid::New { prv_txn })
        }
        // Paid before paysys took over: our row records that it was, so that every later
        // repeat is answered from it like any other.
        Credited::Recorded {
            prv_txn,
            subscriber_id,
            same: true,
            ..
        } => (subscriber_id, 0, prv_txn, Paid::Repeat { prv_txn }),
        Credited::Recorded {
            prv_txn, amount, ..
        } => {
            tx.rollback()?;
            return Ok(Some(Paid::Conflict {
                prv_txn,
                account: format!("(recorded by {} before)", billing.kind().name()),
                sum: amount,
            }));
        }
    };
    let Some(payment_id) = order.booked else {
        let completed =
            "UPDATE paysys_txn SET subscriber_id = ?, payment_ref = ?, prv_txn = ? WHERE id = ?";
        let mut params: Vec<mysql::Value> = vec![
            subscriber_id.into(),
            payment_ref.into(),
            prv_txn.into(),
            row.into(),
        ];
        let sql = match &guard {
            // The billing's look, last: rows matched are counted (CLIENT_FOUND_ROWS), none
            // when it found a row of the txn that another writer added meanwhile.
            Some(guard) => {
                params.extend(guard.params.iter().map(mysql::Value::from));
                format!("{completed} AND {}", guard.sql)
            }
            None => completed.to_string(),
        };
        tx.exec_drop(sql, mysql::Params::Positional(params))?;
        if guard.is_some() && tx.affected_rows() == 0 {
            tx.rollback()?;
            return Ok(None);
        }
        commit(tx)?;
        return Ok(Some(paid));
    };
    // A booked order (EasyPay's, or a card order) is marked paid by the same statement that
    // completes our row, so that paying an order costs no statement more than a terminal's
    // pay: checked and locked here, under the locks the payment holds — not cancelled, not
    // reversed by the provider nor held for the admin since the word that pays it was read.
    // A paid order is never cancelled (drop_order sees the payment), so this refuses no
    // repeat of a committed pay. The provider's word goes with it; a recorded provider id
    // stays (Monobank's invoice the order was made with). Rows matched, not changed, are
    // counted (CLIENT_FOUND_ROWS): none when the order is not open.
    let word = order.word;
    tx.exec_drop(
        "UPDATE paysys_txn t JOIN paysys_order o ON o.system_name = ? AND o.id = ? \
         AND o.cancelled IS NULL AND o.state NOT IN ('reversed', 'mismatch') \
         SET t.subscriber_id = ?, t.payment_ref = ?, t.prv_txn = ?, o.state = 'paid', \
         o.provider_status = IF(?, ?, o.provider_status), \
         o.provider_ref = IF(? = '' OR o.provider_ref <> '', o.provider_ref, ?), \
         o.status_at = IFNULL(?, o.status_at), o.updated = NOW() \
         WHERE t.id = ?",
        (
            &system.name,
            payment_id,
            subscriber_id,
            payment_ref,
            prv_txn,
            word.is_some(),
            word.map(|w| column_text(&w.status, 32)).unwrap_or_default(),
            word.map(|w| w.provider_ref.as_str()).unwrap_or_default(),
            word.map(|w| column_text(&w.provider_ref, 64))
                .unwrap_or_default(),
            word.and_then(|w| w.at.clone()),
            row,
        ),
    )?;
    if tx.affected_rows() == 0 {
        tx.rollback()?;
        let row: Option<(bool, String)> = conn.exec_first(
            "SELECT cancelled IS NOT NULL, state FROM paysys_order WHERE system_name = ? AND id = ?",
            (&system.name, payment_id),
        )?;
        return Ok(Some(match row {
            // A card order the provider reversed, or one held for the admin.
            Some((false, state)) => Paid::Refused(Refusal::BadRequest(format!(
                "the order is {state} now: not paid by this word"
            ))),
            _ => Paid::Cancelled {
                prv_txn: payment_id,
            },
        }));
    }
    commit(tx)?;
    Ok(Some(paid))
}

/// A card provider's verified success, to be paid straight from its order: what the
/// provider said was paid must be what the order charges, in its currency (and, for
/// Monobank, about the invoice made for it).
#[derive(Debug, Clone, Copy)]
pub struct CardPay<'a> {
    pub system: &'a System,
    /// Our order id, as the provider named it: the payment's txn_id.
    pub order_id: &'a TxnId,
    /// What the provider charged, and in what currency.
    pub charged: Amount,
    pub currency: &'a str,
    /// Monobank: the invoice the word is about, which must be the one the order recorded.
    pub invoice: Option<&'a str>,
    pub txn_date: TxnDate,
    pub caller: Option<IpAddr>,
    pub params: &'a [(String, String)],
    pub word: &'a ProviderWord,
}

/// A card order paid by [`pay_card_order`]: the pay as the order made it.
#[derive(Debug, Clone)]
pub struct CardPaid {
    pub prv_txn: u64,
    pub pay: Pay,
    /// The order's domain, which the payment went to.
    pub domain: Domain,
    pub account_text: String,
}

/// Pays a card order in the statements of a terminal's pay: the order is read, checked and
/// locked by the pay's own first statement (`INSERT … SELECT … FROM paysys_order … FOR
/// UPDATE RETURNING`, MariaDB 10.5 and later: [`crate::db::Node::returning`]), which
/// inserts our row with the order's account and sum, so no read comes before the
/// transaction. It commits only the plain case — an open order of this sum and currency
/// (Monobank: of this invoice), credited to the subscriber it was made for — and `Ok(None)`
/// otherwise, with everything rolled back: no such order, another sum or currency, an order
/// cancelled, reversed or held for the admin, a repeat of a paid one, a billing's refusal.
/// The caller then settles the word the long way, which reads the order first and answers
/// each of those as it always has.
pub fn pay_card_order(
    conn: &mut Conn,
    billing: &dyn Billing,
    order: &CardPay<'_>,
) -> Result<Option<CardPaid>, LedgerError> {
    with_deadlock_retries(|| try_pay_card_order(conn, billing, order))
}

fn try_pay_card_order(
    conn: &mut Conn,
    billing: &dyn Billing,
    order: &CardPay<'_>,
) -> Result<Option<CardPaid>, LedgerError> {
    let system = order.system;
    let mut tx = conn.start_transaction(TxOpts::default())?;
    // The order's checks are the word's, compared exactly: the currency and the invoice as
    // bytes (their columns' collations ignore letter case), the sum as DECIMAL. An order
    // they leave out inserts nothing. The order is locked first, so that a second word of
    // it waits here, before it has written anything, and then finds our row's duplicate
    // key; the long way (`try_pay`, the sweeper's) locks the order first too. An
    // INSERT … SELECT holds paysys_txn's AUTO-INC lock from its row to its end (in the
    // default `innodb_autoinc_lock_mode`), and every insert into paysys_txn waits for it:
    // a pay the server ends there as a deadlock victim is told so by error 1467, and is
    // made again like any (one whose wait ran out is not: `read_autoinc_failure`).
    let inserted: Result<Option<(u64, String, String, u32)>, mysql::Error> = tx.exec_first(
        "INSERT INTO paysys_txn (system_name, txn_id, account, subscriber_id, amount, txn_date, created, caller_ip, domain_id) \
         SELECT o.system_name, o.order_id, o.account, 0, o.amount, ?, NOW(), ?, o.domain_id \
         FROM paysys_order o WHERE o.system_name = ? AND o.order_id = ? \
         AND o.cancelled IS NULL AND o.state NOT IN ('reversed', 'mismatch') \
         AND CAST(o.currency AS BINARY) = CAST(? AS BINARY) \
         AND o.charged = CAST(? AS DECIMAL(16,2)) \
         AND (? OR (o.provider_ref <> '' AND CAST(o.provider_ref AS BINARY) = CAST(? AS BINARY))) \
         FOR UPDATE \
         RETURNING id, account, CAST(amount AS CHAR), domain_id",
        (
            order.txn_date.sql(),
            order.caller.map(|ip| ip.to_string()).unwrap_or_default(),
            &system.name,
            order.order_id.as_str(),
            order.currency,
            order.charged.to_string(),
            order.invoice.is_none(),
            order.invoice.unwrap_or_default(),
        ),
    );
    let inserted = inserted.map_err(|e| read_autoinc_failure(&mut tx, e));
    let Some((row, account_text, amount, domain)) = inserted_from_order(inserted)? else {
        tx.rollback()?;
        return Ok(None);
    };
    let paid = credit_order(
        tx,
        billing,
        &Inserted {
            system,
            txn_id: order.order_id,
            row,
            account_text: &account_text,
            amount: &amount,
            domain: Domain::new(domain),
            txn_date: order.txn_date,
            caller: order.caller,
            params: order.params,
            word: Some(order.word),
            order_opened: true,
            admits: &|_| true,
        },
    )?;
    Ok(paid.map(|(prv_txn, pay)| CardPaid {
        prv_txn,
        pay,
        domain: Domain::new(domain),
        account_text,
    }))
}

/// A confirmation of a booked order (Payme's Perform, Click's Complete, EasyPay's
/// Confirm), to be paid straight from its order: what the request says of the order must
/// be what was booked.
#[derive(Clone, Copy)]
pub struct ConfirmPay<'a> {
    pub system: &'a System,
    /// The order, as the request names it and what it repeats of it.
    pub order: &'a OrderRef,
    /// Orders of a protocol that gives them a lifetime: booked before this
    /// (`%Y-%m-%d %H:%M:%S`) and unpaid, the order is due to be cancelled, not paid.
    pub due_before: Option<&'a str>,
    pub domain: Domain,
    pub txn_date: TxnDate,
    pub caller: Option<IpAddr>,
    pub params: &'a [(String, String)],
    /// Today's limits, asked of the pay the order makes before anything is credited.
    pub admits: &'a dyn Fn(&Pay) -> bool,
}

/// A booked order paid by [`confirm_order`]: the pay as the order made it, and the order.
#[derive(Debug, Clone)]
pub struct Confirmed {
    pub prv_txn: u64,
    pub pay: Pay,
    /// The order as its pay found it, [`Order::now`] being when the payment is recorded as
    /// made. When it was booked and the payment system's time and word on it are not read
    /// (`created` empty, `status_at` none): its [`Order::paid_view`] is good for what a
    /// confirmation's answer says — the order, its sum, that and when it was paid.
    pub order: Order,
}

/// Pays a booked order in the statements of a terminal's pay, as [`pay_card_order`] pays a
/// card order: the order is read, checked and locked by the pay's first statement. It
/// commits only the plain case — an order still booked (and, with a lifetime, not due),
/// of the order id, account and sum the request repeats, within today's limits, credited
/// by the billing — and `Ok(None)` otherwise, everything rolled back: no such order, one
/// named otherwise, cancelled or due, a repeat of a paid one, a billing's refusal. The
/// caller then resolves the confirmation the long way, which reads the order first and
/// answers each of those as it always has.
pub fn confirm_order(
    conn: &mut Conn,
    billing: &dyn Billing,
    confirm: &ConfirmPay<'_>,
) -> Result<Option<Confirmed>, LedgerError> {
    with_deadlock_retries(|| try_confirm_order(conn, billing, confirm))
}

fn try_confirm_order(
    conn: &mut Conn,
    billing: &dyn Billing,
    confirm: &ConfirmPay<'_>,
) -> Result<Option<Confirmed>, LedgerError> {
    let (system, r) = (confirm.system, confirm.order);
    // The order by our id (EasyPay's PaymentId, Click's merchant_prepare_id) or by the
    // payment system's (Payme's id); what the request repeats of it compared exactly (the
    // account's column ignores letter case), the sum as DECIMAL. Only the conditions the
    // request has are sent: the driver scans every statement's text on each execution.
    let mut sql = String::from(
        "INSERT INTO paysys_txn (system_name, txn_id, account, subscriber_id, amount, txn_date, \
         created, caller_ip, domain_id, prv_txn) \
         SELECT system_name, order_id, account, 0, amount, ?, NOW(), ?, ?, id FROM paysys_order \
         WHERE system_name = ? AND cancelled IS NULL AND state = 'booked'",
    );
    let mut params: Vec<mysql::Value> = vec![
        confirm.txn_date.sql().into(),
        confirm
            .caller
            .map(|ip| ip.to_string())
            .unwrap_or_default()
            .into(),
        confirm.domain.id().into(),
        system.name.as_str().into(),
    ];
    let mut and = |condition: &str, value: mysql::Value| {
        sql.push_str(" AND ");
        sql.push_str(condition);
        params.push(value);
    };
    match (r.payment_id, &r.order_id) {
        (Some(payment_id), _) => and("id = ?", payment_id.into()),
        (None, Some(order_id)) => and("order_id = ?", order_id.as_str().into()),
        (None, None) => return Ok(None),
    }
    if let Some(before) = confirm.due_before {
        and("created >= ?", before.into());
    }
    if let Some(order_id) = &r.order_id {
        and("BINARY order_id = ?", order_id.as_str().into());
    }
    if let Some(account) = &r.account {
        and("BINARY account = ?", account.as_str().into());
    }
    if let Some(sum) = r.sum {
        and("amount = CAST(? AS DECIMAL(16,2))", sum.to_string().into());
    }
    // One text column back, not six: each column of a result costs its description. Our
    // row's prv_txn holds the order's id until the pay's last UPDATE sets it, in this same
    // transaction, so nobody sees it; the account goes last, whatever it holds.
    sql.push_str(
        " FOR UPDATE RETURNING CONCAT_WS(CHAR(9), id, prv_txn, txn_id, amount, created, account)",
    );
    let mut tx = conn.start_transaction(TxOpts::default())?;
    let inserted: Result<Option<String>, mysql::Error> =
        tx.exec_first(sql, mysql::Params::Positional(params));
    let inserted = inserted.map_err(|e| read_autoinc_failure(&mut tx, e));
    let Some(returned) = inserted_from_order(inserted)? else {
        tx.rollback()?;
        return Ok(None);
    };
    let mut fields = returned.splitn(6, '\t');
    let mut next = || fields.next().unwrap_or_default();
    let (row, payment_id, order_id, amount, now, account_text) =
        (next(), next(), next(), next(), next(), next());
    let (Ok(row), Ok(payment_id), Ok(txn_id)) = (
        row.parse::<u64>(),
        payment_id.parse::<u64>(),
        TxnId::parse_token(order_id),
    ) else {
        tx.rollback()?;
        return Ok(None);
    };
    let paid = credit_order(
        tx,
        billing,
        &Inserted {
            system,
            txn_id: &txn_id,
            row,
            account_text,
            amount,
            domain: confirm.domain,
            txn_date: confirm.txn_date,
            caller: confirm.caller,
            params: confirm.params,
            word: None,
            order_opened: false,
            admits: confirm.admits,
        },
    )?;
    let Some((prv_txn, pay)) = paid else {
        return Ok(None);
    };
    // The order as the long way would have read it, for the answer: booked and unpaid
    // until now. When it was booked, and the payment system's time and word on it, are
    // not read — a confirmation's answer says when it was paid (`now`), not those.
    let order = Order {
        payment_id,
        order_id: order_id.to_string(),
        account: account_text.to_string(),
        amount: pay.sum,
        cancelled: false,
        created: String::new(),
        state: "booked".into(),
        status_at: None,
        provider_status: String::new(),
        now: now.to_string(),
    };
    Ok(Some(Confirmed {
        prv_txn,
        pay,
        order,
    }))
}

/// What a pay's first statement that inserts our row from an order returned: the row, or
/// `None` when it inserted nothing — no such open order as the request names, or our row
/// exists (a repeat of a paid one: the duplicate key) — for the long way to answer.
fn inserted_from_order<T>(
    inserted: Result<Option<T>, mysql::Error>,
) -> Result<Option<T>, mysql::Error> {
    match inserted {
        Err(e) if server_code(&e) == Some(ER_DUP_ENTRY) => Ok(None),
        other => other,
    }
}

/// Our row, inserted from an order by a pay's first statement: what is left of the pay.
struct Inserted<'a> {
    system: &'a System,
    txn_id: &'a TxnId,
    /// `paysys_txn.id`.
    row: u64,
    /// The order's account and sum, as the row took them.
    account_text: &'a str,
    amount: &'a str,
    domain: Domain,
    txn_date: TxnDate,
    caller: Option<IpAddr>,
    params: &'a [(String, String)],
    /// A card provider's word, kept on the order as it is marked paid.
    word: Option<&'a ProviderWord>,
    order_opened: bool,
    /// Today's limits, asked of the pay before the billing is.
    admits: &'a dyn Fn(&Pay) -> bool,
}

/// The rest of a pay whose row [`Inserted`] says: the billing credits the order's
/// subscriber, our row is completed and the order marked paid by one UPDATE, COMMIT —
/// `Some` with the prv_txn and the pay. `None`, rolled back, for anything but the plain
/// case (an account or sum that does not parse, a pay outside today's limits, a billing's
/// refusal, a subscriber other than the one a card order was made for, an order no longer
/// open): the long way answers those.
fn credit_order(
    mut tx: Transaction<'_>,
    billing: &dyn Billing,
    ins: &Inserted<'_>,
) -> Result<Option<(u64, Pay)>, LedgerError> {
    let system = ins.system;
    let parsed = (
        crate::domain::Account::parse_by(ins.account_text, &system.account),
        Amount::parse(ins.amount),
    );
    let (Ok(account), Ok(sum)) = parsed else {
        tx.rollback()?;
        return Ok(None);
    };
    let pay = Pay {
        txn_id: ins.txn_id.clone(),
        account,
        sum,
        txn_date: ins.txn_date,
    };
    if !(ins.admits)(&pay) {
        tx.rollback()?;
        return Ok(None);
    }
    let credit = Credit {
        system,
        txn_id: &pay.txn_id,
        account: &pay.account,
        amount: pay.sum,
        txn_date: pay.txn_date,
        caller: ins.caller,
        domain: ins.domain,
        params: ins.params,
        txn_row: ins.row,
        order_opened: ins.order_opened,
        look_last: false,
    };
    let Credited::Done {
        subscriber_id,
        payment_ref,
        prv_txn,
        ..
    } = billing
        .credit(&mut tx, &credit)
        .map_err(|e| read_autoinc_failure(&mut tx, e))?
    else {
        tx.rollback()?;
        return Ok(None);
    };
    let prv_txn = prv_txn.unwrap_or(ins.row);
    // Our row completed and the order marked paid, as [`pay`] does for a booked order; the
    // subscriber credited must be the one a card order was made for, and our row keeps the
    // account as a repeat is compared with it (parsed, as the long way stores it).
    match ins.word {
        Some(word) => tx.exec_drop(
            "UPDATE paysys_txn t JOIN paysys_order o ON o.system_name = t.system_name \
             AND o.order_id = t.txn_id AND o.cancelled IS NULL \
             AND o.state NOT IN ('reversed', 'mismatch') \
             AND (o.subscriber_id IS NULL OR o.subscriber_id = ?) \
             SET t.account = ?, t.subscriber_id = ?, t.payment_ref = ?, t.prv_txn = ?, \
             o.state = 'paid', o.provider_status = ?, \
             o.provider_ref = IF(? = '' OR o.provider_ref <> '', o.provider_ref, ?), \
             o.status_at = IFNULL(?, o.status_at), o.updated = NOW() \
             WHERE t.id = ?",
            (
                subscriber_id,
                pay.account.as_str(),
                subscriber_id,
                payment_ref,
                prv_txn,
                column_text(&word.status, 32),
                word.provider_ref.as_str(),
                column_text(&word.provider_ref, 64),
                word.at.clone(),
                ins.row,
            ),
        )?,
        // A booked order, locked open by the pay's first statement; checked again all the
        // same, so that anything unforeseen ends in the rollback below, not in a payment.
        None => tx.exec_drop(
            "UPDATE paysys_txn t JOIN paysys_order o ON o.system_name = t.system_name \
             AND o.order_id = t.txn_id AND o.cancelled IS NULL AND o.state = 'booked' \
             SET t.account = ?, t.subscriber_id = ?, t.payment_ref = ?, t.prv_txn = ?, \
             o.state = 'paid', o.updated = NOW() WHERE t.id = ?",
            (
                pay.account.as_str(),
                subscriber_id,
                payment_ref,
                prv_txn,
                ins.row,
            ),
        )?,
    }
    if tx.affected_rows() == 0 {
        tx.rollback()?;
        return Ok(None);
    }
    commit(tx)?;
    Ok(Some((prv_txn, pay)))
}

/// The txn was committed before (the duplicate key said so): same payment or a conflict?
fn repeat(conn: &mut Conn, system: &str, pay: &Pay) -> Result<Paid, LedgerError> {
    settled(conn, system, pay)?.ok_or(LedgerError::Vanished)
}

/// What a pay of an already committed txn is answered: the first answer if account and sum
/// match, a conflict if they do not, a refusal if it was cancelled since; `None` if the txn
/// was never committed.
///
/// The endpoint asks this before it refuses a pay for today's limits (window, sums): a
/// retry of a payment committed under earlier ones must get its first answer, not a final
/// refusal the terminal would act on (the subscriber has the money).
pub fn settled(conn: &mut Conn, system: &str, pay: &Pay) -> Result<Option<Paid>, mysql::Error> {
    let Some(stored) = find_as_collated(conn, system, &pay.txn_id)? else {
        return Ok(None);
    };
    // Ids are exact text: `PbA7x` is not `pba7X`. A table made before txn_id compared
    // exactly (sql/paysys.sql brings it up to date) lets the second collide with the first;
    // it is refused, never answered with the first's success.
    if stored.txn_id != pay.txn_id.as_str() {
        return Ok(Some(Paid::Conflict {
            prv_txn: stored.prv_txn,
            account: format!(
                "(txn {}, which paysys_txn.txn_id does not tell from this one: load \
                 sql/paysys.sql to compare ids exactly)",
                stored.txn_id
            ),
            sum: stored.sum,
        }));
    }
    if stored.cancelled {
        return Ok(Some(Paid::Cancelled {
            prv_txn: stored.prv_txn,
        }));
    }
    // The same account: as typed, or naming the same subscriber by number (a terminal that
    // drops a leading zero on its retry still retries the same payment).
    let same_account = stored.account == pay.account.as_str()
        || pay.account.subscriber_id() == Some(stored.subscriber_id);
    Ok(Some(if same_account && stored.sum == pay.sum {
        Paid::Repeat {
            prv_txn: stored.prv_txn,
        }
    } else {
        Paid::Conflict {
            prv_txn: stored.prv_txn,
            account: stored.account,
            sum: stored.sum,
        }
    }))
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
    Ok(find_as_collated(conn, system, txn_id)?.filter(|s| s.txn_id == txn_id.as_str()))
}

/// [`find`], but also the row of an id that `paysys_txn.txn_id`'s collation finds equal
/// (a table not yet brought up to date compares ignoring letter case).
fn find_as_collated(
    conn: &mut Conn,
    system: &str,
    txn_id: &TxnId,
) -> Result<Option<Stored>, mysql::Error> {
    let row: Option<StoredRow> = conn.exec_first(
        format!("{STORED_SELECT} WHERE system_name = ? AND txn_id = ? LOCK IN SHARE MODE"),
        (system, txn_id.as_str()),
    )?;
    Ok(row.and_then(stored))
}

/// The columns of a [`Stored`]. `prv_txn` is 0 only in rows of versions that answered with
/// our own id.
const STORED_SELECT: &str = "SELECT IF(prv_txn = 0, id, prv_txn), txn_id, account, subscriber_id, \
     CAST(amount AS CHAR), payment_ref, cancelled IS NOT NULL, system_name FROM paysys_txn";

type StoredRow = (u64, String, String, u64, String, u64, bool, String);

fn stored(
    (prv_txn, txn_id, account, subscriber_id, sum, payment_ref, cancelled, _system): StoredRow,
) -> Option<Stored> {
    Some(Stored {
        prv_txn,
        txn_id,
        account,
        subscriber_id,
        sum: Amount::parse(&sum).ok()?,
        payment_ref,
        cancelled,
    })
}

/// How a cancel ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unpaid {
    /// Reversed now.
    Cancelled {
        prv_txn: u64,
        sum: Amount,
    },
    /// Reversed before: the first answer again, nothing done now.
    Repeat {
        prv_txn: u64,
        sum: Amount,
    },
    Refused(Refusal),
}

/// Reverses the payment `system` was answered `order.prv_txn` for: the billing's rows
/// undone, our row kept and marked cancelled, in one transaction. Exactly once: the row is
/// locked first, so concurrent cancels of one payment reverse it once and a pay repeated
/// meanwhile waits and then learns it was cancelled. `caller`: who asked, for the billing's
/// record of the reversal (NoDeny's event of the deletion).
pub fn cancel(
    conn: &mut Conn,
    billing: &dyn Billing,
    system: &System,
    domain: Domain,
    caller: Option<IpAddr>,
    order: &CancelOrder,
) -> Result<Unpaid, LedgerError> {
    with_deadlock_retries(|| try_cancel(conn, billing, system, domain, caller, order))
}

fn try_cancel(
    conn: &mut Conn,
    billing: &dyn Billing,
    system: &System,
    domain: Domain,
    caller: Option<IpAddr>,
    order: &CancelOrder,
) -> Result<Unpaid, LedgerError> {
    let mut tx = conn.start_transaction(TxOpts::default())?;
    let columns = &STORED_SELECT["SELECT ".len()..];
    let found: Vec<IdStoredRow> = match (order.prv_txn, &order.txn_id) {
        (Some(prv_txn), _) => tx.exec(
            format!(
                "SELECT id, {columns} WHERE prv_txn = ? OR (prv_txn = 0 AND id = ?) FOR UPDATE"
            ),
            (prv_txn, prv_txn),
        )?,
        (None, Some(txn_id)) => tx.exec(
            format!("SELECT id, {columns} WHERE system_name = ? AND txn_id = ? FOR UPDATE"),
            (system.name.as_str(), txn_id.as_str()),
        )?,
        (None, None) => Vec::new(),
    };
    let rows: Vec<(u64, StoredRow)> = found
        .into_iter()
        .map(|(id, a, b, c, d, e, f, g, h)| (id, (a, b, c, d, e, f, g, h)))
        .collect();
    // How the order names the payment, for the refusals.
    let named = match (order.prv_txn, &order.txn_id) {
        (Some(p), _) => format!("prv_txn {p}"),
        (None, Some(t)) => format!("txn {t}"),
        (None, None) => "a cancel naming no payment".to_string(),
    };
    let unknown = |why: String| -> Result<Unpaid, LedgerError> {
        Ok(Unpaid::Refused(Refusal::CancelUnknown(why)))
    };
    let Some((row, mine)) = rows.iter().find(|(_, r)| r.7 == system.name).cloned() else {
        if let Some((_, other)) = rows.first() {
            tx.rollback()?;
            return unknown(format!(
                "{named} is a payment of system {}, not {}",
                other.7, system.name
            ));
        }
        // Not ours: a payment the billing's own script made before the switch-over, which
        // status and a retried pay find too, is reversed as that script would.
        let recorded = billing
            .cancel_recorded(
                &mut tx,
                system,
                domain,
                order.prv_txn,
                order.txn_id.as_ref(),
            )
            .map_err(|e| read_autoinc_failure(&mut tx, e))?;
        // A cancel that names the sum (Portmone's) reverses only a payment of that sum,
        // here as for our own rows below: rolled back, the billing's rows stay.
        if let (
            Some(want),
            Some(UncreditedRecorded::Done { sum, .. } | UncreditedRecorded::Repeat { sum, .. }),
        ) = (order.sum, &recorded)
        {
            if want != *sum {
                tx.rollback()?;
                return unknown(format!(
                    "{named} was paid {sum}, the cancel says {want}: nothing reversed"
                ));
            }
        }
        return match recorded {
            Some(UncreditedRecorded::Done {
                prv_txn,
                sum,
                subscriber_id,
                payment_ref,
                txn_id,
            }) => {
                let cancelled = CancelledRecord {
                    prv_txn,
                    sum,
                    subscriber_id,
                    payment_ref,
                };
                record_cancelled(&mut tx, system, domain, txn_id.as_deref(), &cancelled)?;
                commit(tx)?;
                Ok(Unpaid::Cancelled { prv_txn, sum })
            }
            Some(UncreditedRecorded::Repeat {
                prv_txn,
                sum,
                subscriber_id,
                txn_id,
            }) => {
                let cancelled = CancelledRecord {
                    prv_txn,
                    sum,
                    subscriber_id,
                    payment_ref: 0,
                };
                record_cancelled(&mut tx, system, domain, txn_id.as_deref(), &cancelled)?;
                commit(tx)?;
                Ok(Unpaid::Repeat { prv_txn, sum })
            }
            Some(UncreditedRecorded::Refused(why)) => {
                tx.rollback()?;
                unknown(why)
            }
            None => {
                tx.rollback()?;
                unknown(format!("{named}: no such payment"))
            }
        };
    };
    let Some(stored) = stored(mine) else {
        tx.rollback()?;
        return Err(LedgerError::Vanished);
    };
    if let Some(txn_id) = &order.txn_id {
        if txn_id.as_str() != stored.txn_id {
            tx.rollback()?;
            return unknown(format!("{named} is txn {}, not {txn_id}", stored.txn_id));
        }
    }
    if let Some(sum) = order.sum {
        if sum != stored.sum {
            tx.rollback()?;
            return unknown(format!(
                "{named} was paid {}, the cancel says {sum}: nothing reversed",
                stored.sum
            ));
        }
    }
    if stored.cancelled {
        tx.rollback()?;
        return Ok(Unpaid::Repeat {
            prv_txn: stored.prv_txn,
            sum: stored.sum,
        });
    }
    let uncredit = Uncredit {
        system,
        txn_id: &stored.txn_id,
        subscriber_id: stored.subscriber_id,
        amount: stored.sum,
        payment_ref: stored.payment_ref,
        prv_txn: stored.prv_txn,
        domain,
        caller,
    };
    let uncredited = billing
        .cancel(&mut tx, &uncredit)
        .map_err(|e| read_autoinc_failure(&mut tx, e))?;
    match uncredited {
        Uncredited::NotSupported => {
            tx.rollback()?;
            return Ok(Unpaid::Refused(Refusal::CancelNotSupported(
                billing.kind().name(),
            )));
        }
        Uncredited::Gone(why) => {
            tx.rollback()?;
            return Ok(Unpaid::Refused(Refusal::CancelUnknown(why)));
        }
        Uncredited::Done => {}
    }
    tx.exec_drop(
        "UPDATE paysys_txn SET cancelled = NOW() WHERE id = ?",
        (row,),
    )?;
    commit(tx)?;
    Ok(Unpaid::Cancelled {
        prv_txn: stored.prv_txn,
        sum: stored.sum,
    })
}

/// A payment the billing recorded before paysys, reversed (now or before).
struct CancelledRecord {
    prv_txn: u64,
    sum: Amount,
    subscriber_id: u64,
    payment_ref: u64,
}

/// Our row of a payment the billing's own script made and a cancel reversed, marked
/// cancelled: from now on its UNIQUE key answers every pay of the txn ("cancelled", never
/// credited) whatever the billing's rows say, and `paysys report` counts the cancel. Written
/// only when the txn's whole id is known; a row written meanwhile (`IGNORE`) stays.
fn record_cancelled(
    tx: &mut Transaction<'_>,
    system: &System,
    domain: Domain,
    txn_id: Option<&str>,
    c: &CancelledRecord,
) -> Result<(), mysql::Error> {
    let Some(txn_id) = txn_id.filter(|t| t.chars().count() <= TxnId::MAX_LEN) else {
        return Ok(());
    };
    tx.exec_drop(
        "INSERT IGNORE INTO paysys_txn (system_name, txn_id, account, subscriber_id, amount, \
         txn_date, created, caller_ip, domain_id, payment_ref, prv_txn, cancelled) \
         VALUES (?, ?, ?, ?, CAST(? AS DECIMAL(16,2)), NOW(), NOW(), '', ?, ?, ?, NOW())",
        (
            &system.name,
            txn_id,
            c.subscriber_id.to_string(),
            c.subscriber_id,
            c.sum.to_string(),
            domain.id(),
            c.payment_ref,
            c.prv_txn,
        ),
    )
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
    /// When it was cancelled, if it was.
    pub cancelled: Option<String>,
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
            (
                "cancelled",
                self.cancelled.clone().unwrap_or_else(|| "no".into()),
            ),
        ]
    }
}

/// The committed, not cancelled payments of `system` whose txn_date is in `period`
/// (both ends included), oldest first, at most `limit`: what a payment system's
/// reconciliation request is answered with.
pub fn list(
    conn: &mut Conn,
    system: &str,
    period: &crate::outcome::Period,
    limit: u32,
) -> Result<Vec<crate::outcome::Listed>, mysql::Error> {
    const SQL_TIME: &str = "%Y-%m-%d %H:%M:%S";
    let rows: Vec<(String, String, String, String, u64)> = conn.exec(
        format!(
            "SELECT txn_id, account, CAST(txn_date AS CHAR), CAST(amount AS CHAR), \
             IF(prv_txn = 0, id, prv_txn) FROM paysys_txn WHERE system_name = ? \
             AND txn_date >= ? AND txn_date <= ? AND cancelled IS NULL \
             ORDER BY txn_date, id LIMIT {limit}"
        ),
        (
            system,
            period.from.format(SQL_TIME).to_string(),
            period.to.format(SQL_TIME).to_string(),
        ),
    )?;
    // Columns MySQL wrote itself: DATETIME and DECIMAL(16,2) always read back.
    Ok(rows
        .into_iter()
        .filter_map(|(txn_id, account, txn_date, amount, prv_txn)| {
            Some(crate::outcome::Listed {
                txn_id,
                account,
                txn_date: chrono::NaiveDateTime::parse_from_str(&txn_date, SQL_TIME).ok()?,
                sum: Amount::parse(&amount).ok()?,
                prv_txn,
            })
        })
        .collect())
}

/// `paysys_txn.id` and a [`StoredRow`], flat, as [`cancel`] selects them.
type IdStoredRow = (u64, u64, String, String, u64, String, u64, bool, String);

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
    Option<String>,
);

/// The committed payments to `account` (as typed) since `since`, oldest first, at most
/// `limit` (of `system`, if given).
pub fn lookup_account(
    conn: &mut Conn,
    account: &str,
    since: chrono::NaiveDate,
    system: Option<&str>,
    limit: u32,
) -> Result<Vec<Record>, mysql::Error> {
    let rows: Vec<RecordRow> = conn.exec(
        format!(
            "{RECORD_SELECT} WHERE account = ? AND created >= ? AND (? IS NULL OR system_name = ?) \
             ORDER BY id LIMIT {limit}"
        ),
        (
            account,
            since.format("%Y-%m-%d").to_string(),
            system,
            system,
        ),
    )?;
    Ok(rows.into_iter().map(record).collect())
}

/// Every committed payment with this txn id (of `system`, if given). Only committed rows
/// exist, so an empty answer means: not committed.
pub fn lookup(
    conn: &mut Conn,
    txn_id: &TxnId,
    system: Option<&str>,
) -> Result<Vec<Record>, mysql::Error> {
    let rows: Vec<RecordRow> = conn.exec(
        format!("{RECORD_SELECT} WHERE txn_id = ? AND (? IS NULL OR system_name = ?) ORDER BY id"),
        (txn_id.as_str(), system, system),
    )?;
    Ok(rows.into_iter().map(record).collect())
}

/// The columns of a [`Record`].
const RECORD_SELECT: &str = "SELECT IF(prv_txn = 0, id, prv_txn), system_name, txn_id, account, \
     subscriber_id, CAST(amount AS CHAR), CAST(txn_date AS CHAR), CAST(created AS CHAR), \
     caller_ip, payment_ref, CAST(cancelled AS CHAR) FROM paysys_txn";

fn record(
    (
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
        cancelled,
    ): RecordRow,
) -> Record {
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
        cancelled,
    }
}

/// A booked order (EasyPay's Payment), as `paysys_order` keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    /// What the booking was answered with (EasyPay's PaymentId): the row's id.
    pub payment_id: u64,
    /// The payment system's order id; a confirmation pays it as the txn id.
    pub order_id: String,
    pub account: String,
    pub amount: Amount,
    /// Cancelled before it was confirmed: it is never paid.
    pub cancelled: bool,
    /// `created`, `state`, `status_at` and `provider_status` as the row has them.
    pub created: String,
    pub state: String,
    pub status_at: Option<String>,
    pub provider_status: String,
    /// The database server's clock when the order was read (`NOW()`): what a confirmation
    /// records its payment as made at ([`PayOrder::created`]), so that its answer can say
    /// when without reading it back.
    pub now: String,
}

impl Order {
    /// The order's story once a pay recorded as made at `paid` (this order's [`Order::now`])
    /// committed now: what [`order_view`] reads after it, without the read.
    pub fn paid_view(&self, paid: &str) -> OrderView {
        story(Story {
            payment_id: self.payment_id,
            order_id: self.order_id.clone(),
            account: self.account.clone(),
            amount: self.amount,
            created: &self.created,
            at: self.status_at.as_deref(),
            cancelled: None,
            reason: self.provider_status.clone(),
            paid: Some(paid),
            reversed: None,
        })
    }
}

/// How a booking ended, with the order's story as [`order_view`] reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Booked {
    /// Booked now.
    New(OrderView),
    /// The order id was booked before (with this account and sum, or not): nothing done
    /// now; the caller compares.
    Before(OrderView),
}

/// Books an order: one row per (system, order id), its id the PaymentId. An order id
/// booked before books nothing and is answered with that order; nothing is credited
/// either way. `now`: the booking's time (`%Y-%m-%d %H:%M:%S`, `created`); `at`: when the
/// payment system says it made the order (`%Y-%m-%d %H:%M:%S%.3f`), kept in `status_at`.
pub fn book(
    conn: &mut Conn,
    system: &str,
    order_id: &TxnId,
    account: &str,
    sum: Amount,
    now: &str,
    at: Option<&str>,
) -> Result<Booked, mysql::Error> {
    let inserted = conn.exec_drop(
        "INSERT INTO paysys_order (system_name, order_id, account, amount, created, status_at) \
         VALUES (?, ?, ?, ?, ?, ?)",
        (system, order_id.as_str(), account, sum.to_string(), now, at),
    );
    match inserted {
        // What order_view would read of it, from what was written.
        Ok(()) => Ok(Booked::New(story(Story {
            payment_id: conn.last_insert_id(),
            order_id: order_id.as_str().to_string(),
            account: account.to_string(),
            amount: sum,
            created: now,
            at,
            cancelled: None,
            reason: String::new(),
            paid: None,
            reversed: None,
        }))),
        Err(e) if server_code(&e) == Some(ER_DUP_ENTRY) => {
            match order_view(conn, system, order_id)? {
                Some(first) => Ok(Booked::Before(first)),
                None => Err(e),
            }
        }
        Err(e) => Err(e),
    }
}

/// The order booked under `payment_id` by `system`, if any.
pub fn order(
    conn: &mut Conn,
    system: &str,
    payment_id: u64,
) -> Result<Option<Order>, mysql::Error> {
    let row: Option<OrderRow> = conn.exec_first(
        format!("{ORDER_SELECT} WHERE system_name = ? AND id = ?"),
        (system, payment_id),
    )?;
    Ok(order_of(row))
}

/// The order `system` booked under its own id `order_id` (Payme's), if any.
pub fn order_named(
    conn: &mut Conn,
    system: &str,
    order_id: &TxnId,
) -> Result<Option<Order>, mysql::Error> {
    let row: Option<OrderRow> = conn.exec_first(
        format!("{ORDER_SELECT} WHERE system_name = ? AND order_id = ?"),
        (system, order_id.as_str()),
    )?;
    Ok(order_of(row).filter(|o| o.order_id == order_id.as_str()))
}

/// The columns of an [`Order`], and the server's clock.
const ORDER_SELECT: &str = "SELECT id, order_id, account, CAST(amount AS CHAR), \
     cancelled IS NOT NULL, CAST(created AS CHAR), state, CAST(status_at AS CHAR), \
     provider_status, CAST(NOW() AS CHAR) FROM paysys_order";

type OrderRow = (
    u64,
    String,
    String,
    String,
    bool,
    String,
    String,
    Option<String>,
    String,
    String,
);

fn order_of(row: Option<OrderRow>) -> Option<Order> {
    row.and_then(
        |(
            payment_id,
            order_id,
            account,
            amount,
            cancelled,
            created,
            state,
            status_at,
            provider_status,
            now,
        )| {
            Some(Order {
                payment_id,
                order_id,
                account,
                amount: Amount::parse(&amount).ok()?,
                cancelled,
                created,
                state,
                status_at,
                provider_status,
                now,
            })
        },
    )
}

/// Marks an order that was never paid cancelled, so that no later confirmation pays it.
/// Waits for a confirmation in flight (the row lock of its payment's `paysys_txn` row is
/// not ours to take, so the order row is locked and the payment looked up under it):
/// returns whether the order is now cancelled and unpaid; `false`: it was paid meanwhile.
///
/// Every pay of the order locks its row first, as this does: the two queue on it. A
/// deadlock elsewhere (the payment's rows) is tried again here as in [`pay`].
pub fn drop_order(conn: &mut Conn, system: &str, order: &Order) -> Result<bool, mysql::Error> {
    let mut n = 1;
    loop {
        match try_drop_order(conn, system, order) {
            Err(e) if deadlock_victim(&e) && n < DEADLOCK_ATTEMPTS => {
                std::thread::sleep(deadlock_pause(n));
                n += 1;
            }
            result => return result,
        }
    }
}

fn try_drop_order(conn: &mut Conn, system: &str, order: &Order) -> Result<bool, mysql::Error> {
    let mut tx = conn.start_transaction(TxOpts::default())?;
    tx.exec_drop(
        "SELECT id FROM paysys_order WHERE system_name = ? AND id = ? FOR UPDATE",
        (system, order.payment_id),
    )?;
    let paid: Option<u64> = tx.exec_first(
        "SELECT id FROM paysys_txn WHERE system_name = ? AND txn_id = ? LOCK IN SHARE MODE",
        (system, order.order_id.as_str()),
    )?;
    if paid.is_some() {
        tx.rollback()?;
        return Ok(false);
    }
    tx.exec_drop(
        "UPDATE paysys_order SET cancelled = NOW() WHERE system_name = ? AND id = ? AND cancelled IS NULL",
        (system, order.payment_id),
    )?;
    tx.commit()?;
    Ok(true)
}

/// A booked order's whole story, as a payment system that asks about it is told (Payme):
/// when it was booked, paid and cancelled (milliseconds since 1970, 0: not yet), and why
/// it was cancelled, as the system said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderView {
    pub payment_id: u64,
    pub order_id: String,
    pub account: String,
    /// The name the payment system gives the account's field (Payme's `account` object):
    /// the system's first account key's, which the caller sets; `account` until then.
    pub account_key: &'static str,
    pub amount: Amount,
    /// When the payment system says it made the order (`Booking::at`), else `created`.
    pub at: i64,
    pub created: i64,
    pub paid: i64,
    pub cancelled: i64,
    /// Cancelled after it was paid: the payment was reversed.
    pub reversed: bool,
    pub reason: String,
}

/// The columns of an [`OrderView`]: the order, and its payment if it was paid.
const VIEW_SELECT: &str = "SELECT o.id, o.order_id, o.account, CAST(o.amount AS CHAR), \
     CAST(o.created AS CHAR), CAST(o.status_at AS CHAR), CAST(o.cancelled AS CHAR), \
     o.provider_status, CAST(t.created AS CHAR), CAST(t.cancelled AS CHAR) \
     FROM paysys_order o LEFT JOIN paysys_txn t \
     ON t.system_name = o.system_name AND t.txn_id = o.order_id";

type ViewRow = (
    u64,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    String,
    Option<String>,
    Option<String>,
);

/// Milliseconds since 1970 of a DATETIME MySQL wrote in the server's local time; 0 for
/// none (or one that names no instant).
fn millis(text: Option<&str>) -> i64 {
    use chrono::TimeZone;
    text.and_then(|t| {
        chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S%.f")
            .or_else(|_| chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S"))
            .ok()
    })
    .and_then(|t| chrono::Local.from_local_datetime(&t).earliest())
    .map(|t| t.timestamp_millis())
    .unwrap_or(0)
}

fn view(row: ViewRow) -> Option<OrderView> {
    let (id, order_id, account, amount, created, at, cancelled, reason, paid, reversed) = row;
    Some(story(Story {
        payment_id: id,
        order_id,
        account,
        amount: Amount::parse(&amount).ok()?,
        created: &created,
        at: at.as_deref(),
        cancelled: cancelled.as_deref(),
        reason,
        paid: paid.as_deref(),
        reversed: reversed.as_deref(),
    }))
}

/// An order's columns as the database gives them as text ([`VIEW_SELECT`]), or as they
/// were written.
struct Story<'a> {
    payment_id: u64,
    order_id: String,
    account: String,
    amount: Amount,
    created: &'a str,
    at: Option<&'a str>,
    cancelled: Option<&'a str>,
    reason: String,
    paid: Option<&'a str>,
    reversed: Option<&'a str>,
}

fn story(s: Story<'_>) -> OrderView {
    let created = millis(Some(s.created));
    OrderView {
        payment_id: s.payment_id,
        order_id: s.order_id,
        account: s.account,
        account_key: "account",
        amount: s.amount,
        at: match millis(s.at) {
            0 => created,
            at => at,
        },
        created,
        paid: millis(s.paid),
        // Cancelled unpaid (the order), or paid and reversed (its payment).
        cancelled: millis(s.cancelled.or(s.reversed)),
        reversed: s.reversed.is_some(),
        reason: s.reason,
    }
}

/// The story of the order `system` booked under `order_id`, if it did.
pub fn order_view(
    conn: &mut Conn,
    system: &str,
    order_id: &TxnId,
) -> Result<Option<OrderView>, mysql::Error> {
    let row: Option<ViewRow> = conn.exec_first(
        format!("{VIEW_SELECT} WHERE o.system_name = ? AND o.order_id = ?"),
        (system, order_id.as_str()),
    )?;
    Ok(row
        .and_then(view)
        .filter(|v| v.order_id == order_id.as_str()))
}

/// The orders `system` says it made in `period` (`Booking::at`; `created` for an order
/// without), oldest first, at most `limit`.
pub fn order_views(
    conn: &mut Conn,
    system: &str,
    period: &crate::outcome::Period,
    limit: u32,
) -> Result<Vec<OrderView>, mysql::Error> {
    const SQL_TIME: &str = "%Y-%m-%d %H:%M:%S%.3f";
    let rows: Vec<ViewRow> = conn.exec(
        format!(
            "{VIEW_SELECT} WHERE o.system_name = ? AND IFNULL(o.status_at, o.created) >= ? \
             AND IFNULL(o.status_at, o.created) <= ? ORDER BY IFNULL(o.status_at, o.created), \
             o.id LIMIT {limit}"
        ),
        (
            system,
            period.from.format(SQL_TIME).to_string(),
            period.to.format(SQL_TIME).to_string(),
        ),
    )?;
    Ok(rows.into_iter().filter_map(view).collect())
}

/// Cancels `system`'s orders booked before `before` and never paid — the one named
/// `order_id`, or all — noting `reason`: an order the payment system may no longer pay
/// (Payme's 12 hours, reason 4). A pay of the order in flight either commits first (the
/// order is `paid` then, and stays) or finds it cancelled. Returns how many it cancelled.
pub fn expire_orders(
    conn: &mut Conn,
    system: &str,
    order_id: Option<&TxnId>,
    before: &str,
    reason: &str,
) -> Result<u64, mysql::Error> {
    retried(|| try_expire_orders(conn, system, order_id, before, reason))
}

fn try_expire_orders(
    conn: &mut Conn,
    system: &str,
    order_id: Option<&TxnId>,
    before: &str,
    reason: &str,
) -> Result<u64, mysql::Error> {
    conn.exec_drop(
        "UPDATE paysys_order SET cancelled = NOW(), provider_status = ?, updated = NOW() \
         WHERE system_name = ? AND (? IS NULL OR order_id = ?) AND cancelled IS NULL \
         AND state = 'booked' AND created < ?",
        (
            reason,
            system,
            order_id.map(TxnId::as_str),
            order_id.map(TxnId::as_str),
            before,
        ),
    )?;
    Ok(conn.affected_rows())
}

/// Keeps why the payment system cancelled the order (Payme's `reason`), unless a reason
/// is kept already: the first word stands, as the cancel's first answer does.
pub fn note_order(
    conn: &mut Conn,
    system: &str,
    payment_id: u64,
    reason: &str,
) -> Result<(), mysql::Error> {
    retried(|| {
        conn.exec_drop(
            "UPDATE paysys_order SET provider_status = ? WHERE system_name = ? AND id = ? \
             AND provider_status = ''",
            (column_text(reason, 32), system, payment_id),
        )
    })
}

/// `statement`, tried again while the server ends it as a deadlock victim (rolled back
/// whole: safe to repeat), at most [`DEADLOCK_ATTEMPTS`] times. Concurrent calls about one
/// order (Payme asks again while its first request runs) meet on its row now and then.
fn retried<T>(mut statement: impl FnMut() -> Result<T, mysql::Error>) -> Result<T, mysql::Error> {
    let mut n = 1;
    loop {
        match statement() {
            Err(e) if deadlock_victim(&e) && n < DEADLOCK_ATTEMPTS => {
                std::thread::sleep(deadlock_pause(n));
                n += 1;
            }
            result => return result,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::ER_CHECKREAD;

    fn server_error(code: u16) -> LedgerError {
        LedgerError::Database(mysql::Error::MySqlError(mysql::MySqlError {
            state: "40001".into(),
            message: "Deadlock found when trying to get lock; try restarting transaction".into(),
            code,
        }))
    }

    #[test]
    fn a_deadlock_victim_is_tried_again_until_it_commits() {
        let mut tries = 0;
        let result = with_deadlock_retries(|| {
            tries += 1;
            // A victim waiting for a row's lock, one waiting for an AUTO-INC lock, one of
            // snapshot isolation's write-write conflicts.
            match tries {
                1 => Err(server_error(ER_LOCK_DEADLOCK)),
                2 => Err(server_error(ER_AUTOINC_READ_FAILED)),
                3 => Err(server_error(ER_CHECKREAD)),
                _ => Ok(tries),
            }
        });
        assert_eq!(result.ok(), Some(4));
    }

    #[test]
    fn conflicts_that_outlast_the_retries_end_as_deadlocked_after_a_bounded_number() {
        let mut tries = 0;
        let started = std::time::Instant::now();
        let result: Result<(), _> = with_deadlock_retries(|| {
            tries += 1;
            Err(server_error(ER_LOCK_DEADLOCK))
        });
        assert_eq!(tries, DEADLOCK_ATTEMPTS);
        match result {
            Err(LedgerError::Deadlocked { attempts, last }) => {
                assert_eq!(attempts, DEADLOCK_ATTEMPTS);
                assert_eq!(server_code(&last), Some(ER_LOCK_DEADLOCK));
            }
            other => panic!("{other:?}"),
        }
        // The pauses add up to well under a second: no terminal waits on them.
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        // Any other error is not retried.
        let mut tries = 0;
        let result: Result<(), _> = with_deadlock_retries(|| {
            tries += 1;
            Err(server_error(1205))
        });
        assert_eq!(tries, 1);
        assert!(matches!(result, Err(LedgerError::Database(_))));
    }
}
