//! `protocol = "payme"` through the real `paysys_check` executable, run as a web server runs
//! a CGI (the Authorization header as `HTTP_AUTHORIZATION`), against a real MariaDB:
//! ABillS's tables and NoDeny's. Create books, Perform pays exactly once, Cancel cancels or
//! reverses, an order unpaid for 12 hours is cancelled with reason 4.

mod common;

use base64::Engine;
use common::abills::{self, Abills};
use common::{Answer, Site, TestDb};
use mysql::prelude::Queryable;
use serde_json::{json, Value};

const KEY: &str = "Pm&key#7";

fn auth(key: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("Paycom:{key}"))
    )
}

fn payme_abills() -> Abills {
    Abills::with_systems(&payme_system("1.00"))
}

/// The Payme system's `[[system]]` table, with this `min_sum`.
fn payme_system(min_sum: &str) -> String {
    abills::system(
        "payme",
        abills::DEFAULT_ALLOW,
        &format!("account = \"login\"\nabills_id = 98\nmin_sum = \"{min_sum}\"\nkey = \"{KEY}\""),
    )
    .replace("protocol = \"osmp\"", "protocol = \"payme\"")
}

fn call_as(site: &Site, authorization: Option<&str>, body: &str, from: &str) -> Answer {
    let config = site.config_path().to_string_lossy().into_owned();
    let len = body.len().to_string();
    let mut vars = vec![
        ("GATEWAY_INTERFACE", "CGI/1.1"),
        ("PAYSYS_CONFIG", config.as_str()),
        ("REQUEST_METHOD", "POST"),
        ("CONTENT_TYPE", "application/json"),
        ("CONTENT_LENGTH", len.as_str()),
        ("REMOTE_ADDR", from),
    ];
    if let Some(a) = authorization {
        vars.push(("HTTP_AUTHORIZATION", a));
    }
    abills::run_paysys_check(&vars, body.as_bytes())
}

/// A call with the right key; the answer's JSON.
fn call(site: &Site, method: &str, params: Value) -> Value {
    let body = json!({"jsonrpc": "2.0", "id": 77, "method": method, "params": params}).to_string();
    let r = call_as(site, Some(&auth(KEY)), &body, "127.0.0.1");
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.content_type.starts_with("application/json"), "{r:?}");
    let v: Value = serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("{e}: {r:?}"));
    assert_eq!(v["id"], 77, "{v}");
    v
}

fn code(v: &Value) -> i64 {
    v["error"]["code"].as_i64().unwrap_or(0)
}

fn now_ms() -> i64 {
    chrono::Local::now().timestamp_millis()
}

fn orders(db: &TestDb) -> u64 {
    db.count("SELECT COUNT(*) FROM paysys_order")
}

#[test]
fn abills_create_perform_once_check_cancel_and_list() {
    let a = payme_abills();
    let before = a.deposit(1);
    let payments_before = a.payments().len();
    let account = json!({"login": "test1"});
    let v = call(
        &a.site,
        "CheckPerformTransaction",
        json!({"amount": 500000, "account": account}),
    );
    assert_eq!(v["result"]["allow"], true, "{v}");
    let v = call(
        &a.site,
        "CheckPerformTransaction",
        json!({"amount": 500000, "account": {"login": "nobody"}}),
    );
    assert_eq!(
        (code(&v), v["error"]["data"].as_str()),
        (-31050, Some("login"))
    );
    let v = call(
        &a.site,
        "CheckPerformTransaction",
        json!({"amount": 50, "account": account}),
    );
    assert_eq!(code(&v), -31001, "below min_sum: {v}");

    // Create books; a repeat gets the same answer; nothing is credited.
    let time = now_ms();
    let id = "5305e3bab097f420a62ced0b";
    let create = json!({"id": id, "time": time, "amount": 500000, "account": account});
    let v = call(&a.site, "CreateTransaction", create.clone());
    assert_eq!(v["result"]["state"], 1, "{v}");
    let transaction = v["result"]["transaction"].clone();
    let create_time = v["result"]["create_time"].as_i64().unwrap();
    assert!((create_time - time).abs() < 5_000, "{create_time} {time}");
    assert_eq!(
        call(&a.site, "CreateTransaction", create.clone())["result"],
        v["result"]
    );
    assert_eq!(a.deposit(1), before);
    // The same id with another amount: cannot perform.
    let mut other = create.clone();
    other["amount"] = json!(100);
    assert_eq!(code(&call(&a.site, "CreateTransaction", other)), -31008);

    // Twenty Performs at once credit once and answer alike.
    let body =
        json!({"jsonrpc": "2.0", "id": 77, "method": "PerformTransaction", "params": {"id": id}})
            .to_string();
    let answers: Vec<Value> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..20)
            .map(|_| {
                s.spawn(|| {
                    let r = call_as(&a.site, Some(&auth(KEY)), &body, "127.0.0.1");
                    serde_json::from_str::<Value>(&r.body).unwrap_or_else(|e| panic!("{e}: {r:?}"))
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for v in &answers {
        assert_eq!(v["result"]["state"], 2, "{v}");
        assert_eq!(v["result"], answers[0]["result"], "{v}");
        assert_eq!(v["result"]["transaction"], transaction);
    }
    // One payment, with Payme's id (whole, or as ABillS's narrower column takes it).
    let txn = a.txn("payme", id);
    let credited: Vec<_> = a
        .payments()
        .into_iter()
        .filter(|p| p.id == txn.payment_ref)
        .collect();
    assert_eq!(credited.len(), 1, "{txn:?}");
    assert_eq!(credited[0].sum, "5000.00");
    assert_eq!(a.payments().len(), payments_before + 1);
    // A Create of a paid transaction: -31008.
    assert_eq!(code(&call(&a.site, "CreateTransaction", create)), -31008);

    let v = call(&a.site, "CheckTransaction", json!({"id": id}));
    assert_eq!(v["result"]["state"], 2, "{v}");
    assert_eq!(v["result"]["create_time"], create_time);
    assert_eq!(v["result"]["reason"], Value::Null);
    assert_eq!(
        code(&call(
            &a.site,
            "CheckTransaction",
            json!({"id": "unknown1"})
        )),
        -31003
    );

    // Cancel of the performed transaction reverses it (state -2); a repeat answers alike.
    let paid = a.deposit(1);
    assert_ne!(paid, before);
    let v = call(&a.site, "CancelTransaction", json!({"id": id, "reason": 5}));
    assert_eq!(v["result"]["state"], -2, "{v}");
    assert_eq!(a.deposit(1), before);
    let again = call(&a.site, "CancelTransaction", json!({"id": id, "reason": 1}));
    assert_eq!(again["result"], v["result"]);
    let v = call(&a.site, "CheckTransaction", json!({"id": id}));
    assert_eq!(
        (
            v["result"]["state"].as_i64(),
            v["result"]["reason"].as_i64()
        ),
        (Some(-2), Some(5))
    );
    // Performed again after the cancel: cannot.
    assert_eq!(
        code(&call(&a.site, "PerformTransaction", json!({"id": id}))),
        -31008
    );

    // A second transaction cancelled before it is performed: state -1, never paid.
    let id2 = "5305e3bab097f420a62ced0c";
    call(
        &a.site,
        "CreateTransaction",
        json!({"id": id2, "time": now_ms(), "amount": 1000, "account": account}),
    );
    let v = call(
        &a.site,
        "CancelTransaction",
        json!({"id": id2, "reason": 3}),
    );
    assert_eq!(v["result"]["state"], -1, "{v}");
    assert_eq!(
        code(&call(&a.site, "PerformTransaction", json!({"id": id2}))),
        -31008
    );
    assert_eq!(a.deposit(1), before);

    // The statement lists both, by Payme's time.
    let v = call(
        &a.site,
        "GetStatement",
        json!({"from": time - 1000, "to": now_ms() + 1000}),
    );
    let listed = v["result"]["transactions"]
        .as_array()
        .expect("transactions")
        .clone();
    assert_eq!(listed.len(), 2, "{v}");
    assert_eq!(listed[0]["id"], id);
    assert_eq!(listed[0]["time"], time);
    assert_eq!(listed[0]["account"]["login"], "test1");
    assert_eq!(
        (listed[0]["state"].as_i64(), listed[1]["state"].as_i64()),
        (Some(-2), Some(-1))
    );
    let v = call(&a.site, "GetStatement", json!({"from": 1, "to": 2}));
    assert_eq!(v["result"]["transactions"], json!([]));
}

/// A repeated Create gets its first answer whatever changed since — the system's limits
/// narrowed, the subscriber deleted — and books nothing new; a new Create is judged by
/// today's limits and subscribers.
#[test]
fn a_repeated_create_is_answered_as_the_first_after_the_limits_or_the_subscriber_changed() {
    let a = payme_abills();
    let create =
        json!({"id": "r-1", "time": now_ms(), "amount": 500, "account": {"login": "test1"}});
    let first = call(&a.site, "CreateTransaction", create.clone());
    assert_eq!(first["result"]["state"], 1, "{first}");
    // 5.00 is below today's min_sum now.
    a.set_systems(&payme_system("10.00"));
    assert_eq!(call(&a.site, "CreateTransaction", create.clone()), first);
    let new = json!({"id": "r-2", "time": now_ms(), "amount": 500, "account": {"login": "test1"}});
    assert_eq!(code(&call(&a.site, "CreateTransaction", new)), -31001);
    // And the subscriber is gone.
    a.db.conn()
        .query_drop("UPDATE users SET deleted = 1 WHERE uid = 1")
        .unwrap();
    assert_eq!(call(&a.site, "CreateTransaction", create.clone()), first);
    let new = json!({"id": "r-3", "time": now_ms(), "amount": 5000, "account": {"login": "test1"}});
    assert_eq!(code(&call(&a.site, "CreateTransaction", new)), -31050);
    // The same id with another amount is still no repeat.
    let mut other = create;
    other["amount"] = json!(100_000);
    assert_eq!(code(&call(&a.site, "CreateTransaction", other)), -31008);
    assert_eq!(orders(&a.db), 1);
}

/// Twenty identical Creates at once book one order and all answer alike; twenty Cancels
/// of it at once cancel it once.
#[test]
fn concurrent_creates_book_once_and_concurrent_cancels_agree() {
    let a = payme_abills();
    let body = json!({"id": 5, "method": "CreateTransaction", "params": {"id": "c-1", "time": now_ms(), "amount": 1000, "account": {"login": "test1"}}}).to_string();
    let cancel =
        json!({"id": 6, "method": "CancelTransaction", "params": {"id": "c-1", "reason": 3}})
            .to_string();
    for (body, state) in [(&body, 1), (&cancel, -1)] {
        let answers: Vec<Value> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..20)
                .map(|_| {
                    s.spawn(|| {
                        let r = call_as(&a.site, Some(&auth(KEY)), body, "127.0.0.1");
                        serde_json::from_str::<Value>(&r.body)
                            .unwrap_or_else(|e| panic!("{e}: {r:?}"))
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for v in &answers {
            assert_eq!(v["result"]["state"], state, "{v}\n{}", a.site.log());
            assert_eq!(v["result"], answers[0]["result"], "{v}");
        }
    }
    assert_eq!(orders(&a.db), 1);
    let v = call(&a.site, "CheckTransaction", json!({"id": "c-1"}));
    assert_eq!(v["result"]["reason"], 3, "{v}");
}

/// A Perform and a Cancel of the same booked transaction sent at once, twelve times: one
/// of two stories each time, told alike by both answers and the check after — performed
/// then reversed (2, then -2), or cancelled unpaid (-31008, -1) — and the deposit where it
/// began, nothing credited for a cancelled order nor left credited after a reversal.
#[test]
fn a_perform_racing_a_cancel_ends_one_way_and_the_money_agrees() {
    let a = payme_abills();
    let before = a.deposit(1);
    let account = json!({"login": "test1"});
    let ids: Vec<String> = (0..12).map(|i| format!("race-{i}")).collect();
    for id in &ids {
        let create = json!({"id": id, "time": now_ms(), "amount": 1000, "account": account});
        assert_eq!(
            call(&a.site, "CreateTransaction", create)["result"]["state"],
            1
        );
    }
    for id in &ids {
        let (perform, cancel) = std::thread::scope(|s| {
            let p = s.spawn(|| call(&a.site, "PerformTransaction", json!({"id": id})));
            let c = s.spawn(|| call(&a.site, "CancelTransaction", json!({"id": id, "reason": 3})));
            (p.join().unwrap(), c.join().unwrap())
        });
        let check = call(&a.site, "CheckTransaction", json!({"id": id}));
        let told = (
            perform["result"]["state"]
                .as_i64()
                .unwrap_or(code(&perform)),
            cancel["result"]["state"].as_i64(),
            check["result"]["state"].as_i64(),
        );
        assert!(
            told == (2, Some(-2), Some(-2)) || told == (-31008, Some(-1), Some(-1)),
            "{id}: {told:?}\nperform {perform}\ncancel {cancel}\n{}",
            a.site.log()
        );
        assert_eq!(a.deposit(1), before, "{id}: {told:?}");
    }
}

/// Payme's 24-character ids with the system's prefix are longer than the older ABillS's
/// paysys_log.transaction_id: both schemas record the payment once, and a repeat finds it.
#[test]
fn both_abills_schemas_take_paymes_long_ids() {
    for ddl in abills::Ddl::ALL {
        let a = Abills::on_ddl(
            ddl,
            &abills::system(
                "payme",
                abills::DEFAULT_ALLOW,
                &format!("account = \"login\"\nabills_id = 98\nkey = \"{KEY}\""),
            )
            .replace("protocol = \"osmp\"", "protocol = \"payme\""),
        );
        let id = "63f5d5e5ab1c2f0f3a1b9c7d";
        let v = call(
            &a.site,
            "CreateTransaction",
            json!({"id": id, "time": now_ms(), "amount": 700, "account": {"login": "test1"}}),
        );
        assert_eq!(v["result"]["state"], 1, "{ddl:?}: {v}");
        for _ in 0..2 {
            let v = call(&a.site, "PerformTransaction", json!({"id": id}));
            assert_eq!(v["result"]["state"], 2, "{ddl:?}: {v}");
        }
        let txn = a.txn("payme", id);
        assert_eq!(
            a.payments()
                .iter()
                .filter(|p| p.id == txn.payment_ref)
                .count(),
            1,
            "{ddl:?}"
        );
    }
}

/// A transaction created more than 12 hours ago and never performed is cancelled with
/// reason 4 when it is next touched: Perform gets -31008, CheckTransaction says -1, 4.
#[test]
fn an_unperformed_transaction_expires_after_12_hours() {
    let a = payme_abills();
    let before = a.deposit(1);
    let account = json!({"login": "test1"});
    for id in ["old-1", "old-2", "old-3"] {
        call(
            &a.site,
            "CreateTransaction",
            json!({"id": id, "time": now_ms(), "amount": 1000, "account": account}),
        );
    }
    // Booked 13 hours ago (as if).
    a.db.conn()
        .query_drop("UPDATE paysys_order SET created = NOW() - INTERVAL 13 HOUR")
        .unwrap();
    assert_eq!(
        code(&call(&a.site, "PerformTransaction", json!({"id": "old-1"}))),
        -31008
    );
    let v = call(&a.site, "CheckTransaction", json!({"id": "old-1"}));
    assert_eq!(
        (
            v["result"]["state"].as_i64(),
            v["result"]["reason"].as_i64()
        ),
        (Some(-1), Some(4)),
        "{v}"
    );
    assert_eq!(
        code(&call(
            &a.site,
            "CreateTransaction",
            json!({"id": "old-2", "time": now_ms(), "amount": 1000, "account": account})
        )),
        -31008
    );
    // GetStatement cancels every expired one before it lists.
    let v = call(
        &a.site,
        "GetStatement",
        json!({"from": now_ms() - 3_600_000, "to": now_ms() + 1000}),
    );
    let states: Vec<i64> = v["result"]["transactions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["state"].as_i64().unwrap())
        .collect();
    assert_eq!(states, [-1, -1, -1], "{v}");
    assert_eq!(a.deposit(1), before);
}

/// NoDeny, by payment code: twenty Performs at once credit once; a performed transaction
/// cannot be cancelled there (-31007), NoDeny having no reversal.
#[test]
fn nodeny_create_and_twenty_concurrent_performs_credit_once() {
    let db = TestDb::new();
    let site = Site::new(&db.url, "");
    site.write_config(&format!(
        "[database]\nurl = \"{}\"\nbilling = \"nodeny\"\nlock_timeout = 10\n\n[log]\n\
         file = \"var/log/paysys_check.log\"\n\n[[system]]\nname = \"payme\"\n\
         protocol = \"payme\"\nallow = [\"127.0.0.1\"]\naccount = \"payment_code\"\nkey = \"{KEY}\"\n",
        db.url
    ));
    let v = call(
        &site,
        "CreateTransaction",
        json!({"id": "nd-1", "time": now_ms(), "amount": 1025, "account": {"payment_code": "59071"}}),
    );
    assert_eq!(v["result"]["state"], 1, "{v}");
    assert_eq!(db.balance(5907), "100.00");
    let body =
        json!({"id": 1, "method": "PerformTransaction", "params": {"id": "nd-1"}}).to_string();
    let states: Vec<i64> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..20)
            .map(|_| {
                s.spawn(|| {
                    let r = call_as(&site, Some(&auth(KEY)), &body, "127.0.0.1");
                    let v: Value = serde_json::from_str(&r.body).unwrap();
                    v["result"]["state"].as_i64().unwrap_or(0)
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(states.iter().all(|s| *s == 2), "{states:?}");
    assert_eq!(db.balance(5907), "110.25");
    assert_eq!((db.pays(), db.txns()), (1, 1));
    // A cancel after the pay reverses it on NoDeny too, as NoDeny's admin deletes a
    // payment: the pays row gone, NoDeny's old record of it and its event (type 50) left.
    let cancelled = call(
        &site,
        "CancelTransaction",
        json!({"id": "nd-1", "reason": 5}),
    );
    assert_eq!(cancelled["result"]["state"], -2, "{cancelled}");
    assert_eq!(db.balance(5907), "100.00");
    assert_eq!(
        db.count("SELECT COUNT(*) FROM pays WHERE type = 10"),
        0,
        "the payment's row is gone"
    );
    assert_eq!(db.count("SELECT COUNT(*) FROM pays WHERE type = 50"), 2);
    // The account object may say "account" too; a bad check digit is no account.
    let v = call(
        &site,
        "CheckPerformTransaction",
        json!({"amount": 100, "account": {"account": "59072"}}),
    );
    assert_eq!(code(&v), -31050);
}

/// Without the key, with a wrong one, from an unknown address, or with a body that is no
/// request: refused before anything is looked up or booked.
#[test]
fn hostile_requests_are_refused_before_the_database() {
    let a = payme_abills();
    let create = json!({"id": 1, "method": "CreateTransaction", "params": {"id": "h-1", "time": now_ms(), "amount": 1000, "account": {"login": "test1"}}}).to_string();
    for authorization in [
        None,
        Some(auth("wrong")),
        Some(auth(&format!("{KEY} "))),
        Some("Basic".into()),
    ] {
        let r = call_as(&a.site, authorization.as_deref(), &create, "127.0.0.1");
        let v: Value = serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("{e}: {r:?}"));
        assert_eq!(
            (r.status, code(&v)),
            (200, -32504),
            "{authorization:?}: {v}"
        );
    }
    let huge = format!(
        "{{\"method\":\"CheckTransaction\",\"params\":{{\"id\":\"{}\"}}}}",
        "x".repeat(2_000_000)
    );
    let config = a.site.config_path().to_string_lossy().into_owned();
    let key = auth(KEY);
    for (body, want) in [
        ("{\"method\":".to_string(), -32700),
        ("\u{feff}garbage".to_string(), -32700),
        ("{\"method\":\"CreateTransaction\",\"params\":{\"id\":\"h-2\",\"amount\":1e30,\"time\":1,\"account\":{\"login\":\"test1\"}}}".to_string(), -31001),
        ("{\"method\":\"CreateTransaction\",\"params\":{\"id\":\"h-3\",\"amount\":-100,\"time\":1,\"account\":{\"login\":\"test1\"}}}".to_string(), -31001),
        ("{\"method\":\"Steal\",\"params\":{}}".to_string(), -32601),
        ("{\"method\":\"PerformTransaction\",\"params\":{\"id\":[1]}}".to_string(), -32600),
        (huge, -32600),
    ] {
        let r = call_as(&a.site, Some(&key), &body, "127.0.0.1");
        let v: Value = serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("{e}: {r:?}"));
        assert_eq!(code(&v), want, "{}: {v}", &body[..body.len().min(80)]);
    }
    // A lying CONTENT_LENGTH.
    let r = abills::run_paysys_check(
        &[
            ("GATEWAY_INTERFACE", "CGI/1.1"),
            ("PAYSYS_CONFIG", &config),
            ("REQUEST_METHOD", "POST"),
            ("CONTENT_LENGTH", "900"),
            ("REMOTE_ADDR", "127.0.0.1"),
            ("HTTP_AUTHORIZATION", &key),
        ],
        create.as_bytes(),
    );
    assert!(
        r.body.contains("-32700") || r.body.contains("-32600"),
        "{r:?}"
    );
    // Unknown caller: ABillS's words, whatever the key.
    let r = call_as(&a.site, Some(&key), &create, "192.0.2.1");
    assert_eq!(r.body, abills::UNKNOWN_SYSTEM, "{r:?}");
    assert_eq!(orders(&a.db), 0, "nothing was booked");
    let log = a.site.log();
    assert!(log.contains("result=-32504"), "{log}");
    assert!(!log.contains(KEY), "the key never reaches the log: {log}");
}

/// A Perform sends the database no more statements than a terminal's pay of the same
/// billing: the order is read, checked and locked by the pay's own first statement
/// (MariaDB 10.5 and later), not by a read before it. On ABillS, as CGI processes, counted
/// in the general log of a private server (nobody else's statements), prepares included.
/// A Perform the long way must take — the limits raised since the Create — is still
/// refused as it was.
#[test]
fn a_perform_costs_no_more_statements_than_a_terminals_pay() {
    let Some(logged) = common::mariadb::Logged::start("payme_statements") else {
        return;
    };
    let systems = |min_sum: &str| {
        abills::system("osmp", &["192.0.2.7"], "account = \"login\"") + &payme_system(min_sum)
    };
    let (a, pay) = abills::after_a_terminal_pay(&logged, &systems("1.00"));
    let before = a.deposit(1);
    let account = json!({"login": "test1"});
    for id in ["pm-statements-1", "pm-statements-2"] {
        let create = json!({"id": id, "time": now_ms(), "amount": 1000, "account": account});
        assert_eq!(
            call(&a.site, "CreateTransaction", create)["result"]["state"],
            1
        );
    }
    let (perform, v) = logged.statements(|| {
        call(
            &a.site,
            "PerformTransaction",
            json!({"id": "pm-statements-1"}),
        )
    });
    assert_eq!(v["result"]["state"], 2, "{v}");
    assert!(v["result"]["perform_time"].as_i64().unwrap_or(0) > 0, "{v}");
    assert_eq!(
        call(
            &a.site,
            "CheckTransaction",
            json!({"id": "pm-statements-1"})
        )["result"]["perform_time"],
        v["result"]["perform_time"],
        "the answer's time is the one recorded"
    );
    // The Perform's 10.00, after the terminal's.
    assert_eq!(cents(&a.deposit(1)) - cents(&before), 1000);
    // Raised since the Create: the Perform is judged by today's limits, as always.
    a.set_systems(&systems("50.00"));
    let v = call(
        &a.site,
        "PerformTransaction",
        json!({"id": "pm-statements-2"}),
    );
    assert_eq!(code(&v), -31001, "{v}");
    assert_eq!(cents(&a.deposit(1)) - cents(&before), 1000);
    logged.assert_no_more("a Perform", &pay, &perform);
}

/// A deposit as printed (`123.45`, `-0.50`), in kopecks.
fn cents(text: &str) -> i64 {
    let (units, frac) = text.split_once('.').unwrap_or((text, "0"));
    let sign = if units.starts_with('-') { -1 } else { 1 };
    let units: i64 = units.trim_start_matches('-').parse().expect("deposit");
    let frac: i64 = format!("{frac:0<2}")[..2].parse().expect("deposit");
    sign * (units * 100 + frac)
}
