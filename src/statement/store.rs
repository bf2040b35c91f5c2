//! `paysys_statement`: every credit row of a statement that was not skipped, one row per
//! (bank, the bank's row id), with what became of it — credited, waiting in the queue
//! (unmatched, ambiguous), a settlement, ignored by the admin. The admin's view and the
//! queue; the money's own guarantee is the ledger's UNIQUE key (the row is credited under
//! its id, as a payment of the bank's system), so a lost or stale row here can never lead
//! to a second credit.

use mysql::prelude::Queryable;
use mysql::Conn;

use crate::domain::Amount;
use crate::ledger::column_text;
use crate::statement::StatementRow;

/// A row's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Credited to a subscriber (by the rules or by the admin's `assign`).
    Credited,
    /// No subscriber found: waits for the admin.
    Unmatched,
    /// Several subscribers found: waits for the admin.
    Ambiguous,
    /// A payment network's lump sum: for `paysys reconcile`, never credited.
    Settlement,
    /// Closed by the admin without a credit.
    Ignored,
    /// Credited by hand in the billing before: closed by the admin, nothing credited here.
    ByHand,
}

impl State {
    pub const ALL: [State; 6] = [
        State::Credited,
        State::Unmatched,
        State::Ambiguous,
        State::Settlement,
        State::Ignored,
        State::ByHand,
    ];

    pub fn name(self) -> &'static str {
        match self {
            State::Credited => "credited",
            State::Unmatched => "unmatched",
            State::Ambiguous => "ambiguous",
            State::Settlement => "settlement",
            State::Ignored => "ignored",
            State::ByHand => "by_hand",
        }
    }

    pub fn parse(text: &str) -> Option<State> {
        State::ALL.into_iter().find(|s| s.name() == text)
    }

    /// Whether the row waits for the admin (and is matched again on the next import).
    pub fn open(self) -> bool {
        matches!(self, State::Unmatched | State::Ambiguous)
    }
}

/// One row as `paysys_statement` keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// `statement list` numbers rows by this.
    pub id: u64,
    pub bank: String,
    pub row_id: String,
    pub txn_id: String,
    pub date: String,
    pub amount: Amount,
    pub currency: String,
    pub purpose: String,
    pub payer_name: String,
    pub payer_code: String,
    pub state: State,
    pub reason: String,
    pub account: String,
    pub prv_txn: Option<u64>,
    pub admin: String,
}

const COLUMNS: &str = "id, bank, row_id, txn_id, CAST(op_date AS CHAR), \
     CAST(amount AS DECIMAL(16,2)), currency, purpose, payer_name, payer_code, state, reason, \
     account, prv_txn, admin";

type Row = mysql::Row;

fn stored(mut row: Row) -> Option<Stored> {
    Some(Stored {
        id: row.take(0)?,
        bank: row.take(1)?,
        row_id: row.take(2)?,
        txn_id: row.take(3)?,
        date: row.take(4)?,
        amount: Amount::parse(&row.take::<String, _>(5)?).ok()?,
        currency: row.take(6)?,
        purpose: row.take(7)?,
        payer_name: row.take(8)?,
        payer_code: row.take(9)?,
        state: State::parse(&row.take::<String, _>(10)?)?,
        reason: row.take(11)?,
        account: row.take(12)?,
        prv_txn: row.take(13)?,
        admin: row.take(14)?,
    })
}

/// The row `row_id` of `bank`, if it was seen before.
pub fn find(conn: &mut Conn, bank: &str, row_id: &str) -> Result<Option<Stored>, mysql::Error> {
    let row: Option<Row> = conn.exec_first(
        format!("SELECT {COLUMNS} FROM paysys_statement WHERE bank = ? AND row_id = ?"),
        (bank, row_id),
    )?;
    Ok(row.and_then(stored))
}

/// A row by its number in `statement list`, or by the bank's row id (of any bank; the
/// first if two banks share it).
pub fn find_by_ref(conn: &mut Conn, text: &str) -> Result<Option<Stored>, mysql::Error> {
    if let Ok(id) = text.parse::<u64>() {
        let row: Option<Row> = conn.exec_first(
            format!("SELECT {COLUMNS} FROM paysys_statement WHERE id = ?"),
            (id,),
        )?;
        if let Some(row) = row.and_then(stored) {
            return Ok(Some(row));
        }
    }
    let row: Option<Row> = conn.exec_first(
        format!("SELECT {COLUMNS} FROM paysys_statement WHERE row_id = ? ORDER BY id LIMIT 1"),
        (text,),
    )?;
    Ok(row.and_then(stored))
}

/// What the importer decided of a row.
#[derive(Debug, Clone)]
pub struct Decision<'a> {
    pub state: State,
    pub reason: &'a str,
    pub account: &'a str,
    pub prv_txn: Option<u64>,
    pub admin: &'a str,
}

/// A row's decision, to be written with others in one transaction ([`record_all`]).
#[derive(Debug, Clone)]
pub struct Pending {
    pub bank: String,
    pub row: StatementRow,
    pub txn_id: String,
    pub source: String,
    pub state: State,
    pub reason: String,
    pub account: String,
    pub prv_txn: Option<u64>,
    pub admin: String,
}

/// Records `row` of `bank` with `decision`. A row seen before keeps its first facts; its
/// state changes only while it is open (unmatched or ambiguous): a closed row stays as it
/// was closed.
pub fn record(
    conn: &mut impl Queryable,
    bank: &str,
    row: &StatementRow,
    txn_id: &str,
    source: &str,
    decision: &Decision<'_>,
) -> Result<(), mysql::Error> {
    // MariaDB applies the assignments of ON DUPLICATE KEY UPDATE left to right, each seeing
    // the ones before: `state` goes last, so that every other column tests the old state.
    conn.exec_drop(
        "INSERT INTO paysys_statement (bank, row_id, txn_id, op_date, amount, currency, purpose, \
         payer_name, payer_code, payer_account, state, reason, account, prv_txn, source, admin, \
         created, updated) VALUES (?, ?, ?, ?, CAST(? AS DECIMAL(16,2)), ?, ?, ?, ?, ?, ?, ?, ?, \
         ?, ?, ?, NOW(), NOW()) \
         ON DUPLICATE KEY UPDATE \
         reason = IF(state IN ('unmatched', 'ambiguous'), VALUES(reason), reason), \
         account = IF(state IN ('unmatched', 'ambiguous'), VALUES(account), account), \
         prv_txn = IF(state IN ('unmatched', 'ambiguous'), VALUES(prv_txn), prv_txn), \
         admin = IF(state IN ('unmatched', 'ambiguous'), VALUES(admin), admin), \
         updated = IF(state IN ('unmatched', 'ambiguous'), NOW(), updated), \
         state = IF(state IN ('unmatched', 'ambiguous'), VALUES(state), state)",
        mysql::Params::Positional(vec![
            bank.into(),
            row.id.as_str().into(),
            txn_id.into(),
            row.date.format("%Y-%m-%d").to_string().into(),
            row.amount.to_string().into(),
            row.currency.clone().unwrap_or_default().into(),
            column_text(&row.purpose, 500).into(),
            column_text(&row.payer_name, 255).into(),
            row.payer_code.clone().unwrap_or_default().into(),
            column_text(row.payer_account.as_deref().unwrap_or(""), 34).into(),
            decision.state.name().into(),
            column_text(decision.reason, 255).into(),
            column_text(decision.account, 64).into(),
            decision.prv_txn.into(),
            column_text(source, 255).into(),
            column_text(decision.admin, 64).into(),
        ]),
    )
}

/// Records every row of `rows` ([`record`]) in one transaction: one commit (one log flush
/// to disk) for all of them instead of one each. All or none.
pub fn record_all(conn: &mut Conn, rows: &[Pending]) -> Result<(), mysql::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut tx = conn.start_transaction(mysql::TxOpts::default())?;
    for p in rows {
        record(
            &mut tx,
            &p.bank,
            &p.row,
            &p.txn_id,
            &p.source,
            &Decision {
                state: p.state,
                reason: &p.reason,
                account: &p.account,
                prv_txn: p.prv_txn,
                admin: &p.admin,
            },
        )?;
    }
    tx.commit()
}

/// Closes an open row by the admin's hand: credited to `account` (`prv_txn`), ignored, or
/// marked credited by hand. `Ok(false)`: it was not open.
pub fn close(conn: &mut Conn, id: u64, decision: &Decision<'_>) -> Result<bool, mysql::Error> {
    conn.exec_drop(
        "UPDATE paysys_statement SET state = ?, reason = ?, account = ?, prv_txn = ?, admin = ?, \
         updated = NOW() WHERE id = ? AND state IN ('unmatched', 'ambiguous')",
        (
            decision.state.name(),
            column_text(decision.reason, 255),
            column_text(decision.account, 64),
            decision.prv_txn,
            column_text(decision.admin, 64),
            id,
        ),
    )?;
    Ok(conn.affected_rows() > 0)
}

/// Which rows `statement list` shows.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Any of these states; all when empty.
    pub states: Vec<State>,
    pub from: Option<chrono::NaiveDate>,
    pub bank: Option<String>,
}

/// The rows `filter` names, oldest first, at most `limit`.
pub fn list(conn: &mut Conn, filter: &Filter, limit: u32) -> Result<Vec<Stored>, mysql::Error> {
    let states: Vec<&str> = if filter.states.is_empty() {
        State::ALL.iter().map(|s| s.name()).collect()
    } else {
        filter.states.iter().map(|s| s.name()).collect()
    };
    let marks = vec!["?"; states.len()].join(", ");
    let mut params: Vec<mysql::Value> = states.iter().map(|s| (*s).into()).collect();
    params.push(
        filter
            .from
            .map(|d| d.format("%Y-%m-%d").to_string())
            .unwrap_or_else(|| "1000-01-01".into())
            .into(),
    );
    params.push(filter.bank.clone().unwrap_or_default().into());
    params.push(filter.bank.clone().unwrap_or_default().into());
    params.push(limit.into());
    let rows: Vec<Row> = conn.exec(
        format!(
            "SELECT {COLUMNS} FROM paysys_statement WHERE state IN ({marks}) AND op_date >= ? \
             AND (? = '' OR bank = ?) ORDER BY op_date, id LIMIT ?"
        ),
        mysql::Params::Positional(params),
    )?;
    Ok(rows.into_iter().filter_map(stored).collect())
}

/// What kind of id a row has: one the bank gave (`bank`), or one derived from a 1C or CSV
/// row's content (`1c`, `csv`). The same payment has another id in each kind.
pub fn id_kind(row_id: &str) -> &'static str {
    if row_id.starts_with("1c:") {
        "1c"
    } else if row_id.starts_with("csv:") {
        "csv"
    } else {
        "bank"
    }
}

/// A row of `bank` already credited (by the rules, the admin or by hand) that may be the
/// same payment as `row` seen through another kind of statement — a 1C export and then the
/// bank's API, whose ids differ: the same day and sum, and the same payer's account or
/// code where both rows name one. `(number, row id, source)` of the first such row.
pub fn credited_elsewhere(
    conn: &mut Conn,
    bank: &str,
    row: &StatementRow,
) -> Result<Option<(u64, String, String)>, mysql::Error> {
    let rows: Vec<(u64, String, String, String, String)> = conn.exec(
        "SELECT id, row_id, source, payer_account, payer_code FROM paysys_statement \
         WHERE bank = ? AND op_date = ? AND amount = CAST(? AS DECIMAL(16,2)) \
         AND state IN ('credited', 'by_hand') AND row_id <> ? ORDER BY id LIMIT 20",
        (
            bank,
            row.date.format("%Y-%m-%d").to_string(),
            row.amount.to_string(),
            row.id.as_str(),
        ),
    )?;
    let kind = id_kind(row.id.as_str());
    let same_payer = |account: &str, code: &str| {
        let mine_account = row.payer_account.as_deref().unwrap_or("");
        let mine_code = row.payer_code.as_deref().unwrap_or("");
        if !account.is_empty() && !mine_account.is_empty() {
            return account == mine_account;
        }
        if !code.is_empty() && !mine_code.is_empty() {
            return code == mine_code;
        }
        // Nothing to tell the payers apart by: it may be the same payment.
        true
    };
    Ok(rows
        .into_iter()
        .find(|(_, id, _, account, code)| id_kind(id) != kind && same_payer(account, code))
        .map(|(n, id, source, _, _)| (n, id, source)))
}
