//! A cancel on NoDeny, through the real `osmp` and `paysys_check` executables against
//! MariaDB: the payment is reversed as NoDeny's own admin interface deletes one — the `pays`
//! row kept as an "old record" event (type 50, category 501), deleted, an event of the
//! deletion (type 50, category 502, reason `old:0`), `users.balance -= cash` — in one
//! transaction with the ledger's cancel mark. Scoped to the system, answered the same when
//! repeated, never credited again, exactly once against a pay of the same txn in flight.

mod common;

use std::time::{Duration, Instant};

use common::{pay_query, run_exe, Answer, Site, TestDb};
use mysql::prelude::Queryable;

/// NoDeny with four systems: `osmp` (loopback), `qiwi` (another OSMP network, 127.0.0.2),
/// `city24` (127.0.0.3) and `privat` (127.0.0.4), which cancel by the pay's own id.
struct NoDeny {
    db: TestDb,
    site: Site,
}

fn nodeny() -> NoDeny {
    with_db(TestDb::new())
}

fn with_db(db: TestDb) -> NoDeny {
    let site = Site::new(&db.url, "");
    site.write_config(&config_text(&db.url));
    NoDeny { db, site }
}

fn config_text(url: &str) -> String {
    format!(
        r#"[database]
url = "{url}"
billing = "nodeny"
lock_timeout = 30

[log]
file = "var/log/paysys_check.log"

[[system]]
name = "osmp"
protocol = "osmp"
allow = ["127.0.0.1", "::1"]
account = "payment_code"
min_sum = "0.01"
max_sum = "15000.00"

[[system]]
name = "qiwi"
protocol = "osmp"
allow = ["127.0.0.2"]
account = "payment_code"
max_sum = "none"

[[system]]
name = "city24"
protocol = "city24"
allow = ["127.0.0.3"]
account = "payment_code"

[[system]]
name = "privat"
protocol = "privat"
allow = ["127.0.0.4"]
account = "payment_code"
"#
    )
}

impl NoDeny {
    /// `osmp.cgi` from `caller`.
    fn osmp_from(&self, caller: &str, query: &str) -> Answer {
        self.site.cgi(
            &[
                ("REQUEST_METHOD", "GET"),
                ("QUERY_STRING", query),
                ("REMOTE_ADDR", caller),
            ],
            b"",
        )
    }

    fn osmp(&self, query: &str) -> Answer {
        self.osmp_from("127.0.0.1", query)
    }

    /// `paysys_check.cgi` from City24's address.
    fn city24(&self, query: &str) -> Answer {
        let config = self.site.config_path().to_string_lossy().into_owned();
        run_exe(
            common::paysys_check_exe(),
            &[
                ("GATEWAY_INTERFACE", "CGI/1.1"),
                ("PAYSYS_CONFIG", &config),
                ("REQUEST_METHOD", "GET"),
                ("QUERY_STRING", query),
                ("REMOTE_ADDR", "127.0.0.3"),
            ],
            b"",
        )
    }

    /// `paysys_check.cgi` with a PrivatBank `Transfer` from its address.
    fn privat(&self, action: &str, data: &str) -> Answer {
        let body = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Transfer \
             xmlns=\"http://debt.privatbank.ua/Transfer\" interface=\"Debt\" \
             action=\"{action}\">{data}</Transfer>"
        );
        let config = self.site.config_path().to_string_lossy().into_owned();
        let len = body.len().to_string();
        run_exe(
            common::paysys_check_exe(),
            &[
                ("GATEWAY_INTERFACE", "CGI/1.1"),
                ("PAYSYS_CONFIG", &config),
                ("REQUEST_METHOD", "POST"),
                ("CONTENT_TYPE", "text/xml"),
                ("CONTENT_LENGTH", &len),
                ("REMOTE_ADDR", "127.0.0.4"),
            ],
            body.as_bytes(),
        )
    }

    fn pays(&self) -> Vec<Pays> {
        self.db
            .conn()
            .query_map(
                "SELECT id, mid, CAST(cash AS CHAR), time, admin_id, admin_ip, office, bonus, \
                 reason, coment, type, category FROM pays ORDER BY id",
                |(
                    id,
                    mid,
                    cash,
                    time,
                    admin_id,
                    admin_ip,
                    office,
                    bonus,
                    reason,
                    coment,
                    kind,
                    category,
                )| Pays {
                    id,
                    mid,
                    cash,
                    time,
                    admin_id,
                    admin_ip,
                    office,
                    bonus,
                    reason,
                    coment,
                    kind,
                    category,
                },
            )
            .expect("pays")
    }

    /// Our row of `txn_id`: (payment_ref, prv_txn, cancelled).
    fn txn(&self, system: &str, txn_id: &str) -> (u64, u64, bool) {
        self.db
            .conn()
            .exec_first(
                "SELECT payment_ref, prv_txn, cancelled IS NOT NULL FROM paysys_txn \
                 WHERE system_name = ? AND txn_id = ?",
                (system, txn_id),
            )
            .expect("select")
            .unwrap_or_else(|| panic!("no paysys_txn row of {system} {txn_id}"))
    }

    /// Everything a cancel may write: balances, pays, our rows.
    fn snapshot(&self) -> Snapshot {
        let mut conn = self.db.conn();
        (
            conn.query("SELECT id, CAST(balance AS CHAR) FROM users ORDER BY id")
                .unwrap(),
            self.pays(),
            conn.query("SELECT id, txn_id, cancelled IS NOT NULL FROM paysys_txn ORDER BY id")
                .unwrap(),
        )
    }
}

/// Balances by subscriber, the pays rows, and our rows (id, txn_id, cancelled).
type Snapshot = (Vec<(u64, String)>, Vec<Pays>, Vec<(u64, String, bool)>);

#[derive(Debug, Clone, PartialEq, Eq)]
struct Pays {
    id: u64,
    mid: i64,
    cash: String,
    time: i64,
    admin_id: u64,
    admin_ip: u32,
    office: i64,
    bonus: String,
    reason: String,
    coment: String,
    kind: i64,
    category: i64,
}

fn ok(a: &Answer) -> String {
    assert_eq!((a.result(), a.comment().as_str()), (0, "OK"), "{}", a.body);
    a.prv_txn().expect("prv_txn")
}

fn refused(a: &Answer, result: i32, comment: &str) {
    assert_eq!(
        (a.result(), a.comment().as_str()),
        (result, comment),
        "{}",
        a.body
    );
}

fn city24_code(a: &Answer) -> i32 {
    a.element("ResultCode")
        .unwrap_or_else(|| panic!("no ResultCode: {a:?}"))
        .parse()
        .expect("ResultCode")
}

fn now() -> i64 {
    chrono::Local::now().timestamp()
}

/// The rows a cancel of payment row `paid` leaves, checked field by field: the old record
/// and the event, both the subscriber's, no money; `paid` itself gone.
fn assert_reversed(nd: &NoDeny, paid: &Pays, system: &str, txn_id: &str, prv_txn: &str) {
    let rows = nd.pays();
    assert!(
        rows.iter().all(|p| p.id != paid.id),
        "pays row {} deleted: {rows:#?}",
        paid.id
    );
    let old: Vec<&Pays> = rows
        .iter()
        .filter(|p| {
            p.kind == 50 && p.category == 501 && p.reason.starts_with(&format!("{}:", paid.id))
        })
        .collect();
    assert_eq!(old.len(), 1, "one old record: {rows:#?}");
    let old = old[0];
    assert_eq!(
        (
            old.mid,
            old.cash.as_str(),
            old.time,
            old.admin_id,
            old.admin_ip,
            old.office,
            old.bonus.as_str(),
            old.coment.as_str(),
        ),
        (
            paid.mid,
            "0.00",
            paid.time,
            paid.admin_id,
            paid.admin_ip,
            paid.office,
            "",
            paid.coment.as_str(),
        ),
        "the old record keeps the payment's time, author and comment"
    );
    // What NoDeny's screens decode: id:type:category:cash:bonus:reason.
    assert_eq!(
        old.reason,
        format!(
            "{}:{}:{}:{}:{}:{}",
            paid.id, paid.kind, paid.category, paid.cash, paid.bonus, paid.reason
        )
    );
    let events: Vec<&Pays> = rows
        .iter()
        .filter(|p| p.kind == 50 && p.category == 502 && p.reason == format!("{}:0", old.id))
        .collect();
    assert_eq!(events.len(), 1, "one event of the deletion: {rows:#?}");
    let event = events[0];
    assert_eq!(
        (
            event.mid,
            event.cash.as_str(),
            event.admin_id,
            event.office,
            event.bonus.as_str(),
            event.coment.clone(),
        ),
        (
            paid.mid,
            "0.00",
            0,
            0,
            "",
            format!("paysys cancel: {system} txn_id={txn_id} prv_txn={prv_txn}"),
        )
    );
    assert!(
        (event.time - now()).abs() < 300,
        "the event is dated now: {event:?}"
    );
}

/// The one `pays` row of a payment (type 10) with this reason.
fn payment_row(nd: &NoDeny, system: &str, txn_id: &str) -> Pays {
    let reason = format!("{system} txn_id={txn_id}");
    let rows: Vec<Pays> = nd
        .pays()
        .into_iter()
        .filter(|p| p.kind == 10 && p.reason == reason)
        .collect();
    assert_eq!(rows.len(), 1, "{reason}: {rows:#?}");
    rows[0].clone()
}

// ----- cancel --------------------------------------------------------------------------------

#[test]
fn cancel_reverses_the_payment_as_nodenys_admin_deletes_it() {
    let nd = nodeny();
    let prv_txn = ok(&nd.osmp(&pay_query("666", "59071", "10.25")));
    assert_eq!(nd.db.balance(5907), "110.25");
    let paid = payment_row(&nd, "osmp", "666");
    assert_eq!(nd.txn("osmp", "666").0, paid.id, "payment_ref is pays.id");

    let a = nd.osmp(&format!("command=cancel&txn_id=666&prv_txn={prv_txn}"));
    assert_eq!(ok(&a), prv_txn);
    assert_eq!(a.element("sum").as_deref(), Some("10.25"));
    assert_eq!(nd.db.balance(5907), "100.00", "the balance back, exactly");
    assert_reversed(&nd, &paid, "osmp", "666", &prv_txn);
    let (payment_ref, _, cancelled) = nd.txn("osmp", "666");
    assert!(cancelled);
    assert_eq!(
        payment_ref, paid.id,
        "our row still names the deleted pays row"
    );
    // The event's author is the caller, as NoDeny records the admin who deleted.
    let event = nd.pays().pop().unwrap();
    assert_eq!(event.admin_ip, u32::from(std::net::Ipv4Addr::LOCALHOST));
    // Nothing else was touched: the other subscribers' balances.
    assert_eq!(nd.db.balance(1234), "15.50");
    assert_eq!(nd.db.balance(3), "0.00");
    let line = nd.site.log_lines().pop().unwrap_or_default();
    assert!(line.contains("cmd=cancel txn=666"), "{line}");
    assert!(line.contains("result=0"), "{line}");
}

#[test]
fn a_second_cancel_answers_the_same_and_changes_nothing() {
    let nd = nodeny();
    let prv_txn = ok(&nd.osmp(&pay_query("7", "59071", "3.00")));
    ok(&nd.osmp(&format!("command=cancel&prv_txn={prv_txn}")));
    let after = nd.snapshot();
    for query in [
        format!("command=cancel&prv_txn={prv_txn}"),
        format!("command=cancel&prv_txn={prv_txn}&txn_id=7"),
    ] {
        let a = nd.osmp(&query);
        assert_eq!(ok(&a), prv_txn, "the first answer again");
        assert_eq!(a.element("sum").as_deref(), Some("3.00"));
    }
    assert_eq!(nd.snapshot(), after);
    assert_eq!(nd.db.balance(5907), "100.00");
}

#[test]
fn a_pay_retried_after_the_cancel_is_not_credited_again() {
    let nd = nodeny();
    let query = pay_query("8", "59071", "4.50");
    let prv_txn = ok(&nd.osmp(&query));
    ok(&nd.osmp(&format!("command=cancel&prv_txn={prv_txn}")));
    let after = nd.snapshot();
    let a = nd.osmp(&query);
    refused(&a, 7, "nod22");
    assert_eq!(a.prv_txn(), Some(prv_txn), "it names the payment it was");
    // Status says so too, and neither wrote anything.
    refused(&nd.osmp("command=status&txn_id=8"), 7, "nod22");
    assert_eq!(nd.snapshot(), after);
    assert_eq!(nd.db.balance(5907), "100.00");
}

#[test]
fn a_cancel_of_another_systems_or_an_unknown_payment_is_refused() {
    let nd = nodeny();
    let prv_txn = ok(&nd.osmp(&pay_query("51", "59071", "10.25")));
    let before = nd.snapshot();
    // qiwi's terminals may not cancel osmp's payment, by its number or with its txn_id.
    for query in [
        format!("command=cancel&prv_txn={prv_txn}"),
        format!("command=cancel&prv_txn={prv_txn}&txn_id=51"),
    ] {
        refused(&nd.osmp_from("127.0.0.2", &query), 300, "nod23");
    }
    // Numbers of nobody's payment, and the right number with another txn_id.
    for query in [
        "command=cancel&prv_txn=999".to_string(),
        "command=cancel&prv_txn=0".to_string(),
        format!("command=cancel&prv_txn={prv_txn}&txn_id=52"),
    ] {
        refused(&nd.osmp(&query), 300, "nod23");
    }
    // City24 names the pay by its own id: txn 51 is not one of its payments.
    let r = nd.city24("QueryType=cancel&TransactionId=60&RevertId=51&Amount=10.25&Account=59071");
    assert_eq!(city24_code(&r), 22, "{r:?}");
    assert_eq!(nd.snapshot(), before, "nothing written");
    let log = nd.site.log();
    assert!(
        log.contains("is a payment of system osmp, not qiwi"),
        "{log}"
    );
    // Its own system may.
    ok(&nd.osmp(&format!("command=cancel&prv_txn={prv_txn}")));
    assert_eq!(nd.db.balance(5907), "100.00");
}

#[test]
fn the_balance_goes_back_by_the_payments_sum_exactly() {
    for db in [TestDb::new(), TestDb::with_float_money()] {
        let nd = with_db(db);
        let sums = ["10.10", "0.01", "14999.99", "0.30", "7.77"];
        let mut prv = Vec::new();
        for (i, sum) in sums.iter().enumerate() {
            prv.push(ok(&nd.osmp(&pay_query(&format!("90{i}"), "12340", sum))));
        }
        assert_eq!(nd.db.balance(1234), "15033.67", "15.50 + every sum");
        // Cancel the second, the third and the last: 15.50 + 10.10 + 0.30 remain.
        for i in [1, 2, 4] {
            ok(&nd.osmp(&format!("command=cancel&prv_txn={}", prv[i])));
        }
        assert_eq!(nd.db.balance(1234), "25.90");
        let left: Vec<String> = nd
            .pays()
            .into_iter()
            .filter(|p| p.kind == 10)
            .map(|p| p.cash)
            .collect();
        assert_eq!(left, ["10.10", "0.30"]);
        // NoDeny's own check: the balance is the fixture's plus what its pays add up to.
        let sum: String = nd
            .db
            .conn()
            .query_first(
                "SELECT CAST(15.50 + SUM(CAST(cash AS DECIMAL(16,2))) AS CHAR) FROM pays WHERE mid = 1234",
            )
            .unwrap()
            .unwrap();
        assert_eq!(sum, "25.90");
        ok(&nd.osmp(&format!("command=cancel&prv_txn={}", prv[0])));
        ok(&nd.osmp(&format!("command=cancel&prv_txn={}", prv[3])));
        assert_eq!(nd.db.balance(1234), "15.50", "every payment reversed");
    }
}

/// Above 131 072 a `FLOAT(10,2)` holds sums to a 64th of a rouble: 150000.37 is kept as
/// 150000.375, which reads back as 150000.38. The cancel knows the row for what the
/// credit wrote into it, and still refuses a row edited to another sum.
#[test]
fn a_large_sum_in_a_float_cash_column_is_reversed_and_another_sum_is_not() {
    let nd = with_db(TestDb::with_float_money());
    let qiwi = |query: &str| nd.osmp_from("127.0.0.2", query);
    let paid = ok(&qiwi(&pay_query("70", "12340", "150000.37")));
    let cash: String = nd
        .db
        .conn()
        .exec_first(
            "SELECT CAST(CAST(cash AS DECIMAL(16,3)) AS CHAR) FROM pays WHERE id = ?",
            (payment_row(&nd, "qiwi", "70").id,),
        )
        .unwrap()
        .unwrap();
    assert_eq!(cash, "150000.375", "what FLOAT(10,2) makes of 150000.37");
    ok(&qiwi(&format!("command=cancel&prv_txn={paid}")));
    assert!(nd.txn("qiwi", "70").2, "cancelled");
    assert!(
        nd.pays().iter().all(|p| p.kind != 10),
        "the payment's row is deleted"
    );
    // Edited in NoDeny to a kopeck less (150000.36, kept as 150000.359375): not ours.
    let edited = ok(&qiwi(&pay_query("71", "12340", "150000.37")));
    let row = payment_row(&nd, "qiwi", "71");
    let mut conn = nd.db.conn();
    conn.exec_drop("UPDATE pays SET cash = 150000.36 WHERE id = ?", (row.id,))
        .unwrap();
    let before = nd.snapshot();
    refused(
        &qiwi(&format!("command=cancel&prv_txn={edited}")),
        300,
        "nod23",
    );
    assert_eq!(nd.snapshot(), before, "nothing reversed");
    assert!(!nd.txn("qiwi", "71").2);
    // A sum whose FLOAT is exact is compared exactly as well: 200.50 is not 200.25.
    let exact = ok(&qiwi(&pay_query("72", "12340", "200.50")));
    let row = payment_row(&nd, "qiwi", "72");
    conn.exec_drop("UPDATE pays SET cash = 200.25 WHERE id = ?", (row.id,))
        .unwrap();
    refused(
        &qiwi(&format!("command=cancel&prv_txn={exact}")),
        300,
        "nod23",
    );
    conn.exec_drop("UPDATE pays SET cash = 200.50 WHERE id = ?", (row.id,))
        .unwrap();
    ok(&qiwi(&format!("command=cancel&prv_txn={exact}")));
}

#[test]
fn a_payment_deleted_or_edited_in_nodeny_is_not_reversed_again() {
    let nd = nodeny();
    // Deleted by the admin in NoDeny (the row and its money).
    let deleted = ok(&nd.osmp(&pay_query("31", "59071", "10.00")));
    let row = payment_row(&nd, "osmp", "31");
    let mut conn = nd.db.conn();
    conn.exec_drop("DELETE FROM pays WHERE id = ?", (row.id,))
        .unwrap();
    conn.query_drop("UPDATE users SET balance = balance - 10 WHERE id = 5907")
        .unwrap();
    // Edited there: another sum.
    let edited = ok(&nd.osmp(&pay_query("32", "59071", "20.00")));
    let row = payment_row(&nd, "osmp", "32");
    conn.exec_drop("UPDATE pays SET cash = 15 WHERE id = ?", (row.id,))
        .unwrap();
    conn.query_drop("UPDATE users SET balance = balance - 5 WHERE id = 5907")
        .unwrap();
    assert_eq!(nd.db.balance(5907), "115.00");
    let before = nd.snapshot();
    refused(
        &nd.osmp(&format!("command=cancel&prv_txn={deleted}")),
        300,
        "nod23",
    );
    refused(
        &nd.osmp(&format!("command=cancel&prv_txn={edited}")),
        300,
        "nod23",
    );
    assert_eq!(
        nd.snapshot(),
        before,
        "the admin's money is not taken twice"
    );
    assert!(!nd.txn("osmp", "31").2 && !nd.txn("osmp", "32").2);
    let log = nd.site.log();
    assert!(log.contains("deleted in NoDeny already?"), "{log}");
    assert!(
        log.contains("was changed in NoDeny since it was paid"),
        "{log}"
    );
}

#[test]
fn the_old_record_keeps_text_in_the_billings_own_charset_byte_for_byte() {
    // NoDeny databases are often cp1251; an admin's comment on the payment is Cyrillic.
    let fixture = std::fs::read_to_string(common::repo().join("sql/nodeny.sql"))
        .unwrap()
        .replace("DEFAULT CHARSET=utf8mb4", "DEFAULT CHARSET=cp1251");
    let nd = with_db(TestDb::with_fixture(&fixture));
    let prv_txn = ok(&nd.osmp(&pay_query("21", "59071", "5.00")));
    let paid = payment_row(&nd, "osmp", "21");
    let text = "Оплата через терминал, касса №2";
    let mut conn = nd.db.conn();
    conn.exec_drop(
        "UPDATE pays SET coment = ?, reason = CONCAT(reason, ' — проверено') WHERE id = ?",
        (text, paid.id),
    )
    .unwrap();
    let hex = |id: u64| -> (String, String) {
        nd.db
            .conn()
            .exec_first(
                "SELECT HEX(coment), HEX(reason) FROM pays WHERE id = ?",
                (id,),
            )
            .unwrap()
            .unwrap()
    };
    let (coment, reason) = hex(paid.id);
    assert_eq!(
        coment.len(),
        2 * text.chars().count(),
        "one byte a letter: cp1251"
    );
    let paid = payment_row_like(&nd, paid.id);
    ok(&nd.osmp(&format!("command=cancel&prv_txn={prv_txn}")));
    assert_eq!(nd.db.balance(5907), "100.00");
    assert_reversed(&nd, &paid, "osmp", "21", &prv_txn);
    let old = nd
        .pays()
        .into_iter()
        .find(|p| p.category == 501)
        .expect("the old record");
    let (old_coment, old_reason) = hex(old.id);
    assert_eq!(old_coment, coment, "cp1251 bytes kept");
    assert!(
        old_reason.ends_with(&reason),
        "{old_reason} ends with {reason}"
    );
}

/// Row `id` of pays as it is now.
fn payment_row_like(nd: &NoDeny, id: u64) -> Pays {
    nd.pays()
        .into_iter()
        .find(|p| p.id == id)
        .expect("the pays row")
}

// ----- other protocols ------------------------------------------------------------------------

#[test]
fn city24_cancels_by_its_pays_id_on_nodeny() {
    let nd = nodeny();
    let pay = format!(
        "QueryType=pay&TransactionId=501&Account=59071&Amount=30.00&TransactionDate={}",
        common::txn_date(-5)
    );
    let r = nd.city24(&pay);
    assert_eq!(city24_code(&r), 0, "{r:?}");
    let ext = r.element("TransactionExt").expect("TransactionExt");
    let paid = payment_row(&nd, "city24", "501");
    assert_eq!(nd.db.balance(5907), "130.00");
    let cancel = format!(
        "QueryType=cancel&TransactionId=502&RevertId=501&RevertDate={}&Amount=30.00&Account=59071",
        common::txn_date(0)
    );
    let r = nd.city24(&cancel);
    assert_eq!(city24_code(&r), 0, "{r:?}");
    assert_eq!(r.element("TransactionExt").as_deref(), Some(ext.as_str()));
    assert_eq!(nd.db.balance(5907), "100.00");
    assert_reversed(&nd, &paid, "city24", "501", &ext);
    // Again: the same answer; the pay again: refused, not credited.
    let after = nd.snapshot();
    assert_eq!(city24_code(&nd.city24(&cancel)), 0);
    assert_eq!(city24_code(&nd.city24(&pay)), 22);
    assert_eq!(nd.snapshot(), after);
}

#[test]
fn privatbank_cancels_by_its_payments_id_on_nodeny() {
    const XSI: &str = "xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"";
    // The reference of a Gateway answer, or the ErrorInfo code.
    let gateway = |a: &Answer| -> String {
        let attr = |name: &str| {
            let key = format!("{name}=\"");
            let start = a.body.find(&key)? + key.len();
            let end = a.body[start..].find('"')?;
            Some(a.body[start..start + end].to_string())
        };
        match (a.body.contains("xsi:type=\"Gateway\""), attr("code")) {
            (true, _) => attr("reference").expect("reference"),
            (false, Some(code)) => format!("error {code}"),
            _ => panic!("neither Gateway nor ErrorInfo: {a:?}"),
        }
    };
    let nd = nodeny();
    let pay = format!(
        "<Data {XSI} xsi:type=\"Payment\" id=\"PB-9001\" number=\"12432\"><CompanyInfo>\
         <CheckReference>1</CheckReference></CompanyInfo><PayerInfo billIdentifier=\"59071\"/>\
         <TotalSum>25.00</TotalSum><CreateTime>{}</CreateTime></Data>",
        chrono::Local::now().to_rfc3339()
    );
    let reference = gateway(&nd.privat("Pay", &pay));
    assert!(reference.parse::<u64>().is_ok(), "{reference}");
    let paid = payment_row(&nd, "privat", "PB-9001");
    assert_eq!(nd.db.balance(5907), "125.00");
    let cancel = format!(
        "<Data {XSI} xsi:type=\"Payment\" id=\"PB-9001\"><TotalSum>25.00</TotalSum></Data>"
    );
    assert_eq!(gateway(&nd.privat("Cancel", &cancel)), reference);
    assert_eq!(nd.db.balance(5907), "100.00");
    assert_reversed(&nd, &paid, "privat", "PB-9001", &reference);
    let after = nd.snapshot();
    assert_eq!(gateway(&nd.privat("Cancel", &cancel)), reference, "again");
    assert_ne!(
        gateway(&nd.privat("Pay", &pay)),
        reference,
        "not paid again"
    );
    assert_eq!(nd.snapshot(), after);
}

// ----- concurrency ---------------------------------------------------------------------------

/// Waits until a statement of this database like `pattern` (SQL `LIKE`) is running: one
/// that only a lock the test holds can keep running.
fn wait_for_statement(db: &TestDb, pattern: &str) {
    let started = Instant::now();
    let mut conn = db.conn();
    loop {
        let running = conn
            .exec_first::<u64, _, _>(
                "SELECT COUNT(*) FROM information_schema.PROCESSLIST \
                 WHERE DB = ? AND ID <> CONNECTION_ID() AND INFO LIKE ?",
                (&db.name, pattern),
            )
            .unwrap()
            .unwrap_or(0);
        if running > 0 {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no statement like {pattern:?} waits after 20 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The subscriber's row locked by a transaction of the test's own, as NoDeny itself (a
/// monthly charge, an admin's payment) may hold it while terminals call.
fn hold_subscriber(db: &TestDb, id: u64) -> mysql::Conn {
    let mut holder = db.conn();
    holder.query_drop("START TRANSACTION").unwrap();
    holder
        .exec_drop("SELECT balance FROM users WHERE id = ? FOR UPDATE", (id,))
        .unwrap();
    holder
}

#[test]
fn a_cancel_arriving_while_the_pay_is_in_flight_waits_and_reverses_it() {
    let nd = nodeny();
    let pay = format!(
        "QueryType=pay&TransactionId=701&Account=59071&Amount=10.25&TransactionDate={}",
        common::txn_date(-1)
    );
    let cancel = "QueryType=cancel&TransactionId=702&RevertId=701&Amount=10.25&Account=59071";
    let mut holder = hold_subscriber(&nd.db, 5907);
    let (paid, cancelled) = std::thread::scope(|s| {
        // The pay inserts its paysys_txn row, then waits for the subscriber's row.
        let paid = s.spawn(|| nd.city24(&pay));
        wait_for_statement(&nd.db, "UPDATE users SET balance = balance +%");
        // The cancel waits for the pay's row: it is neither "unknown" nor reversed early.
        let cancelled = s.spawn(|| nd.city24(cancel));
        wait_for_statement(
            &nd.db,
            "SELECT id, %FROM paysys_txn WHERE system_name%FOR UPDATE",
        );
        holder.query_drop("COMMIT").unwrap();
        (paid.join().unwrap(), cancelled.join().unwrap())
    });
    assert_eq!(city24_code(&paid), 0, "{paid:?}");
    assert_eq!(city24_code(&cancelled), 0, "{cancelled:?}");
    assert_eq!(nd.db.balance(5907), "100.00");
    assert!(nd.txn("city24", "701").2);
    assert_eq!(nd.pays().iter().filter(|p| p.kind == 10).count(), 0);
    assert_eq!(nd.pays().len(), 2, "the old record and the event");
}

#[test]
fn a_pay_retried_while_the_cancel_is_in_flight_waits_and_is_not_credited() {
    let nd = nodeny();
    let query = pay_query("801", "59071", "10.25");
    let prv_txn = ok(&nd.osmp(&query));
    let paid = payment_row(&nd, "osmp", "801");
    let mut holder = hold_subscriber(&nd.db, 5907);
    let (cancelled, retried) = std::thread::scope(|s| {
        // The cancel holds our row and the pays row, then waits for the subscriber's.
        let cancelled = s.spawn(|| nd.osmp(&format!("command=cancel&prv_txn={prv_txn}")));
        wait_for_statement(&nd.db, "UPDATE users SET balance = balance -%");
        // The retry's INSERT meets our row's key: a repeat, whose first answer it reads
        // with a shared lock — and waits, the cancel holding the row.
        let retried = s.spawn(|| nd.osmp(&query));
        wait_for_statement(
            &nd.db,
            "%FROM paysys_txn WHERE system_name = ? AND txn_id = ? LOCK IN SHARE MODE",
        );
        holder.query_drop("COMMIT").unwrap();
        (cancelled.join().unwrap(), retried.join().unwrap())
    });
    assert_eq!(ok(&cancelled), prv_txn);
    refused(&retried, 7, "nod22");
    assert_eq!(nd.db.balance(5907), "100.00");
    assert_reversed(&nd, &paid, "osmp", "801", &prv_txn);
}

#[test]
fn concurrent_cancels_and_pays_of_one_txn_reverse_it_once() {
    let nd = nodeny();
    let query = pay_query("901", "59071", "10.25");
    let prv_txn = ok(&nd.osmp(&query));
    let paid = payment_row(&nd, "osmp", "901");
    let cancel = format!("command=cancel&prv_txn={prv_txn}");
    // Each request as a terminal makes it: asked again after a temporary answer.
    let until_final = |q: &str| -> Answer {
        for _ in 0..10 {
            let a = nd.osmp(q);
            if a.result() != 1 {
                return a;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("{q}: still temporary after 10 tries\n{}", nd.site.log());
    };
    let answers: Vec<(bool, Answer)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let q = if i % 2 == 0 {
                    cancel.clone()
                } else {
                    query.clone()
                };
                let until_final = &until_final;
                s.spawn(move || (i % 2 == 0, until_final(&q)))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (is_cancel, a) in &answers {
        if *is_cancel {
            assert_eq!(ok(a), prv_txn, "every cancel: the payment is cancelled");
        } else {
            // Before the cancel: the first answer; after it: paid and cancelled.
            let r = (a.result(), a.comment());
            assert!(
                r == (0, "OK".to_string()) || r == (7, "nod22".to_string()),
                "{}",
                a.body
            );
            assert_eq!(a.prv_txn(), Some(prv_txn.clone()));
        }
    }
    assert_eq!(
        nd.db.balance(5907),
        "100.00",
        "reversed once, credited once"
    );
    assert_reversed(&nd, &paid, "osmp", "901", &prv_txn);
    assert_eq!(nd.pays().len(), 2);
    assert_eq!(nd.db.txns(), 1);
}

// ----- the admin's side ----------------------------------------------------------------------

/// Whether `paysys txn`'s output has the field `key` with `value` (columns padded).
fn has_field(out: &str, key: &str, value: &str) -> bool {
    out.lines().any(|l| {
        l.trim_start()
            .strip_prefix(key)
            .is_some_and(|rest| rest.starts_with(' ') && rest.trim() == value)
    })
}

/// `paysys txn` with the site's config: exit code and everything printed.
fn paysys_txn(nd: &NoDeny, args: &[&str]) -> (i32, String) {
    let config = nd.site.config_path();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_paysys"))
        .arg("txn")
        .args(args)
        .args(["--config", config.to_str().unwrap()])
        .env_remove("PAYSYS_CONFIG")
        .output()
        .expect("run paysys");
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn paysys_txn_shows_the_old_record_and_the_event_of_a_cancelled_payment() {
    let nd = nodeny();
    let prv_txn = ok(&nd.osmp(&pay_query("5150", "59071", "10.25")));
    let paid = payment_row(&nd, "osmp", "5150");
    let (code, out) = paysys_txn(&nd, &["5150", "--system", "osmp"]);
    assert_eq!(code, 0, "{out}");
    assert!(has_field(&out, "reason", "osmp txn_id=5150"), "{out}");
    ok(&nd.osmp(&format!("command=cancel&txn_id=5150&prv_txn={prv_txn}")));
    let (code, out) = paysys_txn(&nd, &["5150", "--system", "osmp"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("of system osmp, cancelled since"), "{out}");
    assert_eq!(out.matches("  pays\n").count(), 2, "{out}");
    for (key, value) in [
        (
            "reason",
            format!("{}:10:0:10.25::osmp txn_id=5150", paid.id),
        ),
        ("category", "501".to_string()),
        ("category", "502".to_string()),
        (
            "coment",
            format!("paysys cancel: osmp txn_id=5150 prv_txn={prv_txn}"),
        ),
    ] {
        assert!(has_field(&out, key, &value), "{key} {value:?} in\n{out}");
    }
    assert!(out.contains("cmd=cancel"), "{out}");
}

#[test]
fn the_grants_in_sql_are_enough_for_a_cancel() {
    let db = TestDb::new();
    let user = format!("pc{}", &db.name[db.name.len() - 8..]);
    let grants = std::fs::read_to_string(common::repo().join("sql/grants-nodeny.sql"))
        .unwrap()
        .replace("`nodeny`", &format!("`{}`", db.name))
        .replace("'paysys'@'localhost'", &format!("'{user}'@'%'"))
        .replace("'paysys'@'127.0.0.1'", &format!("'{user}'@'127.0.0.1'"))
        .replace("change-me", "s3cret");
    let mut admin = db.conn();
    common::run_script(&mut admin, &grants);
    let url = db
        .url
        .replacen("mysql://root@", &format!("mysql://{user}:s3cret@"), 1);
    let nd = NoDeny {
        site: Site::new(&url, ""),
        db,
    };
    nd.site.write_config(&config_text(&url));
    let query = pay_query("1", "59071", "2.00");
    let paid = nd.osmp(&query);
    let cancelled = nd.osmp(&format!(
        "command=cancel&prv_txn={}",
        paid.prv_txn().unwrap_or_default()
    ));
    let again = nd.osmp(&query);
    let (code, out) = paysys_txn(&nd, &["1"]);
    for host in ["%", "127.0.0.1"] {
        admin
            .query_drop(format!("DROP USER '{user}'@'{host}'"))
            .unwrap();
    }
    let log = nd.site.log();
    assert_eq!(paid.result(), 0, "{log}");
    assert_eq!(cancelled.result(), 0, "{log}");
    assert_eq!(again.result(), 7, "{log}");
    assert_eq!(nd.db.balance(5907), "100.00", "paid and cancelled");
    assert_eq!(code, 0, "{out}");
    assert!(has_field(&out, "category", "502"), "{out}");
}

#[test]
fn a_cancel_without_the_grants_of_this_version_is_temporary_until_they_are_given() {
    let db = TestDb::new();
    let user = format!("po{}", &db.name[db.name.len() - 8..]);
    let grants = std::fs::read_to_string(common::repo().join("sql/grants-nodeny.sql"))
        .unwrap()
        .replace("`nodeny`", &format!("`{}`", db.name))
        .replace("'paysys'@'localhost'", &format!("'{user}'@'%'"))
        .replace("'paysys'@'127.0.0.1'", &format!("'{user}'@'127.0.0.1'"))
        .replace("change-me", "s3cret");
    let mut admin = db.conn();
    common::run_script(&mut admin, &grants);
    // An install whose grants are those of the version before: INSERT on pays alone.
    let pays = format!("`{}`.`pays`", db.name);
    for host in ["%", "127.0.0.1"] {
        admin
            .query_drop(format!(
                "REVOKE SELECT, DELETE ON {pays} FROM '{user}'@'{host}'"
            ))
            .unwrap();
    }
    let url = db
        .url
        .replacen("mysql://root@", &format!("mysql://{user}:s3cret@"), 1);
    let nd = NoDeny {
        site: Site::new(&url, ""),
        db,
    };
    nd.site.write_config(&config_text(&url));
    // paysys check-db says so before any terminal does.
    let (ok_before, said) = check_db(&nd);
    eprintln!("{said}");
    assert!(!ok_before, "{said}");
    for what in [
        "may not read and lock a pays row (a cancel)",
        "may not delete a pays row (a cancel)",
        "run sql/grants-nodeny.sql again",
    ] {
        assert!(said.contains(what), "{what:?} in {said}");
    }
    let prv_txn = ok(&nd.osmp(&pay_query("1", "59071", "2.00")));
    let cancel = format!("command=cancel&prv_txn={prv_txn}");
    let before = nd.snapshot();
    refused(&nd.osmp(&cancel), 1, "nod13");
    assert_eq!(nd.snapshot(), before, "nothing written");
    let line = nd.site.log_lines().pop().unwrap_or_default();
    assert!(line.contains("command denied"), "{line}");
    // The grants file run again: check-db is content, the terminal's next try goes through.
    common::run_script(&mut admin, &grants);
    let (ok_after, said) = check_db(&nd);
    let a = nd.osmp(&cancel);
    for host in ["%", "127.0.0.1"] {
        admin
            .query_drop(format!("DROP USER '{user}'@'{host}'"))
            .unwrap();
    }
    assert!(ok_after, "{said}");
    assert_eq!(ok(&a), prv_txn);
    assert_eq!(nd.db.balance(5907), "100.00");
}

/// `paysys check-db` with the site's config: whether it exited 0, and what it said.
fn check_db(nd: &NoDeny) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_paysys"))
        .arg("check-db")
        .arg(nd.site.config_path())
        .env_remove("PAYSYS_CONFIG")
        .output()
        .expect("run paysys check-db");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}
