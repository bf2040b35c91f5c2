//! `protocol = "kaspi"` through the real `paysys_check` executable, on ABillS's tables
//! (sql/abills.sql) and on NoDeny's: OSMP's requests as ABillS's Kaspi tests send them,
//! answered with Kaspi's `txn_id` and `prv_txn_id`.

mod common;

use common::abills::{self, Abills, UNKNOWN_SYSTEM};
use common::{Answer, Site, TestDb};

/// ABillS gives its Kaspi module an id of its own, which only paysys_connect tells.
const ABILLS_ID: u64 = 130;

fn kaspi() -> Abills {
    Abills::with_systems(
        &abills::system(
            "kaspi",
            abills::DEFAULT_ALLOW,
            &format!("account = \"login\"\nabills_id = {ABILLS_ID}"),
        )
        .replace("protocol = \"osmp\"", "protocol = \"kaspi\""),
    )
}

fn result(a: &Answer) -> String {
    a.element("result")
        .unwrap_or_else(|| panic!("no result: {a:?}"))
}

#[test]
fn check_pay_repeat_status_cancel_on_abills() {
    let a = kaspi();
    let before = a.deposit(1);
    // ABillS's Kaspi test: a check with txn_id and sum.
    let r = a.get("command=check&txn_id=7001&sum=1.00&account=test1");
    assert_eq!(result(&r), "0", "{r:?}");
    assert_eq!(r.element("txn_id").as_deref(), Some("7001"), "{r:?}");
    assert!(!r.body.contains("osmp_txn_id"), "{r:?}");
    assert!(
        r.body.contains("<field2 name=\"balance\">12.50</field2>"),
        "{r:?}"
    );
    let r = a.get("command=check&txn_id=7002&sum=1.00&account=nobody");
    assert_eq!(result(&r), "5", "{r:?}");

    let pay = format!(
        "command=pay&account=test1&txn_date={}&txn_id=7003&sum=25.50",
        common::txn_date(-2)
    );
    let r = a.get(&pay);
    assert_eq!(result(&r), "0", "{r:?}");
    assert_eq!(r.element("txn_id").as_deref(), Some("7003"));
    assert_eq!(r.element("sum").as_deref(), Some("25.50"));
    let prv = r.element("prv_txn_id").expect("prv_txn_id");
    assert!(!r.body.contains("<prv_txn>"), "{r:?}");
    let paid = a.deposit(1);
    assert_ne!(paid, before);
    // The repeat: the first answer again, nothing credited.
    let again = a.get(&pay);
    assert_eq!(again.body, r.body);
    assert_eq!(a.deposit(1), paid);
    // The same txn_id with another sum: refused (7), nothing credited.
    let r = a.get(&pay.replace("sum=25.50", "sum=26.00"));
    assert_eq!(result(&r), "7", "{r:?}");
    assert_eq!(a.deposit(1), paid);
    // ABillS's rows: the configured id, "KAS:" (the name's first three letters).
    let row = a.log_row("KAS:7003");
    assert_eq!((row.system_id, row.status), (ABILLS_ID, 2));
    assert_eq!(a.payment("KAS:7003").sum, "25.50");

    let r = a.get("command=status&txn_id=7003");
    assert_eq!(result(&r), "0", "{r:?}");
    assert_eq!(r.element("prv_txn_id").as_deref(), Some(prv.as_str()));

    // ABillS's Kaspi test cancels by prv_txn alone.
    let r = a.get(&format!("command=cancel&prv_txn={prv}"));
    assert_eq!(result(&r), "0", "{r:?}");
    assert_eq!(r.element("prv_txn_id").as_deref(), Some(prv.as_str()));
    assert_eq!(a.deposit(1), before);
    assert_eq!(a.log_row("KAS:7003").status, 3);
    // Again: the first answer, nothing reversed twice.
    let r = a.get(&format!("command=cancel&prv_txn={prv}"));
    assert_eq!(result(&r), "0", "{r:?}");
    assert_eq!(a.deposit(1), before);
    // A cancelled payment is not paid again.
    assert_eq!(result(&a.get(&pay)), "7");
    assert_eq!(a.deposit(1), before);
    // A cancel of a payment that is not there.
    let r = a.get("command=cancel&prv_txn=999999");
    assert_eq!(result(&r), "300", "{r:?}");
}

#[test]
fn hostile_requests_move_no_money() {
    let a = kaspi();
    let before = a.deposit(1);
    let date = common::txn_date(0);
    let table: &[(&str, &str)] = &[
        ("sum=1e3", "300"),
        ("sum=-5", "300"),
        ("sum=10.001", "300"),
        ("sum=NaN", "300"),
        ("sum=", "300"),
        ("sum=99999999999999999999", "242"),
        ("sum=0.00", "241"),
        ("sum=1.00&txn_id=7777", "300"),
    ];
    for (i, (sum, want)) in table.iter().enumerate() {
        let q = format!(
            "command=pay&account=test1&txn_date={date}&txn_id={}&{sum}",
            8000 + i
        );
        let r = a.get(&q);
        assert_eq!(result(&r), *want, "{q}: {r:?}");
    }
    // Kaspi's user-list request, which paysys does not answer: final, not "retry".
    let r = a.get("date=202612&page=1&rows=10");
    assert_eq!(result(&r), "300", "{r:?}");
    // Not digits, an account with markup: clean answers with the text escaped.
    let r = a.get("command=check&txn_id=%3Cx%3E&account=test1");
    assert_eq!(result(&r), "300", "{r:?}");
    assert!(r.body.contains("<txn_id>&lt;x&gt;</txn_id>"), "{r:?}");
    // A huge body: refused whole, no panic.
    let huge = format!("command=check&account={}", "9".repeat(2_000_000));
    let len = huge.len().to_string();
    let r = a.cgi(
        &[
            ("REQUEST_METHOD", "POST"),
            ("CONTENT_TYPE", "application/x-www-form-urlencoded"),
            ("CONTENT_LENGTH", &len),
            ("REMOTE_ADDR", "127.0.0.1"),
        ],
        huge.as_bytes(),
    );
    assert!(r.status == 413 || result(&r) != "0", "{r:?}");
    assert!(!r.stderr.contains("panicked"), "{r:?}");
    // An unknown caller: ABillS's answer, nothing looked up.
    let r = a.get_from(
        "192.0.2.7",
        &format!("command=pay&account=test1&txn_date={date}&txn_id=8100&sum=1.00"),
    );
    assert_eq!(r.body, UNKNOWN_SYSTEM, "{r:?}");
    assert_eq!(a.deposit(1), before);
    assert!(a.txns().is_empty());
}

#[test]
fn twenty_concurrent_repeats_credit_once_on_abills() {
    let a = kaspi();
    let before = a.deposit(1);
    let payments = a.payments().len();
    let q = format!(
        "command=pay&account=test1&txn_date={}&txn_id=9001&sum=3.00",
        common::txn_date(0)
    );
    let answers: Vec<Answer> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..20).map(|_| s.spawn(|| a.get(&q))).collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for r in &answers {
        assert_eq!(result(r), "0", "{r:?}");
        assert_eq!(r.body, answers[0].body);
    }
    assert_eq!(a.txns().len(), 1);
    assert_eq!(a.payments().len(), payments + 1);
    assert_ne!(a.deposit(1), before);
}

fn nodeny_site(db: &TestDb) -> Site {
    let site = Site::new(&db.url, "");
    site.write_config(&format!(
        r#"[database]
url = "{}"
billing = "nodeny"
lock_timeout = 10

[log]
file = "var/log/paysys_check.log"

[[system]]
name = "kaspi"
protocol = "kaspi"
allow = ["127.0.0.1"]
account = "payment_code"
"#,
        db.url
    ));
    site
}

fn nodeny_get(site: &Site, query: &str) -> Answer {
    let config = site.config_path().to_string_lossy().into_owned();
    abills::run_paysys_check(
        &[
            ("GATEWAY_INTERFACE", "CGI/1.1"),
            ("PAYSYS_CONFIG", &config),
            ("REQUEST_METHOD", "GET"),
            ("QUERY_STRING", query),
            ("REMOTE_ADDR", "127.0.0.1"),
        ],
        b"",
    )
}

#[test]
fn check_pay_repeat_status_cancel_on_nodeny() {
    let db = TestDb::new();
    let site = nodeny_site(&db);
    let r = nodeny_get(&site, "command=check&txn_id=1&sum=1.00&account=59071");
    assert_eq!(result(&r), "0", "{r:?}");
    assert_eq!(r.element("txn_id").as_deref(), Some("1"));
    // A wrong check digit: 4.
    let r = nodeny_get(&site, "command=check&txn_id=2&account=59072");
    assert_eq!(result(&r), "4", "{r:?}");
    let pay = format!(
        "command=pay&account=59071&txn_date={}&txn_id=77&sum=10.25",
        common::txn_date(-1)
    );
    let r = nodeny_get(&site, &pay);
    assert_eq!(result(&r), "0", "{r:?}");
    let prv = r.element("prv_txn_id").expect("prv_txn_id");
    assert_eq!(db.balance(5907), "110.25");
    let again = nodeny_get(&site, &pay);
    assert_eq!(again.body, r.body);
    assert_eq!(db.balance(5907), "110.25");
    assert_eq!((db.pays(), db.txns()), (1, 1));
    let r = nodeny_get(&site, "command=status&txn_id=77");
    assert_eq!(r.element("prv_txn_id").as_deref(), Some(prv.as_str()));
    let r = nodeny_get(&site, &pay.replace("sum=10.25", "sum=1e3"));
    assert_eq!(result(&r), "300", "{r:?}");
    assert_eq!(db.balance(5907), "110.25");
    // NoDeny reverses it too (INSTALL section 17), once.
    for _ in 0..2 {
        let r = nodeny_get(&site, &format!("command=cancel&prv_txn={prv}"));
        assert_eq!(result(&r), "0", "{r:?}");
        assert_eq!(db.balance(5907), "100.00");
    }
    assert_eq!(result(&nodeny_get(&site, &pay)), "7");
    assert_eq!(db.balance(5907), "100.00");
}

#[test]
fn twenty_concurrent_repeats_credit_once_on_nodeny() {
    let db = TestDb::new();
    let site = nodeny_site(&db);
    let q = format!(
        "command=pay&account=59071&txn_date={}&txn_id=78&sum=10.25",
        common::txn_date(0)
    );
    let answers: Vec<Answer> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..20).map(|_| s.spawn(|| nodeny_get(&site, &q))).collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for r in &answers {
        assert_eq!(result(r), "0", "{r:?}");
        assert_eq!(r.body, answers[0].body);
    }
    assert_eq!(db.balance(5907), "110.25");
    assert_eq!((db.pays(), db.txns()), (1, 1));
    assert_eq!(site.log_lines().len(), 20);
}
