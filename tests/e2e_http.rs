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

use e2e::{fixture, ok, pay_path};
use webserver::{Kind, Options};

fn check_pay_repeat_post_and_log(kind: Kind) {
    let Some(f) = fixture(kind, "pay", &Options::default()) else {
        return;
    };
    e2e::check_pay_repeat_post(&f);
}
both!(check_pay_repeat_post_and_log);

fn chunked_post_pays_once(kind: Kind) {
    let Some(f) = fixture(kind, "chunked", &Options::default()) else {
        return;
    };
    e2e::chunked_post_pays_once(&f);
}
both!(chunked_post_pays_once);

fn callers_are_known_by_remote_addr_only(kind: Kind) {
    let Some(f) = fixture(kind, "caller", &Options::default()) else {
        return;
    };
    e2e::callers_are_known_by_remote_addr_only(&f);
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
    e2e::burst_of_identical_pays(&f);
}
both!(concurrent_identical_pays_credit_once);
