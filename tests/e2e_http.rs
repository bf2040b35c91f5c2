//! `osmp.cgi` end to end behind the real web servers: nginx + fcgiwrap and Apache (mod_cgid),
//! each a private instance on a free 127.0.0.1 port configured by the production snippets
//! (tests/webserver), against a database of its own (tests/common).
//!
//! The CGI reads its config anew on every request, so one server per kind and test function
//! serves several checks, with `prefix/etc/paysys.toml` rewritten between them. When the
//! tests run as root the CGI runs as www-data, like in production: the database URL must then
//! be TCP (a socket URL makes these tests skip themselves), the config world-readable and
//! `var/log` writable by www-data (`webserver::prepare_prefix`).
//!
//! A server that is not installed makes the test print "skipped: …" (an error with
//! PAYSYS_REQUIRE_WEB=1).

mod common;
#[macro_use]
mod webserver;

mod e2e;

use common::{txn_date, Answer};
use e2e::{fixture, ok, pay_path, LOOPBACK};
use webserver::{Kind, Options};

fn check_pay_repeat_post_and_log(kind: Kind) {
    let Some(f) = fixture(kind, "pay", &Options::default()) else {
        return;
    };

    let a = f.get(
        "/cgi-bin/osmp.cgi?command=check&txn_id=1&account=59071&sum=10.25",
        &[],
    );
    ok(&a);
    assert_eq!(a.element("osmp_txn_id").as_deref(), Some("1"));

    let pay = pay_path("666", "59071", "10.25");
    let first = f.get(&pay, &[]);
    ok(&first);
    let prv_txn = first.prv_txn().expect("prv_txn");
    assert_eq!(f.db.balance(5907), "110.25");

    // The terminal did not hear the answer and repeats: same prv_txn, credited once.
    let again = f.get(&pay, &[]);
    ok(&again);
    assert_eq!(again.prv_txn().as_deref(), Some(prv_txn.as_str()));
    assert_eq!(f.db.balance(5907), "110.25");
    assert_eq!((f.db.pays(), f.db.txns()), (1, 1));

    // A pay as a form body (POST), to another subscriber.
    let body = format!(
        "command=pay&txn_id=667&account=12340&sum=4.50&txn_date={}",
        txn_date(-1)
    );
    let posted = f.post("/cgi-bin/osmp.cgi", &body);
    ok(&posted);
    assert_ne!(posted.prv_txn(), Some(prv_txn.clone()));
    assert_eq!(f.db.balance(1234), "20.00");
    assert_eq!((f.db.pays(), f.db.txns()), (2, 2));

    // PATH_INFO (the ABillS domain id) does not break routing; osmp.cgi ignores it.
    let a = f.get(
        "/cgi-bin/osmp.cgi/3?command=check&txn_id=2&account=59071&sum=1",
        &[],
    );
    ok(&a);
    assert_eq!(a.element("osmp_txn_id").as_deref(), Some("2"));
    let a = f.get(
        "/cgi-bin/osmp.cgi/3?command=check&txn_id=3&account=58071",
        &[],
    );
    assert_eq!(
        (a.result(), a.comment().as_str()),
        (4, "nod4"),
        "{}",
        a.body
    );

    // One line per request, with the TCP peer as the caller.
    let log = f.log();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 6, "{log}");
    assert!(
        lines[0].contains("ip=127.0.0.1 system=osmp cmd=check"),
        "{}",
        lines[0]
    );
    let paid = format!(
        "ip=127.0.0.1 system=osmp cmd=pay txn=666 account=59071 sum=10.25 result=0 prv_txn={prv_txn} "
    );
    assert!(lines[1].contains(&paid), "{}", lines[1]);
    assert!(lines[2].contains(&paid), "{}", lines[2]);
    assert!(
        lines[3].contains("ip=127.0.0.1 system=osmp cmd=pay txn=667 account=12340"),
        "{}",
        lines[3]
    );
    assert!(lines.iter().all(|l| l.contains(" ip=127.0.0.1 ")), "{log}");
}
both!(check_pay_repeat_post_and_log);

fn callers_are_known_by_remote_addr_only(kind: Kind) {
    let Some(f) = fixture(kind, "caller", &Options::default()) else {
        return;
    };
    let refused = |a: &Answer, what: &str| {
        assert_eq!(
            (a.status, a.result(), a.comment().as_str()),
            (403, 8, "nod15"),
            "{what}: {}",
            a.body
        );
    };

    // 127.0.0.1 is in no system's allow list.
    f.set_allow(&["192.0.2.0/24"]);
    let a = f.get(
        "/cgi-bin/osmp.cgi?command=check&txn_id=1&account=59071&sum=10",
        &[],
    );
    refused(&a, "unknown caller");
    let a = f.get(&pay_path("1", "59071", "10"), &[]);
    refused(&a, "unknown caller, pay");

    // A forged header naming an allowed address changes nothing: REMOTE_ADDR wins.
    f.set_allow(&["10.0.0.0/8"]);
    for header in ["X-Forwarded-For", "X-Real-IP", "Client-IP"] {
        let a = f.get(&pay_path("2", "59071", "10"), &[(header, "10.0.0.5")]);
        refused(&a, header);
    }
    assert_eq!((f.db.pays(), f.db.txns()), (0, 0));
    assert_eq!(f.db.balance(5907), "100.00");
    let log = f.log();
    assert_eq!(log.lines().count(), 5, "{log}");
    assert!(
        log.lines()
            .all(|l| l.contains(" ip=127.0.0.1 system=- ") && l.contains("comment=\"nod15\"")),
        "{log}"
    );

    // And back: the same request from an allowed peer pays.
    f.set_allow(LOOPBACK);
    let a = f.get(
        &pay_path("2", "59071", "10"),
        &[("X-Forwarded-For", "10.0.0.5")],
    );
    ok(&a);
    assert_eq!(f.db.balance(5907), "110.00");
}
both!(callers_are_known_by_remote_addr_only);

fn basic_auth_in_front(kind: Kind) {
    let opts = Options {
        basic_auth: Some(("osmp".to_string(), "pay-s3cret".to_string())),
        ..Options::default()
    };
    let Some(f) = fixture(kind, "auth", &opts) else {
        return;
    };
    let check = "/cgi-bin/osmp.cgi?command=check&txn_id=1&account=59071&sum=10";

    let r = f.web.get(check, &[]).expect("GET without credentials");
    assert_eq!(r.status, 401, "{r:?}");
    assert!(
        !r.body.contains("<response>"),
        "the CGI must not run: {r:?}"
    );
    let wrong = webserver::basic_auth_header("osmp", "guess");
    let r = f
        .web
        .get(&pay_path("1", "59071", "10"), &[("Authorization", &wrong)])
        .expect("GET with a wrong password");
    assert_eq!(r.status, 401, "{r:?}");
    assert_eq!((f.db.pays(), f.db.txns()), (0, 0));
    assert_eq!(f.log(), "", "refused by the server: the CGI never ran");

    let right = webserver::basic_auth_header("osmp", "pay-s3cret");
    ok(&f.get(check, &[("Authorization", &right)]));
    ok(&f.get(&pay_path("1", "59071", "10"), &[("Authorization", &right)]));
    assert_eq!(f.db.balance(5907), "110.00");
}
both!(basic_auth_in_front);

fn concurrent_identical_pays_credit_once(kind: Kind) {
    let Some(f) = fixture(kind, "burst", &Options::default()) else {
        return;
    };
    let pay = pay_path("4242", "59071", "7.77");
    let answers: Vec<Answer> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..20).map(|_| s.spawn(|| f.get(&pay, &[]))).collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("request thread"))
            .collect()
    });
    for a in &answers {
        ok(a);
    }
    let prv: Vec<Option<String>> = answers.iter().map(Answer::prv_txn).collect();
    assert!(
        prv[0].is_some() && prv.iter().all(|p| *p == prv[0]),
        "one prv_txn: {prv:?}"
    );
    assert_eq!(f.db.balance(5907), "107.77");
    assert_eq!((f.db.pays(), f.db.txns()), (1, 1));
    let log = f.log();
    assert_eq!(log.lines().count(), 20, "one line per request:\n{log}");
    assert!(
        log.lines().all(|l| l.contains(" ip=127.0.0.1 ")
            && l.contains(" cmd=pay txn=4242 ")
            && l.contains(" result=0 ")),
        "{log}"
    );
}
both!(concurrent_identical_pays_credit_once);
