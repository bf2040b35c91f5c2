//! ABillS: `users`, `users_pi`, `groups`, `companies`, `bills`, `payments`, `paysys_log`.
//!
//! What ABillS's own Paysys module writes, and we write the same (see `docs/ABILLS.md`): a
//! payment raises `bills.deposit` — the company's bill for a company's user — and adds a
//! `payments` row (`ext_id "<prefix>:<txn_id>"`, `last_deposit` = the deposit before) and a
//! `paysys_log` row (`transaction_id "<prefix>:<txn_id>"`, status 2, the request in `info`),
//! whose id is the `prv_txn` the caller is answered with. Unlike ABillS's script, all of it
//! commits in one transaction with our own row, an account is a literal value (ABillS
//! splices it into SQL, where `>0` or `*` match somebody), a group without payment systems
//! is refused (a disabled user only where the system's `refuse_disabled` says so; ABillS
//! pays them), and cancel is scoped to the system that paid.
//!
//! Money columns are `DOUBLE`. Sums go in as decimal text and the arithmetic is done in
//! `DECIMAL`, so what is stored is the exact sum rounded once to the column, never a float
//! computed on our side.
//!
//! ABillS's script ran before us on the same tables: a payment it recorded (its
//! `payments.ext_id` or `paysys_log.transaction_id` has the txn, in any form [`txn_ids`]
//! knows) is answered as a repeat of that record and nothing is credited again; its status
//! is found, and a cancel reverses it as ABillS's cancel would. A terminal's pay that is to
//! be paid looks for such rows last, under lock, in the statement that completes our row
//! ([`Credit::look_last`]), so that pays of new txns hold no lock on the gaps where their
//! rows go while they write them, and do not deadlock on each other there.

use std::net::IpAddr;

use mysql::prelude::Queryable;
use mysql::{Conn, Params, Transaction};

use crate::billing::{
    Billing, BillingRow, Credit, Credited, Guard, GuardParam, OneCalled, Recorded, Uncredit,
    Uncredited, UncreditedRecorded,
};
use crate::config::{BillingKind, RefuseDisabled, System};
use crate::db::{server_code, ER_DUP_ENTRY, ER_LOCK_DEADLOCK};
use crate::domain::{parse_balance, Account, AccountKey, AccountRef, Amount, Domain, TxnId};
use crate::outcome::{CardState, Refusal, Subscriber};

pub mod audit;
pub mod txn_ids;

use txn_ids::{Evidence, Seen, TxnIds};

pub struct Abills;

/// `paysys_log.status` values (ABillS's Paysys_Base: 1 processing, 2 complete, 3 cancelled,
/// 4 expired, 6 payment error).
const STATUS_PROCESSING: u8 = 1;
const STATUS_COMPLETE: u8 = 2;
const STATUS_CANCELLED: u8 = 3;
const STATUS_EXPIRED: u8 = 4;
const STATUS_PAYMENT_ERROR: u8 = 6;

/// The statuses of a log row written before its payment and not completed by one: a card
/// order in progress, or one whose provider said it failed or that expired. ABillS's own
/// order payment (`paysys_pay` with an order id) completes such a row whatever it says
/// but 2; so does ours — a provider may take a second attempt after a failed one.
fn unpaid_order_status(status: u8) -> bool {
    matches!(
        status,
        STATUS_PROCESSING | STATUS_EXPIRED | STATUS_PAYMENT_ERROR
    )
}

/// "Unknown column": a field an older ABillS does not have.
const ER_BAD_FIELD_ERROR: u16 = 1054;

/// "Illegal mix of collations": a value compared with a column whose character set cannot
/// represent it.
const ER_CANT_AGGREGATE_2COLLATIONS: u16 = 1267;

/// The subscriber an account named, with what paying them needs.
#[derive(Debug)]
struct Target {
    uid: u64,
    /// `users.gid`: which of a card provider's merchants takes the subscriber's payments.
    gid: u32,
    /// `users.id` and `users_pi.contract_id`, as stored.
    login: String,
    contract_id: String,
    /// `users.disable`: 0 active, 1 disabled, 2 not active, and whatever else an install
    /// uses.
    disable: u8,
    paysys_disabled: bool,
    /// The bill credited: the user's own, or the company's for a company's user.
    bill_id: u64,
    deposit: Option<Amount>,
    name: String,
}

/// The joins and the condition of a subscriber's lookup, as ABillS's own user search
/// joins them.
macro_rules! target_from {
    () => {
        " FROM users u \
         LEFT JOIN users_pi pi ON pi.uid = u.uid \
         LEFT JOIN `groups` g ON g.gid = u.gid \
         LEFT JOIN companies c ON c.id = u.company_id \
         LEFT JOIN bills b ON b.id = u.bill_id \
         LEFT JOIN bills cb ON cb.id = c.bill_id \
         WHERE u.deleted = 0 AND u.domain_id = ?"
    };
}

/// The columns of a [`Target`].
const TARGET_SELECT: &str = concat!(
    "SELECT u.uid, u.gid, u.id, IFNULL(pi.contract_id, ''), u.disable, \
     IFNULL(g.disable_paysys, 0), IF(u.company_id > 0, IFNULL(c.bill_id, 0), u.bill_id), \
     CAST(IF(u.company_id > 0, cb.deposit, b.deposit) AS DECIMAL(24,2)), \
     CONCAT_WS(' ', pi.fio, pi.fio2, pi.fio3)",
    target_from!()
);

/// [`lookup_and_find`]'s part for the subscriber: [`TARGET_SELECT`]'s columns in the
/// places of its union (see there).
const TARGET_PART: &str = concat!(
    "SELECT 2, NULL, u.uid, u.gid, \
     CAST(IF(u.company_id > 0, cb.deposit, b.deposit) AS DECIMAL(24,2)), \
     IF(u.company_id > 0, IFNULL(c.bill_id, 0), u.bill_id), u.disable, \
     IFNULL(g.disable_paysys, 0), 0, NULL, u.id, IFNULL(pi.contract_id, ''), \
     CONCAT_WS(' ', pi.fio, pi.fio2, pi.fio3)",
    target_from!()
);

type TargetRow = (
    u64,
    u32,
    String,
    String,
    u8,
    u8,
    u64,
    Option<String>,
    Option<Vec<u8>>,
);

/// The column an account key is compared with, and the value.
fn key_of(r: &AccountRef) -> (&'static str, mysql::Value) {
    match r {
        AccountRef::Id(uid) => ("u.uid", (*uid).into()),
        AccountRef::Login(login) => ("u.id", login.as_str().into()),
        AccountRef::ContractId(contract) => ("pi.contract_id", contract.as_str().into()),
    }
}

/// What one key found: nobody (`None`), the subscriber, or a refusal when it names two
/// (contract numbers need not be unique): paying whichever came first is how money reaches
/// the wrong person.
fn target_of(
    rows: Vec<TargetRow>,
    account: &Account,
    column: &str,
) -> Option<Result<Target, Refusal>> {
    if rows.len() > 1 {
        return Some(Err(Refusal::BadAccount(format!(
            "account '{}' names more than one subscriber ({column})",
            account.as_str()
        ))));
    }
    let (uid, gid, login, contract_id, disabled, paysys_disabled, bill_id, deposit, name) =
        rows.into_iter().next()?;
    Some(Ok(Target {
        uid,
        gid,
        login,
        contract_id,
        disable: disabled,
        paysys_disabled: paysys_disabled != 0,
        bill_id,
        deposit: deposit.as_deref().and_then(parse_balance),
        // Old installs keep names in cp1251 or koi8-r; whatever the server cannot
        // convert must not fail a payment.
        name: name
            .map(|n| String::from_utf8_lossy(&n).into_owned())
            .unwrap_or_default()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" "),
    }))
}

/// Looks `account` up by each of its keys in turn; the first key that finds somebody
/// decides ([`target_of`]).
fn lookup(
    conn: &mut impl Queryable,
    account: &Account,
    domain: Domain,
) -> Result<Result<Target, Refusal>, mysql::Error> {
    lookup_by(conn, account, account.refs(), domain)
}

/// [`lookup`] by the keys `refs` (a tail of the account's, after a first key that found
/// nobody).
fn lookup_by(
    conn: &mut impl Queryable,
    account: &Account,
    refs: &[AccountRef],
    domain: Domain,
) -> Result<Result<Target, Refusal>, mysql::Error> {
    for r in refs {
        let (column, value) = key_of(r);
        let rows: Vec<TargetRow> = match conn.exec(
            format!("{TARGET_SELECT} AND {column} = ? LIMIT 2"),
            Params::Positional(vec![domain.id().into(), value]),
        ) {
            Ok(rows) => rows,
            // The value has characters the column's character set cannot hold (an emoji
            // against ABillS's 3-byte utf8, Cyrillic against latin1): the server refuses to
            // compare, and no row can hold such a value either. Nobody, not a fault.
            Err(e) if server_code(&e) == Some(ER_CANT_AGGREGATE_2COLLATIONS) => continue,
            Err(e) => return Err(e),
        };
        if let Some(found) = target_of(rows, account, column) {
            return Ok(found);
        }
    }
    Ok(Err(Refusal::NoSuchSubscriber))
}

/// Who may be paid: a group without payment systems refuses them (7), as ABillS's script
/// does; a disabled account (`users.disable` ≠ 0) is paid, as ABillS's script pays it — the
/// subscriber may be paying to be switched back on — unless the system's `refuse_disabled`
/// names its state, which is then inactive (79).
fn payable(target: &Target, system: &System) -> Result<(), Refusal> {
    if system.abills.refuse_disabled.refuses(target.disable) {
        return Err(Refusal::AccountInactive);
    }
    if target.paysys_disabled {
        return Err(Refusal::PaymentsDisabled);
    }
    Ok(())
}

/// `"<prefix>:<txn_id>"` of `txn_id` for `system`, in every form ABillS's tables may hold
/// it ([`txn_ids`]).
fn txn_ids(system: &System, txn_id: &str) -> TxnIds {
    TxnIds::new(&system.abills.txn_prefix, txn_id)
}

/// `ext_id` of a prefix (1 to 8 characters, see the config) and an id, as written on an
/// ABillS whose columns hold 24 characters (≤ 1.20): the whole text if it fits, else the
/// prefix and a hash ([`txn_ids`]). On a wider install the whole text is written up to its
/// width.
pub fn transaction_id(prefix: &str, txn_id: &str) -> String {
    TxnIds::new(prefix, txn_id).written(txn_ids::NARROWEST)
}

/// How long the width of ABillS's id columns is trusted before it is read again: an
/// ABillS upgrade that widens them is noticed by a persistent worker within this time.
const WIDTH_TTL: std::time::Duration = std::time::Duration::from_secs(600);

/// The narrower of `paysys_log.transaction_id` and `payments.ext_id`, in characters, as
/// the server says: read once and kept for [`WIDTH_TTL`] (a process serves one billing
/// database). Asked only for a text longer than every ABillS's 24 characters. A width kept
/// too long is harmless: narrower, the hash is written (and found); wider, a strict server
/// refuses the text (temporary) and a non-strict one cuts it, which lookups know too.
fn id_width(conn: &mut impl Queryable) -> Result<usize, mysql::Error> {
    use std::sync::Mutex;
    use std::time::Instant;
    static CACHE: Mutex<Option<(Instant, usize)>> = Mutex::new(None);
    if let Ok(cache) = CACHE.lock() {
        if let Some((at, width)) = *cache {
            if at.elapsed() < WIDTH_TTL {
                return Ok(width);
            }
        }
    }
    let width: Option<Option<u64>> = conn.query_first(
        "SELECT MIN(CHARACTER_MAXIMUM_LENGTH) FROM information_schema.COLUMNS \
         WHERE TABLE_SCHEMA = DATABASE() AND ((TABLE_NAME = 'paysys_log' AND COLUMN_NAME = \
         'transaction_id') OR (TABLE_NAME = 'payments' AND COLUMN_NAME = 'ext_id'))",
    )?;
    let width = width
        .flatten()
        .and_then(|w| usize::try_from(w).ok())
        .unwrap_or(txn_ids::NARROWEST);
    if let Ok(mut cache) = CACHE.lock() {
        *cache = Some((Instant::now(), width));
    }
    Ok(width)
}

/// The text a new payment's `ext_id` and `transaction_id` get: the whole text where both
/// columns hold it, as ABillS's own script writes it.
fn written_id(conn: &mut impl Queryable, ids: &TxnIds) -> Result<String, mysql::Error> {
    if ids.whole().chars().count() <= txn_ids::NARROWEST {
        return Ok(ids.whole().to_string());
    }
    Ok(ids.written(id_width(conn)?))
}

/// The stored procedure `sql/abills-pay.sql` installs, by the name of its current version.
pub const PAY_PROCEDURE: &str = "paysys_abills_pay_1";

/// The procedure's answer: code, our row's id, the subscriber, `payments.id`,
/// `paysys_log.id` (see `sql/abills-pay.sql`).
type CallAnswer = (u8, u64, u64, u64, u64);

/// "PROCEDURE … does not exist".
const ER_SP_DOES_NOT_EXIST: u16 = 1305;
/// "execute command denied … for routine".
const ER_PROCACCESS_DENIED: u16 = 1370;
/// "Incorrect number of arguments": a procedure of that name, not ours (edited by hand).
const ER_SP_WRONG_NO_OF_ARGS: u16 = 1318;
/// "Failed to load routine … (mysql.proc)": a server upgraded without `mariadb-upgrade`.
const ER_SP_PROC_TABLE_CORRUPT: u16 = 1457;

/// How long a procedure found missing is not called again: a persistent worker notices it
/// loaded within this time, and meanwhile pays without a failed CALL first.
const ABSENT_TTL: std::time::Duration = std::time::Duration::from_secs(60);

static PROCEDURE_ABSENT: std::sync::Mutex<Option<std::time::Instant>> = std::sync::Mutex::new(None);

fn procedure_absent() -> bool {
    PROCEDURE_ABSENT
        .lock()
        .map(|at| at.is_some_and(|at| at.elapsed() < ABSENT_TTL))
        .unwrap_or(false)
}

fn note_procedure_absent() {
    if let Ok(mut at) = PROCEDURE_ABSENT.lock() {
        *at = Some(std::time::Instant::now());
    }
}

/// An address as ABillS stores one (`INET_ATON`); IPv6 and unknown callers are 0.
fn ip_number(ip: Option<IpAddr>) -> u32 {
    match ip {
        Some(IpAddr::V4(v4)) => u32::from(v4),
        _ => 0,
    }
}

/// The time ABillS's script writes into `payments.date` and `paysys_log.datetime`: the web
/// server's clock (Perl's `"$DATE $TIME"`), not the database's, which may be in another
/// time zone. (`reg_date` is the database's `NOW()`, in ABillS too.)
fn web_server_time() -> String {
    chrono::Local::now().format("%Y-%m-%d %H:%M:%S").to_string()
}

/// `paysys_log.info` as ABillS writes it: `"key, value\n"` for each parameter with a value,
/// keys sorted. The column is 3-byte `utf8` on most installs: a character beyond it would
/// make a strict server refuse the whole payment, so such characters become `?`.
fn info(params: &[(String, String)]) -> String {
    let mut pairs: Vec<&(String, String)> = params.iter().filter(|(_, v)| !v.is_empty()).collect();
    pairs.sort();
    let mut text = String::new();
    for (k, v) in pairs {
        text.push_str(k);
        text.push_str(", ");
        text.push_str(v);
        text.push('\n');
    }
    text.chars()
        .map(|c| if (c as u32) > 0xFFFF { '?' } else { c })
        .take(16 * 1024)
        .collect()
}

/// How a lookup of ABillS's rows locks what it finds.
#[derive(Debug, Clone, Copy)]
enum Lock {
    /// A pay or a cancel that may write: other writers of these rows wait for it.
    Update,
    /// A read that decides an answer: waits for a writer in flight, blocks no reader.
    Share,
}

impl Lock {
    fn sql(self) -> &'static str {
        match self {
            Lock::Update => "FOR UPDATE",
            Lock::Share => "LOCK IN SHARE MODE",
        }
    }
}

/// How a pay wrote its `paysys_log` row.
enum Logged {
    /// A new row (its id: the INSERT's).
    Inserted,
    /// The card order's own row, opened on our page, completed.
    Completed(u64),
    /// The card order's row was no longer open when it was to be completed.
    ChangedMeanwhile,
}

/// Which domains' `paysys_log` rows a lookup sees: this domain's, and the default
/// domain's (0), as ABillS's script looks a repeat up. A pay, a status and a cancel all see
/// the same rows, so none of them can find a payment another misses.
#[derive(Debug, Clone, Copy)]
enum Domains {
    OrDefault(Domain),
}

/// A `payments` row of a txn.
#[derive(Debug, Clone)]
struct PaymentRow {
    id: u64,
    uid: u64,
    sum: String,
    bill_id: u64,
    ext_id: String,
}

/// A `paysys_log` row of a txn.
#[derive(Debug, Clone)]
struct LogRow {
    id: u64,
    uid: u64,
    sum: String,
    status: u8,
    system_id: u64,
    domain_id: u64,
    transaction_id: String,
    info: String,
}

/// What ABillS's tables hold for one txn: its payment and its log row, each with how its
/// text relates to the txn's id.
#[derive(Debug, Default)]
struct Found {
    payment: Option<(Seen, PaymentRow)>,
    log: Option<(Seen, LogRow)>,
}

impl Found {
    /// A row whose text only the column's collation finds equal to this txn's: another
    /// txn's, which ABillS's key and its `ext_id` lookups cannot tell from this one.
    fn collated(&self) -> Option<(u64, String, &'static str)> {
        if let Some((Seen::Collated, p)) = &self.payment {
            return Some((p.id, p.ext_id.clone(), "payments.ext_id"));
        }
        if let Some((Seen::Collated, l)) = &self.log {
            return Some((l.id, l.transaction_id.clone(), "paysys_log.transaction_id"));
        }
        None
    }

    fn payment(&self) -> Option<&PaymentRow> {
        match &self.payment {
            Some((Seen::Exact(_), p)) => Some(p),
            _ => None,
        }
    }

    fn log(&self) -> Option<&LogRow> {
        match &self.log {
            Some((Seen::Exact(_), l)) => Some(l),
            _ => None,
        }
    }

    /// The log row of a card order opened on our page (no payment yet: in progress, or
    /// noted failed or expired), which its payment completes instead of writing another.
    fn opened(&self) -> Option<u64> {
        match (self.log(), self.payment()) {
            (Some(log), None) if unpaid_order_status(log.status) => Some(log.id),
            _ => None,
        }
    }
}

type PaymentSelected = (String, u64, u64, String, u64);

const LOG_SELECT: &str = "SELECT transaction_id, id, uid, CAST(sum AS DECIMAL(16,2)), status, \
     system_id, domain_id, info FROM paysys_log";
type LogSelected = (String, u64, u64, String, u8, u64, u64, Option<Vec<u8>>);

/// A row of [`find`]'s union: the table (0 `payments`, 1 `paysys_log`), then the text, id,
/// uid, sum, and `bill_id` (payments) or `status`, `system_id`, `domain_id`, `info` (log).
type FoundSelected = (
    u8,
    String,
    u64,
    u64,
    String,
    u64,
    u8,
    u64,
    u64,
    Option<Vec<u8>>,
);

fn log_row(
    (transaction_id, id, uid, sum, status, system_id, domain_id, info): LogSelected,
) -> (String, LogRow) {
    let row = LogRow {
        id,
        uid,
        sum,
        status,
        system_id,
        domain_id,
        transaction_id: transaction_id.clone(),
        info: info
            .map(|i| String::from_utf8_lossy(&i).into_owned())
            .unwrap_or_default(),
    };
    (transaction_id, row)
}

/// ABillS's rows of the txn `ids` names, under any text it may have been written with.
///
/// A log row found by a cut text is another txn's when its `info` (the request ABillS's
/// script kept) names another id that begins the same way ([`Evidence::Another`]); so is a
/// payment found by a cut text that goes with such a log row (ABillS wrote both texts for
/// one request, so one begins as the other). Neither counts then. An `info` that names no
/// id is no evidence either way.
fn find(
    conn: &mut impl Queryable,
    ids: &TxnIds,
    domains: Domains,
    lock: Lock,
) -> Result<Found, mysql::Error> {
    let (sql, params) = find_sql(ids, domains, lock, "");
    let rows: Vec<FoundSelected> = conn.exec(sql, Params::Positional(params))?;
    Ok(found_of(ids, rows))
}

/// [`find`]'s statement and its parameters; `more` ends each part's columns (the `NULL`s
/// of [`lookup_and_find`]'s columns that are not [`find`]'s).
fn find_sql(ids: &TxnIds, domains: Domains, lock: Lock, more: &str) -> (String, Vec<mysql::Value>) {
    let texts = ids.texts();
    let marks = ids.placeholders();
    let (domain_sql, domain) = match domains {
        Domains::OrDefault(d) => ("domain_id IN (?, 0)", d),
    };
    // Both tables in one statement (one round trip), each part with its own order, limit
    // and lock; the texts as utf8mb4 binary, so that the two columns' collations never
    // meet. Each row says which table it is from.
    let lock = lock.sql();
    let mut params: Vec<mysql::Value> = texts.iter().map(|t| t.as_str().into()).collect();
    params.push(domain.id().into());
    params.extend(texts.iter().map(|t| t.as_str().into()));
    (
        format!(
            "(SELECT 0, CONVERT(ext_id USING utf8mb4) COLLATE utf8mb4_bin, id, uid, \
             CAST(sum AS DECIMAL(16,2)), bill_id, 0, 0, 0, NULL{more} FROM payments \
             WHERE ext_id IN ({marks}) ORDER BY id LIMIT 20 {lock}) \
             UNION ALL \
             (SELECT 1, CONVERT(transaction_id USING utf8mb4) COLLATE utf8mb4_bin, id, uid, \
             CAST(sum AS DECIMAL(16,2)), 0, status, system_id, domain_id, info{more} \
             FROM paysys_log WHERE {domain_sql} AND transaction_id IN ({marks}) \
             ORDER BY domain_id DESC, id LIMIT 20 {lock})"
        ),
        params,
    )
}

/// What [`find`]'s rows say about the txn `ids` names.
fn found_of(ids: &TxnIds, rows: Vec<FoundSelected>) -> Found {
    let mut payments: Vec<PaymentSelected> = Vec::new();
    let mut logs: Vec<LogSelected> = Vec::new();
    for (table, text, id, uid, sum, bill_id, status, system_id, domain_id, info) in rows {
        if table == 0 {
            payments.push((text, id, uid, sum, bill_id));
        } else {
            logs.push((text, id, uid, sum, status, system_id, domain_id, info));
        }
    }
    // Each part's own order (a union keeps it in practice, but does not promise it).
    payments.sort_by_key(|p| p.1);
    logs.sort_by_key(|l| (std::cmp::Reverse(l.6), l.1));
    let logs: Vec<(String, LogRow)> = logs.into_iter().map(log_row).collect();
    // A log row found by a cut text is another id's when the request ABillS kept with it
    // names that other id; so is a payment found by a cut text whose log row (the one whose
    // text begins as the payment's: ABillS wrote both for one request) is another id's.
    let cut = |text: &str| matches!(ids.seen(text), Seen::Exact(f) if f.is_cut());
    let anothers: Vec<String> = logs
        .iter()
        .filter(|(text, log)| {
            cut(text) && matches!(ids.evidence(text, &log.info), Evidence::Another(_))
        })
        .map(|(text, _)| text.clone())
        .collect();
    let payments: Vec<(String, PaymentRow)> = payments
        .into_iter()
        .filter(|(text, ..)| {
            !(cut(text)
                && anothers
                    .iter()
                    .any(|a| text.starts_with(a.as_str()) || a.starts_with(text.as_str())))
        })
        .map(|(ext_id, id, uid, sum, bill_id)| {
            (
                ext_id.clone(),
                PaymentRow {
                    id,
                    uid,
                    sum,
                    bill_id,
                    ext_id,
                },
            )
        })
        .collect();
    let logs: Vec<(String, LogRow)> = logs
        .into_iter()
        .filter(|(t, _)| !anothers.contains(t))
        .collect();
    Found {
        payment: ids.best(&payments).map(|(seen, p)| (seen, p.clone())),
        log: ids.best(&logs).map(|(seen, l)| (seen, l.clone())),
    }
}

/// The subscriber the account names and ABillS's rows of the txn `ids` names, as
/// [`lookup`] and then [`find`] (with `lock`) find them, asked in one statement where the
/// account's first key allows: one round trip, and in CGI one prepare, fewer. The
/// subscriber's part is a plain read, as [`lookup`]'s is: only the txn's parts lock, and
/// the bill is locked by the credit's `UPDATE` alone, last. The subscriber's rows are of
/// kind 2 and have their texts in columns of their own at the end, where [`find`]'s parts
/// have `NULL`s: no column mixes a text of `users` with one of the txn's tables, whose
/// character sets may differ.
fn lookup_and_find(
    conn: &mut impl Queryable,
    account: &Account,
    domain: Domain,
    ids: &TxnIds,
    lock: Lock,
) -> Result<(Result<Target, Refusal>, Found), mysql::Error> {
    let domains = Domains::OrDefault(domain);
    let Some((first, rest)) = account.refs().split_first() else {
        return Ok((
            lookup(conn, account, domain)?,
            find(conn, ids, domains, lock)?,
        ));
    };
    let (column, value) = key_of(first);
    let (find, find_params) = find_sql(ids, domains, lock, ", NULL, NULL, NULL");
    let mut params = vec![domain.id().into(), value];
    params.extend(find_params);
    let rows: Vec<mysql::Row> = match conn.exec(
        format!("({TARGET_PART} AND {column} = ? LIMIT 2) UNION ALL {find}"),
        Params::Positional(params),
    ) {
        Ok(rows) => rows,
        // The first key cannot be compared with its column ([`lookup`]): nobody by it, and
        // the two questions asked apart.
        Err(e) if server_code(&e) == Some(ER_CANT_AGGREGATE_2COLLATIONS) => {
            let target = lookup_by(conn, account, rest, domain)?;
            return Ok((target, self::find(conn, ids, domains, lock)?));
        }
        Err(e) => return Err(e),
    };
    let mut targets: Vec<TargetRow> = Vec::new();
    let mut found: Vec<FoundSelected> = Vec::new();
    for mut row in rows {
        let kind: u8 = take(&mut row, 0)?;
        if kind == 2 {
            let deposit: Option<String> = take(&mut row, 4)?;
            targets.push((
                take(&mut row, 2)?,
                take(&mut row, 3)?,
                take(&mut row, 10)?,
                take(&mut row, 11)?,
                take(&mut row, 6)?,
                take(&mut row, 7)?,
                take(&mut row, 5)?,
                deposit,
                take(&mut row, 12)?,
            ));
        } else {
            found.push((
                kind,
                take(&mut row, 1)?,
                take(&mut row, 2)?,
                take(&mut row, 3)?,
                take(&mut row, 4)?,
                take(&mut row, 5)?,
                take(&mut row, 6)?,
                take(&mut row, 7)?,
                take(&mut row, 8)?,
                take(&mut row, 9)?,
            ));
        }
    }
    let target = match target_of(targets, account, column) {
        Some(target) => target,
        None => lookup_by(conn, account, rest, domain)?,
    };
    Ok((target, found_of(ids, found)))
}

/// Column `i` of `row` as a `T`; a value that is not one is an error, as the typed rows'
/// conversion would report it, not a panic.
fn take<T: mysql::prelude::FromValue>(row: &mut mysql::Row, i: usize) -> Result<T, mysql::Error> {
    match row.take_opt::<T, usize>(i) {
        Some(Ok(v)) => Ok(v),
        Some(Err(e)) => Err(mysql::Error::FromValueError(e.0)),
        None => Err(mysql::Error::FromValueError(mysql::Value::NULL)),
    }
}

/// The refusal of a txn whose id ABillS cannot tell from one it holds already: answering
/// success would credit nothing, crediting would give ABillS two payments it sees as one.
fn collated_refusal((id, stored, column): (u64, String, &'static str), sum: Amount) -> Refusal {
    Refusal::Conflict {
        prv_txn: id,
        account: format!(
            "(another payment's id: {column} holds '{stored}', which ABillS does not tell \
             apart from this txn's, e.g. by letter case)"
        ),
        sum,
    }
}

fn amount_of(sum: &str) -> Amount {
    parse_balance(sum).unwrap_or(Amount::from_kopecks(0))
}

impl Billing for Abills {
    fn kind(&self) -> BillingKind {
        BillingKind::Abills
    }

    fn tables(&self) -> &'static [&'static str] {
        &[
            "users",
            "users_pi",
            "groups",
            "companies",
            "bills",
            "payments",
            "paysys_log",
        ]
    }

    fn has_domains(&self) -> bool {
        true
    }

    fn audit(&self) -> &'static dyn crate::billing::audit::Audit {
        &audit::AbillsAudit
    }

    fn find(
        &self,
        conn: &mut Conn,
        system: &System,
        account: &Account,
        domain: Domain,
    ) -> Result<Result<Subscriber, Refusal>, mysql::Error> {
        Ok(lookup(conn, account, domain)?.and_then(|target| {
            payable(&target, system)?;
            Ok(Subscriber {
                id: target.uid,
                name: target.name,
                balance: target.deposit,
                group: Some(target.gid),
                account: Some(match system.account.keys.first() {
                    Some(AccountKey::Login) => target.login,
                    Some(AccountKey::ContractId) => target.contract_id,
                    _ => target.uid.to_string(),
                }),
            })
        }))
    }

    fn credit(&self, tx: &mut Transaction<'_>, c: &Credit<'_>) -> Result<Credited, mysql::Error> {
        let ids = txn_ids(c.system, c.txn_id.as_str());
        // A payment ABillS's own script made before the switch-over (its duplicate key,
        // payments.ext_id, under any text it was written with) keeps its first answer before
        // any other rule: the subscriber may have been disabled, or its group barred from
        // payment systems, since.
        // A card order of our page's is the exception: its id is ours, so no payment of
        // ABillS's can carry it, and its own row, still open, is completed at once.
        //
        // A terminal's pay that will be paid looks for those rows last where the ledger
        // lets it ([`Credit::look_last`]): under lock, in the statement that completes our
        // row. A locking look first, for a new txn, locks the gap of each key where its text
        // would go — the same gap for every new txn, as ids grow — and two pays that hold it
        // both wait for it with their INSERTs: a deadlock, one rolled back and paid again.
        // The look at the end comes after our INSERTs, and nothing is written after it. A
        // pay about to be refused looks first, as always: a payment recorded before is
        // answered before any refusal. So does one that meets anything on the way (its log
        // row's key taken, the bill gone): rolled back, and made again looking first.
        let mut look_last = c.look_last && !c.order_opened;
        let (found, earlier) = if c.order_opened {
            let found = lookup(tx, c.account, c.domain)?;
            if let Some(credited) = complete_opened(tx, c, &ids, &found)? {
                return Ok(credited);
            }
            let earlier = self::find(tx, &ids, Domains::OrDefault(c.domain), Lock::Update)?;
            (found, earlier)
        } else if look_last {
            let found = lookup(tx, c.account, c.domain)?;
            let paid = matches!(&found, Ok(t) if payable(t, c.system).is_ok() && t.bill_id != 0);
            if paid {
                (found, Found::default())
            } else {
                look_last = false;
                let domains = Domains::OrDefault(c.domain);
                (found, self::find(tx, &ids, domains, Lock::Update)?)
            }
        } else {
            lookup_and_find(tx, c.account, c.domain, &ids, Lock::Update)?
        };
        if let Some(recorded) = recorded_credit(tx, c, &ids, &earlier, &found)? {
            return Ok(recorded);
        }
        let target = match found {
            Ok(target) => target,
            Err(refusal) => return Ok(Credited::Refused(refusal)),
        };
        if let Err(refusal) = payable(&target, c.system) {
            return Ok(Credited::Refused(refusal));
        }
        if target.bill_id == 0 {
            return Ok(Credited::Refused(Refusal::NoBill));
        }
        let written = written_id(tx, &ids)?;
        let now = web_server_time();
        let logged = match earlier.opened() {
            // The card order's row, opened when the subscriber left for the provider, as
            // ABillS's own portal payments are: completed now.
            Some(id) => tx
                .exec_drop(
                    "UPDATE paysys_log SET datetime = ?, sum = CAST(? AS DECIMAL(16,2)), uid = ?, \
                     info = ?, paysys_ip = ?, status = ? WHERE id = ? AND status IN (?, ?, ?)",
                    (
                        &now,
                        c.amount.to_string(),
                        target.uid,
                        info(c.params),
                        ip_number(c.caller),
                        STATUS_COMPLETE,
                        id,
                        STATUS_PROCESSING,
                        STATUS_EXPIRED,
                        STATUS_PAYMENT_ERROR,
                    ),
                )
                .map(|()| match tx.affected_rows() {
                    1 => Logged::Completed(id),
                    // Its state is not the one read above (paid or reversed by another
                    // hand): decided again under the locks, as a duplicate is.
                    _ => Logged::ChangedMeanwhile,
                }),
            None => tx
                .exec_drop(
                    "INSERT INTO paysys_log (system_id, datetime, sum, commission, uid, transaction_id, info, ip, code, paysys_ip, domain_id, status) \
                     VALUES (?, ?, CAST(? AS DECIMAL(16,2)), 0, ?, ?, ?, 0, '', ?, ?, ?)",
                    (
                        c.system.abills.id,
                        &now,
                        c.amount.to_string(),
                        target.uid,
                        &written,
                        info(c.params),
                        ip_number(c.caller),
                        c.domain.id(),
                        STATUS_COMPLETE,
                    ),
                )
                .map(|()| Logged::Inserted),
        };
        let again = match logged {
            Ok(Logged::Completed(id)) => Ok(Some(id)),
            Ok(Logged::Inserted) => Ok(None),
            // Another transaction's state to read again: if it answers nothing, the pay is
            // tried again whole (a deadlock's answer: rolled back, nothing written).
            Ok(Logged::ChangedMeanwhile) => Err(mysql::Error::MySqlError(mysql::MySqlError {
                state: "40001".into(),
                code: ER_LOCK_DEADLOCK,
                message: "the card order's paysys_log row changed meanwhile".into(),
            })),
            Err(e) if server_code(&e) == Some(ER_DUP_ENTRY) => Err(e),
            Err(e) => return Err(e),
        };
        let opened = match again {
            Ok(opened) => opened,
            Err(_) if look_last => return Ok(Credited::LookFirst),
            Err(e) => {
                // Written meanwhile (ABillS's own script, still running beside us, commits
                // its payment and then its log row), or reversed: found again under the
                // locks now held. A duplicate of anything else (the primary key) is no
                // answer about this txn: temporary, the retry decides.
                let now_found = self::find(tx, &ids, Domains::OrDefault(c.domain), Lock::Update)?;
                let found = lookup(tx, c.account, c.domain)?;
                return match recorded_credit(tx, c, &ids, &now_found, &found)? {
                    Some(recorded) => Ok(recorded),
                    None => Err(e),
                };
            }
        };
        let log_id = match opened {
            Some(id) => id,
            None => tx.last_insert_id().unwrap_or(0),
        };
        let credited = book(tx, c, &target, log_id, &written, &now)?;
        Ok(match credited {
            Credited::Done {
                subscriber_id,
                payment_ref,
                prv_txn,
                guard: None,
            } if look_last => Credited::Done {
                subscriber_id,
                payment_ref,
                prv_txn,
                guard: Some(no_other_rows(&ids, c.domain, payment_ref, log_id)),
            },
            // No bill now: a payment recorded before is still answered first.
            Credited::Refused(_) if look_last => Credited::LookFirst,
            credited => credited,
        })
    }

    fn pay_in_one_call(&self, conn: &mut Conn, c: &Credit<'_>) -> Result<OneCalled, mysql::Error> {
        let ids = txn_ids(c.system, c.txn_id.as_str());
        // The plain case only: a text every ABillS's columns hold whole (one text to look
        // for), and a first key the procedure looks up by its unique index.
        if ids.whole().chars().count() > txn_ids::NARROWEST || procedure_absent() {
            return Ok(OneCalled::Usual);
        }
        let (uid, login) = match c.account.refs().first() {
            Some(AccountRef::Id(uid)) if *uid > 0 => (*uid, ""),
            Some(AccountRef::Login(login)) if login.chars().count() <= 64 => (0, login.as_str()),
            _ => return Ok(OneCalled::Usual),
        };
        let refused = match &c.system.abills.refuse_disabled {
            RefuseDisabled::None => String::new(),
            RefuseDisabled::All => "*".to_string(),
            RefuseDisabled::States(states) => states
                .iter()
                .map(u8::to_string)
                .collect::<Vec<_>>()
                .join(","),
        };
        let params: Vec<mysql::Value> = vec![
            c.system.name.as_str().into(),
            c.txn_id.as_str().into(),
            c.account.as_str().into(),
            c.account.subscriber_id().unwrap_or(0).into(),
            c.amount.to_string().into(),
            c.txn_date.sql().into(),
            c.caller.map(|ip| ip.to_string()).unwrap_or_default().into(),
            c.domain.id().into(),
            uid.into(),
            login.into(),
            refused.into(),
            c.system.abills.id.into(),
            web_server_time().into(),
            info(c.params).into(),
            ip_number(c.caller).into(),
            ids.whole().into(),
            c.system.abills.description.as_str().into(),
            c.system.abills.admin_id.into(),
            c.system.abills.payment_method.into(),
        ];
        let marks = vec!["?"; params.len()].join(", ");
        let answer: Result<Option<CallAnswer>, mysql::Error> = conn.exec_first(
            format!("CALL {PAY_PROCEDURE}({marks})"),
            Params::Positional(params),
        );
        match answer {
            Ok(Some((0, .., prv_txn))) => Ok(OneCalled::Paid { prv_txn }),
            Ok(Some((1, ..))) => Ok(OneCalled::Stored),
            Ok(_) => Ok(OneCalled::Usual),
            // Not loaded (yet, or again after an upgrade that renamed it), not granted, or
            // not callable as ours: paid the usual way, and not asked again for a while
            // (`check-db` says why).
            Err(e)
                if matches!(
                    server_code(&e),
                    Some(
                        ER_SP_DOES_NOT_EXIST
                            | ER_PROCACCESS_DENIED
                            | ER_SP_WRONG_NO_OF_ARGS
                            | ER_SP_PROC_TABLE_CORRUPT
                    )
                ) =>
            {
                note_procedure_absent();
                Ok(OneCalled::Usual)
            }
            Err(e) => Err(e),
        }
    }

    fn procedure_problems(&self, conn: &mut Conn) -> Result<Vec<String>, mysql::Error> {
        // ROUTINES lists only the routines the user may run: missing and not granted look
        // the same here, and the sentence names both.
        let found: Option<String> = conn.exec_first(
            "SELECT ROUTINE_NAME FROM information_schema.ROUTINES \
             WHERE ROUTINE_SCHEMA = DATABASE() AND ROUTINE_NAME = ?",
            (PAY_PROCEDURE,),
        )?;
        Ok(match found {
            Some(_) => Vec::new(),
            None => vec![format!(
                "database.procedure: the stored procedure {PAY_PROCEDURE} is not in this \
                 database, or this user may not run it: load sql/abills-pay.sql into it as \
                 the DB admin and grant EXECUTE (sql/grants-abills.sql); until then pays are \
                 made statement by statement"
            )],
        })
    }

    fn subscriber_of(
        &self,
        conn: &mut Conn,
        _system: &System,
        account: &Account,
        domain: Domain,
    ) -> Result<Option<u64>, mysql::Error> {
        Ok(lookup(conn, account, domain)?.ok().map(|t| t.uid))
    }

    fn recorded(
        &self,
        conn: &mut Conn,
        system: &System,
        txn_id: &TxnId,
        domain: Domain,
    ) -> Result<Option<Recorded>, mysql::Error> {
        let ids = txn_ids(system, txn_id.as_str());
        // Locking reads, as the ledger's own: a credit of this txn in flight is waited for.
        let found = self::find(conn, &ids, Domains::OrDefault(domain), Lock::Share)?;
        Ok(match (found.log(), found.payment()) {
            // A card order of ours not paid yet: nothing was recorded.
            (Some(_), None) if found.opened().is_some() => None,
            (Some(log), payment) => Some(Recorded {
                prv_txn: log.id,
                subscriber_id: log.uid,
                amount: amount_of(&log.sum),
                // ABillS's cancel deletes the payment, then marks its log row.
                cancelled: log.status == STATUS_CANCELLED || payment.is_none(),
            }),
            // A payment whose log row ABillS failed to write: answered with the payment's
            // own id until a retry that reaches the ledger writes the log row.
            (None, Some(p)) => Some(Recorded {
                prv_txn: p.id,
                subscriber_id: p.uid,
                amount: amount_of(&p.sum),
                cancelled: false,
            }),
            // Nothing, or only another txn's rows that the collation finds equal: not this
            // txn's.
            (None, None) => None,
        })
    }

    fn payment_rows(
        &self,
        conn: &mut Conn,
        system: &System,
        txn_id: &str,
        payment_ref: u64,
        prv_txn: u64,
    ) -> Result<Vec<BillingRow>, mysql::Error> {
        // By ext_id too: a payment ABillS's script made has no payment_ref of ours, and a
        // cancelled one has no payments row any more.
        let ids = txn_ids(system, txn_id);
        let texts = ids.texts();
        let mut params: Vec<mysql::Value> = vec![payment_ref.into()];
        params.extend(texts.iter().map(|t| t.as_str().into()));
        let payments: Vec<mysql::Row> = conn.exec(
            format!(
                "SELECT * FROM payments WHERE id = ? OR ext_id IN ({}) ORDER BY id",
                ids.placeholders()
            ),
            Params::Positional(params),
        )?;
        let logs: Vec<mysql::Row> = conn.exec(
            "SELECT * FROM paysys_log WHERE id = ? ORDER BY id",
            (prv_txn,),
        )?;
        let rows = |table: &'static str, rows: Vec<mysql::Row>| {
            rows.into_iter().map(move |row| BillingRow {
                table,
                fields: crate::db::row_fields(row),
            })
        };
        // Another txn's row that the collation matched is not this payment's.
        let ours = |row: &BillingRow| {
            row.fields.iter().any(|(k, v)| {
                (k == "id" && v == &payment_ref.to_string())
                    || (k == "ext_id" && matches!(ids.seen(v), Seen::Exact(_)))
            })
        };
        Ok(rows("payments", payments)
            .filter(ours)
            .chain(rows("paysys_log", logs))
            .collect())
    }

    fn cancel(
        &self,
        tx: &mut Transaction<'_>,
        u: &Uncredit<'_>,
    ) -> Result<Uncredited, mysql::Error> {
        // Our row names the payments row; a payment recorded by ABillS's script before the
        // switch-over (our row has no payment_ref then) is found by its ext_id, as ABillS's
        // own cancel finds it.
        let payment: Option<(u64, u64, String)> = if u.payment_ref > 0 {
            tx.exec_first(
                "SELECT id, bill_id, CAST(sum AS DECIMAL(16,2)) FROM payments WHERE id = ? FOR UPDATE",
                (u.payment_ref,),
            )?
        } else {
            let ids = txn_ids(u.system, u.txn_id);
            self::find(tx, &ids, Domains::OrDefault(u.domain), Lock::Update)?
                .payment()
                .map(|p| (p.id, p.bill_id, p.sum.clone()))
        };
        let Some((payment_id, bill_id, sum)) = payment else {
            return Ok(Uncredited::Gone(format!(
                "the payments row of prv_txn {} ({}) is gone: removed in ABillS already?",
                u.prv_txn,
                txn_ids(u.system, u.txn_id).whole()
            )));
        };
        reverse(tx, payment_id, bill_id, &sum, Some(u.prv_txn))?;
        Ok(Uncredited::Done)
    }

    fn open_order(
        &self,
        conn: &mut Conn,
        system: &System,
        order_id: &str,
        uid: u64,
        amount: Amount,
        domain: Domain,
    ) -> Result<(), mysql::Error> {
        // What ABillS's own portal writes before it sends the subscriber to the provider:
        // the order "in progress" (status 1), under "<prefix>:<order id>", so that ABillS's
        // screens show it; the payment completes this row.
        let ids = txn_ids(system, order_id);
        let written = written_id(conn, &ids)?;
        conn.exec_drop(
            "INSERT INTO paysys_log (system_id, datetime, sum, commission, uid, transaction_id, info, ip, code, paysys_ip, domain_id, status) \
             VALUES (?, ?, CAST(? AS DECIMAL(16,2)), 0, ?, ?, '', 0, '', 0, ?, ?)",
            (
                system.abills.id,
                web_server_time(),
                amount.to_string(),
                uid,
                written,
                domain.id(),
                STATUS_PROCESSING,
            ),
        )
    }

    fn payer_code_accounts(
        &self,
        conn: &mut Conn,
        system: &System,
        code: &str,
    ) -> Result<Vec<String>, mysql::Error> {
        let rows: Vec<(u64, String, String, u64)> = match conn.exec(
            "SELECT u.uid, u.id, IFNULL(pi.contract_id, ''), u.company_id FROM users u \
             LEFT JOIN users_pi pi ON pi.uid = u.uid \
             LEFT JOIN companies c ON c.id = u.company_id \
             WHERE u.deleted = 0 AND u.domain_id = 0 AND ((u.company_id > 0 AND \
             (c.edrpou = ? OR c.tax_number = ?)) OR pi.tax_number = ?) ORDER BY u.uid LIMIT 50",
            (code, code, code),
        ) {
            Ok(rows) => rows,
            // An ABillS without these fields (before 1.50's companies.edrpou and
            // users_pi.tax_number): nobody has the code.
            Err(e) if server_code(&e) == Some(ER_BAD_FIELD_ERROR) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut companies = Vec::new();
        let mut accounts = Vec::new();
        for (uid, login, contract_id, company) in rows {
            // A company pays into its own bill, whichever of its users is credited.
            if company > 0 {
                if companies.contains(&company) {
                    continue;
                }
                companies.push(company);
            }
            accounts.push(match system.account.keys.first() {
                Some(AccountKey::Login) => login,
                Some(AccountKey::ContractId) => contract_id,
                _ => uid.to_string(),
            });
        }
        Ok(accounts)
    }

    fn close_order(
        &self,
        conn: &mut Conn,
        system: &System,
        order_id: &str,
        state: CardState,
    ) -> Result<(), mysql::Error> {
        // What ABillS's portal writes for an order the provider declined (6) or that
        // expired (4); a row its payment completed (2) is never touched.
        let status = match state {
            CardState::Failed => STATUS_PAYMENT_ERROR,
            CardState::Expired => STATUS_EXPIRED,
            _ => return Ok(()),
        };
        let ids = txn_ids(system, order_id);
        let written = written_id(conn, &ids)?;
        conn.exec_drop(
            "UPDATE paysys_log SET status = ? WHERE transaction_id = ? AND system_id = ? \
             AND status IN (?, ?, ?)",
            (
                status,
                written,
                system.abills.id,
                STATUS_PROCESSING,
                STATUS_EXPIRED,
                STATUS_PAYMENT_ERROR,
            ),
        )
    }

    fn cancel_recorded(
        &self,
        tx: &mut Transaction<'_>,
        system: &System,
        domain: Domain,
        prv_txn: Option<u64>,
        txn_id: Option<&TxnId>,
    ) -> Result<Option<UncreditedRecorded>, mysql::Error> {
        let refused = |why: String| Ok(Some(UncreditedRecorded::Refused(why)));
        let prefix = format!("{}:", system.abills.txn_prefix);
        // Which txn: the one named, or the one whose log row prv_txn is. That row is read
        // without a lock here; the locks are taken below in the order a pay takes them
        // (payments, then paysys_log), so that a pay retried meanwhile waits instead of
        // deadlocking.
        let (ids, known) = match (prv_txn, txn_id) {
            (Some(id), named) => {
                let row: Option<LogSelected> =
                    tx.exec_first(format!("{LOG_SELECT} WHERE id = ?"), (id,))?;
                let Some((_, log)) = row.map(log_row) else {
                    return Ok(None);
                };
                // Scoped to this system and domain, as our own cancel is: ABillS's cancels
                // any log id.
                if log.system_id != u64::from(system.abills.id)
                    || !log.transaction_id.starts_with(&prefix)
                {
                    return refused(format!(
                        "prv_txn {id} is a payment of another ABillS system ({}, system_id {}), \
                         not {}",
                        log.transaction_id, log.system_id, system.name
                    ));
                }
                if log.domain_id != u64::from(domain.id()) && log.domain_id != 0 {
                    return refused(format!(
                        "prv_txn {id} is a payment of ABillS domain {}, not {domain}",
                        log.domain_id
                    ));
                }
                match named {
                    Some(t) => {
                        let ids = txn_ids(system, t.as_str());
                        let theirs = match ids.seen(&log.transaction_id) {
                            Seen::Exact(form) if form.is_cut() => {
                                ids.evidence(&log.transaction_id, &log.info) == Evidence::Ours
                            }
                            Seen::Exact(_) => true,
                            Seen::Collated => false,
                        };
                        if !theirs {
                            return refused(format!(
                                "prv_txn {id} is {}, not txn {t}",
                                log.transaction_id
                            ));
                        }
                        (ids, true)
                    }
                    // The whole id: from the request ABillS kept, or the log row's text when
                    // it cannot have been cut.
                    None => match TxnIds::from_info(
                        &system.abills.txn_prefix,
                        &log.transaction_id,
                        &log.info,
                    ) {
                        Some(ids) => (ids, true),
                        None => {
                            let text = &log.transaction_id;
                            let cut = txn_ids::WIDTHS.contains(&text.chars().count());
                            (
                                TxnIds::new(&system.abills.txn_prefix, &text[prefix.len()..]),
                                !cut,
                            )
                        }
                    },
                }
            }
            (None, Some(t)) => (txn_ids(system, t.as_str()), true),
            (None, None) => return Ok(None),
        };
        let found = self::find(tx, &ids, Domains::OrDefault(domain), Lock::Update)?;
        // ABillS's cancel goes by the log row: without one here, there is nothing of this
        // system's and domain's to reverse.
        let Some(log) = found.log().cloned() else {
            return match prv_txn {
                Some(id) => refused(format!(
                    "prv_txn {id}: its paysys_log row could not be matched to a payment ({}): \
                     cancel it in ABillS",
                    ids.whole()
                )),
                None => Ok(None),
            };
        };
        if let Some(id) = prv_txn.filter(|id| *id != log.id) {
            return refused(format!(
                "prv_txn {id} is not the paysys_log row of {} ({}): nothing reversed",
                ids.whole(),
                log.id
            ));
        }
        let txn_id = known.then(|| ids.id().to_string());
        let sum = amount_of(&log.sum);
        let Some(payment) = found.payment().cloned() else {
            if log.status == STATUS_CANCELLED {
                // Reversed before (by ABillS or by us): the first answer again.
                return Ok(Some(UncreditedRecorded::Repeat {
                    prv_txn: log.id,
                    sum,
                    subscriber_id: log.uid,
                    txn_id,
                }));
            }
            return refused(format!(
                "paysys_log {} ({}) has no payments row (deleted in ABillS?): nothing reversed; \
                 check it in ABillS",
                log.id, log.transaction_id
            ));
        };
        if log.status == STATUS_CANCELLED {
            // Marked cancelled with its payment still there: only a hand in the database
            // does that. Reversing now could take the money back twice.
            return refused(format!(
                "paysys_log {} is marked cancelled but payments row {} is still there: check it \
                 in ABillS",
                log.id, payment.id
            ));
        }
        if payment.uid != log.uid || amount_of(&payment.sum) != sum {
            return refused(format!(
                "payments row {} (uid {}, {}) is not what paysys_log {} recorded (uid {}, {}): \
                 nothing reversed; check it in ABillS",
                payment.id, payment.uid, payment.sum, log.id, log.uid, log.sum
            ));
        }
        reverse(tx, payment.id, payment.bill_id, &payment.sum, Some(log.id))?;
        Ok(Some(UncreditedRecorded::Done {
            prv_txn: log.id,
            sum: amount_of(&payment.sum),
            subscriber_id: log.uid,
            payment_ref: payment.id,
            txn_id,
        }))
    }
}

/// Reverses a payment as ABillS's cancel does: the bill's deposit back (what the payment
/// added: `payments.sum`), the `payments` row deleted, the log row marked cancelled.
fn reverse(
    tx: &mut Transaction<'_>,
    payment_id: u64,
    bill_id: u64,
    sum: &str,
    log_id: Option<u64>,
) -> Result<(), mysql::Error> {
    tx.exec_drop(
        "UPDATE bills SET deposit = CAST(deposit AS DECIMAL(24,6)) - CAST(? AS DECIMAL(16,2)) WHERE id = ?",
        (sum, bill_id),
    )?;
    tx.exec_drop("DELETE FROM payments WHERE id = ?", (payment_id,))?;
    if let Some(id) = log_id {
        tx.exec_drop(
            "UPDATE paysys_log SET status = ? WHERE id = ?",
            (STATUS_CANCELLED, id),
        )?;
    }
    Ok(())
}

/// The bill credited and the `payments` row written, for a payment whose `paysys_log` row
/// (`log_id`) is written: the end of every ABillS credit.
fn book(
    tx: &mut Transaction<'_>,
    c: &Credit<'_>,
    target: &Target,
    log_id: u64,
    written: &str,
    now: &str,
) -> Result<Credited, mysql::Error> {
    // The bill last, and in one statement: its row lock orders payments to one bill,
    // and is held from here to COMMIT only (two more statements). The deposit before
    // the payment, for payments.last_deposit, is read under that lock into a session
    // variable that the next statement reads: exact, and no SELECT … FOR UPDATE of
    // its own. Rows matched, not changed, are counted (CLIENT_FOUND_ROWS).
    tx.exec_drop(
        "UPDATE bills SET deposit = (@paysys_deposit := CAST(deposit AS DECIMAL(24,6))) \
         + CAST(? AS DECIMAL(16,2)) WHERE id = ?",
        (c.amount.to_string(), target.bill_id),
    )?;
    if tx.affected_rows() != 1 {
        return Ok(Credited::Refused(Refusal::NoBill));
    }
    tx.exec_drop(
        "INSERT INTO payments (date, sum, dsc, ip, last_deposit, uid, aid, method, ext_id, bill_id, inner_describe, amount, currency, reg_date) \
         VALUES (?, CAST(? AS DECIMAL(16,2)), ?, ?, CAST(@paysys_deposit AS DECIMAL(24,6)), ?, ?, ?, ?, ?, '', CAST(? AS DECIMAL(16,2)), 0, NOW())",
        (
            &now,
            c.amount.to_string(),
            &c.system.abills.description,
            ip_number(c.caller),
            target.uid,
            c.system.abills.admin_id,
            c.system.abills.payment_method,
            &written,
            target.bill_id,
            c.amount.to_string(),
        ),
    )?;
    Ok(Credited::Done {
        subscriber_id: target.uid,
        payment_ref: tx.last_insert_id().unwrap_or(0),
        prv_txn: Some(log_id),
        guard: None,
    })
}

/// A pay's look for ABillS's rows of the txn `ids` names, made last ([`Credit::look_last`]):
/// none but the `payments` row `payment` and the `paysys_log` row `log` the pay itself
/// wrote, under any of the txn's texts, in the domains [`find`] sees. Stricter than
/// [`find`]: a row another id's text only begins as this one's stops it too, and the pay
/// made again looking first tells the two apart.
fn no_other_rows(ids: &TxnIds, domain: Domain, payment: u64, log: u64) -> Guard {
    let texts = ids.texts();
    let marks = ids.placeholders();
    let text = |t: &String| GuardParam::Text(t.clone());
    let mut params: Vec<GuardParam> = texts.iter().map(text).collect();
    params.push(GuardParam::Number(payment));
    params.push(GuardParam::Number(u64::from(domain.id())));
    params.extend(texts.iter().map(text));
    params.push(GuardParam::Number(log));
    Guard {
        sql: format!(
            "NOT EXISTS (SELECT 1 FROM payments WHERE ext_id IN ({marks}) AND id <> ?) \
             AND NOT EXISTS (SELECT 1 FROM paysys_log WHERE domain_id IN (?, 0) \
             AND transaction_id IN ({marks}) AND id <> ?)"
        ),
        params,
    }
}

/// A card order's pay, when the row our page opened for it is still open: completed by one
/// UPDATE found by its text, with no look for rows of the txn first — the order's id is
/// ours, no other payment can carry it, and a row in progress (or failed, or expired) has
/// no payment. `None`: no such row open (paid, reversed, or never opened — an order from
/// before the row was written): the caller takes the long way, which finds out which.
fn complete_opened(
    tx: &mut Transaction<'_>,
    c: &Credit<'_>,
    ids: &TxnIds,
    found: &Result<Target, Refusal>,
) -> Result<Option<Credited>, mysql::Error> {
    let Ok(target) = found else {
        return Ok(None);
    };
    if payable(target, c.system).is_err() || target.bill_id == 0 {
        return Ok(None);
    }
    let written = written_id(tx, ids)?;
    let now = web_server_time();
    // `LAST_INSERT_ID(id)`: the row's id comes back with the answer, as an INSERT's (in
    // the status's expression: the shipped grants allow UPDATE of these columns only).
    tx.exec_drop(
        "UPDATE paysys_log SET datetime = ?, sum = CAST(? AS DECIMAL(16,2)), uid = ?, \
         info = ?, paysys_ip = ?, status = IF(LAST_INSERT_ID(id), ?, status) \
         WHERE domain_id = ? AND transaction_id = ? AND system_id = ? AND status IN (?, ?, ?)",
        (
            &now,
            c.amount.to_string(),
            target.uid,
            info(c.params),
            ip_number(c.caller),
            STATUS_COMPLETE,
            c.domain.id(),
            &written,
            c.system.abills.id,
            STATUS_PROCESSING,
            STATUS_EXPIRED,
            STATUS_PAYMENT_ERROR,
        ),
    )?;
    if tx.affected_rows() != 1 {
        return Ok(None);
    }
    let Some(log_id) = tx.last_insert_id() else {
        return Ok(None);
    };
    book(tx, c, target, log_id, &written, &now).map(Some)
}

/// What a pay of a txn ABillS's tables already hold is answered, or `None` if they hold
/// nothing of it: its payment is a repeat (or a conflict: another subscriber or sum), its
/// log row without a payment was reversed since (ABillS's cancel deletes the payment and
/// marks the log row), and another txn's text that the collation matched is refused.
fn recorded_credit(
    tx: &mut Transaction<'_>,
    c: &Credit<'_>,
    ids: &TxnIds,
    found: &Found,
    target: &Result<Target, Refusal>,
) -> Result<Option<Credited>, mysql::Error> {
    if let Some(p) = found.payment() {
        let prv_txn = log_of_recorded(tx, c, ids, found, p)?;
        let amount = amount_of(&p.sum);
        return Ok(Some(Credited::Recorded {
            prv_txn,
            subscriber_id: p.uid,
            amount,
            same: super::same_payment(target.as_ref().ok().map(|t| t.uid), p.uid, amount, c.amount),
        }));
    }
    if let Some(clash) = found.collated() {
        return Ok(Some(Credited::Refused(collated_refusal(clash, c.amount))));
    }
    // A card order opened on our page: its payment completes the row.
    if found.opened().is_some() {
        return Ok(None);
    }
    // Its log row without a payment: reversed since (ABillS's cancel deletes the payment
    // first). Not paid again, whatever the subscriber's state.
    if let Some(log) = found.log() {
        return Ok(Some(Credited::Refused(Refusal::PaidThenCancelled {
            prv_txn: log.id,
        })));
    }
    Ok(None)
}

/// A `payments` row of this txn exists: ABillS's script paid it. Its `paysys_log` row is
/// the first answer; if ABillS failed to write one (it does so after its own COMMIT), it is
/// written now, as ABillS's script does on a repeat.
fn log_of_recorded(
    tx: &mut Transaction<'_>,
    c: &Credit<'_>,
    ids: &TxnIds,
    found: &Found,
    payment: &PaymentRow,
) -> Result<u64, mysql::Error> {
    match &found.log {
        Some((Seen::Exact(_), log)) => return Ok(log.id),
        // The key holds another id's row that ABillS cannot tell from this one: writing
        // ours would fail on it every time. The payment's own id answers, as when ABillS
        // wrote no log row.
        Some((Seen::Collated, _)) => return Ok(payment.id),
        None => {}
    }
    let written = written_id(tx, ids)?;
    tx.exec_drop(
        "INSERT INTO paysys_log (system_id, datetime, sum, commission, uid, transaction_id, info, ip, code, paysys_ip, domain_id, status) \
         VALUES (?, ?, CAST(? AS DECIMAL(16,2)), 0, ?, ?, ?, 0, '', ?, ?, ?)",
        (
            c.system.abills.id,
            web_server_time(),
            &payment.sum,
            payment.uid,
            written,
            info(c.params),
            ip_number(c.caller),
            c.domain.id(),
            STATUS_COMPLETE,
        ),
    )?;
    Ok(tx.last_insert_id().unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::transaction_id;

    #[test]
    fn transaction_ids_fit_abills_narrowest_columns() {
        assert_eq!(
            transaction_id("OSM", "12345678901234567890"),
            "OSM:12345678901234567890"
        );
        assert_eq!(transaction_id("24NS", "12345"), "24NS:12345");
        let guid = "6F9619FF-8B86-D011-B42D-00C04FC964FF";
        let a = transaction_id("24NS", guid);
        assert_eq!(a.len(), 24);
        assert!(a.starts_with("24NS:"), "{a}");
        assert!(a[5..].bytes().all(|b| b.is_ascii_hexdigit()), "{a}");
        assert_eq!(
            a,
            transaction_id("24NS", guid),
            "the same id, the same text"
        );
        // Ids that share their first 19 characters are still told apart.
        let b = transaction_id("24NS", "6F9619FF-8B86-D011-B42D-00C04FC964FE");
        assert_ne!(a, b);
        assert_eq!(transaction_id("ABCDEFGH", guid).len(), 24);
        // A 20-digit OSMP id with a 4-letter prefix no longer fits whole: hashed too.
        assert_eq!(transaction_id("ABCD", "12345678901234567890").len(), 24);
    }
}
