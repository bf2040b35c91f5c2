//! `[hooks]`: commands before and after a payment, and `notify`, run by the real CGI against
//! a real MariaDB. Each hook here is a small shell script that records what it was given.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::{pay_query, Site, TestDb};
use mysql::prelude::Queryable;

/// Writes an executable script `name` into the site and returns its path.
fn script(site: &Site, name: &str, body: &str) -> PathBuf {
    let path = site.base.join(name);
    common::write_executable(&path, &format!("#!/bin/sh\n{body}\n"));
    path
}

/// The site's config with a `[hooks]` section added.
fn with_hooks(site: &Site, hooks: &str) {
    let config = fs::read_to_string(site.config_path()).unwrap();
    site.write_config(&format!("{config}\n[hooks]\n{hooks}\n"));
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_default()
}

#[test]
fn before_payment_decides_new_payments_only() {
    let db = TestDb::new();
    let site = Site::new(&db.url, "");
    let runs = site.base.join("before.runs");
    let hook = script(
        &site,
        "before",
        &format!(
            "env | grep ^PAYSYS_ | sort >> {runs}\necho --- >> {runs}\n\
             [ \"$PAYSYS_SUM\" != \"13.00\" ] || {{ echo 'sums of 13 bring bad luck'; exit 1; }}",
            runs = runs.display()
        ),
    );
    with_hooks(
        &site,
        &format!("before_payment = {:?}", hook.display().to_string()),
    );

    let paid = site.get(&pay_query("100", "59071", "10.00"));
    assert_eq!(paid.result(), 0, "{}", paid.body);
    let env = read(&runs);
    for expected in [
        "PAYSYS_ACCOUNT=59071",
        "PAYSYS_SUM=10.00",
        "PAYSYS_SYSTEM=osmp",
        "PAYSYS_TXN_ID=100",
        "PAYSYS_UID=5907",
        "PAYSYS_CALLER=127.0.0.1",
    ] {
        assert!(env.lines().any(|l| l == expected), "{expected} in\n{env}");
    }
    assert!(!env.contains("PAYSYS_PRV_TXN"), "{env}");

    // The terminal's repeat gets the first answer; the hook is not asked again.
    let again = site.get(&pay_query("100", "59071", "10.00"));
    assert_eq!((again.result(), again.prv_txn()), (0, paid.prv_txn()));
    assert_eq!(read(&runs).matches("---").count(), 1);

    // It says no: refused (7), nothing credited, its reason in the log.
    let refused = site.get(&pay_query("101", "59071", "13.00"));
    assert_eq!(
        (refused.result(), refused.comment().as_str()),
        (7, "nod26"),
        "{}",
        refused.body
    );
    assert_eq!(db.balance(5907), "110.00");
    assert_eq!((db.pays(), db.txns()), (1, 1));
    assert!(
        site.log().contains("before_payment refused") && site.log().contains("bad luck"),
        "{}",
        site.log()
    );
    // An unknown account is refused as such, without asking the hook.
    let unknown = site.get(&pay_query("102", "11", "5.00"));
    assert_eq!(unknown.result(), 5, "{}", unknown.body);
    assert_eq!(read(&runs).matches("---").count(), 2);
}

#[test]
fn a_before_payment_hook_that_cannot_run_is_temporary() {
    let db = TestDb::new();
    let site = Site::new(&db.url, "");
    with_hooks(&site, "before_payment = \"/nonexistent/check-payment\"");
    let a = site.get(&pay_query("200", "59071", "10.00"));
    assert_eq!(
        (a.result(), a.comment().as_str()),
        (1, "nod28"),
        "{}",
        a.body
    );
    assert_eq!((db.pays(), db.txns()), (0, 0));
    // A slow one is stopped at the timeout, and is no refusal either.
    let slow = script(&site, "slow", "sleep 30");
    with_hooks(
        &site,
        &format!(
            "before_payment = {:?}\ntimeout = 1",
            slow.display().to_string()
        ),
    );
    let started = std::time::Instant::now();
    let a = site.get(&pay_query("200", "59071", "10.00"));
    assert_eq!(a.result(), 1, "{}", a.body);
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    assert_eq!((db.pays(), db.txns()), (0, 0));
}

#[test]
fn after_payment_and_notify_never_undo_a_payment() {
    let db = TestDb::new();
    let site = Site::new(&db.url, "");
    let after_runs = site.base.join("after.runs");
    let after = script(
        &site,
        "after",
        &format!(
            "echo \"$PAYSYS_TXN_ID $PAYSYS_UID $PAYSYS_PRV_TXN $PAYSYS_SUM\" >> {}\n\
             echo 'provisioning failed' >&2; exit 3",
            after_runs.display()
        ),
    );
    let mail = site.base.join("mail.txt");
    let notify = script(
        &site,
        "notify",
        &format!("cat >> {}\nexit 75", mail.display()),
    );
    with_hooks(
        &site,
        &format!(
            "after_payment = {:?}\nnotify = [{:?}, \"-oi\", \"admin@isp.example\"]",
            after.display().to_string(),
            notify.display().to_string()
        ),
    );
    let a = site.get(&pay_query("300", "59071", "7.50"));
    assert_eq!(a.result(), 0, "the payment stands: {}", a.body);
    let prv_txn = a.prv_txn().expect("prv_txn");
    assert_eq!(db.balance(5907), "107.50");
    assert_eq!(read(&after_runs), format!("300 5907 {prv_txn} 7.50\n"));
    let mail_text = read(&mail);
    assert!(
        mail_text.starts_with("Subject: paysys: osmp paid 7.50 to 59071 (txn 300)\n\n"),
        "{mail_text}"
    );
    let line = site.log_lines().pop().unwrap_or_default();
    assert!(
        line.contains("result=0")
            && line.contains("after_payment failed")
            && line.contains("provisioning failed")
            && line.contains("notify failed"),
        "{line}"
    );

    // A repeat is no new payment: no hooks.
    let again = site.get(&pay_query("300", "59071", "7.50"));
    assert_eq!(again.prv_txn(), Some(prv_txn));
    assert_eq!(read(&after_runs).lines().count(), 1);

    // An unknown caller is reported to notify with what it sent.
    let stranger = site.cgi(
        &[
            ("REQUEST_METHOD", "GET"),
            (
                "QUERY_STRING",
                "command=pay&txn_id=1&account=59071%0ASubject: x",
            ),
            ("REMOTE_ADDR", "192.0.2.66"),
        ],
        b"",
    );
    assert_eq!(stranger.status, 403);
    let mail_text = read(&mail);
    let second = &mail_text[mail_text
        .find("Subject: paysys: unknown caller")
        .expect("a message about the unknown caller")..];
    assert!(
        second.starts_with("Subject: paysys: unknown caller 192.0.2.66\n\n"),
        "{second}"
    );
    assert!(second.contains("command=pay&txn_id=1"), "{second}");
    assert_eq!(
        mail_text
            .lines()
            .filter(|l| l.starts_with("Subject:"))
            .count(),
        2,
        "a request's bytes never start a header line: {mail_text}"
    );
}

#[test]
fn hooks_get_hostile_values_as_plain_data() {
    // An ABillS login may hold anything a person can type: quotes, $(...), backticks.
    let abills = fs::read_to_string(common::repo().join("sql/abills.sql")).unwrap();
    let db = TestDb::with_fixture(&abills);
    let login = "x'\"$(touch P)`;|&";
    db.conn()
        .exec_drop("UPDATE users SET id = ? WHERE uid = 1", (login,))
        .unwrap();
    let site = Site::new(&db.url, "");
    let config = fs::read_to_string(site.config_path())
        .unwrap()
        .replace("billing = \"nodeny\"", "billing = \"abills\"")
        .replace("account = \"payment_code\"", "account = \"login\"");
    site.write_config(&config);
    let seen = site.base.join("seen");
    let hook = script(
        &site,
        "before",
        &format!("printf '%s' \"$PAYSYS_ACCOUNT\" > {}", seen.display()),
    );
    with_hooks(
        &site,
        &format!("before_payment = {:?}", hook.display().to_string()),
    );
    let encoded: String = login
        .bytes()
        .map(|b| format!("%{b:02X}"))
        .collect::<String>();
    let a = site.get(&pay_query("400", &encoded, "1.00"));
    assert_eq!(a.result(), 0, "{}", a.body);
    assert_eq!(read(&seen), login);
    assert!(!site.base.join("P").exists() && !Path::new("P").exists());
}
