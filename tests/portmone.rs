//! `protocol = "portmone"` through the real `paysys_check` executable, on ABillS's tables
//! (sql/abills.sql) and on NoDeny's: the form field `data` holding XML — a check of several
//! payers, a PAYED notice credited once per BILL_ID, its cancel by a negative amount — and
//! the config refusing a Portmone system without an allow list.

mod common;

use std::process::Command;

use common::abills::{self, Abills, UNKNOWN_SYSTEM};
use common::{Answer, Site, TestDb};

const ABILLS_ID: u64 = 131;

fn portmone() -> Abills {
    Abills::with_systems(
        &abills::system(
            "portmone",
            &["127.0.0.1"],
            &format!("account = \"login\"\nabills_id = {ABILLS_ID}"),
        )
        .replace("protocol = \"osmp\"", "protocol = \"portmone\""),
    )
}

/// The form POST Portmone sends: `data=<xml>`, from `caller`.
fn form(xml: &str) -> Vec<u8> {
    serde_urlencoded::to_string([("data", xml)])
        .expect("a form")
        .into_bytes()
}

fn post(run: impl Fn(&[(&str, &str)], &[u8]) -> Answer, caller: &str, body: &[u8]) -> Answer {
    let len = body.len().to_string();
    run(
        &[
            ("REQUEST_METHOD", "POST"),
            ("CONTENT_TYPE", "application/x-www-form-urlencoded"),
            ("CONTENT_LENGTH", &len),
            ("REMOTE_ADDR", caller),
        ],
        body,
    )
}

fn send(a: &Abills, xml: &str) -> Answer {
    post(|v, b| a.cgi(v, b), "127.0.0.1", &form(xml))
}

fn error_code(r: &Answer) -> String {
    r.element("ERROR_CODE")
        .unwrap_or_else(|| panic!("no ERROR_CODE: {r:?}"))
}

fn check(payers: &[&str]) -> String {
    let payers: String = payers
        .iter()
        .map(|p| format!("<PAYER><CONTRACT_NUMBER>{p}</CONTRACT_NUMBER></PAYER>"))
        .collect();
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<REQUESTS>\n  <PAYEE>30098</PAYEE>\n  {payers}\n</REQUESTS>\n"
    )
}

/// A pay notice as ABillS's test sends it.
fn notice(bill_id: &str, amount: &str, contract: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<BILLS>\n    <BILL>\n        <BANK>\n\
         <NAME>ГУ Ощадбанку м.Київ</NAME>\n<CODE>399999</CODE>\n\
         <ACCOUNT>UA383226690000029243832900000</ACCOUNT>\n</BANK>\n\
         <BILL_ID>{bill_id}</BILL_ID>\n<BILL_NUMBER>4242</BILL_NUMBER>\n\
         <BILL_DATE>2026-12-07</BILL_DATE>\n<BILL_PERIOD>1226</BILL_PERIOD>\n\
         <PAY_DATE>2026-12-07</PAY_DATE>\n<PAYED_AMOUNT>{amount}</PAYED_AMOUNT>\n\
         <PAYED_COMMISSION>0.00</PAYED_COMMISSION>\n<PAYED_DEBT>0.00</PAYED_DEBT>\n\
         <AUTH_CODE>TESTPM</AUTH_CODE>\n<PAYER>\n<CONTRACT_NUMBER>{contract}</CONTRACT_NUMBER>\n\
         </PAYER>\n<PAYEE>\n<NAME>COMPANY_NAME</NAME>\n<CODE>30098</CODE>\n</PAYEE>\n\
         <STATUS>PAYED</STATUS>\n<PAY_TIME>16:25:14</PAY_TIME>\n\
         <CARD_MASK>444433******0000</CARD_MASK>\n    </BILL>\n</BILLS>\n"
    )
}

#[test]
fn check_several_payers_pay_repeat_cancel_on_abills() {
    let a = portmone();
    let before = a.deposit(1);
    // One payer, then three: the one not found is left out.
    let r = send(&a, &check(&["test1"]));
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.element("PAYEE").as_deref(), Some("30098"), "{r:?}");
    assert_eq!(r.body.matches("<BILL>").count(), 1, "{r:?}");
    // test1's balance is 12.50 ahead: nothing due, the debt negative.
    assert!(
        r.body.contains("<AMOUNT>0.00</AMOUNT><DEBT>-12.50</DEBT>"),
        "{r:?}"
    );
    let r = send(&a, &check(&["test1", "nobody", "12345678912"]));
    assert_eq!(r.body.matches("<BILL>").count(), 1, "{r:?}");
    assert!(
        r.body.contains("<CONTRACT_NUMBER>test1</CONTRACT_NUMBER>"),
        "{r:?}"
    );
    let r = send(&a, &check(&["nobody"]));
    assert_eq!(error_code(&r), "15", "{r:?}");

    let pay = notice("966666601", "25.50", "test1");
    let r = send(&a, &pay);
    assert_eq!(error_code(&r), "0", "{r:?}");
    assert_eq!(r.element("REASON").as_deref(), Some("OK"));
    let paid = a.deposit(1);
    assert_ne!(paid, before);
    // The repeat: 0 again, nothing credited.
    let again = send(&a, &pay);
    assert_eq!(again.body, r.body);
    assert_eq!(a.deposit(1), paid);
    // The same BILL_ID with another sum: refused (17), nothing credited.
    let r = send(&a, &notice("966666601", "26.00", "test1"));
    assert_eq!(error_code(&r), "17", "{r:?}");
    assert_eq!(a.deposit(1), paid);
    let row = a.log_row("POR:966666601");
    assert_eq!((row.system_id, row.status), (ABILLS_ID, 2));
    assert_eq!(a.payment("POR:966666601").sum, "25.50");
    // A notice for a payer not found: 15.
    let r = send(&a, &notice("966666602", "1.00", "nobody"));
    assert_eq!(error_code(&r), "15", "{r:?}");

    // A cancel must name the payment's own sum: another one reverses nothing.
    let r = send(&a, &notice("966666601", "-5", "test1"));
    assert_eq!(error_code(&r), "18", "{r:?}");
    assert_eq!(a.deposit(1), paid);
    // ABillS's test cancels with the same notice, its amount negative.
    let r = send(&a, &notice("966666601", "-25.50", "test1"));
    assert_eq!(error_code(&r), "0", "{r:?}");
    assert_eq!(a.deposit(1), before);
    assert_eq!(a.log_row("POR:966666601").status, 3);
    // Again: 0, nothing reversed twice; the notice again is not paid again.
    assert_eq!(
        error_code(&send(&a, &notice("966666601", "-25.50", "test1"))),
        "0"
    );
    assert_eq!(a.deposit(1), before);
    assert_eq!(error_code(&send(&a, &pay)), "17");
    assert_eq!(a.deposit(1), before);
    let log = a.site.log();
    assert!(log.contains("cmd=check"), "{log}");
    assert!(log.contains("cmd=cancel"), "{log}");
}

#[test]
fn hostile_requests_move_no_money() {
    let a = portmone();
    let before = a.deposit(1);
    let txns = a.txns().len();
    for (amount, want) in [
        ("1e3", "3"),
        ("10.001", "3"),
        ("NaN", "3"),
        ("", "3"),
        ("99999999999999999999", "3"),
        ("0.00", "3"),
        // A negative amount cancels a payment, and there is none with this BILL_ID.
        ("-5", "18"),
    ] {
        let r = send(&a, &notice("7001", amount, "test1"));
        assert_eq!(error_code(&r), want, "{amount}: {r:?}");
        assert_eq!(r.status, 200, "{amount}: {r:?}");
    }
    let bomb = "<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\"><!ENTITY lol2 \
                \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">]><REQUESTS><PAYER>\
                <CONTRACT_NUMBER>&lol2;</CONTRACT_NUMBER></PAYER></REQUESTS>";
    let many = check(&["test1"; 51]);
    for xml in [
        bomb,
        "<REQUESTS><PAYER><CONTRACT_NUMBER>test1",
        "<BILLS><BILL><BILL_ID>1</BILL_ID></BILL>",
        "not xml at all",
        "<PAY_ORDERS/>",
        "<BILLS><BILL></BILL><BILL></BILL></BILLS>",
        &many,
        &notice("7002", "1.00", "test1").replace("PAYED", "CANCELLED"),
        &notice("<x>", "1.00", "test1"),
    ] {
        let r = send(&a, xml);
        assert_eq!(r.status, 200, "{xml}: {r:?}");
        let code = error_code(&r);
        assert!(code == "2" || code == "15", "{xml}: {r:?}");
    }
    // No `data` at all, a raw XML body, a huge body: clean answers.
    let r = post(|v, b| a.cgi(v, b), "127.0.0.1", b"xml=<REQUESTS/>");
    assert_eq!(error_code(&r), "2", "{r:?}");
    let huge = form(&format!(
        "<REQUESTS>{}</REQUESTS>",
        "<x>1</x>".repeat(100_000)
    ));
    let r = post(|v, b| a.cgi(v, b), "127.0.0.1", &huge);
    assert!(
        r.status == 413 || r.element("ERROR_CODE").as_deref() == Some("2"),
        "{r:?}"
    );
    assert!(!r.stderr.contains("panicked"), "{r:?}");
    // An unknown caller: ABillS's answer, nothing looked up.
    let r = post(
        |v, b| a.cgi(v, b),
        "192.0.2.7",
        &form(&notice("7003", "1.00", "test1")),
    );
    assert_eq!(r.body, UNKNOWN_SYSTEM, "{r:?}");
    assert_eq!(a.deposit(1), before);
    assert_eq!(a.txns().len(), txns);
}

#[test]
fn twenty_concurrent_notices_credit_once_on_abills() {
    let a = portmone();
    let before = a.deposit(1);
    let payments = a.payments().len();
    let pay = notice("880001", "3.00", "test1");
    let answers: Vec<Answer> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..20).map(|_| s.spawn(|| send(&a, &pay))).collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for r in &answers {
        assert_eq!(error_code(r), "0", "{r:?}");
    }
    assert_eq!(a.txns().len(), 1);
    assert_eq!(a.payments().len(), payments + 1);
    assert_ne!(a.deposit(1), before);
}

fn nodeny_config(db: &TestDb, allow: &str) -> String {
    format!(
        r#"[database]
url = "{}"
billing = "nodeny"
lock_timeout = 10

[log]
file = "var/log/paysys_check.log"

[[system]]
name = "portmone"
protocol = "portmone"
{allow}
account = "payment_code"
"#,
        db.url
    )
}

fn nodeny_send(site: &Site, xml: &str) -> Answer {
    let config = site.config_path().to_string_lossy().into_owned();
    post(
        |vars, body| {
            let mut all = vec![("GATEWAY_INTERFACE", "CGI/1.1"), ("PAYSYS_CONFIG", &config)];
            all.extend_from_slice(vars);
            abills::run_paysys_check(&all, body)
        },
        "127.0.0.1",
        &form(xml),
    )
}

#[test]
fn check_pay_repeat_cancel_and_concurrent_notices_on_nodeny() {
    let db = TestDb::new();
    let site = Site::new(&db.url, "");
    site.write_config(&nodeny_config(&db, "allow = [\"127.0.0.1\"]"));
    let r = nodeny_send(&site, &check(&["59071", "59072"]));
    assert_eq!(r.body.matches("<BILL>").count(), 1, "{r:?}");
    assert!(r.body.contains("<DEBT>-100.00</DEBT>"), "{r:?}");
    let pay = notice("990001", "10.25", "59071");
    let answers: Vec<Answer> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..20)
            .map(|_| s.spawn(|| nodeny_send(&site, &pay)))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for r in &answers {
        assert_eq!(error_code(r), "0", "{r:?}");
    }
    assert_eq!(db.balance(5907), "110.25");
    assert_eq!((db.pays(), db.txns()), (1, 1));
    let r = nodeny_send(&site, &notice("990001", "11.00", "59071"));
    assert_eq!(error_code(&r), "17", "{r:?}");
    let r = nodeny_send(&site, &notice("990002", "1e3", "59071"));
    assert_eq!(error_code(&r), "3", "{r:?}");
    assert_eq!(db.balance(5907), "110.25");
    // The cancel, with another sum: nothing; with the sum paid: reversed, once.
    let r = nodeny_send(&site, &notice("990001", "-5", "59071"));
    assert_eq!(error_code(&r), "18", "{r:?}");
    assert_eq!(db.balance(5907), "110.25");
    for _ in 0..2 {
        let r = nodeny_send(&site, &notice("990001", "-10.25", "59071"));
        assert_eq!(error_code(&r), "0", "{r:?}");
        assert_eq!(db.balance(5907), "100.00");
    }
}

#[test]
fn check_config_refuses_a_portmone_system_without_addresses() {
    let db = TestDb::new();
    let site = Site::new(&db.url, "");
    for (allow, line) in [("allow = []", 12), ("", 10)] {
        site.write_config(&nodeny_config(&db, allow));
        let out = Command::new(env!("CARGO_BIN_EXE_paysys"))
            .args(["check-config"])
            .arg(site.config_path())
            .output()
            .expect("paysys check-config");
        let err = String::from_utf8_lossy(&out.stderr).into_owned()
            + &String::from_utf8_lossy(&out.stdout);
        assert!(!out.status.success(), "{allow}: {err}");
        assert!(
            err.contains(&format!(
                "paysys.toml line {line}: system 'portmone': allow:"
            )),
            "{allow}: {err}"
        );
        // The endpoint refuses to work with it, too: a temporary answer, nothing read.
        let r = nodeny_send(&site, &notice("990003", "1.00", "59071"));
        assert_ne!(r.element("ERROR_CODE").as_deref(), Some("0"), "{r:?}");
    }
    assert_eq!(db.txns(), 0);
}

/// Portmone's `<PAY_ORDERS>` listing, saved as posted, is the registry `paysys reconcile`
/// compares with what we credited: a bill we hold agrees, one we never credited is missing
/// on our side, a payment it lacks is missing on theirs.
#[test]
fn pay_orders_are_a_registry_for_reconcile() {
    let a = portmone();
    for (id, sum) in [("PM-1", "3.00"), ("PM-2", "2.00")] {
        assert_eq!(error_code(&send(&a, &notice(id, sum, "test1"))), "0");
    }
    let bill = |id: &str, sum: &str| {
        format!(
            "<BILL><BILL_ID>{id}</BILL_ID><PAY_DATE>2026-12-07</PAY_DATE>\
             <PAYED_AMOUNT>{sum}</PAYED_AMOUNT><PAYED_COMMISSION>0.00</PAYED_COMMISSION>\
             <PAYER><CONTRACT_NUMBER>test1</CONTRACT_NUMBER></PAYER><STATUS>PAYED</STATUS>\
             </BILL>\n"
        )
    };
    let listing = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<PAY_ORDERS>\n<PAY_ORDER>\
         <PAY_ORDER_ID>12345</PAY_ORDER_ID><PAY_ORDER_AMOUNT>8</PAY_ORDER_AMOUNT><BILLS>\n{}{}\
         </BILLS></PAY_ORDER>\n</PAY_ORDERS>\n",
        bill("PM-1", "3"),
        bill("PM-9", "5")
    );
    let file = a.site.base.join("pay_orders.txt");
    std::fs::write(&file, String::from_utf8(form(&listing)).unwrap()).unwrap();
    let today = chrono::Local::now().format("%Y-%m-%d").to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_paysys"))
        .arg("reconcile")
        .arg(&file)
        .args(["--system", "portmone", "--date", &today, "--config"])
        .arg(a.site.config_path())
        .output()
        .expect("paysys reconcile");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("(Portmone <PAY_ORDERS>"), "{text}");
    assert!(
        text.contains("missing on our side (in the registry, not credited by us): 1\n"),
        "{text}"
    );
    assert!(text.contains("PM-9"), "{text}");
    assert!(
        text.contains("missing on their side (credited by us, not in the registry): 1\n"),
        "{text}"
    );
    assert!(text.contains("PM-2"), "{text}");
    // Reconciling reads: nothing was credited or changed.
    assert_eq!(a.txns().len(), 2);
}

#[test]
fn a_cancel_with_another_sum_leaves_a_payment_abills_made_before_the_switch() {
    use mysql::prelude::Queryable;
    let a = portmone();
    // ABillS's own Portmone module paid BILL_ID 977 before paysys took over.
    let mut conn = a.db.conn();
    // As ABillS's script writes them: without the columns it leaves to their defaults.
    conn.query_drop("SET SESSION sql_mode = 'NO_ENGINE_SUBSTITUTION'")
        .unwrap();
    conn.query_drop(
        "INSERT INTO payments (date, sum, dsc, uid, aid, method, ext_id, bill_id, amount, \
         reg_date, last_deposit) VALUES (NOW(), 30, 'Portmone', 1, 2, 2, 'POR:977', 1, 30, \
         NOW(), 0)",
    )
    .unwrap();
    conn.query_drop(format!(
        "INSERT INTO paysys_log (system_id, datetime, sum, uid, transaction_id, info, \
         paysys_ip, domain_id, status) VALUES ({ABILLS_ID}, NOW(), 30, 1, 'POR:977', '', 0, \
         0, 2)"
    ))
    .unwrap();
    let before = a.deposit(1);
    // Another sum: nothing reversed.
    let r = send(&a, &notice("977", "-5", "test1"));
    assert_eq!(error_code(&r), "18", "{r:?}");
    assert_eq!(a.deposit(1), before);
    assert_eq!(a.payment("POR:977").sum, "30.00");
    assert_eq!(a.log_row("POR:977").status, 2);
    // Its own sum: reversed.
    let r = send(&a, &notice("977", "-30.00", "test1"));
    assert_eq!(error_code(&r), "0", "{r:?}");
    assert_eq!(a.log_row("POR:977").status, 3);
}
