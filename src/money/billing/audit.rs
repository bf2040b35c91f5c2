//! What a billing's own rows say about our ledger, for `paysys audit` ([`crate::admin::audit`]).
//!
//! Each billing answers four questions, one streamed query each, inside the read-only,
//! consistent-snapshot transaction the command opens (so a payment committing meanwhile
//! is seen whole or not at all):
//!
//! 1. [`Audit::ledger`]: for every `paysys_txn` row in scope, do the billing's rows exist and
//!    agree (subscriber, sum, which payment they are; ABillS: `paysys_log` status, the bill)?
//!    A cancelled payment: were its rows reversed?
//! 2. [`Audit::unknown`]: rows of our systems in the billing that no `paysys_txn` row knows
//!    (written by hand, or by the old script after the switch).
//! 3. [`Audit::balances`]: where the billing keeps what makes it checkable, does the balance
//!    of each subscriber we paid add up?
//! 4. [`Audit::limits`]: what cannot be checked on this billing, said once in the summary.
//!
//! Nothing here writes. Every row found wrong becomes a [`Finding`]: what, and what to do.

use chrono::NaiveDateTime;
use mysql::Transaction;

use crate::config::System;
use crate::domain::Amount;

/// What kind of discrepancy a finding is; the summary counts them by kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// A payment our ledger holds has no billing row (or only another payment's).
    Missing,
    /// The billing's row says another subscriber, sum, status or bill than our ledger.
    Differs,
    /// A billing row of our systems that our ledger does not know.
    Unknown,
    /// A payment cancelled in our ledger whose billing rows were not reversed.
    NotReversed,
    /// A balance that does not add up.
    Balance,
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::Missing,
        Kind::Differs,
        Kind::Unknown,
        Kind::NotReversed,
        Kind::Balance,
    ];

    /// The word each line starts with, greppable.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Missing => "missing",
            Kind::Differs => "differs",
            Kind::Unknown => "unknown",
            Kind::NotReversed => "not-reversed",
            Kind::Balance => "balance",
        }
    }
}

/// One discrepancy: what was found, and what the admin should do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub kind: Kind,
    /// The payment system, where the finding is about one payment or one system's row.
    pub system: String,
    /// The payment's txn id, where there is one.
    pub txn_id: String,
    pub what: String,
    pub todo: String,
}

/// What the audit looks at.
#[derive(Debug, Clone)]
pub struct Scope<'a> {
    /// Our payments committed (`paysys_txn.created`) or cancelled in `[from, to)`.
    pub from: NaiveDateTime,
    pub to: NaiveDateTime,
    /// Only this system's payments (`--system`).
    pub system: Option<&'a str>,
    /// The config's systems (all, or the one named): their ABillS ids and prefixes, the
    /// marks by which a billing row is known to be theirs.
    pub systems: Vec<&'a System>,
    /// When paysys committed its first payment (the switch): billing rows written before
    /// it are the old script's and are not looked at by [`Audit::unknown`].
    pub switch: Option<NaiveDateTime>,
    /// Whether `to` is in the future: then the last recorded change of a balance can be
    /// compared with the balance now.
    pub reaches_now: bool,
}

impl Scope<'_> {
    /// `[from, to)` as SQL `DATETIME` text.
    pub fn range(&self) -> (String, String) {
        (sql_time(self.from), sql_time(self.to))
    }

    /// The range billing rows are looked at in: from the switch at the earliest. `None`
    /// when nothing is left (the range ends before the switch, or nothing was ever paid).
    pub fn billing_range(&self) -> Option<(NaiveDateTime, NaiveDateTime)> {
        let switch = self.switch?;
        let from = self.from.max(switch);
        (from < self.to).then_some((from, self.to))
    }

    /// The config's system `name`, if it is there.
    pub fn system(&self, name: &str) -> Option<&System> {
        self.systems.iter().copied().find(|s| s.name == name)
    }
}

pub fn sql_time(t: NaiveDateTime) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// What one question covered, for the totals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Rows (payments, billing rows, subscribers) looked at.
    pub rows: u64,
    /// Of them, cancelled payments (ledger) whose reversal was checked.
    pub cancelled: u64,
    /// Their sum in kopecks (ledger: the payments not cancelled).
    pub kopecks: i128,
    /// Rows that could not be judged (said in a note, not counted as discrepancies).
    pub unjudged: u64,
}

/// A billing's side of `paysys audit`. Every method streams its rows (`exec_iter`) and
/// hands each finding to `found` as it goes: memory does not grow with the range. Errors
/// (the database's, a row that cannot be read) are said for the admin: the run ends, exit 2.
pub trait Audit: Sync {
    /// Every `paysys_txn` row in scope against the billing's rows of it.
    fn ledger(
        &self,
        tx: &mut Transaction<'_>,
        scope: &Scope<'_>,
        found: &mut dyn FnMut(Finding),
    ) -> Result<Tally, String>;

    /// The billing's rows of our systems that no `paysys_txn` row knows.
    fn unknown(
        &self,
        tx: &mut Transaction<'_>,
        scope: &Scope<'_>,
        found: &mut dyn FnMut(Finding),
    ) -> Result<Tally, String>;

    /// The balances of the subscribers our payments in scope touched, where the billing
    /// keeps what makes them checkable.
    fn balances(
        &self,
        tx: &mut Transaction<'_>,
        scope: &Scope<'_>,
        found: &mut dyn FnMut(Finding),
    ) -> Result<Tally, String>;

    /// What this billing's tables cannot tell, one sentence each, for the summary.
    fn limits(&self) -> &'static [&'static str];
}

/// A decimal the server wrote (`-12.5`, `100.000000`) in millionths, exactly.
pub fn micros(text: &str) -> Option<i128> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (whole, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || whole.len() > 24 || !all_digits(whole) || !all_digits(frac) {
        return None;
    }
    let (kept, beyond) = frac.split_at(frac.len().min(6));
    if beyond.bytes().any(|b| b != b'0') {
        return None;
    }
    let value =
        whole.parse::<i128>().ok()? * 1_000_000 + format!("{kept:0<6}").parse::<i128>().ok()?;
    Some(if negative { -value } else { value })
}

/// Millionths as money with two decimals (rounded half away from zero) for the admin.
pub fn money_of_micros(m: i128) -> String {
    let kopecks = (m.abs() + 5_000) / 10_000 * m.signum();
    crate::reconcile::money(kopecks)
}

/// A sum the server wrote as `DECIMAL(…,2)`: the kopecks, or the text as it was.
pub fn amount(text: &str) -> Result<Amount, String> {
    crate::domain::parse_balance(text).ok_or_else(|| text.to_string())
}

/// `'a%b_'` → `'a\%b\_'`: a text to put before `%` in a `LIKE` pattern.
pub fn like_prefix(text: &str) -> String {
    let mut s = String::with_capacity(text.len() + 1);
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            s.push('\\');
        }
        s.push(c);
    }
    s.push('%');
    s
}

/// The `paysys_txn` rows in scope: committed or cancelled in the range, of one system if
/// asked. Uses the `created` and `cancelled` keys (an index merge), so that a day's audit
/// reads a day's rows, not the table.
pub fn ledger_where(scope: &Scope<'_>) -> (String, Vec<mysql::Value>) {
    let (from, to) = scope.range();
    let mut sql = "((t.created >= ? AND t.created < ?) OR (t.cancelled >= ? AND t.cancelled < ?))"
        .to_string();
    let mut params: Vec<mysql::Value> = vec![
        from.clone().into(),
        to.clone().into(),
        from.into(),
        to.into(),
    ];
    if let Some(system) = scope.system {
        sql.push_str(" AND t.system_name = ?");
        params.push(system.into());
    }
    (sql, params)
}

/// Where to start reading a billing table without a key on its time (NoDeny `pays`, ABillS
/// `paysys_log`) for rows written from `from` on: above the `column` (`payment_ref`,
/// `prv_txn`) of the last payment we committed an hour before it. Ids are given out in
/// increasing order, so every row inserted since has a larger one; only a row inserted by
/// hand with an id chosen smaller is not seen. 0 (the whole table) when there is none.
pub fn id_floor(
    tx: &mut Transaction<'_>,
    column: &str,
    from: NaiveDateTime,
) -> Result<u64, String> {
    use mysql::prelude::Queryable;
    let before = sql_time(from - chrono::Duration::hours(1));
    let floor: Option<u64> = tx
        .exec_first(
            format!(
                "SELECT {column} FROM paysys_txn WHERE created < ? ORDER BY created DESC LIMIT 1"
            ),
            (before,),
        )
        .map_err(|e| format!("paysys_txn: {e}"))?;
    Ok(floor.unwrap_or(0))
}

/// A `paysys_txn` row in scope, as every billing reads it.
#[derive(Debug, Clone)]
pub struct LedgerRow {
    pub system: String,
    pub txn_id: String,
    pub subscriber_id: u64,
    pub amount: Amount,
    pub payment_ref: u64,
    pub prv_txn: u64,
    pub cancelled: Option<String>,
}

/// The `paysys_txn` columns of a [`LedgerRow`], in order, each prefixed `t.`.
pub const LEDGER_COLUMNS: &str = "t.system_name, t.txn_id, t.subscriber_id, \
     CAST(t.amount AS CHAR), t.payment_ref, IF(t.prv_txn = 0, t.id, t.prv_txn), \
     CAST(t.cancelled AS CHAR)";

/// How many columns [`LEDGER_COLUMNS`] has.
pub const LEDGER_WIDTH: usize = 7;

impl LedgerRow {
    /// The row's [`LEDGER_COLUMNS`], taken from the front of `row`.
    pub fn take(row: &mut mysql::Row) -> Result<LedgerRow, String> {
        let system: String = take(row, 0)?;
        let txn_id: String = take(row, 1)?;
        let amount_text: String = take(row, 3)?;
        Ok(LedgerRow {
            amount: amount(&amount_text)
                .map_err(|t| format!("paysys_txn {system} {txn_id}: amount '{t}' is not a sum"))?,
            subscriber_id: take(row, 2)?,
            payment_ref: take(row, 4)?,
            prv_txn: take(row, 5)?,
            cancelled: take(row, 6)?,
            system,
            txn_id,
        })
    }

    /// A finding about this payment.
    pub fn finding(&self, kind: Kind, what: String, todo: &str) -> Finding {
        Finding {
            kind,
            system: self.system.clone(),
            txn_id: self.txn_id.clone(),
            what,
            todo: todo.to_string(),
        }
    }
}

/// Column `i` of `row` as `T` (`NULL` as `None` where `T` is an `Option`).
pub fn take<T: mysql::prelude::FromValue>(row: &mut mysql::Row, i: usize) -> Result<T, String> {
    match row.take_opt::<T, usize>(i) {
        Some(Ok(v)) => Ok(v),
        Some(Err(e)) => Err(format!("column {i}: {e}")),
        None => Err(format!("column {i} is missing")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_are_read_in_millionths_exactly() {
        assert_eq!(micros("100.000000"), Some(100_000_000));
        assert_eq!(micros("-87.5"), Some(-87_500_000));
        assert_eq!(micros("0.000001"), Some(1));
        assert_eq!(micros("12"), Some(12_000_000));
        for bad in ["", "-", "1e3", "1.0000001", ".5", "x"] {
            assert_eq!(micros(bad), None, "{bad}");
        }
        assert_eq!(money_of_micros(-87_500_000), "-87.50");
        assert_eq!(money_of_micros(4_999), "0.00");
        assert_eq!(money_of_micros(5_000), "0.01");
    }

    #[test]
    fn like_prefixes_are_escaped() {
        assert_eq!(like_prefix("OSM:"), "OSM:%");
        assert_eq!(like_prefix("a%b_c\\:"), "a\\%b\\_c\\\\:%");
    }
}
