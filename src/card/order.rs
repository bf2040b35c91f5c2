//! Card orders in `paysys_order`: stored before the subscriber's browser leaves for the
//! provider, found again by the id we gave the provider, and noted as the provider's word
//! comes (a callback, or the sweeper's status request).
//!
//! Money is not moved here: a provider's success becomes the pay of the order through the
//! ledger (exactly once by the order id, the order row locked in the same transaction),
//! which also marks the order paid. This module writes every other state, and never one
//! that would take a paid order back — but a reversal, which the admin must see.

use std::io::Read;

use chrono::NaiveDateTime;
use mysql::prelude::Queryable;
use mysql::Conn;

use crate::billing::Billing;
use crate::config::System;
use crate::domain::{Amount, Domain};
use crate::outcome::CardState;

/// A card order as `paysys_order` keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardOrder {
    /// Our row id.
    pub id: u64,
    /// What the provider knows the order by.
    pub order_id: String,
    pub account: String,
    /// What the subscriber is credited.
    pub amount: Amount,
    /// What the provider charges: the amount plus the commission.
    pub charged: Amount,
    pub currency: String,
    /// `waiting`, `paid`, `failed`, `expired`, `reversed`, `mismatch`.
    pub state: String,
    pub status_at: Option<NaiveDateTime>,
    pub domain: Domain,
    pub cancelled: bool,
    /// The provider's id of the order's payment, as first recorded (Monobank: the
    /// invoiceId its invoice/create answered), or empty.
    pub provider_ref: String,
    /// The subscriber the account named when the order was made (`None`: not recorded):
    /// its pay credits them or nobody.
    pub subscriber_id: Option<u64>,
}

/// A new order's id: 20 characters of the kernel's randomness (base32, lower case), so an
/// order's page cannot be found by counting.
pub fn new_order_id() -> std::io::Result<String> {
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut bytes = [0u8; 20];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes
        .iter()
        .map(|b| ALPHABET[usize::from(b % 32)] as char)
        .collect())
}

/// What an order is made of.
#[derive(Debug, Clone)]
pub struct NewOrder<'a> {
    pub system: &'a str,
    pub account: &'a str,
    pub amount: Amount,
    pub charged: Amount,
    pub currency: &'a str,
    pub domain: Domain,
    pub validity_hours: u32,
    /// The subscriber the account named when the order was made: the payment goes to them
    /// or to nobody (an account renamed or reassigned meanwhile holds the order for the
    /// admin). `None`: not known.
    pub subscriber_id: Option<u64>,
}

/// Stores a new order, waiting for its payment.
pub fn create(conn: &mut Conn, order: &NewOrder<'_>) -> Result<CardOrder, String> {
    create_by(conn, order, "")
}

/// Stores a new order asked for from `caller` (as [`caller_key`] gives it; `""`: unknown),
/// waiting for its payment.
pub fn create_by(conn: &mut Conn, order: &NewOrder<'_>, caller: &str) -> Result<CardOrder, String> {
    let order_id = new_order_id().map_err(|e| format!("no randomness for an order id: {e}"))?;
    conn.exec_drop(
        "INSERT INTO paysys_order (system_name, order_id, account, amount, created, state, \
         charged, currency, domain_id, valid_until, updated, caller_ip, subscriber_id) VALUES \
         (?, ?, ?, CAST(? AS DECIMAL(16,2)), NOW(), 'waiting', CAST(? AS DECIMAL(16,2)), ?, ?, \
         NOW() + INTERVAL ? HOUR, NOW(), ?, ?)",
        (
            order.system,
            &order_id,
            order.account,
            order.amount.to_string(),
            order.charged.to_string(),
            order.currency,
            order.domain.id(),
            order.validity_hours,
            crate::ledger::column_text(caller, 45),
            order.subscriber_id,
        ),
    )
    .map_err(|e| e.to_string())?;
    Ok(CardOrder {
        id: conn.last_insert_id(),
        order_id,
        account: order.account.to_string(),
        amount: order.amount,
        charged: order.charged,
        currency: order.currency.to_string(),
        state: CardState::Pending.name().to_string(),
        status_at: None,
        domain: order.domain,
        cancelled: false,
        provider_ref: String::new(),
        subscriber_id: order.subscriber_id,
    })
}

/// A caller's address as the page's per-address limit counts it: an IPv4 address as it
/// is, an IPv6 address as its /64 (one household's or one server's network: counting
/// single IPv6 addresses would let one caller use 2^64 of them).
pub fn caller_key(addr: Option<std::net::IpAddr>) -> String {
    match addr {
        None => String::new(),
        Some(std::net::IpAddr::V4(v4)) => v4.to_string(),
        Some(std::net::IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                let net = std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0);
                format!("{net}/64")
            }
        },
    }
}

/// A waiting order the page may send the browser to again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reusable {
    pub order: CardOrder,
    /// When it was made, in seconds since 1970 (WayForPay's `orderDate`).
    pub created: i64,
    /// Where the provider takes the subscriber (Monobank's pageUrl), when recorded.
    pub page_url: Option<String>,
}

/// The newest order `new` could reuse: same system, account, amounts, currency and domain,
/// made less than `minutes` ago, still waiting, and with no word from the provider but our
/// own invoice (so no payment of it is under way, and no provider refused it). With
/// `needs_page_url`, only an order whose provider page was recorded (Monobank).
pub fn reusable(
    conn: &mut Conn,
    new: &NewOrder<'_>,
    minutes: u32,
    needs_page_url: bool,
) -> Result<Option<Reusable>, mysql::Error> {
    if minutes == 0 {
        return Ok(None);
    }
    let row: Option<mysql::Row> = conn.exec_first(
        format!(
            "SELECT {COLUMNS}, UNIX_TIMESTAMP(created), page_url \
         FROM paysys_order WHERE account = ? AND created > NOW() - INTERVAL ? MINUTE \
         AND system_name = ? AND domain_id = ? AND amount = CAST(? AS DECIMAL(16,2)) \
         AND charged = CAST(? AS DECIMAL(16,2)) AND currency = ? AND state = 'waiting' \
         AND cancelled IS NULL AND valid_until > NOW() AND provider_status IN ('', 'created') \
         AND (? = 0 OR page_url IS NOT NULL) ORDER BY id DESC LIMIT 1"
        ),
        (
            new.account,
            minutes,
            new.system,
            new.domain.id(),
            new.amount.to_string(),
            new.charged.to_string(),
            new.currency,
            needs_page_url,
        ),
    )?;
    let Some(mut row) = row else {
        return Ok(None);
    };
    let (Some(created), Some(page_url)) = (row.take(AFTER), row.take(AFTER + 1)) else {
        return Ok(None);
    };
    Ok(order_of(&mut row)
        .filter(|o| o.account == new.account)
        .map(|order| Reusable {
            order,
            created,
            page_url,
        }))
}

/// Orders made in the last hour: from `caller` (as [`caller_key`] gives it; not counted
/// when `""`), and for `account` in `domain` (card orders of any system).
pub fn made_last_hour(
    conn: &mut Conn,
    caller: &str,
    account: &str,
    domain: Domain,
) -> Result<(u64, u64), mysql::Error> {
    let by_caller: u64 = if caller.is_empty() {
        0
    } else {
        conn.exec_first(
            "SELECT COUNT(*) FROM paysys_order WHERE caller_ip = ? \
             AND created > NOW() - INTERVAL 1 HOUR",
            (crate::ledger::column_text(caller, 45),),
        )?
        .unwrap_or(0)
    };
    let by_account: u64 = conn
        .exec_first(
            "SELECT COUNT(*) FROM paysys_order WHERE account = ? \
             AND created > NOW() - INTERVAL 1 HOUR AND domain_id = ? AND valid_until IS NOT NULL",
            (account, domain.id()),
        )?
        .unwrap_or(0);
    Ok((by_caller, by_account))
}

/// Records where the provider takes the subscriber for `order` (Monobank's pageUrl), so
/// that a repeated request sends them there again. A URL longer than the column is not
/// recorded (the order is then not reused).
pub fn note_page_url(conn: &mut Conn, order: &CardOrder, url: &str) -> Result<(), mysql::Error> {
    if url.len() > 255 {
        return Ok(());
    }
    conn.exec_drop(
        "UPDATE paysys_order SET page_url = ? WHERE id = ?",
        (url, order.id),
    )
}

/// Notes that the sweeper asked the provider about `order` now: the next run asks the
/// orders asked longest ago (or never) first.
pub fn polled(conn: &mut Conn, order: &CardOrder) -> Result<(), mysql::Error> {
    conn.exec_drop(
        "UPDATE paysys_order SET polled = NOW() WHERE id = ?",
        (order.id,),
    )
}

/// The columns of a [`CardOrder`], in the order [`order_of`] reads them; a query may
/// select more after them, which stay in the row for the caller.
const COLUMNS: &str = "id, order_id, account, CAST(amount AS CHAR), \
     CAST(IFNULL(charged, amount) AS CHAR), currency, state, CAST(status_at AS CHAR), \
     domain_id, cancelled IS NOT NULL, provider_ref, subscriber_id";

/// The first column after [`COLUMNS`], for a query that selects more.
const AFTER: usize = 12;

/// The order in the first columns of `row`, as [`COLUMNS`] selects them.
fn order_of(row: &mut mysql::Row) -> Option<CardOrder> {
    let amount: String = row.take(3)?;
    let charged: String = row.take(4)?;
    let status_at: Option<String> = row.take(7)?;
    Some(CardOrder {
        id: row.take(0)?,
        order_id: row.take(1)?,
        account: row.take(2)?,
        amount: Amount::parse(&amount).ok()?,
        charged: Amount::parse(&charged).ok()?,
        currency: row.take(5)?,
        state: row.take(6)?,
        status_at: status_at.and_then(|t| {
            NaiveDateTime::parse_from_str(&t, "%Y-%m-%d %H:%M:%S%.f")
                .or_else(|_| NaiveDateTime::parse_from_str(&t, "%Y-%m-%d %H:%M:%S"))
                .ok()
        }),
        domain: Domain::new(row.take(8)?),
        cancelled: row.take(9)?,
        provider_ref: row.take(10)?,
        subscriber_id: row.take(11)?,
    })
}

/// The order of `system` the provider knows as `order_id`.
pub fn find(
    conn: &mut Conn,
    system: &str,
    order_id: &str,
) -> Result<Option<CardOrder>, mysql::Error> {
    let row: Option<mysql::Row> = conn.exec_first(
        format!("SELECT {COLUMNS} FROM paysys_order WHERE system_name = ? AND order_id = ?"),
        (system, order_id),
    )?;
    // The column compares exactly; a row that differs is never returned, but say so here
    // too, as the ledger does.
    Ok(row
        .and_then(|mut r| order_of(&mut r))
        .filter(|o| o.order_id == order_id))
}

/// A provider's word that moves no money, noted on the order: `Ok(true)` if it changed the
/// order. A paid order stays paid, unless the word is a reversal (shown to the admin,
/// never debited by us); a word older than the order's last (`at`) changes nothing; and a
/// word of "in progress" that cannot be dated against the order's last (LiqPay and
/// WayForPay date none of theirs) never reopens an order that failed, expired or was
/// reversed — a late `processing` callback is older news, not a new attempt.
pub fn note(
    conn: &mut Conn,
    order: &CardOrder,
    state: CardState,
    status: &str,
    provider_ref: &str,
    at: Option<NaiveDateTime>,
) -> Result<bool, mysql::Error> {
    let at_text = at.map(|t| t.format("%Y-%m-%d %H:%M:%S%.3f").to_string());
    let note = match state {
        CardState::Reversed => "reversed by the provider after it was paid: check the payment",
        _ => "",
    };
    // "In progress" reopens a closed order only when both words are dated and it is newer.
    let no_reopening = match (state, at) {
        (CardState::Pending, None) => " AND state NOT IN ('failed', 'expired', 'reversed')",
        (CardState::Pending, Some(_)) => {
            " AND NOT (state IN ('failed', 'expired', 'reversed') AND status_at IS NULL)"
        }
        _ => "",
    };
    conn.exec_drop(
        format!(
            "UPDATE paysys_order SET state = ?, provider_status = ?, \
             provider_ref = IF(? = '' OR provider_ref <> '', provider_ref, ?), status_at = IFNULL(?, status_at), \
             note = IF(? = '', note, ?), updated = NOW() \
             WHERE id = ? AND (state <> 'paid' OR ? = 'reversed') AND state <> 'mismatch' \
             AND (? IS NULL OR status_at IS NULL OR status_at < ?){no_reopening}"
        ),
        (
            state.name(),
            crate::ledger::column_text(status, 32),
            provider_ref,
            crate::ledger::column_text(provider_ref, 64),
            &at_text,
            note,
            note,
            order.id,
            state.name(),
            &at_text,
            &at_text,
        ),
    )?;
    Ok(conn.affected_rows() > 0)
}

/// [`note`], and when it changed the order to failed or expired, the billing's own record
/// of the order too ([`Billing::close_order`]: ABillS's `paysys_log` row leaves "in
/// progress"). Two statements, not one transaction: the billing's record is for its
/// screens, and a later payment of the order completes it whatever it says.
#[allow(clippy::too_many_arguments)]
pub fn note_and_close(
    conn: &mut Conn,
    billing: &dyn Billing,
    system: &System,
    order: &CardOrder,
    state: CardState,
    status: &str,
    provider_ref: &str,
    at: Option<NaiveDateTime>,
) -> Result<bool, mysql::Error> {
    let changed = note(conn, order, state, status, provider_ref, at)?;
    if changed {
        billing.close_order(conn, system, &order.order_id, state)?;
    }
    Ok(changed)
}

/// The provider's id and word on an order about to be paid: kept for the admin; the pay
/// itself marks the order paid, in its own transaction.
pub fn note_ref(
    conn: &mut Conn,
    order: &CardOrder,
    status: &str,
    provider_ref: &str,
    at: Option<NaiveDateTime>,
) -> Result<(), mysql::Error> {
    let at_text = at.map(|t| t.format("%Y-%m-%d %H:%M:%S%.3f").to_string());
    conn.exec_drop(
        "UPDATE paysys_order SET provider_status = ?, provider_ref = IF(? = '' OR provider_ref <> '', provider_ref, ?), \
         status_at = IFNULL(?, status_at), updated = NOW() WHERE id = ?",
        (
            crate::ledger::column_text(status, 32),
            provider_ref,
            crate::ledger::column_text(provider_ref, 64),
            &at_text,
            order.id,
        ),
    )
}

/// Holds an order for the admin by its row id (see [`mismatch`]).
pub fn hold(conn: &mut Conn, id: u64, why: &str) -> Result<(), mysql::Error> {
    conn.exec_drop(
        "UPDATE paysys_order SET state = 'mismatch', note = ?, updated = NOW() \
         WHERE id = ? AND state <> 'paid'",
        (crate::ledger::column_text(why, 255), id),
    )
}

/// Marks an order whose payment does not match it (another amount or currency): nothing is
/// credited, and the admin is to look.
pub fn mismatch(conn: &mut Conn, order: &CardOrder, why: &str) -> Result<(), mysql::Error> {
    conn.exec_drop(
        "UPDATE paysys_order SET state = 'mismatch', note = ?, updated = NOW() \
         WHERE id = ? AND state <> 'paid'",
        (crate::ledger::column_text(why, 255), order.id),
    )
}

/// An order the sweeper asks the provider about: still waiting for its payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiting {
    pub order: CardOrder,
    /// Its `valid_until` has passed (by the database's clock, which set it): asked one last
    /// time, then given up as expired.
    pub overdue: bool,
}

/// The orders of `system` still waiting for their payment, at most `limit`: those the
/// sweeper never asked about first, then those it asked longest ago (so that no order
/// waits behind many others for more than a few runs, however many there are). Cancelled
/// orders and orders with no validity (not card orders) are not among them; with
/// `needs_ref` (Monobank, asked by the invoiceId its invoice/create answered), neither are
/// orders with no provider id while they are valid — never sent on to the provider, there
/// is nothing to ask — but they are once overdue, to be given up.
pub fn waiting(
    conn: &mut Conn,
    system: &str,
    needs_ref: bool,
    limit: u32,
) -> Result<Vec<Waiting>, mysql::Error> {
    let rows: Vec<mysql::Row> = conn.exec(
        format!(
            "SELECT {COLUMNS}, valid_until <= NOW() FROM paysys_order WHERE system_name = ? \
             AND (state = 'waiting' OR (state = 'failed' AND valid_until > NOW())) \
             AND cancelled IS NULL AND valid_until IS NOT NULL \
             AND (? = 0 OR provider_ref <> '' OR valid_until <= NOW()) \
             ORDER BY polled, id LIMIT ?"
        ),
        (system, needs_ref, limit),
    )?;
    Ok(rows
        .into_iter()
        .filter_map(|mut row| {
            let overdue = row.take(AFTER)?;
            Some(Waiting {
                order: order_of(&mut row)?,
                overdue,
            })
        })
        .collect())
}

/// Which orders `paysys orders` lists.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// `waiting`, `paid`, …; any when `None`.
    pub state: Option<String>,
    pub system: Option<String>,
    /// Created on or after this day.
    pub from: Option<chrono::NaiveDate>,
    /// Created on or before this day.
    pub to: Option<chrono::NaiveDate>,
}

/// A card order as the admin sees it in a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub id: u64,
    pub system: String,
    pub order_id: String,
    pub account: String,
    pub amount: String,
    pub charged: String,
    pub currency: String,
    pub state: String,
    pub created: String,
    pub updated: String,
    pub valid_until: String,
    pub provider_ref: String,
    pub provider_status: String,
    pub note: String,
}

const SELECT_LISTED: &str = "SELECT id, system_name, order_id, account, CAST(amount AS CHAR), \
     CAST(IFNULL(charged, amount) AS CHAR), currency, state, CAST(created AS CHAR), \
     IFNULL(CAST(updated AS CHAR), ''), IFNULL(CAST(valid_until AS CHAR), ''), provider_ref, \
     provider_status, note FROM paysys_order";

fn listed(row: mysql::Row) -> Result<Listed, mysql::Error> {
    let bad = |e: mysql::FromValueError| mysql::Error::FromValueError(e.0);
    let text = |i: usize| -> Result<String, mysql::Error> {
        match row.get_opt::<Option<String>, usize>(i) {
            Some(value) => value.map(Option::unwrap_or_default).map_err(bad),
            None => Ok(String::new()),
        }
    };
    Ok(Listed {
        id: row.get_opt::<u64, usize>(0).unwrap_or(Ok(0)).map_err(bad)?,
        system: text(1)?,
        order_id: text(2)?,
        account: text(3)?,
        amount: text(4)?,
        charged: text(5)?,
        currency: text(6)?,
        state: text(7)?,
        created: text(8)?,
        updated: text(9)?,
        valid_until: text(10)?,
        provider_ref: text(11)?,
        provider_status: text(12)?,
        note: text(13)?,
    })
}

/// The card orders `filter` names, oldest first, at most `limit`. Booked orders of other
/// protocols (EasyPay) are not card orders and are not listed.
pub fn list(conn: &mut Conn, filter: &Filter, limit: u32) -> Result<Vec<Listed>, mysql::Error> {
    let from = filter.from.map(|d| d.format("%Y-%m-%d").to_string());
    let to = filter.to.map(|d| d.format("%Y-%m-%d").to_string());
    let rows: Vec<mysql::Row> = conn.exec(
        format!(
            "{SELECT_LISTED} WHERE valid_until IS NOT NULL \
             AND (? IS NULL OR state = ?) AND (? IS NULL OR system_name = ?) \
             AND (? IS NULL OR created >= ?) AND (? IS NULL OR created < ? + INTERVAL 1 DAY) \
             ORDER BY id LIMIT ?"
        ),
        (
            &filter.state,
            &filter.state,
            &filter.system,
            &filter.system,
            &from,
            &from,
            &to,
            &to,
            limit,
        ),
    )?;
    rows.into_iter().map(listed).collect()
}

/// The card orders the provider knows as `order_id` (of `system`, when given): what
/// `paysys txn` shows besides the payment.
pub fn lookup(
    conn: &mut Conn,
    order_id: &str,
    system: Option<&str>,
) -> Result<Vec<Listed>, mysql::Error> {
    let rows: Vec<mysql::Row> = conn.exec(
        format!(
            "{SELECT_LISTED} WHERE order_id = ? AND (? IS NULL OR system_name = ?) \
             AND valid_until IS NOT NULL ORDER BY id"
        ),
        (order_id, system, system),
    )?;
    rows.into_iter().map(listed).collect()
}
