//! `protocol = "click"` through the real `paysys_check` executable, run as a web server runs
//! a CGI, against a real MariaDB: ABillS's tables and NoDeny's. Requests are signed as
//! Click signs them (MD5 `sign_string` with the system's `secret_key`). Prepare books,
//! Complete pays exactly once, a Complete with Click's error cancels.

mod common;

use common::abills::{self, Abills};
use common::{Answer, Site, TestDb};
use mysql::prelude::Queryable;
use paysys::config::{ServiceSlot, SignHash, SignRule};
use paysys::protocol::click::signature;

const SECRET: &str = "clickSecret-7";
const SERVICE: &str = "17449";
const SIGN_TIME: &str = "2026-11-22 10:00:00";

fn rule() -> SignRule {
    SignRule {
        secret: SECRET.into(),
        hash: SignHash::Md5,
        amount: true,
        service: ServiceSlot::Fixed(SERVICE.into()),
    }
}

fn keys() -> String {
    format!("service_id = \"{SERVICE}\"\nsecret_key = \"{SECRET}\"")
}

fn click_abills() -> Abills {
    Abills::with_systems(&click_system("1.00"))
}

/// The Click system's `[[system]]` table, with this `min_sum`.
fn click_system(min_sum: &str) -> String {
    abills::system(
        "click",
        abills::DEFAULT_ALLOW,
        &format!(
            "account = \"login\"\nabills_id = 99\nmin_sum = \"{min_sum}\"\n{}",
            keys()
        ),
    )
    .replace("protocol = \"osmp\"", "protocol = \"click\"")
}

/// A Prepare (`prepare_id` `None`) or a Complete with Click's `error`, signed.
fn form(trans: &str, account: &str, amount: &str, prepare_id: Option<&str>, error: &str) -> String {
    let action = if prepare_id.is_some() { "1" } else { "0" };
    let sign = signature(
        &rule(),
        trans,
        account,
        prepare_id,
        amount,
        action,
        SIGN_TIME,
    )
    .unwrap();
    let mut pairs = vec![
        ("click_trans_id", trans.to_string()),
        ("service_id", SERVICE.to_string()),
        ("click_paydoc_id", "1574969493".to_string()),
        ("merchant_trans_id", account.to_string()),
        ("amount", amount.to_string()),
        ("action", action.to_string()),
        ("error", error.to_string()),
        ("error_note", "Success".to_string()),
        ("sign_time", SIGN_TIME.to_string()),
        ("sign_string", sign),
    ];
    if let Some(id) = prepare_id {
        pairs.push(("merchant_prepare_id", id.to_string()));
    }
    serde_urlencoded::to_string(pairs).unwrap()
}

fn prepare(trans: &str, account: &str, amount: &str) -> String {
    form(trans, account, amount, None, "0")
}

fn complete(trans: &str, account: &str, amount: &str, prepare_id: &str, error: &str) -> String {
    form(trans, account, amount, Some(prepare_id), error)
}

fn vars<'a>(config: &'a str, len: &'a str, from: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("GATEWAY_INTERFACE", "CGI/1.1"),
        ("PAYSYS_CONFIG", config),
        ("REQUEST_METHOD", "POST"),
        ("CONTENT_TYPE", "application/x-www-form-urlencoded"),
        ("CONTENT_LENGTH", len),
        ("REMOTE_ADDR", from),
    ]
}

fn post_to(site: &Site, body: &str, from: &str) -> Answer {
    let config = site.config_path().to_string_lossy().into_owned();
    let len = body.len().to_string();
    abills::run_paysys_check(&vars(&config, &len, from), body.as_bytes())
}

/// The answer's JSON, after checking it is JSON.
fn json(a: &Answer) -> serde_json::Value {
    assert!(a.content_type.starts_with("application/json"), "{a:?}");
    serde_json::from_str(&a.body).unwrap_or_else(|e| panic!("{e}: {a:?}"))
}

fn error(a: &Answer) -> i64 {
    json(a)["error"]
        .as_i64()
        .unwrap_or_else(|| panic!("no error: {a:?}"))
}

fn orders(db: &TestDb) -> u64 {
    db.count("SELECT COUNT(*) FROM paysys_order")
}

#[test]
fn abills_prepare_then_complete_credits_once() {
    let a = click_abills();
    let before = a.deposit(1);
    // Prepare books; nothing is credited.
    let r = post_to(
        &a.site,
        &prepare("1485296553", "test1", "1100.00"),
        "127.0.0.1",
    );
    assert_eq!((r.status, error(&r)), (200, 0), "{r:?}");
    let v = json(&r);
    assert_eq!(v["click_trans_id"], 1485296553u64);
    assert_eq!(v["merchant_trans_id"], "test1");
    let prepare_id = v["merchant_prepare_id"]
        .as_u64()
        .expect("merchant_prepare_id");
    let prepare_id = prepare_id.to_string();
    assert_eq!(a.deposit(1), before);
    // The same Prepare again: the same number. Another sum under that click_trans_id: -8.
    let again = post_to(
        &a.site,
        &prepare("1485296553", "test1", "1100.00"),
        "127.0.0.1",
    );
    assert_eq!(json(&again)["merchant_prepare_id"].to_string(), prepare_id);
    let other = post_to(
        &a.site,
        &prepare("1485296553", "test1", "1.00"),
        "127.0.0.1",
    );
    assert_eq!(error(&other), -8);

    // A Complete that names the order with another sum is a wrong amount; with another
    // click_trans_id or prepare id, no such transaction. Nothing moves.
    let wrong_sum = complete("1485296553", "test1", "1000.00", &prepare_id, "0");
    assert_eq!(error(&post_to(&a.site, &wrong_sum, "127.0.0.1")), -2);
    let wrong_trans = complete("1485296554", "test1", "1100.00", &prepare_id, "0");
    assert_eq!(error(&post_to(&a.site, &wrong_trans, "127.0.0.1")), -6);
    let wrong_id = complete("1485296553", "test1", "1100.00", "999999", "0");
    assert_eq!(error(&post_to(&a.site, &wrong_id, "127.0.0.1")), -6);
    assert_eq!(a.deposit(1), before);

    // Twenty identical Completes at once credit once, and each answers 0 with the same
    // merchant_confirm_id.
    let body = complete("1485296553", "test1", "1100.00", &prepare_id, "0");
    let answers: Vec<Answer> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..20)
            .map(|_| s.spawn(|| post_to(&a.site, &body, "127.0.0.1")))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let confirm_ids: Vec<String> = answers
        .iter()
        .map(|r| {
            assert_eq!((r.status, error(r)), (200, 0), "{r:?}");
            json(r)["merchant_confirm_id"].to_string()
        })
        .collect();
    assert!(
        confirm_ids
            .iter()
            .all(|c| *c == confirm_ids[0] && c != "null"),
        "{confirm_ids:?}"
    );
    let credited: Vec<_> = a
        .payments()
        .into_iter()
        .filter(|p| p.ext_id.ends_with(":1485296553"))
        .collect();
    assert_eq!(credited.len(), 1, "{credited:?}");
    assert_eq!(confirm_ids[0], credited[0].id.to_string());
    assert_ne!(a.deposit(1), before);
    assert_eq!(a.log_row(&credited[0].ext_id).system_id, 99);

    // Click's error on the paid payment does not reverse it: -4, the payment stands.
    let paid = a.deposit(1);
    let cancel = complete("1485296553", "test1", "1100.00", &prepare_id, "-5017");
    assert_eq!(error(&post_to(&a.site, &cancel, "127.0.0.1")), -4);
    assert_eq!(a.deposit(1), paid);
    // The log names each request once, with Click's code.
    let log = a.site.log();
    assert!(log.contains("system=click cmd=pay txn=1485296553"), "{log}");
    assert!(log.contains("result=-4"), "{log}");
}

#[test]
fn a_complete_with_clicks_error_cancels_the_prepared_payment() {
    let a = click_abills();
    let before = a.deposit(1);
    let r = post_to(&a.site, &prepare("700", "test1", "5"), "127.0.0.1");
    let id = json(&r)["merchant_prepare_id"].to_string();
    let cancel = complete("700", "test1", "5", &id, "-5017");
    let r = post_to(&a.site, &cancel, "127.0.0.1");
    assert_eq!(error(&r), -9, "{r:?}");
    // Again: the same answer. A Complete after it pays nothing.
    assert_eq!(error(&post_to(&a.site, &cancel, "127.0.0.1")), -9);
    let late = complete("700", "test1", "5", &id, "0");
    assert_eq!(error(&post_to(&a.site, &late, "127.0.0.1")), -9);
    assert_eq!(a.deposit(1), before);
    assert!(a.payments().iter().all(|p| !p.ext_id.ends_with(":700")));
    // An unknown account is -5 on Prepare, and nothing is booked for it.
    let r = post_to(&a.site, &prepare("701", "nobody", "5"), "127.0.0.1");
    assert_eq!(error(&r), -5);
    assert_eq!(orders(&a.db), 1);
}

/// A repeated Prepare gets its first answer whatever changed since — the system's limits
/// narrowed, the subscriber deleted — and books nothing new; a new Prepare is judged by
/// today's limits and subscribers.
#[test]
fn a_repeated_prepare_is_answered_as_the_first_after_the_limits_or_the_subscriber_changed() {
    let a = click_abills();
    let body = prepare("900", "test1", "5.00");
    let first = post_to(&a.site, &body, "127.0.0.1");
    assert_eq!((first.status, error(&first)), (200, 0), "{first:?}");
    // 5.00 is below today's min_sum now.
    a.set_systems(&click_system("10.00"));
    let again = post_to(&a.site, &body, "127.0.0.1");
    assert_eq!(
        (again.status, json(&again)),
        (200, json(&first)),
        "{again:?}"
    );
    assert_eq!(
        error(&post_to(
            &a.site,
            &prepare("901", "test1", "5.00"),
            "127.0.0.1"
        )),
        -2
    );
    // And the subscriber is gone.
    a.db.conn()
        .query_drop("UPDATE users SET deleted = 1 WHERE uid = 1")
        .unwrap();
    let again = post_to(&a.site, &body, "127.0.0.1");
    assert_eq!(
        (again.status, json(&again)),
        (200, json(&first)),
        "{again:?}"
    );
    assert_eq!(
        error(&post_to(
            &a.site,
            &prepare("902", "test1", "20.00"),
            "127.0.0.1"
        )),
        -5
    );
    // The same id with another sum is still no repeat.
    assert_eq!(
        error(&post_to(
            &a.site,
            &prepare("900", "test1", "50.00"),
            "127.0.0.1"
        )),
        -8
    );
    assert_eq!(orders(&a.db), 1);
}

/// Twenty identical Prepares at once book one order, and all answer its number.
#[test]
fn concurrent_prepares_book_once() {
    let a = click_abills();
    let body = prepare("4242", "test1", "3.00");
    let ids: Vec<String> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..20)
            .map(|_| {
                s.spawn(|| {
                    let r = post_to(&a.site, &body, "127.0.0.1");
                    assert_eq!(error(&r), 0, "{r:?}");
                    json(&r)["merchant_prepare_id"].to_string()
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(ids.iter().all(|i| *i == ids[0]), "{ids:?}");
    assert_eq!(orders(&a.db), 1);
}

/// NoDeny, by payment code: twenty Completes at once credit once.
#[test]
fn nodeny_prepare_and_twenty_concurrent_completes_credit_once() {
    let db = TestDb::new();
    let site = Site::new(&db.url, "");
    site.write_config(&format!(
        "[database]\nurl = \"{}\"\nbilling = \"nodeny\"\nlock_timeout = 10\n\n[log]\n\
         file = \"var/log/paysys_check.log\"\n\n[[system]]\nname = \"click\"\n\
         protocol = \"click\"\nallow = [\"127.0.0.1\"]\naccount = \"payment_code\"\n{}\n",
        db.url,
        keys()
    ));
    let r = post_to(&site, &prepare("9001", "59071", "10.25"), "127.0.0.1");
    assert_eq!(error(&r), 0, "{r:?}");
    let id = json(&r)["merchant_prepare_id"].to_string();
    assert_eq!(db.balance(5907), "100.00");
    let body = complete("9001", "59071", "10.25", &id, "0");
    let codes: Vec<i64> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..20)
            .map(|_| s.spawn(|| error(&post_to(&site, &body, "127.0.0.1"))))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(codes.iter().all(|c| *c == 0), "{codes:?}");
    assert_eq!(db.balance(5907), "110.25");
    assert_eq!((db.pays(), db.txns()), (1, 1));
    // A bad check digit is no user.
    assert_eq!(
        error(&post_to(&site, &prepare("9002", "59072", "1"), "127.0.0.1")),
        -5
    );
}

/// Forged, unsigned and malformed requests are refused before anything is looked up or
/// booked; a caller outside the allow list learns nothing.
#[test]
fn hostile_requests_are_refused_before_the_database() {
    let a = click_abills();
    let before = a.deposit(1);
    let good = prepare("800", "test1", "1.00");
    let sign = good
        .split("sign_string=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .to_string();
    let unsigned = good.replace(&format!("sign_string={sign}"), "");
    let forged_sum = good.replace("amount=1.00", "amount=1000.00");
    let wrong_key = {
        let other = SignRule {
            secret: "guess".into(),
            ..rule()
        };
        let s = signature(&other, "800", "test1", None, "1.00", "0", SIGN_TIME).unwrap();
        good.replace(&sign, &s)
    };
    let other_service = good.replace("service_id=17449", "service_id=1");
    for bad in [&unsigned, &forged_sum, &wrong_key, &other_service] {
        let r = post_to(&a.site, bad, "127.0.0.1");
        assert_eq!(error(&r), -1, "{bad}: {r:?}");
    }
    // Hostile bodies: not a form, cut short, huge, bad sums, a bad action.
    let huge = format!("{good}&pad={}", "x".repeat(2_000_000));
    let config = a.site.config_path().to_string_lossy().into_owned();
    let cut = abills::run_paysys_check(&vars(&config, "500", "127.0.0.1"), good.as_bytes());
    assert_eq!(error(&cut), -8, "{cut:?}");
    for (body, want) in [
        ("{\"action\":0}".to_string(), -3),
        (huge, -8),
        (prepare("801", "test1", "1e3"), -2),
        (prepare("802", "test1", "-1"), -2),
        (prepare("803", "test1", "0.001"), -2),
        (prepare("804", "test1", "99999999999999999999999"), -2),
        (good.replace("action=0", "action=7"), -3),
    ] {
        let r = post_to(&a.site, &body, "127.0.0.1");
        assert_eq!(error(&r), want, "{r:?}");
    }
    // Outside the system's limits (min_sum 1.00) after a good signature: -2.
    let r = post_to(&a.site, &prepare("805", "test1", "0.50"), "127.0.0.1");
    assert_eq!(error(&r), -2, "{r:?}");
    // Someone the allow list does not admit gets ABillS's words, whatever they send.
    let r = post_to(&a.site, &good, "192.0.2.1");
    assert_eq!(r.body, abills::UNKNOWN_SYSTEM, "{r:?}");
    assert_eq!(orders(&a.db), 0, "nothing was booked");
    assert_eq!(a.deposit(1), before);
    assert!(
        a.site.log().contains("sign_string is missing"),
        "{}",
        a.site.log()
    );
}

/// A Complete sends the database no more statements than a terminal's pay of the same
/// billing: the order is read, checked and locked by the pay's own first statement
/// (MariaDB 10.5 and later), not by a read before it. On ABillS, as CGI processes, counted
/// in the general log of a private server (nobody else's statements), prepares included.
/// Completes the long way must take — another letter case of the account, limits raised
/// since the Prepare — are still refused as they were.
#[test]
fn a_complete_costs_no_more_statements_than_a_terminals_pay() {
    let Some(logged) = common::mariadb::Logged::start("click_statements") else {
        return;
    };
    let systems = |min_sum: &str| {
        abills::system("osmp", &["192.0.2.7"], "account = \"login\"") + &click_system(min_sum)
    };
    let (a, pay) = abills::after_a_terminal_pay(&logged, &systems("1.00"));
    let paid = a.deposit(1);
    let mut prepared = Vec::new();
    for trans in ["900001", "900002", "900003"] {
        let r = post_to(&a.site, &prepare(trans, "test1", "10.00"), "127.0.0.1");
        assert_eq!(error(&r), 0, "{r:?}");
        prepared.push(json(&r)["merchant_prepare_id"].to_string());
    }
    // Named with another letter case: not this order, nothing paid.
    let other_case = complete("900002", "TEST1", "10.00", &prepared[1], "0");
    assert_eq!(error(&post_to(&a.site, &other_case, "127.0.0.1")), -6);
    assert_eq!(a.deposit(1), paid);
    let body = complete("900001", "test1", "10.00", &prepared[0], "0");
    let (confirm, r) = logged.statements(|| post_to(&a.site, &body, "127.0.0.1"));
    assert_eq!(error(&r), 0, "{r:?}");
    assert_ne!(a.deposit(1), paid, "credited");
    // Raised since the Prepare: the Complete is judged by today's limits, as always.
    let credited = a.deposit(1);
    a.set_systems(&systems("50.00"));
    let r = post_to(
        &a.site,
        &complete("900003", "test1", "10.00", &prepared[2], "0"),
        "127.0.0.1",
    );
    assert_eq!(error(&r), -2, "{r:?}");
    assert_eq!(a.deposit(1), credited);
    logged.assert_no_more("a Complete", &pay, &confirm);
}
