//! The request history in the database (`[log] database = true`, ABillS's `PAYSYS_LOG`):
//! one row per request that reached a known system — a terminal's check, pay, status or
//! cancel, a card provider's callback, a statement pull's call to the bank — with our
//! answer.
//!
//! * **ABillS**: ABillS's own `paysys_requests` (since ABillS 0.94; `request_type` and `sum`
//!   since 0.95), so that its "request history" report (Paysys → log of requests) shows
//!   ours beside its own: `system_id` the system's ABillS id, `request` the query string
//!   and/or body, `response` our answer's body, `http_method`, `paysys_ip` (`INET_ATON`,
//!   IPv6 0), `status` 0 success / 1 error as ABillS's report reads it, `error` why (64
//!   characters), `request_type` in ABillS's numbering ([`request_type`]), `sum` as sent,
//!   `uid` the subscriber, `transaction_id` the payment's `paysys_log.id` when there is one.
//! * **NoDeny**: our `paysys_request` (`sql/paysys.sql`), with the system, txn id, account
//!   and result as columns of their own.
//!
//! A row is written after the answer is sent (its request text, secrets masked, made then
//! too: [`crate::pipeline::PendingRow`]), on the request's own connection, and can never
//! change the answer: a row that cannot be written is a note on the log line, as a
//! `paysys_refusal` row's is. A caller no system admits gets no row — a flood must not fill
//! the disk — and stays in the log file. Secrets never reach the table: the values of
//! every field the protocol names secret ([`crate::protocol::Protocol::secrets`]) and of
//! every field whose name says it is one ([`is_secret`]) are written `***` (a secret JSON
//! key's object or array whole, and inside a form value that is XML or JSON itself too); a
//! body that is neither a form, JSON nor XML is not kept at all.

use std::net::IpAddr;

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use mysql::prelude::Queryable;
use mysql::Conn;

use crate::billing::audit::{like_prefix, sql_time};
use crate::config::{BillingKind, Config};
use crate::domain::Amount;

/// What a masked value is written as.
pub const MASK: &str = "***";

/// The most characters of a request or an answer kept: ABillS's `TEXT` holds 65535 bytes,
/// three per character in its `utf8`.
const TEXT_MAX: usize = 16_000;

/// ABillS's `error` is `VARCHAR(64)`.
const ABILLS_ERROR_MAX: usize = 64;
/// Our `error` column.
const ERROR_MAX: usize = 255;

/// One request as the history keeps it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Entry {
    pub system: String,
    /// `paysys_connect.paysys_id` on ABillS.
    pub abills_id: u8,
    pub method: String,
    /// The request, secrets masked ([`request_text`]).
    pub request: String,
    pub response: String,
    pub caller: Option<IpAddr>,
    /// The caller's address as sent (for our table).
    pub caller_text: String,
    /// Our command name (`check`, `pay`, `status`, `cancel`, `callback`, `pull`…).
    pub command: String,
    pub txn_id: String,
    pub account: String,
    /// The sum as sent, if it is one.
    pub sum: Option<Amount>,
    /// The protocol's result code as answered.
    pub result: String,
    /// Why, for a refusal or a failure (empty for a plain success).
    pub error: String,
    /// Refused or failed: ABillS's `status` 1.
    pub failed: bool,
    /// The payment's number: ABillS's `paysys_log.id`, our `prv_txn`.
    pub prv_txn: Option<u64>,
    /// The subscriber, when the request found one.
    pub uid: Option<u64>,
    pub domain: u32,
}

/// ABillS's `request_type` (its report's names: 0 Unknown, 1 Presearch, 2 Search, 3 Check,
/// 4 Pay, 5 Confirm, 6 Cancel, 7 Status) of our command name.
pub fn request_type(command: &str) -> u8 {
    match command {
        "check" => 3,
        // A card callback is the provider's word on a payment; EasyPay's booking is its
        // "Payment" operation.
        "pay" | "callback" | "book" => 4,
        "confirm" => 5,
        "cancel" => 6,
        "status" => 7,
        _ => 0,
    }
}

/// Field names that are secrets whatever the protocol: signatures, keys, tokens,
/// passwords, card data. A name containing one of these (case aside) is masked.
const SECRET_WORDS: &[&str] = &[
    "sign", "secret", "token", "key", "passw", "pwd", "card", "cvv", "cvc", "pin", "auth",
];

/// Whether a field named `name` is masked: the protocol lists it, or its name says it is a
/// secret ([`SECRET_WORDS`], or a card number's `pan`).
pub fn is_secret(name: &str, listed: &[&str]) -> bool {
    if listed.iter().any(|s| s.eq_ignore_ascii_case(name)) {
        return true;
    }
    let lower = name.to_ascii_lowercase();
    SECRET_WORDS.iter().any(|w| lower.contains(w)) || lower.ends_with("pan")
}

/// The request as the history keeps it: the query string, then the body (a blank line
/// between them when there are both), each with the values of secret fields masked. A
/// form, JSON and XML are masked field by field; any other body is not kept, only its
/// length.
pub fn request_text(query: &[u8], body: Result<&[u8], &str>, secrets: &[&str]) -> String {
    let mut parts = Vec::new();
    if !query.is_empty() {
        parts.push(mask_form(&String::from_utf8_lossy(query), secrets));
    }
    match body {
        Ok(body) if !body.is_empty() => parts.push(mask_body(body, secrets)),
        Ok(_) => {}
        Err(why) => parts.push(format!("(body not read: {why})")),
    }
    clip(&parts.join("\n\n"), TEXT_MAX)
}

/// A URL we call (a bank's API) as the history keeps it: its query's secret fields masked.
pub fn masked_url(url: &str) -> String {
    match url.split_once('?') {
        Some((path, query)) => format!("{path}?{}", mask_form(query, &[])),
        None => url.to_string(),
    }
}

fn mask_body(body: &[u8], secrets: &[&str]) -> String {
    let text = String::from_utf8_lossy(body);
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        return match serde_json::from_str::<serde_json::Value>(&text) {
            Ok(mut value) => {
                mask_json(&mut value, secrets);
                value.to_string()
            }
            Err(_) => not_kept(body.len(), "not JSON after all"),
        };
    }
    if trimmed.starts_with('<') {
        return mask_xml(&text, secrets)
            .map(|(xml, _)| xml)
            .unwrap_or_else(|| not_kept(body.len(), "broken XML"));
    }
    // A form: name=value pairs and nothing that cannot be in one.
    let formlike = !trimmed.is_empty()
        && trimmed.contains('=')
        && !trimmed.chars().any(|c| c.is_whitespace() || c.is_control());
    if formlike {
        return mask_form(trimmed, secrets);
    }
    not_kept(body.len(), "neither a form, JSON nor XML")
}

fn not_kept(len: usize, why: &str) -> String {
    format!("({len} bytes not kept: {why}; secrets could not be told from the rest)")
}

/// `a=1&sign=xyz` → `a=1&sign=***`, the text otherwise as sent. A value that is XML or
/// JSON itself (Portmone's `data`, with its `CARD_MASK` inside) is decoded and masked as a
/// body is, and written encoded again; one that only looks like XML or JSON is masked
/// whole.
fn mask_form(text: &str, secrets: &[&str]) -> String {
    text.split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) if is_secret(&decode_name(name), secrets) => format!("{name}={MASK}"),
            Some((name, value)) => match mask_nested(value, secrets) {
                Some(masked) => format!("{name}={masked}"),
                None => pair.to_string(),
            },
            None => pair.to_string(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// A form value (as sent, encoded) holding XML or JSON with a secret in it: the value with
/// the secrets masked, encoded again. `None`: no such value, kept as sent.
fn mask_nested(value: &str, secrets: &[&str]) -> Option<String> {
    let decoded = serde_urlencoded::from_str::<Vec<(String, String)>>(&format!("v={value}"))
        .ok()?
        .pop()?
        .1;
    let trimmed = decoded.trim_start();
    let masked = if trimmed.starts_with('{') || trimmed.starts_with('[') {
        match serde_json::from_str::<serde_json::Value>(&decoded) {
            Ok(mut json) => mask_json(&mut json, secrets).then(|| json.to_string()),
            Err(_) => Some(MASK.to_string()),
        }
    } else if trimmed.starts_with('<') {
        match mask_xml(&decoded, secrets) {
            Some((xml, masked)) => masked.then_some(xml),
            None => Some(MASK.to_string()),
        }
    } else {
        None
    }?;
    let encoded = serde_urlencoded::to_string([("v", masked.as_str())]).ok()?;
    encoded.strip_prefix("v=").map(str::to_string)
}

fn decode_name(name: &str) -> String {
    serde_urlencoded::from_str::<Vec<(String, String)>>(&format!("{name}="))
        .ok()
        .and_then(|mut v| v.pop())
        .map(|(k, _)| k)
        .unwrap_or_else(|| name.to_string())
}

/// Masks the values of secret keys, whole (an object or an array too); whether it masked
/// any.
fn mask_json(value: &mut serde_json::Value, secrets: &[&str]) -> bool {
    match value {
        serde_json::Value::Object(map) => {
            let mut masked = false;
            for (name, v) in map.iter_mut() {
                if is_secret(name, secrets) {
                    *v = serde_json::Value::String(MASK.into());
                    masked = true;
                } else {
                    masked |= mask_json(v, secrets);
                }
            }
            masked
        }
        serde_json::Value::Array(items) => items
            .iter_mut()
            .fold(false, |masked, v| mask_json(v, secrets) | masked),
        _ => false,
    }
}

/// The XML with the text of secret elements and the values of secret attributes masked,
/// and whether there were any; `None` if it does not read as XML.
fn mask_xml(text: &str, secrets: &[&str]) -> Option<(String, bool)> {
    use quick_xml::events::{BytesText, Event};
    let mut reader = quick_xml::Reader::from_str(text);
    let mut writer = quick_xml::Writer::new(Vec::new());
    // How deep inside a secret element we are (0: not inside one).
    let mut secret_depth = 0usize;
    let mut masked = false;
    loop {
        let event = reader.read_event().ok()?;
        let event = match event {
            Event::Eof => break,
            Event::Start(start) => {
                let name = String::from_utf8_lossy(start.name().as_ref()).into_owned();
                let whole = secret_depth > 0 || is_secret(&name, secrets);
                if whole {
                    secret_depth += 1;
                }
                Event::Start(mask_attributes(&start, secrets, whole, &mut masked)?)
            }
            Event::Empty(start) => {
                let name = String::from_utf8_lossy(start.name().as_ref()).into_owned();
                let whole = secret_depth > 0 || is_secret(&name, secrets);
                Event::Empty(mask_attributes(&start, secrets, whole, &mut masked)?)
            }
            Event::End(end) => {
                secret_depth = secret_depth.saturating_sub(1);
                Event::End(end)
            }
            Event::Text(_) | Event::CData(_) if secret_depth > 0 => {
                masked = true;
                Event::Text(BytesText::new(MASK))
            }
            other => other,
        };
        writer.write_event(event).ok()?;
    }
    String::from_utf8(writer.into_inner())
        .ok()
        .map(|xml| (xml, masked))
}

/// The element's attributes, a secret one's value masked; `whole`: every value masked (the
/// element is secret, or inside one: `<CARD_MASK value="…"/>` holds its secret there).
fn mask_attributes<'a>(
    start: &quick_xml::events::BytesStart<'a>,
    secrets: &[&str],
    whole: bool,
    masked_any: &mut bool,
) -> Option<quick_xml::events::BytesStart<'static>> {
    let name = String::from_utf8_lossy(start.name().as_ref()).into_owned();
    let mut masked = quick_xml::events::BytesStart::new(name);
    for attr in start.attributes() {
        let attr = attr.ok()?;
        let key = String::from_utf8_lossy(attr.key.as_ref()).into_owned();
        if whole || is_secret(&key, secrets) {
            *masked_any = true;
            masked.push_attribute((key.as_str(), MASK));
        } else {
            let value = attr.unescape_value().ok()?.into_owned();
            masked.push_attribute((key.as_str(), value.as_str()));
        }
    }
    Some(masked)
}

/// At most `max` characters, `…` marking a cut.
fn clip(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

/// ABillS's tables are `utf8` (three bytes a character at most): a character past that
/// would make a strict server refuse the row.
fn three_byte(text: &str) -> String {
    text.chars()
        .map(|c| if c.len_utf8() > 3 { '\u{FFFD}' } else { c })
        .collect()
}

/// Which table a billing's history is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Table {
    /// ABillS's `paysys_requests`.
    Abills,
    /// Our `paysys_request`.
    Own,
}

impl Table {
    fn of(billing: BillingKind) -> Table {
        match billing {
            BillingKind::Abills => Table::Abills,
            _ => Table::Own,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Table::Abills => "paysys_requests",
            Table::Own => "paysys_request",
        }
    }
}

/// The table the request history of `billing` is in: ABillS's `paysys_requests`, else our
/// `paysys_request`.
pub fn table_name(billing: BillingKind) -> &'static str {
    Table::of(billing).name()
}

/// MySQL's "unknown column": ABillS 0.94's `paysys_requests` has no `request_type`, `sum`.
const ER_BAD_FIELD_ERROR: u16 = 1054;
const ER_NO_SUCH_TABLE: u16 = 1146;

/// A row not written: why, saying what to do about it, and whether the connection went
/// with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unwritten {
    pub why: String,
    /// The connection itself failed (the server gone, the connection lost): it is not to
    /// be used again. A statement the server refused (a table missing, a grant denied)
    /// leaves it as it was, an autocommitted INSERT opening no transaction.
    pub connection_lost: bool,
}

impl std::fmt::Display for Unwritten {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.why)
    }
}

/// Writes `entry` (one INSERT, autocommitted); the error says what to do about it.
pub fn write(conn: &mut Conn, billing: BillingKind, entry: &Entry) -> Result<(), Unwritten> {
    let table = Table::of(billing);
    let written = match table {
        Table::Abills => write_abills(conn, entry),
        Table::Own => write_own(conn, entry),
    };
    written.map_err(|e| Unwritten {
        connection_lost: crate::db::connection_lost(&e),
        why: explain(table, e),
    })
}

fn explain(table: Table, e: mysql::Error) -> String {
    match crate::db::server_code(&e) {
        Some(ER_NO_SUCH_TABLE) if table == Table::Abills => "table paysys_requests is missing: \
             ABillS before 0.94 has no request history; turn [log] database off, or create \
             the table from ABillS's db/Paysys.sql"
            .into(),
        Some(ER_NO_SUCH_TABLE) => crate::db::our_table_missing("paysys_request"),
        _ => format!("{}: {e}", table.name()),
    }
}

/// The sum as ABillS's `DOUBLE(10,2) UNSIGNED` takes it: 0 when there was none or it does
/// not fit.
fn abills_sum(sum: Option<Amount>) -> String {
    match sum {
        Some(s) if (0..10_000_000_000).contains(&s.kopecks()) => s.to_string(),
        _ => "0".into(),
    }
}

/// How long "`paysys_requests` has no `request_type` and `sum`" (ABillS 0.94) is trusted
/// before the whole row is tried again: an ABillS upgrade that adds them is noticed by a
/// persistent worker within this time.
const COLUMNS_TTL: std::time::Duration = std::time::Duration::from_secs(600);

/// When `paysys_requests` was last found without `request_type` and `sum`: kept for the
/// process (which serves one billing database), as the width of ABillS's id columns is,
/// so that on ABillS 0.94 each row costs one INSERT, not a refused one and then another.
static WITHOUT_TYPE_AND_SUM: std::sync::Mutex<Option<std::time::Instant>> =
    std::sync::Mutex::new(None);

fn known_without_type_and_sum() -> bool {
    WITHOUT_TYPE_AND_SUM
        .lock()
        .ok()
        .and_then(|at| *at)
        .is_some_and(|at| at.elapsed() < COLUMNS_TTL)
}

fn write_abills(conn: &mut Conn, e: &Entry) -> Result<(), mysql::Error> {
    let ip = match e.caller {
        Some(IpAddr::V4(v4)) => u32::from(v4),
        _ => 0,
    };
    let error = clip(&three_byte(&e.error), ABILLS_ERROR_MAX - 1);
    let method: String = e.method.chars().take(10).collect();
    // The subscriber: the one the request found, else the payment's (`paysys_log.uid`),
    // as our own table's row takes it.
    let params = (
        e.abills_id,
        e.uid,
        e.prv_txn.unwrap_or(0),
        three_byte(&clip(&e.request, TEXT_MAX)),
        three_byte(&clip(&e.response, TEXT_MAX)),
        e.prv_txn.unwrap_or(0),
        method,
        ip,
        error,
        u8::from(e.failed),
    );
    if !known_without_type_and_sum() {
        let full = conn.exec_drop(
            "INSERT INTO paysys_requests (system_id, uid, request, response, transaction_id, \
             http_method, paysys_ip, error, status, request_type, sum) \
             VALUES (?, COALESCE(?, (SELECT l.uid FROM paysys_log l WHERE l.id = ?), 0), \
             ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                params.0,
                params.1,
                params.2,
                &params.3,
                &params.4,
                params.5,
                &params.6,
                params.7,
                &params.8,
                params.9,
                request_type(&e.command),
                abills_sum(e.sum),
            ),
        );
        match full {
            Err(err) if crate::db::server_code(&err) == Some(ER_BAD_FIELD_ERROR) => {
                if let Ok(mut at) = WITHOUT_TYPE_AND_SUM.lock() {
                    *at = Some(std::time::Instant::now());
                }
            }
            other => return other,
        }
    }
    conn.exec_drop(
        "INSERT INTO paysys_requests (system_id, uid, request, response, transaction_id, \
         http_method, paysys_ip, error, status) \
         VALUES (?, COALESCE(?, (SELECT l.uid FROM paysys_log l WHERE l.id = ?), 0), \
         ?, ?, ?, ?, ?, ?, ?)",
        params,
    )
}

fn write_own(conn: &mut Conn, e: &Entry) -> Result<(), mysql::Error> {
    let text = |s: &str, n: usize| s.chars().take(n).collect::<String>();
    conn.exec_drop(
        "INSERT INTO paysys_request (at, system_name, caller_ip, http_method, command, txn_id, \
         account, amount, result, status, prv_txn, subscriber_id, domain_id, error, request, response) \
         VALUES (NOW(3), ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, \
         COALESCE(?, (SELECT t.subscriber_id FROM paysys_txn t WHERE ? AND t.system_name = ? AND t.txn_id = ?)), \
         ?, ?, ?, ?)",
        vec![
            mysql::Value::from(&e.system),
            mysql::Value::from(text(&e.caller_text, 45)),
            mysql::Value::from(text(&e.method, 10)),
            mysql::Value::from(text(&e.command, 16)),
            mysql::Value::from(text(&e.txn_id, 64)),
            mysql::Value::from(text(&e.account, 64)),
            mysql::Value::from(e.sum.map(|s| s.to_string())),
            mysql::Value::from(text(&e.result, 16)),
            mysql::Value::from(u8::from(e.failed)),
            mysql::Value::from(e.prv_txn),
            mysql::Value::from(e.uid),
            // A payment's subscriber, as the ledger recorded it (one lookup by its key).
            mysql::Value::from(e.uid.is_none() && e.prv_txn.is_some() && !e.failed),
            mysql::Value::from(&e.system),
            mysql::Value::from(text(&e.txn_id, 64)),
            mysql::Value::from(e.domain),
            mysql::Value::from(clip(&e.error, ERROR_MAX - 1)),
            mysql::Value::from(clip(&e.request, TEXT_MAX)),
            mysql::Value::from(clip(&e.response, TEXT_MAX)),
        ],
    )
}

/// What `paysys requests` asks for.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub system: Option<String>,
    pub txn: Option<String>,
    pub account: Option<String>,
    /// From this day on (inclusive), and up to this day (inclusive).
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
}

/// One row of the history, read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub id: u64,
    pub at: String,
    /// Our system's name (ABillS: the config's system with that id, else `id=N`).
    pub system: String,
    pub caller: String,
    pub method: String,
    pub command: String,
    pub txn_id: String,
    pub account: String,
    pub sum: String,
    pub result: String,
    pub failed: bool,
    pub error: String,
    pub prv_txn: u64,
    pub uid: u64,
    pub request: String,
    pub response: String,
}

/// Hands `each` the rows `filter` names, oldest first, at most `limit`, one by one as the
/// server sends them (nothing is collected first); `each` returning `false` (the output
/// closed) ends the listing. Returns how many rows `each` was given.
pub fn list(
    conn: &mut Conn,
    config: &Config,
    filter: &Filter,
    limit: u32,
    each: &mut dyn FnMut(Row) -> bool,
) -> Result<u64, String> {
    let table = Table::of(config.database.billing);
    let listed = match table {
        Table::Own => list_own(conn, filter, limit, each),
        Table::Abills => list_abills(conn, config, filter, limit, each),
    };
    listed.map_err(|e| explain(table, e))
}

fn day_start(d: NaiveDate) -> String {
    sql_time(d.and_time(NaiveTime::MIN))
}

fn day_after(d: NaiveDate) -> String {
    day_start(d.succ_opt().unwrap_or(d))
}

fn list_own(
    conn: &mut Conn,
    f: &Filter,
    limit: u32,
    each: &mut dyn FnMut(Row) -> bool,
) -> Result<u64, mysql::Error> {
    let mut sql = String::from(
        "SELECT CAST(id AS CHAR), CAST(at AS CHAR), system_name, caller_ip, http_method, command, \
         txn_id, account, COALESCE(CAST(amount AS CHAR), ''), result, CAST(status AS CHAR), \
         CAST(COALESCE(prv_txn, 0) AS CHAR), CAST(COALESCE(subscriber_id, 0) AS CHAR), error, \
         request, response FROM paysys_request WHERE 1 = 1",
    );
    let mut params: Vec<mysql::Value> = Vec::new();
    if let Some(s) = &f.system {
        sql.push_str(" AND system_name = ?");
        params.push(s.into());
    }
    if let Some(t) = &f.txn {
        sql.push_str(" AND txn_id = ?");
        params.push(t.into());
    }
    if let Some(a) = &f.account {
        sql.push_str(" AND account = ?");
        params.push(a.into());
    }
    if let Some(d) = f.from {
        sql.push_str(" AND at >= ?");
        params.push(day_start(d).into());
    }
    if let Some(d) = f.to {
        sql.push_str(" AND at < ?");
        params.push(day_after(d).into());
    }
    sql.push_str(" ORDER BY id LIMIT ?");
    params.push(limit.into());
    let mut given = 0u64;
    for row in conn.exec_iter(sql, params)? {
        let mut r = row?;
        let mut s = |i: usize| -> String { r.take_opt(i).and_then(Result::ok).unwrap_or_default() };
        let id: String = s(0);
        let status: String = s(10);
        let row = Row {
            id: id.parse().unwrap_or(0),
            at: s(1),
            system: s(2),
            caller: s(3),
            method: s(4),
            command: s(5),
            txn_id: s(6),
            account: s(7),
            sum: s(8),
            result: s(9),
            failed: status != "0",
            prv_txn: s(11).parse().unwrap_or(0),
            uid: s(12).parse().unwrap_or(0),
            error: s(13),
            request: s(14),
            response: s(15),
        };
        given += 1;
        if !each(row) {
            break;
        }
    }
    Ok(given)
}

/// Whether `word` stands whole in `text`: not inside a longer run of letters and digits
/// (`666` is in `txn_id=666&`, not in `6666`).
fn has_word(text: &str, word: &str) -> bool {
    if word.is_empty() {
        return false;
    }
    let inside = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '-');
    text.match_indices(word).any(|(at, _)| {
        !inside(text[..at].chars().next_back()) && !inside(text[at + word.len()..].chars().next())
    })
}

/// Rows read per statement when `--txn` or `--account` picks ABillS's rows by whole word
/// (in Rust, after the server's substring match): pages follow one another until `limit`
/// rows are picked, so that rows with the word inside a longer one do not use up the limit.
const WORD_PAGE: u32 = 1000;

fn list_abills(
    conn: &mut Conn,
    config: &Config,
    f: &Filter,
    limit: u32,
    each: &mut dyn FnMut(Row) -> bool,
) -> Result<u64, mysql::Error> {
    let mut sql = String::from(
        "SELECT CAST(r.id AS CHAR), CAST(r.datetime AS CHAR), CAST(r.system_id AS CHAR), \
         COALESCE(INET_NTOA(NULLIF(r.paysys_ip, 0)), ''), r.http_method, \
         CAST(r.request_type AS CHAR), CAST(r.sum AS CHAR), CAST(r.status AS CHAR), r.error, \
         CAST(COALESCE(r.transaction_id, 0) AS CHAR), CAST(r.uid AS CHAR), r.request, r.response, \
         COALESCE((SELECT l.transaction_id FROM paysys_log l WHERE l.id = r.transaction_id), '') \
         FROM paysys_requests r WHERE r.id > ?",
    );
    // The first parameter: the last row's id read so far.
    let mut params: Vec<mysql::Value> = vec![0u64.into()];
    let system = match &f.system {
        Some(name) => match config.systems.iter().find(|s| &s.name == name) {
            Some(s) => Some(s),
            None => return Ok(0),
        },
        None => None,
    };
    if let Some(s) = system {
        sql.push_str(" AND r.system_id = ?");
        params.push(s.abills.id.into());
    }
    // Whole-word matches are picked in Rust below; the server narrows by substring.
    let words = f.txn.is_some() || f.account.is_some();
    for word in [&f.txn, &f.account].into_iter().flatten() {
        sql.push_str(" AND (r.request LIKE ? OR r.transaction_id IN (SELECT l.id FROM paysys_log l WHERE l.transaction_id LIKE ?))");
        let like = format!("%{}", like_prefix(word));
        params.push(like.clone().into());
        params.push(like.into());
    }
    if let Some(d) = f.from {
        sql.push_str(" AND r.datetime >= ?");
        params.push(day_start(d).into());
    }
    if let Some(d) = f.to {
        sql.push_str(" AND r.datetime < ?");
        params.push(day_after(d).into());
    }
    let page = if words { WORD_PAGE.min(limit) } else { limit };
    sql.push_str(&format!(" ORDER BY r.id LIMIT {page}"));
    // ABillS 0.94's table has no request_type, sum.
    let statement = match conn.prep(&sql) {
        Err(e) if crate::db::server_code(&e) == Some(ER_BAD_FIELD_ERROR) => conn.prep(
            sql.replace("CAST(r.request_type AS CHAR)", "'0'")
                .replace("CAST(r.sum AS CHAR)", "''"),
        )?,
        other => other?,
    };
    // A system called by its payment system first: a bank's account may share its id.
    let name_of = |id: u8| {
        let with_id = || config.systems.iter().filter(move |s| s.abills.id == id);
        with_id()
            .find(|s| s.protocol.called())
            .or_else(|| with_id().next())
            .map(|s| s.name.clone())
            .unwrap_or_else(|| format!("id={id}"))
    };
    let mut given = 0u64;
    loop {
        let mut read = 0u32;
        let mut last = 0u64;
        for row in conn.exec_iter(&statement, params.clone())? {
            let mut r = row?;
            read += 1;
            let mut s =
                |i: usize| -> String { r.take_opt(i).and_then(Result::ok).unwrap_or_default() };
            let (id, at, system_id, caller, method) = (s(0), s(1), s(2), s(3), s(4));
            let (kind, sum, status, error, txn_ref, uid) = (s(5), s(6), s(7), s(8), s(9), s(10));
            let (request, response, log_txn) = (s(11), s(12), s(13));
            let id = id.parse().unwrap_or(0);
            last = last.max(id);
            let log_id = log_txn.split_once(':').map_or("", |(_, id)| id).to_string();
            let names = |word: &Option<String>| {
                word.as_ref()
                    .is_none_or(|w| has_word(&request, w) || log_id == *w || log_txn == *w)
            };
            if !names(&f.txn) || !names(&f.account) {
                continue;
            }
            let command = match kind.parse::<u8>().unwrap_or(0) {
                3 => "check",
                4 => "pay",
                5 => "confirm",
                6 => "cancel",
                7 => "status",
                1 | 2 => "search",
                _ => "",
            };
            let row = Row {
                id,
                at,
                system: name_of(system_id.parse().unwrap_or(0)),
                caller,
                method,
                command: command.into(),
                txn_id: log_id,
                account: String::new(),
                sum: if sum == "0.00" { String::new() } else { sum },
                result: String::new(),
                failed: status != "0",
                error,
                prv_txn: txn_ref.parse().unwrap_or(0),
                uid: uid.parse().unwrap_or(0),
                request,
                response,
            };
            given += 1;
            if !each(row) || given >= u64::from(limit) {
                return Ok(given);
            }
        }
        if read < page || !words {
            return Ok(given);
        }
        params[0] = last.into();
    }
}

/// Rows deleted per statement: each DELETE holds its locks for a moment only, so requests
/// writing their rows meanwhile never wait long.
pub const PURGE_BATCH: u32 = 1000;

/// Deletes the rows from before `before` (local time), [`PURGE_BATCH`] at a time, oldest
/// first; returns how many.
pub fn purge(conn: &mut Conn, billing: BillingKind, before: NaiveDateTime) -> Result<u64, String> {
    let table = Table::of(billing);
    let column = match table {
        Table::Abills => "datetime",
        Table::Own => "at",
    };
    let sql = format!(
        "DELETE FROM {} WHERE {column} < ? ORDER BY id LIMIT {PURGE_BATCH}",
        table.name()
    );
    let before = sql_time(before);
    let mut total = 0u64;
    loop {
        conn.exec_drop(&sql, (&before,))
            .map_err(|e| explain(table, e))?;
        let n = conn.affected_rows();
        total += n;
        if n < u64::from(PURGE_BATCH) {
            return Ok(total);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_fields_are_masked_in_forms_json_and_xml() {
        let form = request_text(b"command=pay&txn_id=1&SIGN=abc123&sum=10", Ok(b""), &[]);
        assert_eq!(form, "command=pay&txn_id=1&SIGN=***&sum=10");
        let json = request_text(
            b"",
            Ok(br#"{"orderReference":"o-1","merchantSignature":"deadbeef","cardPan":"41****11","n":{"token":"t0k"}}"#),
            &[],
        );
        assert!(
            json.contains("\"o-1\"")
                && !json.contains("deadbeef")
                && !json.contains("41****11")
                && !json.contains("t0k"),
            "{json}"
        );
        let xml = request_text(
            b"",
            Ok(b"<Request><Check><Account>5</Account></Check><Sign>AB12</Sign><X key=\"k1\" a=\"b\"/></Request>"),
            &[],
        );
        assert!(
            xml.contains("<Account>5</Account>") && !xml.contains("AB12") && !xml.contains("k1"),
            "{xml}"
        );
        assert!(xml.contains(r#"a="b""#), "{xml}");
        let listed = request_text(b"a=1&merchant_id=m&hidden=h", Ok(b""), &["hidden"]);
        assert_eq!(listed, "a=1&merchant_id=m&hidden=***");
        let opaque = request_text(b"", Ok(b"secret stuff here"), &[]);
        assert!(!opaque.contains("secret stuff"), "{opaque}");
        let broken = request_text(b"", Ok(b"{\"sign\": \"x"), &[]);
        assert!(!broken.contains('x'), "{broken}");
        let both = request_text(b"a=1", Ok(b"sign=z&b=2"), &[]);
        assert_eq!(both, "a=1\n\nsign=***&b=2");
        let encoded = request_text(b"%53IGN=zz&a=1", Ok(b""), &[]);
        assert!(!encoded.contains("zz"), "{encoded}");
    }

    #[test]
    fn no_protocol_lets_its_secrets_through() {
        use crate::config::ProtocolKind;
        use crate::protocol::{self, Dialect};
        for kind in ProtocolKind::ALL {
            for dialect in [Dialect::NoDeny, Dialect::Abills] {
                let p = protocol::of(*kind, dialect);
                // A signed protocol names the field its signature comes in (Monobank's is
                // a header, which is never kept, and its card data is listed instead).
                assert!(
                    !kind.signed() || !p.secrets().is_empty(),
                    "{kind:?} is signed and lists no secret field"
                );
                for name in p.secrets() {
                    let value = "S3CR3T-VALUE";
                    let form = format!("a=1&{name}={value}");
                    let json = format!("{{\"a\":1,\"{name}\":\"{value}\"}}");
                    let xml =
                        format!("<R><A>1</A><{name}>{value}</{name}><B {name}=\"{value}\"/></R>");
                    for text in [
                        request_text(form.as_bytes(), Ok(b""), p.secrets()),
                        request_text(b"", Ok(form.as_bytes()), p.secrets()),
                        request_text(b"", Ok(json.as_bytes()), p.secrets()),
                        request_text(b"", Ok(xml.as_bytes()), p.secrets()),
                    ] {
                        assert!(!text.contains(value), "{kind:?} {name}: {text}");
                        assert!(text.contains(MASK), "{kind:?} {name}: {text}");
                    }
                }
            }
        }
    }

    #[test]
    fn secrets_inside_a_form_value_are_masked() {
        // Portmone's notice: the XML in form field `data`, its card number inside.
        let xml = "<BILLS><BILL><BILL_ID>1</BILL_ID><AUTH_CODE>TESTPM</AUTH_CODE>\
                   <CARD_MASK>444433******0000</CARD_MASK></BILL></BILLS>";
        let form = serde_urlencoded::to_string([("data", xml), ("x", "1")]).unwrap();
        let portmone = &["CARD_MASK"];
        for text in [
            request_text(b"", Ok(form.as_bytes()), portmone),
            request_text(form.as_bytes(), Ok(b""), portmone),
        ] {
            assert!(!text.contains("444433"), "{text}");
            let fields: Vec<(String, String)> = serde_urlencoded::from_str(&text).unwrap();
            assert_eq!(fields[0].0, "data", "{text}");
            assert!(
                fields[0].1.contains("<CARD_MASK>***</CARD_MASK>")
                    && fields[0].1.contains("<BILL_ID>1</BILL_ID>"),
                "{text}"
            );
            assert_eq!(fields[1], ("x".into(), "1".into()), "{text}");
        }
        // JSON in a field; a secret attribute; no secret inside: kept as sent.
        let json = serde_urlencoded::to_string([("p", r#"{"a":1,"token":"t0k"}"#)]).unwrap();
        let text = request_text(json.as_bytes(), Ok(b""), &[]);
        assert!(!text.contains("t0k") && text.contains("a%22%3A1"), "{text}");
        let attr = serde_urlencoded::to_string([("p", r#"<r key="k9" a="b"/>"#)]).unwrap();
        assert!(!request_text(attr.as_bytes(), Ok(b""), &[]).contains("k9"));
        let plain = "d=%3Cr%3E%3Ca%3E1%3C%2Fa%3E%3C%2Fr%3E&e=%7B%22b%22%3A2%7D";
        assert_eq!(request_text(plain.as_bytes(), Ok(b""), &[]), plain);
        // Looks like XML or JSON, does not read as it: the value is not kept.
        let broken = "d=%3Cr%3E4444%3C%2Fq%3E&e=%7B%22token%22%3A%22t";
        let text = request_text(broken.as_bytes(), Ok(b""), portmone);
        assert_eq!(text, "d=***&e=***");
    }

    #[test]
    fn attributes_of_a_secret_element_are_masked_whole() {
        let portmone = &["CARD_MASK"];
        for xml in [
            r#"<BILL><CARD_MASK value="444433******0000"/><BILL_ID n="7"/></BILL>"#,
            r#"<BILL><CARD_MASK><n v="444433******0000"/></CARD_MASK></BILL>"#,
            r#"<BILL><CARD_MASK v="444433******0000">x</CARD_MASK></BILL>"#,
        ] {
            let (masked, any) = mask_xml(xml, portmone).unwrap();
            assert!(any && !masked.contains("444433"), "{masked}");
        }
        let (kept, _) = mask_xml(r#"<BILL><BILL_ID n="7"/></BILL>"#, portmone).unwrap();
        assert!(kept.contains(r#"n="7""#), "{kept}");
    }

    #[test]
    fn a_secret_key_holding_an_object_or_array_is_masked_whole() {
        let json = request_text(
            b"",
            Ok(br#"{"card":{"number":"4444333322221111","exp":"12/30"},"tokens":["t1","t2"],"a":[{"pin":1234}],"n":1}"#),
            &[],
        );
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value["card"], MASK, "{json}");
        assert_eq!(value["tokens"], MASK, "{json}");
        assert_eq!(value["a"][0]["pin"], MASK, "{json}");
        assert_eq!(value["n"], 1, "{json}");
        assert!(!json.contains("12/30") && !json.contains("t1"), "{json}");
    }

    #[test]
    fn request_types_are_abills_numbers() {
        let table = [
            ("check", 3),
            ("pay", 4),
            ("callback", 4),
            ("cancel", 6),
            ("status", 7),
            ("list", 0),
        ];
        for (command, n) in table {
            assert_eq!(request_type(command), n, "{command}");
        }
    }

    #[test]
    fn words_stand_whole() {
        assert!(has_word("command=pay&txn_id=666&sum=1", "666"));
        assert!(!has_word("command=pay&txn_id=6666&sum=1", "666"));
        assert!(!has_word("txn_id=1666", "666"));
        assert!(has_word("<Account>59071</Account>", "59071"));
    }

    #[test]
    fn long_texts_are_clipped_and_kept_to_three_bytes() {
        let long = "x".repeat(TEXT_MAX + 10);
        let text = request_text(long.as_bytes(), Ok(b""), &[]);
        assert_eq!(text.chars().count(), TEXT_MAX + 1);
        assert_eq!(three_byte("a😀b"), "a\u{FFFD}b");
    }
}
