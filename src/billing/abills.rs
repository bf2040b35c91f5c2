//! ABillS: `users`, `users_pi`, `groups`, `companies`, `bills`, `payments`, `paysys_log`.
//!
//! What ABillS's own Paysys module writes, and we write the same (see `docs/ABILLS.md`): a
//! payment raises `bills.deposit` — the company's bill for a company's user — and adds a
//! `payments` row (`ext_id "<prefix>:<txn_id>"`, `last_deposit` = the deposit before) and a
//! `paysys_log` row (`transaction_id "<prefix>:<txn_id>"`, status 2, the request in `info`),
//! whose id is the `prv_txn` the caller is answered with. Unlike ABillS's script, all of it
//! commits in one transaction with our own row, an account is a literal value (ABillS
//! splices it into SQL, where `>0` or `*` match somebody), a disabled user or a group
//! without payment systems is refused, and cancel is scoped to the system that paid.
//!
//! Money columns are `DOUBLE`. Sums go in as decimal text and the arithmetic is done in
//! `DECIMAL`, so what is stored is the exact sum rounded once to the column, never a float
//! computed on our side.
//!
//! ABillS's script ran before us on the same tables: a payment it recorded (its
//! `payments.ext_id` or `paysys_log.transaction_id` has the txn) is answered as a repeat of
//! that record, and nothing is credited again.

use std::net::IpAddr;

use mysql::prelude::Queryable;
use mysql::{Conn, Params, Transaction};

use crate::billing::{Billing, BillingRow, Credit, Credited, Recorded, Uncredit, Uncredited};
use crate::config::{BillingKind, System};
use crate::db::{server_code, ER_DUP_ENTRY};
use crate::domain::{parse_balance, Account, AccountRef, Amount, Domain, TxnId};
use crate::outcome::{Refusal, Subscriber};

pub struct Abills;

/// `paysys_log.status` values (ABillS: 1 processing, 2 complete, 3 cancelled).
const STATUS_COMPLETE: u8 = 2;
const STATUS_CANCELLED: u8 = 3;

/// "Illegal mix of collations": a value compared with a column whose character set cannot
/// represent it.
const ER_CANT_AGGREGATE_2COLLATIONS: u16 = 1267;

/// The subscriber an account named, with what paying them needs.
#[derive(Debug)]
struct Target {
    uid: u64,
    disabled: bool,
    paysys_disabled: bool,
    /// The bill credited: the user's own, or the company's for a company's user.
    bill_id: u64,
    deposit: Option<Amount>,
    name: String,
}

/// The columns of a [`Target`], joined as ABillS's own user search joins them.
const TARGET_SELECT: &str = "SELECT u.uid, u.disable, IFNULL(g.disable_paysys, 0), \
     IF(u.company_id > 0, IFNULL(c.bill_id, 0), u.bill_id), \
     CAST(IF(u.company_id > 0, cb.deposit, b.deposit) AS DECIMAL(24,2)), \
     CONCAT_WS(' ', pi.fio, pi.fio2, pi.fio3) \
     FROM users u \
     LEFT JOIN users_pi pi ON pi.uid = u.uid \
     LEFT JOIN `groups` g ON g.gid = u.gid \
     LEFT JOIN companies c ON c.id = u.company_id \
     LEFT JOIN bills b ON b.id = u.bill_id \
     LEFT JOIN bills cb ON cb.id = c.bill_id \
     WHERE u.deleted = 0 AND u.domain_id = ?";

type TargetRow = (u64, u8, u8, u64, Option<String>, Option<Vec<u8>>);

/// Looks `account` up by each of its keys in turn; the first key that finds somebody
/// decides. A key that finds two subscribers (contract numbers need not be unique) is a
/// refusal: paying whichever came first is how money reaches the wrong person.
fn lookup(
    conn: &mut impl Queryable,
    account: &Account,
    domain: Domain,
) -> Result<Result<Target, Refusal>, mysql::Error> {
    for r in account.refs() {
        let (column, value): (&str, mysql::Value) = match r {
            AccountRef::Id(uid) => ("u.uid", (*uid).into()),
            AccountRef::Login(login) => ("u.id", login.as_str().into()),
            AccountRef::ContractId(contract) => ("pi.contract_id", contract.as_str().into()),
        };
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
        match rows.len() {
            0 => continue,
            1 => {}
            _ => {
                return Ok(Err(Refusal::BadAccount(format!(
                    "account '{}' names more than one subscriber ({column})",
                    account.as_str()
                ))))
            }
        }
        let Some((uid, disabled, paysys_disabled, bill_id, deposit, name)) =
            rows.into_iter().next()
        else {
            continue;
        };
        return Ok(Ok(Target {
            uid,
            disabled: disabled != 0,
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
        }));
    }
    Ok(Err(Refusal::NoSuchSubscriber))
}

/// Who may be paid: a disabled account is inactive (79), a group without payment systems
/// refuses them (7). (ABillS's script pays disabled accounts; terminals have a code for it.)
fn payable(target: &Target) -> Result<(), Refusal> {
    if target.disabled {
        return Err(Refusal::AccountInactive);
    }
    if target.paysys_disabled {
        return Err(Refusal::PaymentsDisabled);
    }
    Ok(())
}

/// ABillS's `paysys_log.transaction_id` is `VARCHAR(24)` (and `payments.ext_id`
/// `VARCHAR(28)`): what we write there must fit, or a strict server refuses the payment.
const TRANSACTION_ID_MAX: usize = 24;

/// `"<prefix>:<txn_id>"`: ABillS's `payments.ext_id` and `paysys_log.transaction_id`, as its
/// own script writes them (`OSM:666`).
///
/// An id too long for 24 characters (24NonStop's GUID `PAY_ID`, 36) cannot be written
/// whole, and cutting it would let two payments whose ids share a beginning look like one —
/// the second would be answered as a repeat and never credited. It becomes
/// `"<prefix>:"` plus as many hex digits of the id's SHA-256 as fit (at least 15, 60 bits):
/// the same id always gives the same text, two ids practically never do. Our own
/// `paysys_txn` keeps the whole id, and it is what makes a payment happen once.
fn ext_id(system: &System, txn_id: &str) -> String {
    transaction_id(&system.abills.txn_prefix, txn_id)
}

/// `ext_id` of a prefix (1 to 8 characters, see the config) and an id.
pub fn transaction_id(prefix: &str, txn_id: &str) -> String {
    let whole = format!("{prefix}:{txn_id}");
    if whole.len() <= TRANSACTION_ID_MAX {
        return whole;
    }
    use sha2::Digest;
    let digest = sha2::Sha256::digest(txn_id.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    let room = TRANSACTION_ID_MAX.saturating_sub(prefix.len() + 1);
    format!("{prefix}:{}", &hex[..room.min(hex.len())])
}

/// An address as ABillS stores one (`INET_ATON`); IPv6 and unknown callers are 0.
fn ip_number(ip: Option<IpAddr>) -> u32 {
    match ip {
        Some(IpAddr::V4(v4)) => u32::from(v4),
        _ => 0,
    }
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

    fn find(
        &self,
        conn: &mut Conn,
        _system: &System,
        account: &Account,
        domain: Domain,
    ) -> Result<Result<Subscriber, Refusal>, mysql::Error> {
        Ok(lookup(conn, account, domain)?.and_then(|target| {
            payable(&target)?;
            Ok(Subscriber {
                id: target.uid,
                name: target.name,
                balance: target.deposit,
            })
        }))
    }

    fn credit(&self, tx: &mut Transaction<'_>, c: &Credit<'_>) -> Result<Credited, mysql::Error> {
        let found = lookup(tx, c.account, c.domain)?;
        let ext = ext_id(c.system, c.txn_id.as_str());
        // A payment ABillS's own script made before the switch-over (its duplicate key,
        // payments.ext_id) keeps its first answer before any other rule: the subscriber may
        // have been disabled, or its group barred from payment systems, since.
        let earlier: Option<(u64, u64, String)> = tx.exec_first(
            "SELECT id, uid, CAST(sum AS DECIMAL(16,2)) FROM payments WHERE ext_id = ? LIMIT 1 FOR UPDATE",
            (&ext,),
        )?;
        if let Some((_, uid, sum)) = earlier {
            let prv_txn = log_of_recorded(tx, c, &ext, uid, &sum)?;
            let amount = parse_balance(&sum).unwrap_or(Amount::from_kopecks(0));
            return Ok(Credited::Recorded {
                prv_txn,
                subscriber_id: uid,
                amount,
                same: super::same_payment(
                    found.as_ref().ok().map(|t| t.uid),
                    uid,
                    amount,
                    c.amount,
                ),
            });
        }
        // Its log row without a payment: reversed since (ABillS's cancel deletes the payment
        // first). Not paid again, whatever the subscriber's state.
        if let Some(prv_txn) = log_without_payment(tx, c, &ext)? {
            return Ok(Credited::Refused(Refusal::PaidThenCancelled { prv_txn }));
        }
        let target = match found {
            Ok(target) => target,
            Err(refusal) => return Ok(Credited::Refused(refusal)),
        };
        if let Err(refusal) = payable(&target) {
            return Ok(Credited::Refused(refusal));
        }
        if target.bill_id == 0 {
            return Ok(Credited::Refused(Refusal::NoBill));
        }
        // The bill's row lock orders payments to one bill and makes last_deposit exact.
        let before: Option<String> = tx.exec_first(
            "SELECT CAST(deposit AS DECIMAL(24,6)) FROM bills WHERE id = ? FOR UPDATE",
            (target.bill_id,),
        )?;
        let Some(before) = before else {
            return Ok(Credited::Refused(Refusal::NoBill));
        };
        let logged = tx.exec_drop(
            "INSERT INTO paysys_log (system_id, datetime, sum, commission, uid, transaction_id, info, ip, code, paysys_ip, domain_id, status) \
             VALUES (?, NOW(), CAST(? AS DECIMAL(16,2)), 0, ?, ?, ?, 0, '', ?, ?, ?)",
            (
                c.system.abills.id,
                c.amount.to_string(),
                target.uid,
                &ext,
                info(c.params),
                ip_number(c.caller),
                c.domain.id(),
                STATUS_COMPLETE,
            ),
        );
        match logged {
            Ok(()) => {}
            Err(e) if server_code(&e) == Some(ER_DUP_ENTRY) => {
                return recorded_in_log(tx, c, &ext);
            }
            Err(e) => return Err(e),
        }
        let log_id = tx.last_insert_id().unwrap_or(0);
        tx.exec_drop(
            "UPDATE bills SET deposit = CAST(deposit AS DECIMAL(24,6)) + CAST(? AS DECIMAL(16,2)) WHERE id = ?",
            (c.amount.to_string(), target.bill_id),
        )?;
        tx.exec_drop(
            "INSERT INTO payments (date, sum, dsc, ip, last_deposit, uid, aid, method, ext_id, bill_id, inner_describe, amount, currency, reg_date) \
             VALUES (NOW(), CAST(? AS DECIMAL(16,2)), ?, ?, CAST(? AS DECIMAL(24,6)), ?, ?, ?, ?, ?, '', CAST(? AS DECIMAL(16,2)), 0, NOW())",
            (
                c.amount.to_string(),
                &c.system.abills.description,
                ip_number(c.caller),
                before,
                target.uid,
                c.system.abills.admin_id,
                c.system.abills.payment_method,
                &ext,
                target.bill_id,
                c.amount.to_string(),
            ),
        )?;
        Ok(Credited::Done {
            subscriber_id: target.uid,
            payment_ref: tx.last_insert_id().unwrap_or(0),
            prv_txn: Some(log_id),
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
        let ext = ext_id(system, txn_id.as_str());
        // Locking reads, as the ledger's own: a credit of this txn in flight is waited for.
        let log: Option<(u64, u64, String, u8)> = conn.exec_first(
            "SELECT id, uid, CAST(sum AS DECIMAL(16,2)), status FROM paysys_log \
             WHERE domain_id IN (?, 0) AND transaction_id = ? \
             ORDER BY domain_id DESC LIMIT 1 LOCK IN SHARE MODE",
            (domain.id(), &ext),
        )?;
        let payment: Option<(u64, u64, String)> = conn.exec_first(
            "SELECT id, uid, CAST(sum AS DECIMAL(16,2)) FROM payments WHERE ext_id = ? LIMIT 1 LOCK IN SHARE MODE",
            (&ext,),
        )?;
        let amount = |sum: &str| parse_balance(sum).unwrap_or(Amount::from_kopecks(0));
        Ok(match (log, payment) {
            (Some((id, uid, sum, status)), payment) => Some(Recorded {
                prv_txn: id,
                subscriber_id: uid,
                amount: amount(&sum),
                // ABillS's cancel deletes the payment, then marks its log row.
                cancelled: status == STATUS_CANCELLED || payment.is_none(),
            }),
            // A payment whose log row ABillS failed to write: answered with the payment's
            // own id until a retry that reaches the ledger writes the log row.
            (None, Some((id, uid, sum))) => Some(Recorded {
                prv_txn: id,
                subscriber_id: uid,
                amount: amount(&sum),
                cancelled: false,
            }),
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
        let ext = ext_id(system, txn_id);
        let payments: Vec<mysql::Row> = conn.exec(
            "SELECT * FROM payments WHERE id = ? OR ext_id = ? ORDER BY id",
            (payment_ref, &ext),
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
        Ok(rows("payments", payments)
            .chain(rows("paysys_log", logs))
            .collect())
    }

    fn cancel(
        &self,
        tx: &mut Transaction<'_>,
        u: &Uncredit<'_>,
    ) -> Result<Uncredited, mysql::Error> {
        // Our row names the payments row; a payment recorded by ABillS's script before the
        // switch-over is found by its ext_id, as ABillS's own cancel finds it.
        let ext = ext_id(u.system, u.txn_id);
        let payment: Option<(u64, u64, String)> = tx.exec_first(
            "SELECT id, bill_id, CAST(sum AS DECIMAL(16,2)) FROM payments \
             WHERE (id = ? AND ? > 0) OR (ext_id = ? AND ? = 0) LIMIT 1 FOR UPDATE",
            (u.payment_ref, u.payment_ref, &ext, u.payment_ref),
        )?;
        let Some((payment_id, bill_id, sum)) = payment else {
            return Ok(Uncredited::Gone(format!(
                "the payments row of prv_txn {} ({ext}) is gone: removed in ABillS already?",
                u.prv_txn
            )));
        };
        // What the payment added is what is taken back: ABillS's payments.sum.
        tx.exec_drop(
            "UPDATE bills SET deposit = CAST(deposit AS DECIMAL(24,6)) - CAST(? AS DECIMAL(16,2)) WHERE id = ?",
            (sum, bill_id),
        )?;
        tx.exec_drop("DELETE FROM payments WHERE id = ?", (payment_id,))?;
        tx.exec_drop(
            "UPDATE paysys_log SET status = ? WHERE id = ?",
            (STATUS_CANCELLED, u.prv_txn),
        )?;
        Ok(Uncredited::Done)
    }
}

/// A `payments` row with our ext_id exists: ABillS's script paid this txn. Its `paysys_log`
/// row is the first answer; if ABillS failed to write one (it does so after its own
/// COMMIT), it is written now, as ABillS's script does on a repeat.
fn log_of_recorded(
    tx: &mut Transaction<'_>,
    c: &Credit<'_>,
    ext: &str,
    uid: u64,
    sum: &str,
) -> Result<u64, mysql::Error> {
    let log: Option<u64> = tx.exec_first(
        "SELECT id FROM paysys_log WHERE domain_id IN (?, 0) AND transaction_id = ? \
         ORDER BY domain_id DESC LIMIT 1",
        (c.domain.id(), ext),
    )?;
    if let Some(id) = log {
        return Ok(id);
    }
    tx.exec_drop(
        "INSERT INTO paysys_log (system_id, datetime, sum, commission, uid, transaction_id, info, ip, code, paysys_ip, domain_id, status) \
         VALUES (?, NOW(), CAST(? AS DECIMAL(16,2)), 0, ?, ?, ?, 0, '', ?, ?, ?)",
        (
            c.system.abills.id,
            sum,
            uid,
            ext,
            info(c.params),
            ip_number(c.caller),
            c.domain.id(),
            STATUS_COMPLETE,
        ),
    )?;
    Ok(tx.last_insert_id().unwrap_or(0))
}

/// `paysys_log`'s row of our transaction_id in this domain, when `payments` has none:
/// ABillS's cancel deletes the payment and then marks the log row 3, so this is a payment
/// reversed since (or removed by hand).
fn log_without_payment(
    tx: &mut Transaction<'_>,
    c: &Credit<'_>,
    ext: &str,
) -> Result<Option<u64>, mysql::Error> {
    tx.exec_first(
        "SELECT id FROM paysys_log WHERE domain_id = ? AND transaction_id = ? FOR UPDATE",
        (c.domain.id(), ext),
    )
}

/// The paysys_log INSERT met its unique key although the row was not there a moment
/// before: written meanwhile by ABillS's own script, or reversed (see
/// [`log_without_payment`]). Not paid again.
fn recorded_in_log(
    tx: &mut Transaction<'_>,
    c: &Credit<'_>,
    ext: &str,
) -> Result<Credited, mysql::Error> {
    Ok(Credited::Refused(match log_without_payment(tx, c, ext)? {
        Some(prv_txn) => Refusal::PaidThenCancelled { prv_txn },
        // The duplicate key said it exists; only a hand in the database removes it.
        None => Refusal::CancelUnknown(format!("paysys_log {ext} vanished")),
    }))
}

#[cfg(test)]
mod tests {
    use super::transaction_id;

    #[test]
    fn transaction_ids_fit_abills_columns() {
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
