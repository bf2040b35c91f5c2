//! `paysys terminal` against `osmp.cgi` (and `paysys_check.cgi`) behind the real web
//! servers: nginx + fcgiwrap and Apache, private instances on free 127.0.0.1 ports, each
//! with a database of its own (tests/e2e, tests/webserver). The terminal is the real
//! `paysys` executable; what it says is checked against the rows and the log.

mod common;
#[macro_use]
mod webserver;

mod e2e;

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use e2e::fixture;
use mysql::prelude::Queryable;
use webserver::{Kind, Options, TempPrefix, WebServer};

struct Run {
    code: i32,
    out: String,
    err: String,
}

fn terminal(args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_paysys"))
        .arg("terminal")
        .args(args)
        .output()
        .expect("run paysys terminal");
    let run = Run {
        code: out.status.code().unwrap_or(-1),
        out: String::from_utf8_lossy(&out.stdout).into_owned(),
        err: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    eprintln!("paysys terminal {}\n{}{}", args.join(" "), run.out, run.err);
    run
}

fn osmp_url(f: &e2e::Fixture) -> String {
    format!("{}/cgi-bin/osmp.cgi", f.web.base_url())
}

fn check_pay_repeat_status(kind: Kind) {
    let Some(f) = fixture(kind, "term", &Options::default()) else {
        return;
    };
    let url = osmp_url(&f);

    let r = terminal(&["--url", &url, "check", "59071"]);
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(
        r.out.contains("verdict: OK: account 59071 can be paid"),
        "{}",
        r.out
    );
    assert!(r.out.contains("fio: iv***"), "the masked name: {}", r.out);
    assert!(r.out.contains("balance: 100.00"), "{}", r.out);
    assert!(
        r.out.contains("-> GET http://127.0.0.1:"),
        "the request is shown: {}",
        r.out
    );
    assert!(
        r.out.contains("<- HTTP 200"),
        "the raw answer is shown: {}",
        r.out
    );

    let r = terminal(&["--url", &url, "--txn-id", "666", "pay", "59071", "10.25"]);
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(
        r.out
            .contains("verdict: CONFIRMED: 10.25 credited to account 59071, txn_id 666, prv_txn"),
        "{}",
        r.out
    );
    assert_eq!(f.db.balance(5907), "110.25");

    // The terminal's repeat: the same txn_id is answered, not credited again.
    let r = terminal(&[
        "--url", &url, "--txn-id", "666", "--post", "pay", "59071", "10.25",
    ]);
    assert_eq!(r.code, 0);
    assert!(r.out.contains("-> POST"), "{}", r.out);
    assert_eq!(f.db.balance(5907), "110.25");
    assert_eq!((f.db.pays(), f.db.txns()), (1, 1));

    // The same txn_id with another sum: a final refusal.
    let r = terminal(&["--url", &url, "--txn-id", "666", "pay", "59071", "11"]);
    assert_eq!(r.code, 1, "{}", r.out);
    assert!(r.out.contains("verdict: REFUSED"), "{}", r.out);
    assert!(r.out.contains("result 7"), "{}", r.out);

    let r = terminal(&["--url", &url, "--txn-id", "666", "--status"]);
    assert_eq!(r.code, 0);
    assert!(
        r.out
            .contains("verdict: CONFIRMED: payment 666 is committed, sum 10.25"),
        "{}",
        r.out
    );
    let r = terminal(&["--url", &url, "--txn-id", "667", "--status"]);
    assert_eq!(r.code, 1, "an unknown payment: {}", r.out);

    // The cancel reverses it as NoDeny's admin deletes a payment: the money back, the pays
    // row kept as an old record (501) with an event of its deletion (502).
    let r = terminal(&["--url", &url, "--txn-id", "666", "--cancel"]);
    assert_eq!(r.code, 0, "{}", r.out);
    assert!(r.out.contains("asking its status first"), "{}", r.out);
    assert!(
        r.out.contains("command=cancel&txn_id=666&prv_txn="),
        "{}",
        r.out
    );
    assert!(
        r.out.contains("verdict: CONFIRMED: payment 666 (prv_txn "),
        "{}",
        r.out
    );
    assert!(r.out.contains(") is cancelled"), "{}", r.out);
    assert_eq!(f.db.balance(5907), "100.00");
    let payments = "SELECT COUNT(*) FROM pays WHERE type = 10";
    assert_eq!(f.db.count(payments), 0);
    assert_eq!(
        f.db.count("SELECT COUNT(*) FROM pays WHERE type = 50 AND category IN (501, 502)"),
        2
    );

    // A bad check digit: refused at once, no money.
    let r = terminal(&["--url", &url, "pay", "59072", "5"]);
    assert_eq!(r.code, 1);
    assert!(r.out.contains("result 4"), "{}", r.out);
    assert_eq!(f.db.count(payments), 0);
    // Each request is one log line: check, pay, repeat, conflict, 2 status, status+cancel,
    // bad code.
    assert_eq!(f.log_lines(9).len(), 9, "{}", f.log());
}
both!(check_pay_repeat_status);

/// A temporary error, then success: the subscriber's row is locked by another transaction,
/// so the first pay waits out `lock_timeout` and answers result 1 (nod13); the terminal asks
/// again, the lock is gone, and the payment is credited once.
fn temporary_error_then_success(kind: Kind) {
    let Some(f) = fixture(kind, "retry", &Options::default()) else {
        return;
    };
    let config = f.prefix.0.join("etc/paysys.toml");
    let text = fs::read_to_string(&config).unwrap();
    e2e::write_config_text(
        &f.prefix.0,
        &text.replace("lock_timeout = 3", "lock_timeout = 1"),
    );
    let mut holder = f.db.conn();
    holder.query_drop("START TRANSACTION").unwrap();
    holder
        .query_drop("SELECT balance FROM users WHERE id = 5907 FOR UPDATE")
        .unwrap();

    let url = osmp_url(&f);
    let child = std::thread::spawn(move || {
        terminal(&["--url", &url, "--txn-id", "4242", "pay", "59071", "7.00"])
    });
    // Release the lock once the first attempt has been answered (and logged).
    let deadline = Instant::now() + Duration::from_secs(30);
    while f.log().is_empty() {
        assert!(
            Instant::now() < deadline,
            "no temporary answer: {}",
            f.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    holder.query_drop("ROLLBACK").unwrap();
    let r = child.join().unwrap();
    assert_eq!(r.code, 0, "{}", r.out);
    assert!(
        r.out.contains("OSMP result 1: temporary error"),
        "{}",
        r.out
    );
    assert!(r.out.contains("asking again in 1 s"), "{}", r.out);
    assert!(r.out.contains("(attempt 2)"), "{}", r.out);
    assert!(
        r.out.contains("verdict: CONFIRMED: 7.00 credited"),
        "{}",
        r.out
    );
    assert_eq!(f.db.balance(5907), "107.00");
    assert_eq!((f.db.pays(), f.db.txns()), (1, 1));
}
both!(temporary_error_then_success);

fn basic_auth(kind: Kind) {
    let opts = Options {
        basic_auth: Some(("terminal".to_string(), "s3cret".to_string())),
        ..Options::default()
    };
    let Some(f) = fixture(kind, "tauth", &opts) else {
        return;
    };
    let url = osmp_url(&f);
    let r = terminal(&["--url", &url, "pay", "59071", "1"]);
    assert_eq!(r.code, 1, "{}", r.out);
    assert!(
        r.out.contains("REFUSED by the web server: HTTP 401"),
        "{}",
        r.out
    );
    assert!(r.out.contains("--user U --password P"), "{}", r.out);
    assert_eq!(f.db.txns(), 0);
    let r = terminal(&[
        "--url",
        &url,
        "--user",
        "terminal",
        "--password",
        "s3cret",
        "pay",
        "59071",
        "1",
    ]);
    assert_eq!(r.code, 0, "{}", r.out);
    assert!(
        !r.out.contains("s3cret"),
        "the password is never printed: {}",
        r.out
    );
    assert_eq!(f.db.balance(5907), "101.00");
}
both!(basic_auth);

/// PayPRO: the shipped own-provider description, printed for this endpoint, pre-checks
/// (the screen shows the masked name and the balance) and pays.
fn paypro_terminal_pays_with_the_shipped_description(kind: Kind) {
    let Some(f) = fixture(kind, "paypro", &Options::default()) else {
        return;
    };
    let url = osmp_url(&f);
    let desc = f.prefix.0.join("MyProviders.ini");
    let out = Command::new(env!("CARGO_BIN_EXE_paysys"))
        .args(["paypro-provider", "--url", &url, "--cp1251"])
        .output()
        .unwrap();
    assert!(out.status.success());
    fs::write(&desc, &out.stdout).unwrap();
    let desc = desc.to_str().unwrap();

    let r = terminal(&["--paypro", desc, "--provider", "1", "check", "59071"]);
    assert_eq!(r.code, 0, "{}{}", r.out, r.err);
    assert!(r.out.contains("Абонент: iv***"), "{}", r.out);
    assert!(r.out.contains("Баланс: 100.00"), "{}", r.out);

    let r = terminal(&[
        "--paypro",
        desc,
        "--provider",
        "-1",
        "--txn-id",
        "900",
        "pay",
        "59071",
        "25",
    ]);
    assert_eq!(r.code, 0, "{}{}", r.out, r.err);
    assert!(
        r.out
            .contains("command=check&txn_id=900&account=59071&sum=0.00"),
        "{}",
        r.out
    );
    assert!(
        r.out
            .contains("command=pay&txn_id=900&account=59071&sum=25.00&txn_date="),
        "{}",
        r.out
    );
    assert!(
        r.out.contains("verdict: CONFIRMED: 25.00 credited"),
        "{}",
        r.out
    );
    assert_eq!(f.db.balance(5907), "125.00");

    // A pre-check the endpoint refuses: the payment packet is never sent.
    let r = terminal(&["--paypro", desc, "--provider", "-1", "pay", "59072", "25"]);
    assert_eq!(r.code, 1);
    assert!(r.out.contains("REFUSED at the pre-check"), "{}", r.out);
    assert!(!r.out.contains("command=pay"), "{}", r.out);

    // Checked with sum 0, refused on the pay (above max_sum): PayPRO counts it as paid, the
    // verdict does not, and the refusal is on record for paysys report.
    let r = terminal(&[
        "--paypro",
        desc,
        "--provider",
        "-1",
        "--txn-id",
        "901",
        "pay",
        "59071",
        "20000",
    ]);
    assert_eq!(r.code, 1, "{}", r.out);
    assert!(
        r.out.contains("PayPRO counts any non-empty answer as paid"),
        "{}",
        r.out
    );
    assert!(
        r.out
            .contains("verdict: REFUSED: the endpoint refused the payment (result 242"),
        "{}",
        r.out
    );
    assert_eq!(f.db.balance(5907), "125.00");
    assert_eq!(
        f.db.count("SELECT COUNT(*) FROM paysys_refusal WHERE txn_id = '901'"),
        1
    );
}
both!(paypro_terminal_pays_with_the_shipped_description);

/// `paysys_check.cgi` on ABillS, where a payment can be cancelled: pay, then `--cancel`
/// finds the prv_txn by a status query and reverses it.
fn pay_and_cancel_on_abills(kind: Kind) {
    let systems = common::abills::system("osmp", &["127.0.0.1"], "account = \"login\"");
    let Some((web, _prefix, db)) = abills_site(kind, "abills", &systems) else {
        return;
    };
    let url = format!("{}/cgi-bin/paysys_check.cgi", web.base_url());
    let deposit = || -> String {
        db.conn()
            .query_first::<String, _>("SELECT CAST(deposit AS CHAR) FROM bills WHERE id = 1")
            .unwrap()
            .unwrap()
    };
    let before = deposit();
    let r = terminal(&["--url", &url, "check", "test1"]);
    assert_eq!(r.code, 0, "{}", r.out);
    assert!(r.out.contains("fio: Ив*** И*** И*******"), "{}", r.out);
    let r = terminal(&["--url", &url, "--txn-id", "31337", "pay", "test1", "5"]);
    assert_eq!(r.code, 0, "{}", r.out);
    assert_ne!(deposit(), before);
    let r = terminal(&["--url", &url, "--txn-id", "31337", "--cancel"]);
    assert_eq!(r.code, 0, "{}", r.out);
    assert!(
        r.out.contains("verdict: CONFIRMED: payment 31337 (prv_txn"),
        "{}",
        r.out
    );
    assert_eq!(deposit(), before, "the cancel took the 5.00 back");
    drop(web);
}
both!(pay_and_cancel_on_abills);

/// `--protocol 24nonstop` against paysys_check.cgi with a 24NonStop system: signed check,
/// pay, repeat and status; a wrong secret is refused before anything is looked up.
fn nonstop24_terminal(kind: Kind) {
    let systems = common::abills::system(
        "24ns",
        &["127.0.0.1"],
        "account = \"login\"\nsecret = \"k3y\"\nsign = \"sha1\"\nsign_amount = true",
    )
    .replace("protocol = \"osmp\"", "protocol = \"24nonstop\"");
    let Some((web, _prefix, db)) = abills_site(kind, "24ns", &systems) else {
        return;
    };
    let url = format!("{}/cgi-bin/paysys_check.cgi", web.base_url());
    let ns = |extra: &[&str]| -> Run {
        let mut a = vec![
            "--url",
            &url,
            "--protocol",
            "24nonstop",
            "--secret",
            "k3y",
            "--sign",
            "sha1",
            "--sign-amount",
            "--service-id",
            "Internet",
        ];
        a.extend_from_slice(extra);
        terminal(&a)
    };
    let r = ns(&["check", "test1"]);
    assert_eq!(r.code, 0, "{}", r.out);
    assert!(
        r.out.contains("24NonStop status_code 21: payment possible"),
        "{}",
        r.out
    );
    assert!(r.out.contains("name: Ив*** И*** И*******"), "{}", r.out);
    let guid = "6F9619FF-8B86-D011-B42D-00C04FC964FF";
    let r = ns(&["--txn-id", guid, "pay", "test1", "4.50"]);
    assert_eq!(r.code, 0, "{}", r.out);
    assert!(
        r.out
            .contains("ACT=4&PAY_ACCOUNT=test1&SERVICE_ID=Internet"),
        "{}",
        r.out
    );
    assert!(
        r.out.contains("verdict: CONFIRMED: 4.50 credited"),
        "{}",
        r.out
    );
    let r = ns(&["--txn-id", guid, "pay", "test1", "4.50"]);
    assert_eq!(r.code, 0, "the repeat: {}", r.out);
    let r = ns(&["--txn-id", guid, "--status"]);
    assert_eq!(r.code, 0, "{}", r.out);
    assert!(r.out.contains("24NonStop status_code 11"), "{}", r.out);
    let credited: u64 = db
        .conn()
        .query_first("SELECT COUNT(*) FROM payments WHERE sum = 4.5")
        .unwrap()
        .unwrap();
    assert_eq!(credited, 1);
    // A terminal with the wrong secret: -101, final.
    let r = terminal(&[
        "--url",
        &url,
        "--protocol",
        "24nonstop",
        "--secret",
        "guess",
        "--sign",
        "sha1",
        "check",
        "test1",
    ]);
    assert_eq!(r.code, 1, "{}", r.out);
    assert!(r.out.contains("status_code -101"), "{}", r.out);
    assert!(!r.out.contains("k3y"), "{}", r.out);
    drop(web);
}
both!(nonstop24_terminal);

/// paysys_check.cgi behind `kind` on an ABillS database with these `[[system]]` tables.
fn abills_site(
    kind: Kind,
    tag: &str,
    systems: &str,
) -> Option<(WebServer, TempPrefix, common::TestDb)> {
    if common::server_url().contains("socket=") {
        eprintln!("skipped: the CGI runs as www-data and needs a TCP database URL");
        return None;
    }
    let prefix = TempPrefix(webserver::temp_prefix(&format!("term-{tag}-{kind}")).unwrap());
    let p = prefix.0.as_path();
    webserver::prepare_prefix(p).unwrap();
    webserver::install_cgi(
        p,
        "paysys_check.cgi",
        Path::new(env!("CARGO_BIN_EXE_paysys_check")),
    )
    .unwrap();
    let db = common::TestDb::with_fixture(&common::abills::fixture());
    e2e::write_config_text(p, &common::abills::config_text(&db.url, systems));
    match WebServer::start(kind, p, &Options::default()).unwrap() {
        Some(web) => Some((web, prefix, db)),
        None => {
            eprintln!("skipped: {kind} is not installed");
            None
        }
    }
}

/// `--protocol city24` and `--protocol privat`: check, pay, repeat and cancel by the
/// payment's own id, through paysys_check.cgi.
fn city24_and_privat_terminals(kind: Kind) {
    for protocol in ["city24", "privat"] {
        let systems = common::abills::system(protocol, &["127.0.0.1"], "account = \"login\"")
            .replace("protocol = \"osmp\"", &format!("protocol = \"{protocol}\""));
        let Some((web, _prefix, db)) = abills_site(kind, protocol, &systems) else {
            return;
        };
        let url = format!("{}/cgi-bin/paysys_check.cgi", web.base_url());
        let t = |extra: &[&str]| -> Run {
            let mut a = vec!["--url", url.as_str(), "--protocol", protocol];
            a.extend_from_slice(extra);
            terminal(&a)
        };
        let r = t(&["check", "test1"]);
        assert_eq!(r.code, 0, "{protocol}: {}", r.out);
        assert!(
            r.out.contains("Ив*** И*** И*******"),
            "{protocol}: {}",
            r.out
        );
        let r = t(&["--txn-id", "PB-31337", "pay", "test1", "7.00"]);
        assert_eq!(r.code, 0, "{protocol}: {}", r.out);
        assert!(
            r.out.contains("verdict: CONFIRMED: 7.00 credited"),
            "{protocol}: {}",
            r.out
        );
        assert_eq!(t(&["--txn-id", "PB-31337", "pay", "test1", "7.00"]).code, 0);
        let credited = || -> u64 {
            db.conn()
                .query_first("SELECT COUNT(*) FROM payments WHERE sum = 7")
                .unwrap()
                .unwrap()
        };
        assert_eq!(credited(), 1, "{protocol}");
        let r = t(&["--txn-id", "PB-31337", "--cancel"]);
        assert_eq!(r.code, 0, "{protocol}: {}", r.out);
        assert!(r.out.contains("is cancelled"), "{protocol}: {}", r.out);
        assert_eq!(credited(), 0, "{protocol}: the cancel removed the payment");
        let r = t(&["check", "nobody"]);
        assert_eq!(r.code, 1, "{protocol}: {}", r.out);
        drop(web);
    }
}
both!(city24_and_privat_terminals);

/// `--protocol kaspi`: OSMP's requests, Kaspi's `txn_id` and `prv_txn_id` read back; the
/// cancel asks for the payment's `prv_txn_id` first.
fn kaspi_terminal(kind: Kind) {
    let systems = common::abills::system(
        "kaspi",
        &["127.0.0.1"],
        "account = \"login\"\nabills_id = 130",
    )
    .replace("protocol = \"osmp\"", "protocol = \"kaspi\"");
    let Some((web, _prefix, db)) = abills_site(kind, "kaspi", &systems) else {
        return;
    };
    let url = format!("{}/cgi-bin/paysys_check.cgi", web.base_url());
    let t = |extra: &[&str]| -> Run {
        let mut a = vec!["--url", url.as_str(), "--protocol", "kaspi"];
        a.extend_from_slice(extra);
        terminal(&a)
    };
    let r = t(&["check", "test1"]);
    assert_eq!(r.code, 0, "{}", r.out);
    assert!(r.out.contains("Kaspi result 0"), "{}", r.out);
    let r = t(&["--txn-id", "31337", "pay", "test1", "7.00"]);
    assert_eq!(r.code, 0, "{}", r.out);
    assert!(
        r.out.contains("verdict: CONFIRMED: 7.00 credited"),
        "{}",
        r.out
    );
    assert!(r.out.contains("prv_txn"), "{}", r.out);
    assert_eq!(t(&["--txn-id", "31337", "pay", "test1", "7.00"]).code, 0);
    let credited = || -> u64 {
        db.conn()
            .query_first("SELECT COUNT(*) FROM payments WHERE sum = 7")
            .unwrap()
            .unwrap()
    };
    assert_eq!(credited(), 1);
    let r = t(&["--txn-id", "31337", "--status"]);
    assert_eq!(r.code, 0, "{}", r.out);
    let r = t(&["--txn-id", "31337", "--cancel"]);
    assert_eq!(r.code, 0, "{}", r.out);
    assert!(r.out.contains("is cancelled"), "{}", r.out);
    assert_eq!(credited(), 0, "the cancel removed the payment");
    let r = t(&["check", "nobody"]);
    assert_eq!(r.code, 1, "{}", r.out);
    drop(web);
}
both!(kaspi_terminal);

/// `--protocol portmone`: a check, a PAYED notice, its repeat and its cancel (the notice
/// with the sum negative), through paysys_check.cgi.
fn portmone_terminal(kind: Kind) {
    let systems = common::abills::system(
        "portmone",
        &["127.0.0.1"],
        "account = \"login\"\nabills_id = 131",
    )
    .replace("protocol = \"osmp\"", "protocol = \"portmone\"");
    let Some((web, _prefix, db)) = abills_site(kind, "portmone", &systems) else {
        return;
    };
    let url = format!("{}/cgi-bin/paysys_check.cgi", web.base_url());
    let t = |extra: &[&str]| -> Run {
        let mut a = vec!["--url", url.as_str(), "--protocol", "portmone"];
        a.extend_from_slice(extra);
        terminal(&a)
    };
    let r = t(&["check", "test1"]);
    assert_eq!(r.code, 0, "{}", r.out);
    assert!(r.out.contains("DEBT: -12.50"), "{}", r.out);
    let r = t(&["--txn-id", "PM-31337", "pay", "test1", "7.00"]);
    assert_eq!(r.code, 0, "{}", r.out);
    assert!(
        r.out.contains("verdict: CONFIRMED: 7.00 credited"),
        "{}",
        r.out
    );
    assert_eq!(t(&["--txn-id", "PM-31337", "pay", "test1", "7.00"]).code, 0);
    let credited = || -> u64 {
        db.conn()
            .query_first("SELECT COUNT(*) FROM payments WHERE sum = 7")
            .unwrap()
            .unwrap()
    };
    assert_eq!(credited(), 1);
    // A cancel without the sum is not sent at all.
    assert_eq!(t(&["--txn-id", "PM-31337", "--cancel"]).code, 2);
    let r = t(&[
        "--txn-id",
        "PM-31337",
        "--param",
        "PAYED_AMOUNT=-7.00",
        "--cancel",
    ]);
    assert_eq!(r.code, 0, "{}", r.out);
    assert!(r.out.contains("is cancelled"), "{}", r.out);
    assert_eq!(credited(), 0, "the cancel removed the payment");
    let r = t(&["check", "nobody"]);
    assert_eq!(r.code, 1, "{}", r.out);
    assert!(r.out.contains("payer not found"), "{}", r.out);
    drop(web);
}
both!(portmone_terminal);

/// `--protocol easypay`: requests signed with the test "EasySoft" key, a pay booked then
/// confirmed, its cancel by PaymentId; unsigned requests refused.
fn easypay_terminal(kind: Kind) {
    let fixture = common::repo().join("tests/fixtures/easypay");
    // The CGI runs as www-data: the certificate goes into the install base it can read.
    let systems = common::abills::system(
        "easypay",
        &["127.0.0.1"],
        "account = \"login\"\ncertificate = \"etc/easysoft.cer\"",
    )
    .replace("protocol = \"osmp\"", "protocol = \"easypay\"");
    let Some((web, prefix, db)) = abills_site(kind, "easypay", &systems) else {
        return;
    };
    std::fs::copy(
        fixture.join("easysoft.cer"),
        prefix.0.join("etc/easysoft.cer"),
    )
    .unwrap();
    let url = format!("{}/cgi-bin/paysys_check.cgi", web.base_url());
    let key = fixture.join("easysoft.key");
    let key = key.to_str().unwrap();
    let t = |extra: &[&str]| -> Run {
        let mut a = vec![
            "--url",
            url.as_str(),
            "--protocol",
            "easypay",
            "--private-key",
            key,
        ];
        a.extend_from_slice(extra);
        terminal(&a)
    };
    let r = t(&["check", "test1"]);
    assert_eq!(r.code, 0, "{}", r.out);
    assert!(r.out.contains("Name: Ив*** И*** И*******"), "{}", r.out);
    let r = t(&["--txn-id", "EP-1", "pay", "test1", "2.00"]);
    assert_eq!(r.code, 0, "{}", r.out);
    assert!(r.out.contains("booked as PaymentId"), "{}", r.out);
    assert!(
        r.out.contains("verdict: CONFIRMED: 2.00 credited"),
        "{}",
        r.out
    );
    let payment_id: u64 = db
        .conn()
        .query_first("SELECT id FROM paysys_order WHERE order_id = 'EP-1'")
        .unwrap()
        .unwrap();
    let r = t(&[
        "--txn-id",
        "EP-1",
        "--cancel",
        "--prv-txn",
        &payment_id.to_string(),
    ]);
    assert_eq!(r.code, 0, "{}", r.out);
    // Without the key: unsigned, refused.
    let r = terminal(&["--url", &url, "--protocol", "easypay", "check", "test1"]);
    assert_eq!(r.code, 1, "{}", r.out);
    assert!(r.out.contains("StatusCode -5"), "{}", r.out);
    drop(web);
}
both!(easypay_terminal);

/// `--protocol click`: a check is a Prepare, a pay a Prepare then its Complete, signed with
/// the system's secret_key; a repeat credits nothing; a wrong key is -1, and usage without
/// the keys is refused before anything is sent.
fn click_terminal(kind: Kind) {
    let systems = common::abills::system(
        "click",
        &["127.0.0.1"],
        "account = \"login\"\nservice_id = \"17449\"\nsecret_key = \"k3y\"\nabills_id = 99",
    )
    .replace("protocol = \"osmp\"", "protocol = \"click\"");
    let Some((web, _prefix, db)) = abills_site(kind, "click", &systems) else {
        return;
    };
    let url = format!("{}/cgi-bin/paysys_check.cgi", web.base_url());
    let t = |secret: &str, extra: &[&str]| -> Run {
        let mut a = vec![
            "--url",
            url.as_str(),
            "--protocol",
            "click",
            "--secret",
            secret,
            "--service-id",
            "17449",
        ];
        a.extend_from_slice(extra);
        terminal(&a)
    };
    let r = t("k3y", &["check", "test1", "3.00"]);
    assert_eq!(r.code, 0, "{}", r.out);
    let r = t("k3y", &["--txn-id", "31337", "pay", "test1", "3.00"]);
    assert_eq!(r.code, 0, "{}", r.out);
    assert!(r.out.contains("booked as PaymentId"), "{}", r.out);
    assert!(
        r.out.contains("verdict: CONFIRMED: 3.00 credited"),
        "{}",
        r.out
    );
    assert_eq!(
        t("k3y", &["--txn-id", "31337", "pay", "test1", "3.00"]).code,
        0
    );
    let credited: u64 = db
        .conn()
        .query_first("SELECT COUNT(*) FROM payments WHERE sum = 3")
        .unwrap()
        .unwrap();
    assert_eq!(credited, 1);
    let r = t("Zq9-not-the-key", &["check", "test1", "3.00"]);
    assert_eq!(r.code, 1, "{}", r.out);
    assert!(r.out.contains("Click error -1"), "{}", r.out);
    // Never the secret on the screen.
    assert!(!r.out.contains("Zq9-not-the-key"), "{}", r.out);
    let r = terminal(&["--url", &url, "--protocol", "click", "check", "test1", "1"]);
    assert_eq!(r.code, 2, "{}", r.out);
    let r = t("k3y", &["--txn-id", "31337", "--status"]);
    assert_eq!(r.code, 2, "{}", r.out);
    drop(web);
}
both!(click_terminal);

/// `--protocol payme`: through the shipped snippet, the key reaches paysys_check.cgi in the
/// Authorization header; a pay is a Create then its Perform, once; a wrong key is -32504.
fn payme_terminal(kind: Kind) {
    let systems = common::abills::system(
        "payme",
        &["127.0.0.1"],
        "account = \"login\"\nkey = \"k3y&x\"\nabills_id = 98",
    )
    .replace("protocol = \"osmp\"", "protocol = \"payme\"");
    let Some((web, _prefix, db)) = abills_site(kind, "payme", &systems) else {
        return;
    };
    let url = format!("{}/cgi-bin/paysys_check.cgi", web.base_url());
    let t = |key: &str, extra: &[&str]| -> Run {
        let mut a = vec![
            "--url",
            url.as_str(),
            "--protocol",
            "payme",
            "--secret",
            key,
        ];
        a.extend_from_slice(extra);
        terminal(&a)
    };
    let r = t("k3y&x", &["check", "test1", "4.00"]);
    assert_eq!(r.code, 0, "{}", r.out);
    let r = t("k3y&x", &["--txn-id", "pm-31337", "pay", "test1", "4.00"]);
    assert_eq!(r.code, 0, "{}", r.out);
    assert!(r.out.contains("booked as PaymentId"), "{}", r.out);
    assert_eq!(
        t("k3y&x", &["--txn-id", "pm-31337", "pay", "test1", "4.00"]).code,
        1
    );
    let credited: u64 = db
        .conn()
        .query_first("SELECT COUNT(*) FROM payments WHERE sum = 4")
        .unwrap()
        .unwrap();
    assert_eq!(credited, 1);
    // --status is CheckTransaction: performed; --cancel reverses it; --status says so.
    let r = t("k3y&x", &["--txn-id", "pm-31337", "--status"]);
    assert_eq!(r.code, 0, "{}", r.out);
    assert!(
        r.out
            .contains("verdict: CONFIRMED: payment pm-31337 is performed"),
        "{}",
        r.out
    );
    let r = t("k3y&x", &["--txn-id", "pm-31337", "--cancel"]);
    assert_eq!(r.code, 0, "{}", r.out);
    assert!(r.out.contains("CancelTransaction"), "{}", r.out);
    assert!(r.out.contains("is cancelled"), "{}", r.out);
    let credited: u64 = db
        .conn()
        .query_first("SELECT COUNT(*) FROM payments WHERE sum = 4")
        .unwrap()
        .unwrap();
    assert_eq!(credited, 0, "the cancel removed the payment");
    let r = t("k3y&x", &["--txn-id", "pm-31337", "--status"]);
    assert_eq!(r.code, 1, "{}", r.out);
    assert!(
        r.out.contains("was performed and cancelled since"),
        "{}",
        r.out
    );
    let r = t("k3y&x", &["--txn-id", "pm-404", "--status"]);
    assert_eq!(r.code, 1, "{}", r.out);
    assert!(r.out.contains("-31003"), "{}", r.out);
    let r = t("not-the-key", &["check", "test1", "4.00"]);
    assert_eq!(r.code, 1, "{}", r.out);
    assert!(r.out.contains("Payme error code -32504"), "{}", r.out);
    drop(web);
}
both!(payme_terminal);

/// HTTPS with a self-signed certificate: refused until `--cacert` trusts it (a certificate
/// error is the command's fault, exit 2, and nothing is sent), then a pay like any other.
#[test]
fn https_with_a_private_certificate() {
    let opts = Options {
        tls: true,
        ..Options::default()
    };
    let Some(f) = fixture(Kind::Nginx, "tls", &opts) else {
        return;
    };
    let url = osmp_url(&f);
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    let r = terminal(&["--url", &url, "pay", "59071", "3"]);
    assert_eq!(r.code, 2, "{}", r.out);
    assert!(
        r.out.contains("--cacert"),
        "the way out is named: {}",
        r.out
    );
    assert_eq!(f.db.txns(), 0);
    let cert = f.web.certificate();
    let r = terminal(&[
        "--url",
        &url,
        "--cacert",
        cert.to_str().unwrap(),
        "pay",
        "59071",
        "3",
    ]);
    assert_eq!(r.code, 0, "{}", r.out);
    assert_eq!(f.db.balance(5907), "103.00");
    let r = terminal(&["--url", &url, "--insecure", "check", "59071"]);
    assert_eq!(r.code, 0, "{}", r.out);
    let r = terminal(&["--url", &url, "--cacert", "/etc/hostname", "check", "59071"]);
    assert_eq!(r.code, 2);
    assert!(r.err.contains("no certificate in it"), "{}", r.err);
}

/// Nobody answers: the terminal asks again within --retry-for, then says the money is in
/// doubt and how to settle it.
#[test]
fn no_answer_is_in_doubt() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
        // Dropped: nothing listens there any more.
    };
    let url = format!("http://127.0.0.1:{port}/cgi-bin/osmp.cgi");
    let r = terminal(&[
        "--url",
        &url,
        "--retry-for",
        "2.5",
        "--txn-id",
        "77",
        "pay",
        "59071",
        "1",
    ]);
    assert_eq!(r.code, 3, "{}", r.out);
    assert!(r.out.contains("<- no answer"), "{}", r.out);
    assert!(r.out.contains("(attempt 2)"), "{}", r.out);
    assert!(r.out.contains("verdict: IN DOUBT"), "{}", r.out);
    assert!(
        r.out.contains("--txn-id 77 pay 59071 1.00"),
        "the repeat command: {}",
        r.out
    );
    assert!(r.out.contains("paysys txn 77"), "{}", r.out);

    let r = terminal(&["--url", &url, "--retry-for", "0", "check", "59071"]);
    assert_eq!(r.code, 3, "{}", r.out);
    assert!(
        !r.out.contains("(attempt 2)"),
        "--retry-for 0: one attempt: {}",
        r.out
    );
}

#[test]
fn usage_errors_exit_2_and_help_exits_0() {
    let r = terminal(&["pay", "59071", "1"]);
    assert_eq!(r.code, 2);
    assert!(r.err.contains("--url URL"), "{}", r.err);
    let r = terminal(&["--help"]);
    assert_eq!(r.code, 0);
    assert!(r
        .out
        .contains("paysys terminal --url URL [OPTIONS] pay ACCOUNT SUM"));
    let r = terminal(&[
        "--paypro",
        "/nonexistent/MyProviders.ini",
        "--provider",
        "1",
        "check",
        "1",
    ]);
    assert_eq!(r.code, 2);
    assert!(r.err.contains("/nonexistent/MyProviders.ini"), "{}", r.err);
}
