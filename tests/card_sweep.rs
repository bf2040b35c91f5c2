//! `paysys sweep` against MariaDB (each test its own database) and the providers'
//! stand-ins on loopback: an order paid at the provider whose callback never came is
//! credited once, and a second sweep changes nothing; a failed one becomes failed, one past
//! its validity expired (unless a late success pays it); a sweep racing the callback for
//! the same order credits once; on ABillS (1.20's and 1.50's tables) and NoDeny, with
//! LiqPay and Monobank.

mod common;

use std::process::Command;
use std::time::Instant;

use common::abills::{Abills, Ddl};
use common::providers::{http, LiqPay, Monobank, Script};
use common::{Answer, TestDb};
use mysql::prelude::Queryable;
use paysys::card::order::{self, CardOrder, NewOrder};
use paysys::card::{liqpay, monobank};
use paysys::domain::{Amount, Domain};

fn liqpay_system(standin: &LiqPay, extra: &str) -> String {
    format!(
        "\n[[system]]\nname = \"liqpay\"\nprotocol = \"liqpay\"\npublic_key = \"{}\"\n\
         private_key = \"{}\"\napi_url = \"{}\"\n{extra}\n",
        standin.public_key(),
        standin.private_key(),
        standin.api_url()
    )
}

fn monobank_system(standin: &Monobank, extra: &str) -> String {
    format!(
        "\n[[system]]\nname = \"mono\"\nprotocol = \"monobank\"\ntoken = \"{}\"\n\
         pubkey = \"{}\"\napi_url = \"{}\"\n{extra}\n",
        standin.token(),
        standin.pubkey_base64(),
        standin.api_url()
    )
}

fn new_order(
    db: &TestDb,
    system: &str,
    account: &str,
    amount: &str,
    validity_hours: u32,
) -> CardOrder {
    order::create(
        &mut db.conn(),
        &NewOrder {
            system,
            account,
            amount: Amount::parse(amount).unwrap(),
            charged: Amount::parse(amount).unwrap(),
            currency: "UAH",
            domain: Domain::default(),
            validity_hours,
            subscriber_id: None,
        },
    )
    .unwrap()
}

/// The browser at LiqPay's checkout, paying nothing (the test sets the status after).
fn liqpay_checkout(standin: &LiqPay, o: &CardOrder) {
    standin.set_script(Script::Abandon);
    let form = liqpay::checkout_form(
        &standin.keys(),
        &liqpay::Checkout {
            order_id: &o.order_id,
            amount: o.charged,
            currency: "UAH",
            description: "top-up",
            server_url: "http://127.0.0.1:9/callback/liqpay",
            result_url: "http://127.0.0.1:9/pay",
            sandbox: false,
            language: None,
            expires: None,
        },
    )
    .unwrap();
    http::post_form(
        &standin.checkout_url(),
        &[("data", &form.data), ("signature", &form.signature)],
    )
    .unwrap();
    assert!(
        standin.order(&o.order_id).is_some(),
        "{:?}",
        standin.rejected()
    );
}

/// Monobank's invoice for the order, its invoiceId stored on the order as the page does.
fn monobank_invoice(standin: &Monobank, db: &TestDb, o: &CardOrder) -> String {
    // Monobank's pages are https; no browser goes there in these tests.
    standin.set_page_url_base("https://pay.example");
    let body = monobank::invoice_create_body(&monobank::InvoiceRequest {
        amount: o.charged,
        ccy: monobank::UAH,
        reference: &o.order_id,
        destination: "top-up",
        redirect_url: "http://127.0.0.1:9/pay",
        web_hook_url: "http://127.0.0.1:9/callback/mono",
        validity_secs: 3600,
    })
    .unwrap();
    let a = http::post_json(
        &format!("{}/api/merchant/invoice/create", standin.api_url()),
        &[("X-Token", standin.token())],
        &body,
    )
    .unwrap();
    let invoice_id = match monobank::parse_create_answer(a.body.as_slice()).unwrap() {
        monobank::CreateAnswer::Created { invoice_id, .. } => invoice_id,
        other => panic!("{other:?}"),
    };
    order::note_ref(&mut db.conn(), o, "created", &invoice_id, None).unwrap();
    invoice_id
}

/// `paysys sweep CONFIG`: exit code, stdout, stderr.
fn sweep(config: &std::path::Path) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_paysys"))
        .arg("sweep")
        .arg(config)
        .env_remove("PAYSYS_CONFIG")
        .output()
        .expect("run paysys sweep");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn state(db: &TestDb, id: u64) -> String {
    db.conn()
        .exec_first::<String, _, _>("SELECT state FROM paysys_order WHERE id = ?", (id,))
        .unwrap()
        .unwrap()
}

/// Posts a provider's callback to `paysys_check.cgi/callback/<system>`.
fn post_callback(
    config: &std::path::Path,
    system: &str,
    content_type: &str,
    body: &[u8],
) -> Answer {
    let config = config.to_string_lossy().into_owned();
    let length = body.len().to_string();
    let path = format!("/callback/{system}");
    common::abills::run_paysys_check(
        &[
            ("GATEWAY_INTERFACE", "CGI/1.1"),
            ("PAYSYS_CONFIG", &config),
            ("REQUEST_METHOD", "POST"),
            ("SCRIPT_NAME", "/cgi-bin/paysys_check.cgi"),
            ("PATH_INFO", &path),
            ("CONTENT_TYPE", content_type),
            ("CONTENT_LENGTH", &length),
            ("REMOTE_ADDR", "203.0.113.9"),
        ],
        body,
    )
}

#[test]
fn a_payment_whose_callback_never_came_is_credited_once_on_abills() {
    for ddl in Ddl::ALL {
        let standin = LiqPay::start();
        let ab = Abills::on_ddl(
            ddl,
            &liqpay_system(&standin, "abills_id = 62\naccount = \"login\""),
        );
        let o = new_order(&ab.db, "liqpay", "test1", "100.00", 24);
        // What the page does before the browser leaves: ABillS's row "in progress".
        let config = paysys::config::Config::load(&ab.site.config_path()).unwrap();
        paysys::billing::of(config.database.billing)
            .open_order(
                &mut ab.db.conn(),
                config.system("liqpay").unwrap(),
                &o.order_id,
                1,
                o.amount,
                Domain::default(),
            )
            .unwrap();
        liqpay_checkout(&standin, &o);
        // Not paid yet: asked, nothing changes.
        let (code, out, err) = sweep(&ab.site.config_path());
        assert_eq!(code, Some(0), "{ddl:?}: {out}{err}");
        assert!(!out.contains('→'), "{out}");
        assert!(out.contains("1 still waiting"), "{out}");
        assert_eq!(state(&ab.db, o.id), "waiting");
        // Paid at LiqPay; the callback is lost.
        standin.set_status(&o.order_id, Some("success"));
        let (code, out, err) = sweep(&ab.site.config_path());
        assert_eq!(code, Some(0), "{ddl:?}: {out}{err}");
        let line = out
            .lines()
            .find(|l| l.contains('→'))
            .unwrap_or_else(|| panic!("{out}{err}"));
        assert!(
            line.starts_with(&format!(
                "{} liqpay test1 100.00 waiting → paid (prv_txn ",
                o.order_id
            )),
            "{line}"
        );
        assert!(out.contains("1 paid"), "{out}");
        assert_eq!(ab.deposit(1), "112.50", "{ddl:?}");
        assert_eq!(state(&ab.db, o.id), "paid");
        let ext = format!("LIQ:{}", o.order_id);
        let log = ab.log_row(&ext);
        assert_eq!(
            (log.system_id, log.status),
            (62, 2),
            "{ddl:?}: ABillS's row completed"
        );
        // The log line a request would have written.
        let journal = ab.site.log();
        assert!(
            journal.contains(&format!("cmd=sweep txn={}", o.order_id))
                && journal.contains("system=liqpay"),
            "{journal}"
        );
        // A second sweep: the order is not waiting any more, nothing changes.
        let (code, out, _) = sweep(&ab.site.config_path());
        assert_eq!(code, Some(0));
        assert!(!out.contains('→'), "{out}");
        assert!(out.contains("0 waiting orders"), "{out}");
        assert_eq!(ab.deposit(1), "112.50");
        assert_eq!(ab.payments().iter().filter(|p| p.ext_id == ext).count(), 1);
        // And the callback that comes after all: paid already, nothing more.
        let late = standin.callback_for(&o.order_id, "success");
        let a = post_callback(
            &ab.site.config_path(),
            "liqpay",
            "application/x-www-form-urlencoded",
            &late.body,
        );
        assert_eq!(a.status, 200, "{a:?}");
        assert_eq!(ab.deposit(1), "112.50");
        // paysys txn finds the order by its id.
        let txn = Command::new(env!("CARGO_BIN_EXE_paysys"))
            .args(["txn", &o.order_id, "--config"])
            .arg(ab.site.config_path())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&txn.stdout);
        assert_eq!(txn.status.code(), Some(0), "{text}");
        assert!(
            text.contains(&format!("card order {} of system liqpay: paid", o.order_id)),
            "{text}"
        );
        assert!(text.contains("committed: txn_id"), "{text}");
    }
}

#[test]
fn failed_and_expired_orders_are_noted_and_a_late_success_still_pays_on_nodeny() {
    let standin = LiqPay::start();
    let db = TestDb::new();
    let site = common::Site::new(&db.url, "");
    site.write_config(&format!(
        "[database]\nurl = \"{}\"\nbilling = \"nodeny\"\n\n[log]\nfile = \"var/log/paysys_check.log\"\n{}",
        db.url,
        liqpay_system(&standin, "account = \"payment_code\"")
    ));
    let before = db.balance(5907);
    let failed = new_order(&db, "liqpay", "59071", "10.00", 24);
    liqpay_checkout(&standin, &failed);
    standin.set_status(&failed.order_id, Some("failure"));
    // Validity 0: past it at once. Never paid → expired; paid late → paid.
    let gone = new_order(&db, "liqpay", "59071", "20.00", 0);
    liqpay_checkout(&standin, &gone);
    let late = new_order(&db, "liqpay", "59071", "30.00", 0);
    liqpay_checkout(&standin, &late);
    standin.set_status(&late.order_id, Some("success"));
    let waiting = new_order(&db, "liqpay", "59071", "40.00", 24);
    liqpay_checkout(&standin, &waiting);
    standin.set_status(&waiting.order_id, Some("processing"));

    let (code, out, err) = sweep(&site.config_path());
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.contains(&format!(
            "{} liqpay 59071 10.00 waiting → failed",
            failed.order_id
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "{} liqpay 59071 20.00 waiting → expired",
            gone.order_id
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "{} liqpay 59071 30.00 waiting → paid (prv_txn",
            late.order_id
        )),
        "{out}"
    );
    assert!(out.contains("1 paid, 1 failed, 1 expired"), "{out}");
    assert!(out.contains("1 still waiting"), "{out}");
    assert_eq!(out.lines().filter(|l| l.contains('→')).count(), 3, "{out}");
    assert_eq!(state(&db, failed.id), "failed");
    assert_eq!(state(&db, gone.id), "expired");
    assert_eq!(state(&db, late.id), "paid");
    assert_eq!(state(&db, waiting.id), "waiting");
    assert_eq!(db.pays(), 1, "only the late success credits");
    assert_ne!(db.balance(5907), before);
    // Nothing more on the next run (the failed order is asked again, still failed).
    let (code, out, _) = sweep(&site.config_path());
    assert_eq!(code, Some(0));
    assert!(!out.contains('→'), "{out}");
    assert_eq!(db.pays(), 1);
    // The subscriber tries again on the failed order's checkout, pays, and the callback
    // is lost: within the order's validity the sweeper still finds the success.
    standin.set_status(&failed.order_id, Some("success"));
    let (code, out, err) = sweep(&site.config_path());
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.contains(&format!(
            "{} liqpay 59071 10.00 failed → paid (prv_txn",
            failed.order_id
        )),
        "{out}"
    );
    assert_eq!(state(&db, failed.id), "paid");
    assert_eq!(db.pays(), 2);
    // paysys orders lists them, and by state.
    let list = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_paysys"))
            .arg("orders")
            .args(args)
            .arg(site.config_path())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let all = list(&[]);
    for o in [&failed, &gone, &late, &waiting] {
        assert!(all.contains(&o.order_id), "{all}");
    }
    let expired = list(&["--state", "expired"]);
    assert!(
        expired.contains(&gone.order_id) && !expired.contains(&late.order_id),
        "{expired}"
    );
}

#[test]
fn monobank_orders_are_asked_by_their_invoice() {
    let standin = Monobank::start();
    let ab = Abills::on_ddl(
        Ddl::V1_50,
        &monobank_system(&standin, "abills_id = 64\naccount = \"login\""),
    );
    let o = new_order(&ab.db, "mono", "test1", "25.00", 24);
    let invoice = monobank_invoice(&standin, &ab.db, &o);
    // An order whose invoice was never created was never sent on to Monobank: nothing to
    // ask while it is valid, left waiting.
    let orphan = new_order(&ab.db, "mono", "test1", "5.00", 24);
    // ABillS's row "in progress", as the page writes it.
    let config = paysys::config::Config::load(&ab.site.config_path()).unwrap();
    paysys::billing::of(config.database.billing)
        .open_order(
            &mut ab.db.conn(),
            config.system("mono").unwrap(),
            &orphan.order_id,
            1,
            orphan.amount,
            paysys::domain::Domain::default(),
        )
        .unwrap();
    let log_status = || -> u8 {
        ab.db
            .conn()
            .exec_first(
                "SELECT status FROM paysys_log WHERE transaction_id LIKE CONCAT('%:', ?)",
                (&orphan.order_id,),
            )
            .unwrap()
            .unwrap()
    };
    assert_eq!(log_status(), 1);
    let (code, out, err) = sweep(&ab.site.config_path());
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(!err.contains(&orphan.order_id), "{err}");
    assert!(
        out.contains("sweep: 1 waiting orders") && out.contains("1 still waiting"),
        "{out}"
    );
    standin.set_status(&invoice, "success");
    let (code, out, err) = sweep(&ab.site.config_path());
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.contains(&format!(
            "{} mono test1 25.00 waiting → paid (prv_txn",
            o.order_id
        )),
        "{out}"
    );
    assert_eq!(ab.deposit(1), "37.50");
    assert_eq!(state(&ab.db, orphan.id), "waiting");
    // Past its validity, it is given up without asking.
    ab.db
        .conn()
        .exec_drop(
            "UPDATE paysys_order SET valid_until = NOW() - INTERVAL 1 MINUTE WHERE id = ?",
            (orphan.id,),
        )
        .unwrap();
    let (code, out, err) = sweep(&ab.site.config_path());
    assert_eq!(code, Some(0), "{out}{err}");
    assert_eq!(state(&ab.db, orphan.id), "expired", "{out}{err}");
    // And ABillS's row says so (4, EXPIRED), as ABillS's portal leaves it.
    assert_eq!(log_status(), 4);
    // X-Token sent, as Monobank requires.
    assert!(standin.rejected().is_empty(), "{:?}", standin.rejected());
}

#[test]
fn a_genuine_order_is_reached_behind_more_junk_orders_than_a_run_asks() {
    let standin = LiqPay::start();
    let db = TestDb::new();
    let site = common::Site::new(&db.url, "");
    site.write_config(&format!(
        "[database]\nurl = \"{}\"\nbilling = \"nodeny\"\n\n[log]\nfile = \"var/log/paysys_check.log\"\n{}",
        db.url,
        liqpay_system(&standin, "account = \"payment_code\"")
    ));
    let junk = paysys::card::sweep::ORDERS_PER_RUN as usize + 200;
    // Orders nobody will pay, all older than the genuine one, inserted in bulk.
    let mut conn = db.conn();
    for chunk in (0..junk).collect::<Vec<_>>().chunks(500) {
        let values: Vec<String> = chunk
            .iter()
            .map(|i| {
                format!(
                    "('liqpay', 'junk{i:016}', '59071', 10.00, NOW() - INTERVAL 1 HOUR, \
                     'waiting', 10.00, 'UAH', NOW() + INTERVAL 23 HOUR, NOW())"
                )
            })
            .collect();
        conn.query_drop(format!(
            "INSERT INTO paysys_order (system_name, order_id, account, amount, created, \
             state, charged, currency, valid_until, updated) VALUES {}",
            values.join(", ")
        ))
        .unwrap();
    }
    let genuine = new_order(&db, "liqpay", "59071", "30.00", 24);
    liqpay_checkout(&standin, &genuine);
    standin.set_status(&genuine.order_id, Some("success"));
    let polled =
        |db: &TestDb| db.count("SELECT COUNT(*) FROM paysys_order WHERE polled IS NOT NULL");
    let mut runs = 0;
    while state(&db, genuine.id) == "waiting" {
        runs += 1;
        assert!(runs <= 2, "not reached in two runs");
        let (code, out, err) = sweep(&site.config_path());
        assert_eq!(code, Some(0), "{out}{err}");
        if runs == 1 {
            // One run asks ORDERS_PER_RUN of them, and notes that it did.
            assert_eq!(polled(&db), u64::from(paysys::card::sweep::ORDERS_PER_RUN));
        }
    }
    assert_eq!(state(&db, genuine.id), "paid");
    assert_eq!(db.pays(), 1);
    // The run after asks first those asked longest ago: every order is asked within two runs.
    let (code, out, err) = sweep(&site.config_path());
    assert_eq!(code, Some(0), "{out}{err}");
    assert_eq!(polled(&db), junk as u64 + 1);
}

#[test]
fn a_sweep_racing_the_callback_credits_once() {
    for ddl in Ddl::ALL {
        let standin = LiqPay::start();
        let ab = Abills::on_ddl(
            ddl,
            &liqpay_system(&standin, "abills_id = 62\naccount = \"login\""),
        );
        let config = ab.site.config_path();
        let orders: Vec<CardOrder> = (0..4)
            .map(|i| new_order(&ab.db, "liqpay", "test1", &format!("1{i}.00"), 24))
            .collect();
        for o in &orders {
            liqpay_checkout(&standin, o);
            standin.set_status(&o.order_id, Some("success"));
        }
        let callbacks: Vec<Vec<u8>> = orders
            .iter()
            .map(|o| standin.callback_for(&o.order_id, "success").body)
            .collect();
        // Two sweeps and every order's callback (twice) at the same moment.
        let sweeps = std::thread::scope(|s| {
            let sweeps: Vec<_> = (0..2).map(|_| s.spawn(|| sweep(&config))).collect();
            let posts: Vec<_> = callbacks
                .iter()
                .chain(callbacks.iter())
                .map(|body| {
                    s.spawn(|| {
                        post_callback(&config, "liqpay", "application/x-www-form-urlencoded", body)
                    })
                })
                .collect();
            for p in posts {
                let a = p.join().unwrap();
                assert_eq!(a.status, 200, "{a:?}");
            }
            sweeps
                .into_iter()
                .map(|h| h.join().unwrap())
                .collect::<Vec<_>>()
        });
        for (code, out, err) in &sweeps {
            assert_eq!(*code, Some(0), "{ddl:?}: {out}{err}");
        }
        // 12.50 + 10 + 11 + 12 + 13, once each.
        assert_eq!(ab.deposit(1), "58.50", "{ddl:?}: {sweeps:?}");
        for o in &orders {
            let ext = format!("LIQ:{}", o.order_id);
            assert_eq!(
                ab.payments().iter().filter(|p| p.ext_id == ext).count(),
                1,
                "{ddl:?}"
            );
            assert_eq!(state(&ab.db, o.id), "paid");
        }
        // Of all the sweeps' lines, at most one per order says it paid it.
        let paid_lines = sweeps
            .iter()
            .flat_map(|(_, out, _)| {
                out.lines()
                    .filter(|l| l.contains("→ paid"))
                    .map(str::to_string)
            })
            .collect::<Vec<_>>();
        for o in &orders {
            assert!(
                paid_lines
                    .iter()
                    .filter(|l| l.starts_with(&o.order_id))
                    .count()
                    <= 1,
                "{paid_lines:?}"
            );
        }
    }
}

#[test]
fn a_provider_that_does_not_answer_is_an_error_and_changes_nothing() {
    let standin = LiqPay::start();
    let dead = format!("http://127.0.0.1:{}/api/request", {
        // A port nobody listens on: bound, then let go.
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    });
    let system = liqpay_system(&standin, "abills_id = 62\naccount = \"login\"")
        .replace(&standin.api_url(), &dead);
    let ab = Abills::on_ddl(Ddl::V1_50, &system);
    let o = new_order(&ab.db, "liqpay", "test1", "10.00", 0);
    let started = Instant::now();
    let (code, out, err) = sweep(&ab.site.config_path());
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(err.contains("did not answer"), "{err}");
    assert!(started.elapsed().as_secs() < 30);
    // Past its validity, but not given up unasked: it may have been paid.
    assert_eq!(state(&ab.db, o.id), "waiting");
}

/// The sweeper pays an order the long way and waits for the subscriber's row (another
/// writer holds it) when the provider's callback of the same order comes. The callback
/// waits for the order's row, before it has written anything, so a terminal's pay to
/// somebody else goes through meanwhile. (When the long way locked the order last, the
/// callback's first statement, an `INSERT … SELECT`, passed the order and waited for the
/// txn's key holding paysys_txn's AUTO-INC lock, and every pay's INSERT waited behind it
/// until the callback gave up.) Credited once.
#[test]
fn a_callback_waiting_for_a_sweep_of_its_order_holds_up_no_other_pay() {
    let standin = LiqPay::start();
    let db = TestDb::new();
    let site = common::Site::new(
        &db.url,
        &liqpay_system(&standin, "account = \"payment_code\""),
    );
    let config = std::fs::read_to_string(site.config_path()).unwrap();
    assert!(config.contains("lock_timeout = 3"));
    site.write_config(&config.replace("lock_timeout = 3", "lock_timeout = 20"));
    let config = site.config_path();
    let before = (db.balance(5907), db.balance(1234));
    let o = new_order(&db, "liqpay", "59071", "30.00", 24);
    liqpay_checkout(&standin, &o);
    standin.set_status(&o.order_id, Some("success"));
    let callback = standin.callback_for(&o.order_id, "success").body;
    let mut holder = db.conn();
    holder.query_drop("START TRANSACTION").unwrap();
    holder
        .query_drop("SELECT * FROM users WHERE id = 5907 FOR UPDATE")
        .unwrap();
    std::thread::scope(|s| {
        let sweeping = s.spawn(|| sweep(&config));
        db.wait_until_running("UPDATE users");
        let posted = s.spawn(|| {
            post_callback(
                &config,
                "liqpay",
                "application/x-www-form-urlencoded",
                &callback,
            )
        });
        db.wait_until_running("INSERT INTO paysys_txn");
        // Time for the callback to reach whatever it waits for.
        std::thread::sleep(std::time::Duration::from_millis(300));
        let pay = site.get(&common::pay_query("7001", "12340", "5.00"));
        assert_eq!(pay.result(), 0, "{}", pay.body);
        assert!(
            !posted.is_finished(),
            "the terminal's pay waited until the callback ended: {}",
            site.log()
        );
        holder.query_drop("ROLLBACK").unwrap();
        let (code, out, err) = sweeping.join().unwrap();
        assert_eq!(code, Some(0), "{out}{err}");
        let a = posted.join().unwrap();
        assert_eq!(a.status, 200, "{a:?}");
    });
    assert_eq!(state(&db, o.id), "paid");
    let plus = |was: &str, sum: f64| format!("{:.2}", was.parse::<f64>().unwrap() + sum);
    assert_eq!(db.balance(5907), plus(&before.0, 30.0));
    assert_eq!(db.balance(1234), plus(&before.1, 5.0));
    assert_eq!(db.pays(), 2);
}
